//! The HTTP routes of the relay.

use std::path::Path;

use axum::Router;
use axum::routing::get;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

/// Builds the application: `/healthz` and the static web app at `/`.
pub fn app(web_dir: &Path) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback_service(ServeDir::new(web_dir))
        .layer(TraceLayer::new_for_http())
}

async fn healthz() -> &'static str {
    "ok"
}
