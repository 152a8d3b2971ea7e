//! `GET /api/v1/records` (the review queue) and `POST /api/v1/records/{id}/review`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use caresync_core::domain::{Date, DocumentKind, OrgUnitCode, ReportRow, ReviewState, YearMonth};
use caresync_core::protocol::DocumentId;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::area::request_villages;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::relay::EngineEvent;
use crate::relay::review::{ReviewAction, ReviewError, ReviewRequest};
use crate::state::AppState;
use crate::store::{self, RecordFilter};

/// Largest page of records one request returns.
pub const RECORDS_PAGE_SIZE_MAX: u64 = 500;
/// Page size when the request names none.
pub const RECORDS_PAGE_SIZE_DEFAULT: u64 = 50;
/// Longest review comment accepted.
pub const REVIEW_COMMENT_CHARS_MAX: usize = 2_000;
/// Time a review may take to load, check and commit before the API gives up waiting (the
/// review may still land; the reviewer sees it in the list).
pub const REVIEW_WAIT_MS_MAX: u64 = 15_000;

#[derive(Debug, Deserialize)]
pub struct RecordsQuery {
    pub township: Option<String>,
    pub village: Option<String>,
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub review_state: Option<String>,
    /// `YYYY-MM`: shorthand for `from` and `to` spanning that month.
    pub month: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct RecordItem {
    pub id: String,
    pub url: String,
    pub kind: String,
    pub village: String,
    pub village_name: String,
    pub subject: Option<String>,
    pub worker: Option<String>,
    pub title: String,
    pub day: Option<String>,
    pub minutes: Option<i64>,
    pub record_status: Option<String>,
    pub review_state: Option<String>,
    pub review_comment: Option<String>,
    pub next_visit: Option<String>,
    pub risk: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RecordsPage {
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
    pub items: Vec<RecordItem>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Authenticated,
    Query(query): Query<RecordsQuery>,
) -> Result<Json<RecordsPage>, ApiError> {
    let villages = request_villages(
        &state,
        &session,
        query.township.as_deref(),
        query.village.as_deref(),
    )?;
    let kind = match query.kind.as_deref().filter(|k| !k.is_empty()) {
        Some(text) => Some(
            DocumentKind::parse(text)
                .ok_or_else(|| ApiError::bad_request(format!("unknown kind {text:?}")))?,
        ),
        None => None,
    };
    let review_state = match query.review_state.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => Some(
            ReviewState::parse(text)
                .ok_or_else(|| ApiError::bad_request(format!("unknown review_state {text:?}")))?,
        ),
        None => None,
    };
    let mut from = parse_date(query.from.as_deref(), "from")?;
    let mut to = parse_date(query.to.as_deref(), "to")?;
    if let Some(month) = query.month.as_deref().filter(|m| !m.is_empty()) {
        let month = YearMonth::parse(month)
            .ok_or_else(|| ApiError::bad_request("month must be YYYY-MM"))?;
        from = Date::new(month.year(), month.month(), 1);
        to = (28..=31)
            .rev()
            .find_map(|day| Date::new(month.year(), month.month(), day));
    }
    let page = query.page.unwrap_or(1).max(1);
    let page_size = query
        .page_size
        .unwrap_or(RECORDS_PAGE_SIZE_DEFAULT)
        .clamp(1, RECORDS_PAGE_SIZE_MAX);
    let filter = RecordFilter {
        villages,
        kind,
        from,
        to,
        review_state,
        offset: (page - 1).saturating_mul(page_size),
        limit: page_size,
    };
    let found = state
        .db
        .run(move |conn| store::list_records(conn, &filter))
        .await?;
    let items = found
        .items
        .iter()
        .map(|row| record_item(&state, row))
        .collect();
    Ok(Json(RecordsPage {
        total: found.total,
        page,
        page_size,
        items,
    }))
}

fn record_item(state: &AppState, row: &ReportRow) -> RecordItem {
    RecordItem {
        id: row.document.clone(),
        url: format!("automerge:{}", row.document),
        kind: row.kind.as_str().to_owned(),
        village: row.org_unit.as_str().to_owned(),
        village_name: unit_name(state, &row.org_unit),
        subject: row.subject.as_ref().map(|s| s.as_str().to_owned()),
        worker: row.worker.as_ref().map(|w| w.as_str().to_owned()),
        title: row.title.clone(),
        day: row.day.map(|d| d.to_string()),
        minutes: row.minutes,
        record_status: row.record_status.map(|s| s.as_str().to_owned()),
        review_state: row.review_state.map(|s| s.as_str().to_owned()),
        review_comment: row.review_comment.clone(),
        next_visit: row.next_visit.map(|d| d.to_string()),
        risk: row.risk.map(|r| r.as_str().to_owned()),
    }
}

pub fn unit_name(state: &AppState, code: &OrgUnitCode) -> String {
    state
        .tree()
        .get(code)
        .map_or_else(|| code.as_str().to_owned(), |unit| unit.name.clone())
}

pub fn parse_date(text: Option<&str>, name: &str) -> Result<Option<Date>, ApiError> {
    match text.filter(|t| !t.is_empty()) {
        Some(text) => Date::parse(text)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{name} must be a date YYYY-MM-DD"))),
        None => Ok(None),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReviewBody {
    /// `approve` or `return`.
    pub action: String,
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ReviewAnswer {
    pub id: String,
    pub review_state: String,
    /// The document's heads after the review, hex change hashes.
    pub heads: Vec<String>,
}

pub async fn review(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
    Json(body): Json<ReviewBody>,
) -> Result<Json<ReviewAnswer>, ApiError> {
    let document = id
        .trim_start_matches("automerge:")
        .parse::<DocumentId>()
        .map_err(|_| ApiError::not_found())?;
    let comment = body
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > REVIEW_COMMENT_CHARS_MAX)
    {
        return Err(ApiError::bad_request(format!(
            "意见过长 / the comment is longer than {REVIEW_COMMENT_CHARS_MAX} characters"
        )));
    }
    let action = match body.action.as_str() {
        "approve" => ReviewAction::Approve { comment },
        "return" => ReviewAction::Return {
            comment: comment.ok_or_else(|| {
                ApiError::bad_request("退回须填写意见 / returning a record needs a comment")
            })?,
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "action must be approve or return, not {other:?}"
            )));
        }
    };
    let (reply, answer) = oneshot::channel();
    let request = ReviewRequest {
        account: session.account,
        document,
        action,
        reply,
    };
    state
        .engine
        .send(EngineEvent::Review(Box::new(request)))
        .map_err(|_| shutting_down())?;
    let outcome = tokio::time::timeout(Duration::from_millis(REVIEW_WAIT_MS_MAX), answer)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "审核保存超时 / the review took too long to store",
            )
        })?
        .map_err(|_| shutting_down())?;
    match outcome {
        Ok(done) => Ok(Json(ReviewAnswer {
            id: document.to_string(),
            review_state: done.state.as_str().to_owned(),
            heads: done.heads.iter().map(ToString::to_string).collect(),
        })),
        Err(ReviewError::NotFound) => Err(ApiError::not_found()),
        Err(ReviewError::Forbidden(detail)) => Err(ApiError::forbidden(format!(
            "无权审核 / not allowed to review: {detail}"
        ))),
        Err(error @ (ReviewError::NotReviewable | ReviewError::Invalid(_))) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            error.to_string(),
        )),
        Err(ReviewError::ShuttingDown) => Err(shutting_down()),
        Err(error @ ReviewError::Storage(_)) => Err(ApiError::internal(error)),
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "服务器正在停止 / the relay is shutting down",
    )
}
