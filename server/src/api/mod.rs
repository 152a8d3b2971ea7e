//! The JSON API under `/api/v1/`: login and sessions, the review queue and review actions,
//! reports and exports for township staff.

mod area;
pub mod auth;
pub mod error;
mod exports;
pub mod login;
mod records;
mod reports;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login::login))
        .route("/logout", post(login::logout))
        .route("/me", get(login::me))
        .route("/records", get(records::list))
        .route("/records/{id}/review", post(records::review))
        .route("/reports/coverage", get(reports::coverage))
        .route("/reports/overdue", get(reports::overdue))
        .route("/reports/hours", get(reports::hours))
        .route("/exports/visits.csv", get(exports::visits_csv))
        .route("/exports/service-logs.csv", get(exports::service_logs_csv))
        .route("/exports/month.xlsx", get(exports::month_xlsx))
}
