//! The HTTP surface of the relay: `/sync` (WebSocket), `/api/v1/` (JSON), `/healthz`,
//! `/metrics`, and the web app's static files at `/`.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State, WebSocketUpgrade};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::api;
use crate::api::error::ApiError;
use crate::auth::origin::origin_allowed;
use crate::auth::session::presented_token;
use crate::clock::now_ms;
use crate::relay::{self, limits};
use crate::state::AppState;

/// Builds the application.
pub fn app(web_dir: &Path, state: AppState) -> Router {
    let api = api::router().layer(middleware::from_fn_with_state(
        state.clone(),
        limit_requests,
    ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/sync", get(sync))
        .nest("/api/v1", api)
        .fallback_service(ServeDir::new(web_dir))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The per-address request budget of the JSON API; beyond it, 429.
async fn limit_requests(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if !state.limiter.allow(peer.ip(), now_ms()) {
        state.metrics.add_request_limited();
        return ApiError::too_many(1).into_response();
    }
    next.run(request).await
}

#[derive(Debug, Deserialize)]
struct SyncQuery {
    token: Option<String>,
}

/// `GET /sync`: the automerge-repo WebSocket endpoint. The upgrade is refused before any
/// protocol message when the Origin is foreign (403) or the session is missing (401).
async fn sync(
    upgrade: WebSocketUpgrade,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SyncQuery>,
) -> Response {
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    if !origin_allowed(origin, host, &state.settings.allowed_origins) {
        tracing::info!(
            origin = origin.unwrap_or("-"),
            "sync upgrade from a foreign origin refused"
        );
        return ApiError::forbidden("origin not allowed").into_response();
    }
    if *state.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let Some(token) = presented_token(&headers, query.token.as_deref()) else {
        return ApiError::unauthorized().into_response();
    };
    let session = match api::auth::account_of_token(&state, &token).await {
        Ok(Some(session)) => session,
        Ok(None) => return ApiError::unauthorized().into_response(),
        Err(error) => return error.into_response(),
    };
    upgrade
        .max_message_size(limits::WEBSOCKET_MESSAGE_BYTES_MAX)
        .max_frame_size(limits::WEBSOCKET_FRAME_BYTES_MAX)
        .read_buffer_size(limits::WEBSOCKET_READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            relay::serve_socket(socket, state, session.account, session.token_hash)
        })
}
