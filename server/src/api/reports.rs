//! Reports for township staff (design §3.6), read from the query tables only.

use axum::Json;
use axum::extract::{Query, State};
use caresync_core::domain::{Date, YearMonth};
use serde::{Deserialize, Serialize};

use super::area::request_villages;
use super::auth::Authenticated;
use super::error::ApiError;
use super::records::{parse_date, unit_name};
use crate::clock::now_ms;
use crate::state::AppState;
use crate::store;

#[derive(Debug, Deserialize)]
pub struct AreaQuery {
    pub township: Option<String>,
    pub village: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub month: Option<String>,
    /// For tests and back-dated reports: the day taken as today.
    pub today: Option<String>,
}

/// Today in China time.
pub fn today() -> Result<Date, ApiError> {
    let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    Date::of_instant(now).ok_or_else(|| ApiError::internal("the clock is out of range"))
}

pub fn month_or_current(text: Option<&str>) -> Result<YearMonth, ApiError> {
    match text.filter(|t| !t.is_empty()) {
        Some(text) => {
            YearMonth::parse(text).ok_or_else(|| ApiError::bad_request("month must be YYYY-MM"))
        }
        None => {
            let today = today()?;
            YearMonth::new(today.year(), today.month())
                .ok_or_else(|| ApiError::internal("the clock is out of range"))
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CoverageItem {
    pub village: String,
    pub village_name: String,
    pub children: u64,
    pub visited: u64,
    /// `visited / children`, 0 when the village has no children in the ledger.
    pub share: f64,
}

#[derive(Debug, Serialize)]
pub struct CoverageReport {
    pub from: String,
    pub to: String,
    pub villages: Vec<CoverageItem>,
}

/// `GET /api/v1/reports/coverage?from=&to=`: share of active children visited in the
/// period, per village. The period defaults to the current month.
pub async fn coverage(
    State(state): State<AppState>,
    session: Authenticated,
    Query(query): Query<AreaQuery>,
) -> Result<Json<CoverageReport>, ApiError> {
    let villages = request_villages(
        &state,
        &session,
        query.township.as_deref(),
        query.village.as_deref(),
    )?;
    let today = today()?;
    let from = parse_date(query.from.as_deref(), "from")?
        .or_else(|| Date::new(today.year(), today.month(), 1))
        .ok_or_else(|| ApiError::internal("the clock is out of range"))?;
    let to = parse_date(query.to.as_deref(), "to")?.unwrap_or(today);
    let rows = state
        .db
        .run(move |conn| store::coverage(conn, &villages, from, to))
        .await?;
    let villages = rows
        .into_iter()
        .map(|row| {
            // Counts of children fit f64 exactly.
            #[allow(clippy::cast_precision_loss)]
            let share = if row.children == 0 {
                0.0
            } else {
                row.visited as f64 / row.children as f64
            };
            CoverageItem {
                village_name: unit_name(&state, &row.village),
                village: row.village.as_str().to_owned(),
                children: row.children,
                visited: row.visited,
                share,
            }
        })
        .collect();
    Ok(Json(CoverageReport {
        from: from.to_string(),
        to: to.to_string(),
        villages,
    }))
}

#[derive(Debug, Serialize)]
pub struct OverdueItem {
    pub child: String,
    pub url: String,
    pub name: String,
    pub village: String,
    pub village_name: String,
    pub risk: Option<String>,
    pub last_visit: Option<String>,
    pub due: Option<String>,
}

/// `GET /api/v1/reports/overdue`: children whose next visit is past due.
pub async fn overdue(
    State(state): State<AppState>,
    session: Authenticated,
    Query(query): Query<AreaQuery>,
) -> Result<Json<Vec<OverdueItem>>, ApiError> {
    let villages = request_villages(
        &state,
        &session,
        query.township.as_deref(),
        query.village.as_deref(),
    )?;
    let today = parse_date(query.today.as_deref(), "today")?.unwrap_or(today()?);
    let rows = state
        .db
        .run(move |conn| store::overdue_visits(conn, &villages, today))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| OverdueItem {
                url: format!("automerge:{}", row.child),
                child: row.child,
                name: row.name,
                village_name: unit_name(&state, &row.village),
                village: row.village.as_str().to_owned(),
                risk: row.risk.map(|r| r.as_str().to_owned()),
                last_visit: row.last_visit.map(|d| d.to_string()),
                due: row.due.map(|d| d.to_string()),
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize)]
pub struct HoursItem {
    pub worker: String,
    pub username: Option<String>,
    pub logs: u64,
    pub minutes: i64,
    pub hours: f64,
}

#[derive(Debug, Serialize)]
pub struct HoursReport {
    pub month: String,
    pub workers: Vec<HoursItem>,
}

/// `GET /api/v1/reports/hours?month=YYYY-MM`: service hours per care worker.
pub async fn hours(
    State(state): State<AppState>,
    session: Authenticated,
    Query(query): Query<AreaQuery>,
) -> Result<Json<HoursReport>, ApiError> {
    let villages = request_villages(
        &state,
        &session,
        query.township.as_deref(),
        query.village.as_deref(),
    )?;
    let month = month_or_current(query.month.as_deref())?;
    let (rows, accounts) = state
        .db
        .run(move |conn| {
            Ok((
                store::hours_per_worker(conn, &villages, month)?,
                store::list_accounts(conn)?,
            ))
        })
        .await?;
    let workers = rows
        .into_iter()
        .map(|row| {
            let username = accounts
                .iter()
                .find(|account| account.id == row.worker)
                .map(|account| account.username.clone());
            // Minutes of a month fit f64 exactly.
            #[allow(clippy::cast_precision_loss)]
            let hours = row.minutes as f64 / 60.0;
            HoursItem {
                worker: row.worker.as_str().to_owned(),
                username,
                logs: row.logs,
                minutes: row.minutes,
                hours,
            }
        })
        .collect();
    Ok(Json(HoursReport {
        month: month.to_string(),
        workers,
    }))
}
