//! `POST /api/v1/login`, `POST /api/v1/logout` and `GET /api/v1/me`.
//!
//! A failed login answers the same 401 whether the account is unknown, disabled or the
//! password wrong, and an unknown name is checked against a decoy hash so the timing does
//! not tell them apart either.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use caresync_core::domain::Account;
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::ApiError;
use crate::auth::password::decoy_hash;
use crate::auth::password_checker::PasswordCheckError;
use crate::auth::session::{cleared_cookie, session_cookie};
use crate::auth::token::new_token;
use crate::clock::now_ms;
use crate::state::AppState;
use crate::store;

/// Longest username looked up; longer ones cannot exist.
pub const USERNAME_BYTES_MAX: usize = 128;

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct AccountView {
    pub id: String,
    pub username: String,
    pub role: String,
    pub org_units: Vec<String>,
    pub assigned_elders: Vec<String>,
}

impl From<&Account> for AccountView {
    fn from(account: &Account) -> Self {
        AccountView {
            id: account.id.as_str().to_owned(),
            username: account.username.clone(),
            role: account.role.as_str().to_owned(),
            org_units: account
                .org_units
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            assigned_elders: account
                .assigned_elders
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct LoginResponse {
    token: String,
    /// Milliseconds since the Unix epoch, like every instant in caresync.
    expires_at: u64,
    account: AccountView,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let address = peer.ip();
    if let Err(retry_after) = state.throttle.check(&request.username, address, now) {
        state.metrics.add_login_failed();
        return Err(ApiError::too_many(retry_after));
    }
    let username = request.username.clone();
    let found = if username.len() > USERNAME_BYTES_MAX {
        None
    } else {
        state
            .db
            .run(move |conn| store::account_by_username(conn, &username))
            .await?
    };
    let password = request.password;
    let (account, hash) = match found {
        Some((account, hash)) => (Some(account), hash),
        None => (None, decoy_hash().to_owned()),
    };
    let matches = match state.passwords.verify(hash, password).await {
        Ok(matches) => matches,
        Err(PasswordCheckError::Busy) => return Err(ApiError::too_many(1)),
        Err(error) => return Err(ApiError::internal(error)),
    };
    let account = match account {
        Some(account) if matches && !account.disabled => account,
        _ => {
            state.throttle.failed(&request.username, address, now);
            state.metrics.add_login_failed();
            tracing::info!(username = %request.username, %address, "login refused");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "用户名或密码错误 / wrong username or password",
            ));
        }
    };
    state.throttle.succeeded(&request.username);
    let (token, token_hash) = new_token().map_err(ApiError::internal)?;
    let expires_at = now.saturating_add(state.settings.session_ttl_ms);
    let account_id = account.id.clone();
    state
        .db
        .run(move |conn| {
            store::insert_session(
                conn,
                &token_hash,
                &account_id,
                i64::try_from(now).unwrap_or(i64::MAX),
                i64::try_from(expires_at).unwrap_or(i64::MAX),
            )
        })
        .await?;
    tracing::info!(username = %account.username, "logged in");
    let cookie = session_cookie(&token, state.settings.session_ttl_ms / 1_000);
    let body = LoginResponse {
        token,
        expires_at,
        account: AccountView::from(&account),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    session: Authenticated,
) -> Result<Response, ApiError> {
    let hash = session.token_hash;
    state
        .db
        .run(move |conn| store::revoke_session(conn, &hash))
        .await?;
    Ok((
        [(header::SET_COOKIE, cleared_cookie())],
        Json(serde_json::json!({"ok": true})),
    )
        .into_response())
}

pub async fn me(session: Authenticated) -> Json<AccountView> {
    Json(AccountView::from(&session.account))
}
