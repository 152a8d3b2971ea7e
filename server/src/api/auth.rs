//! The account behind an API request: an extractor that finds the session token (bearer
//! header or session cookie) and loads its account, or answers 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use caresync_core::domain::Account;

use super::error::ApiError;
use crate::auth::session::presented_token;
use crate::auth::token::token_hash;
use crate::clock::now_ms;
use crate::state::AppState;
use crate::store;

/// A request made with a valid session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub account: Account,
    pub token_hash: [u8; 32],
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = presented_token(&parts.headers, None).ok_or_else(ApiError::unauthorized)?;
        let account = account_of_token(state, &token)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(account)
    }
}

/// The account of a token if its session is valid (known, not revoked, not expired, the
/// account not disabled).
pub async fn account_of_token(
    state: &AppState,
    token: &str,
) -> Result<Option<Authenticated>, ApiError> {
    let Some(hash) = token_hash(token) else {
        return Ok(None);
    };
    let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let account = state
        .db
        .run(move |conn| store::session_account(conn, &hash, now))
        .await?;
    Ok(account.map(|account| Authenticated {
        account,
        token_hash: hash,
    }))
}
