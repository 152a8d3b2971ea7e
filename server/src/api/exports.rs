//! Exports of a month's visits and service logs for an area, as CSV and XLSX (design §1:
//! township staff "export ledgers to Excel").

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use caresync_core::domain::{DocumentKind, ReportRow, YearMonth};

use super::area::request_villages;
use super::auth::Authenticated;
use super::error::ApiError;
use super::reports::{AreaQuery, month_or_current};
use crate::export::{self, ExportNames};
use crate::state::AppState;
use crate::store;

struct MonthRows {
    month: YearMonth,
    visits: Vec<ReportRow>,
    logs: Vec<ReportRow>,
    names: ExportNames,
}

async fn month_rows(
    state: &AppState,
    session: &Authenticated,
    query: &AreaQuery,
) -> Result<MonthRows, ApiError> {
    let villages = request_villages(
        state,
        session,
        query.township.as_deref(),
        query.village.as_deref(),
    )?;
    let month = month_or_current(query.month.as_deref())?;
    let village_names: HashMap<_, _> = villages
        .iter()
        .map(|code| (code.clone(), super::records::unit_name(state, code)))
        .collect();
    let (visits, logs, accounts, subjects) = state
        .db
        .run(move |conn| {
            let visits = store::export_rows(conn, &villages, month, DocumentKind::HomeVisit)?;
            let logs = store::export_rows(conn, &villages, month, DocumentKind::ServiceLog)?;
            let subject_ids: Vec<String> = visits
                .iter()
                .chain(&logs)
                .filter_map(|row| row.subject.as_ref().map(|s| s.as_str().to_owned()))
                .collect();
            let subjects = store::subject_titles(conn, &subject_ids)?;
            Ok((visits, logs, store::list_accounts(conn)?, subjects))
        })
        .await?;
    let names = ExportNames {
        villages: village_names,
        workers: accounts
            .into_iter()
            .map(|account| (account.id, account.username))
            .collect(),
        subjects,
    };
    Ok(MonthRows {
        month,
        visits,
        logs,
        names,
    })
}

fn attachment(bytes: Vec<u8>, content_type: &'static str, file_name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /api/v1/exports/visits.csv?month=YYYY-MM&township=`
pub async fn visits_csv(
    State(state): State<AppState>,
    session: Authenticated,
    Query(query): Query<AreaQuery>,
) -> Result<Response, ApiError> {
    let rows = month_rows(&state, &session, &query).await?;
    let bytes = export::visits_csv(&rows.visits, &rows.names).map_err(ApiError::internal)?;
    Ok(attachment(
        bytes,
        "text/csv; charset=utf-8",
        &format!("visits-{}.csv", rows.month),
    ))
}

/// `GET /api/v1/exports/service-logs.csv?month=YYYY-MM&township=`
pub async fn service_logs_csv(
    State(state): State<AppState>,
    session: Authenticated,
    Query(query): Query<AreaQuery>,
) -> Result<Response, ApiError> {
    let rows = month_rows(&state, &session, &query).await?;
    let bytes = export::service_logs_csv(&rows.logs, &rows.names).map_err(ApiError::internal)?;
    Ok(attachment(
        bytes,
        "text/csv; charset=utf-8",
        &format!("service-logs-{}.csv", rows.month),
    ))
}

/// `GET /api/v1/exports/month.xlsx?month=YYYY-MM&township=`: both ledgers in one workbook.
pub async fn month_xlsx(
    State(state): State<AppState>,
    session: Authenticated,
    Query(query): Query<AreaQuery>,
) -> Result<Response, ApiError> {
    let rows = month_rows(&state, &session, &query).await?;
    let title = format!("{} 台账", rows.month);
    let bytes = export::month_xlsx(&title, &rows.visits, &rows.logs, &rows.names)
        .map_err(ApiError::internal)?;
    Ok(attachment(
        bytes,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &format!("caresync-{}.xlsx", rows.month),
    ))
}
