//! Reports: queries on the `records` projection only (design §3.6: reports never scan
//! documents). The document writer keeps one row per document in the same transaction as
//! its changes ([`upsert_record`]); everything here reads those rows.
//!
//! Callers pass explicit lists of village codes (a township is expanded with the org tree
//! first), so that the access decision of who may see which villages stays with the caller.
//! Lists go to SQLite as one JSON array read with `json_each`, which keeps each query one
//! cached statement whatever the number of villages, and still lets SQLite look each
//! village up in the `(org_unit, kind, day)` index.

use std::collections::HashMap;

use caresync_core::domain::{
    AccountId, Date, DocumentKind, OrgUnitCode, RecordStatus, ReportRow, ReviewState, RiskLevel,
    SubjectId, YearMonth, next_visit_due,
};
use rusqlite::types::{ToSql, Value};
use rusqlite::{Connection, Row, params, params_from_iter};

use super::{StoreError, json_array};

/// The `records` columns [`RecordColumns::read`] expects, in order.
const RECORD_COLUMNS: &str = "document, kind, org_unit, subject, worker, title, day, started_at, \
     ended_at, minutes, record_status, review_state, review_comment, next_visit, risk, active, \
     needs_or_services, actions, concerns";

/// Writes the report row of one document, at the sequence value of the write it belongs to.
///
/// Most writes change a record's text or times, not what the `records` indexes hold (its
/// village, kind, worker, subject, day and month). SQLite rewrites every index whose
/// columns an `UPDATE` sets, changed or not, so the row is first updated without those
/// columns, only where they still hold these values; the full upsert runs only when that
/// finds no row. In one 5 s window of benchmark (a) each, the relay's write system calls
/// per change went from 7.9 to 7.3.
pub(super) fn upsert_record(
    conn: &Connection,
    row: &ReportRow,
    seq: i64,
) -> Result<(), StoreError> {
    let day = row.day.map(|day| day.to_string());
    let month = row
        .day
        .and_then(|day| YearMonth::new(day.year(), day.month()))
        .map(|month| month.to_string());
    let next_visit = row.next_visit.map(|date| date.to_string());
    // Both statements number their parameters alike: the row's columns in table order.
    let values: [&dyn ToSql; 21] = [
        &row.document,
        &row.kind.as_str(),
        &row.org_unit.as_str(),
        &row.subject.as_ref().map(SubjectId::as_str),
        &row.worker.as_ref().map(AccountId::as_str),
        &row.title,
        &day,
        &month,
        &row.started_at,
        &row.ended_at,
        &row.minutes,
        &row.record_status.map(RecordStatus::as_str),
        &row.review_state.map(ReviewState::as_str),
        &row.review_comment,
        &next_visit,
        &row.risk.map(RiskLevel::as_str),
        &row.active,
        &row.needs_or_services,
        &row.actions,
        &row.concerns,
        &seq,
    ];
    let updated = conn
        .prepare_cached(
            "UPDATE records SET title = ?6, started_at = ?9, ended_at = ?10, minutes = ?11,
                 record_status = ?12, review_state = ?13, review_comment = ?14,
                 next_visit = ?15, risk = ?16, active = ?17, needs_or_services = ?18,
                 actions = ?19, concerns = ?20, seq = ?21
             WHERE document = ?1 AND kind = ?2 AND org_unit = ?3 AND subject IS ?4
                 AND worker IS ?5 AND day IS ?7 AND month IS ?8",
        )?
        .execute(&values[..])?;
    if updated > 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO records (document, kind, org_unit, subject, worker, title, day, month,
             started_at, ended_at, minutes, record_status, review_state, review_comment,
             next_visit, risk, active, needs_or_services, actions, concerns, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21)
         ON CONFLICT (document) DO UPDATE SET
             kind = excluded.kind, org_unit = excluded.org_unit, subject = excluded.subject,
             worker = excluded.worker, title = excluded.title, day = excluded.day,
             month = excluded.month, started_at = excluded.started_at,
             ended_at = excluded.ended_at, minutes = excluded.minutes,
             record_status = excluded.record_status, review_state = excluded.review_state,
             review_comment = excluded.review_comment, next_visit = excluded.next_visit,
             risk = excluded.risk, active = excluded.active,
             needs_or_services = excluded.needs_or_services, actions = excluded.actions,
             concerns = excluded.concerns, seq = excluded.seq",
    )?
    .execute(&values[..])?;
    Ok(())
}

/// A `records` row as stored, before its text columns are checked.
struct RecordColumns {
    document: String,
    kind: String,
    org_unit: String,
    subject: Option<String>,
    worker: Option<String>,
    title: String,
    day: Option<String>,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    minutes: Option<i64>,
    record_status: Option<String>,
    review_state: Option<String>,
    review_comment: Option<String>,
    next_visit: Option<String>,
    risk: Option<String>,
    active: bool,
    needs_or_services: String,
    actions: String,
    concerns: String,
}

impl RecordColumns {
    /// Reads [`RECORD_COLUMNS`] from the start of the row.
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RecordColumns {
            document: row.get(0)?,
            kind: row.get(1)?,
            org_unit: row.get(2)?,
            subject: row.get(3)?,
            worker: row.get(4)?,
            title: row.get(5)?,
            day: row.get(6)?,
            started_at: row.get(7)?,
            ended_at: row.get(8)?,
            minutes: row.get(9)?,
            record_status: row.get(10)?,
            review_state: row.get(11)?,
            review_comment: row.get(12)?,
            next_visit: row.get(13)?,
            risk: row.get(14)?,
            active: row.get(15)?,
            needs_or_services: row.get(16)?,
            actions: row.get(17)?,
            concerns: row.get(18)?,
        })
    }

    fn into_report(self) -> Result<ReportRow, StoreError> {
        let document = self.document;
        let kind = DocumentKind::parse(&self.kind)
            .ok_or_else(|| corrupt(&document, "kind", &self.kind))?;
        Ok(ReportRow {
            kind,
            org_unit: OrgUnitCode(self.org_unit),
            subject: self.subject.map(SubjectId),
            worker: self.worker.map(AccountId),
            title: self.title,
            day: parse_column(&document, "day", self.day, Date::parse)?,
            started_at: self.started_at,
            ended_at: self.ended_at,
            minutes: self.minutes,
            record_status: parse_column(
                &document,
                "record_status",
                self.record_status,
                RecordStatus::parse,
            )?,
            review_state: parse_column(
                &document,
                "review_state",
                self.review_state,
                ReviewState::parse,
            )?,
            review_comment: self.review_comment,
            next_visit: parse_column(&document, "next_visit", self.next_visit, Date::parse)?,
            risk: parse_column(&document, "risk", self.risk, RiskLevel::parse)?,
            active: self.active,
            needs_or_services: self.needs_or_services,
            actions: self.actions,
            concerns: self.concerns,
            document,
        })
    }
}

fn corrupt(document: &str, column: &str, value: &str) -> StoreError {
    StoreError::corrupt("records", document, format!("{column} holds {value:?}"))
}

/// Parses an optional text column, reporting a value this build cannot read.
fn parse_column<T>(
    document: &str,
    column: &str,
    value: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    value
        .map(|text| parse(&text).ok_or_else(|| corrupt(document, column, &text)))
        .transpose()
}

/// Runs a query whose rows are [`RECORD_COLUMNS`].
fn query_records(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<ReportRow>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, RecordColumns::read)?;
    let mut records = Vec::new();
    for row in rows {
        records.push(row?.into_report()?);
    }
    Ok(records)
}

fn villages_json(villages: &[OrgUnitCode]) -> String {
    json_array(villages.iter().map(OrgUnitCode::as_str))
}

/// The first and last day of a month as stored text. Every day of the month sorts between
/// `YYYY-MM-01` and `YYYY-MM-31` whatever its length, which lets month queries use the
/// `(org_unit, kind, day)` index as a range.
fn month_days(month: YearMonth) -> (String, String) {
    (format!("{month}-01"), format!("{month}-31"))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// What [`list_records`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFilter {
    pub villages: Vec<OrgUnitCode>,
    pub kind: Option<DocumentKind>,
    /// First day included (records without a day are then left out).
    pub from: Option<Date>,
    /// Last day included.
    pub to: Option<Date>,
    pub review_state: Option<ReviewState>,
    pub offset: u64,
    pub limit: u64,
}

/// One page of records and how many match in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPage {
    pub total: u64,
    pub items: Vec<ReportRow>,
}

/// The records of some villages matching a filter, newest day first (records without a
/// day, children and elders, last), then by document id so pages are stable.
pub fn list_records(conn: &Connection, filter: &RecordFilter) -> Result<RecordPage, StoreError> {
    // Only the filters given become conditions: `(?n IS NULL OR kind = ?n)` would keep the
    // statement fixed but stop SQLite from using the index for the kind and the days.
    let mut conditions = vec!["org_unit IN (SELECT value FROM json_each(?1))".to_owned()];
    let mut values = vec![Value::Text(villages_json(&filter.villages))];
    let mut condition = |sql: &str, value: String| {
        values.push(Value::Text(value));
        conditions.push(format!("{sql} ?{}", values.len()));
    };
    if let Some(kind) = filter.kind {
        condition("kind =", kind.as_str().to_owned());
    }
    if let Some(from) = filter.from {
        condition("day >=", from.to_string());
    }
    if let Some(to) = filter.to {
        condition("day <=", to.to_string());
    }
    if let Some(state) = filter.review_state {
        condition("review_state =", state.as_str().to_owned());
    }
    let filter_sql = conditions.join(" AND ");

    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM records WHERE {filter_sql}"))?
        .query_row(params_from_iter(values.iter()), |row| row.get(0))?;
    let limit_at = values.len() + 1;
    values.push(Value::Integer(
        i64::try_from(filter.limit).unwrap_or(i64::MAX),
    ));
    values.push(Value::Integer(
        i64::try_from(filter.offset).unwrap_or(i64::MAX),
    ));
    let items = query_records(
        conn,
        &format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE {filter_sql}
             ORDER BY day IS NULL, day DESC, document
             LIMIT ?{limit_at} OFFSET ?{}",
            limit_at + 1
        ),
        params_from_iter(values.iter()),
    )?;
    Ok(RecordPage {
        total: count(total),
        items,
    })
}

/// How many of a village's children were visited in a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VillageCoverage {
    pub village: OrgUnitCode,
    /// Children still in the ledger.
    pub children: u64,
    /// Of those, the ones with at least one home visit whose day is in the period.
    pub visited: u64,
}

/// Visit coverage of each given village from `from` to `to` (both included), in the order
/// given, with zeros for villages without children.
pub fn coverage(
    conn: &Connection,
    villages: &[OrgUnitCode],
    from: Date,
    to: Date,
) -> Result<Vec<VillageCoverage>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT c.org_unit, COUNT(*),
                SUM(EXISTS (SELECT 1 FROM records v
                            WHERE v.subject = c.document AND v.kind = 'home-visit'
                              AND v.day >= ?2 AND v.day <= ?3))
         FROM records c
         WHERE c.org_unit IN (SELECT value FROM json_each(?1))
           AND c.kind = 'child' AND c.active = 1
         GROUP BY c.org_unit",
    )?;
    let rows = statement.query_map(
        params![villages_json(villages), from.to_string(), to.to_string()],
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                (row.get::<_, i64>(1)?, row.get::<_, i64>(2)?),
            ))
        },
    )?;
    let counts: HashMap<String, (i64, i64)> = rows.collect::<Result<_, _>>()?;
    Ok(villages
        .iter()
        .map(|village| {
            let (children, visited) = counts.get(village.as_str()).copied().unwrap_or((0, 0));
            VillageCoverage {
                village: village.clone(),
                children: count(children),
                visited: count(visited),
            }
        })
        .collect())
}

/// A child whose next home visit is overdue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverdueChild {
    /// The child's document id.
    pub child: String,
    pub name: String,
    pub village: OrgUnitCode,
    pub risk: Option<RiskLevel>,
    /// The day of the latest visit; `None` if never visited.
    pub last_visit: Option<Date>,
    /// When the next visit was due; `None` if never visited (due at once).
    pub due: Option<Date>,
}

/// Active children of the given villages whose next visit was due before `today`.
///
/// The due date is the latest visit's `next_visit` when it set one, else the latest visit's
/// day plus core's `visit_interval_days` (the rule is core's [`next_visit_due`], which the
/// phones use too). Children never visited come first (they have waited
/// longest, from an unknown date), then the others by due date, oldest first.
pub fn overdue_visits(
    conn: &Connection,
    villages: &[OrgUnitCode],
    today: Date,
) -> Result<Vec<OverdueChild>, StoreError> {
    // Each subquery walks the child's visits backwards on the (subject, day) index and
    // stops at the first; both pick the same visit because they share the ordering.
    let mut statement = conn.prepare_cached(
        "SELECT c.document, c.title, c.org_unit, c.risk,
                (SELECT v.day FROM records v
                 WHERE v.subject = c.document AND v.kind = 'home-visit' AND v.day IS NOT NULL
                 ORDER BY v.day DESC, v.started_at DESC, v.document DESC LIMIT 1),
                (SELECT v.next_visit FROM records v
                 WHERE v.subject = c.document AND v.kind = 'home-visit' AND v.day IS NOT NULL
                 ORDER BY v.day DESC, v.started_at DESC, v.document DESC LIMIT 1)
         FROM records c
         WHERE c.org_unit IN (SELECT value FROM json_each(?1))
           AND c.kind = 'child' AND c.active = 1",
    )?;
    let rows = statement.query_map([villages_json(villages)], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
            row.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut overdue = Vec::new();
    for row in rows {
        let (child, name, village, risk, last_visit, next_visit) = row?;
        let risk = parse_column(&child, "risk", risk, RiskLevel::parse)?;
        let last_visit = parse_column(&child, "day", last_visit, Date::parse)?;
        let next_visit = parse_column(&child, "next_visit", next_visit, Date::parse)?;
        let due = last_visit.and_then(|last| next_visit_due(risk, last, next_visit));
        let is_overdue = last_visit.is_none() || due.is_some_and(|due| due < today);
        if is_overdue {
            overdue.push(OverdueChild {
                child,
                name,
                village: OrgUnitCode(village),
                risk,
                last_visit,
                due,
            });
        }
    }
    // `None` sorts before every date, so never-visited children come first.
    overdue.sort_by(|a, b| (a.due, &a.village, &a.child).cmp(&(b.due, &b.village, &b.child)));
    Ok(overdue)
}

/// Service logged by one worker in a month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerHours {
    pub worker: AccountId,
    /// Service logs.
    pub logs: u64,
    /// Their minutes as counted for reports.
    pub minutes: i64,
}

/// Service logs and minutes per worker in the given villages for the month of their
/// check-in day, by worker id.
pub fn hours_per_worker(
    conn: &Connection,
    villages: &[OrgUnitCode],
    month: YearMonth,
) -> Result<Vec<WorkerHours>, StoreError> {
    let (first, last) = month_days(month);
    let mut statement = conn.prepare_cached(
        "SELECT worker, COUNT(*), COALESCE(SUM(minutes), 0) FROM records
         WHERE org_unit IN (SELECT value FROM json_each(?1)) AND kind = 'service-log'
           AND day >= ?2 AND day <= ?3 AND worker IS NOT NULL
         GROUP BY worker ORDER BY worker",
    )?;
    let rows = statement.query_map(params![villages_json(villages), first, last], |row| {
        Ok(WorkerHours {
            worker: AccountId(row.get(0)?),
            logs: count(row.get(1)?),
            minutes: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The records of one kind whose day falls in `month`, for a ledger export: by day, then
/// start time, then document id.
pub fn export_rows(
    conn: &Connection,
    villages: &[OrgUnitCode],
    month: YearMonth,
    kind: DocumentKind,
) -> Result<Vec<ReportRow>, StoreError> {
    let (first, last) = month_days(month);
    query_records(
        conn,
        &format!(
            "SELECT {RECORD_COLUMNS} FROM records
             WHERE org_unit IN (SELECT value FROM json_each(?1)) AND kind = ?2
               AND day >= ?3 AND day <= ?4
             ORDER BY day, started_at, document"
        ),
        params![villages_json(villages), kind.as_str(), first, last],
    )
}

/// The titles (names) of subject documents, children and elders, by document id, so that
/// an export can name the person a visit or log is about. Ids without a row are left out.
pub fn subject_titles(
    conn: &Connection,
    subjects: &[String],
) -> Result<HashMap<String, String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT document, title FROM records
         WHERE document IN (SELECT value FROM json_each(?1))",
    )?;
    let rows = statement.query_map([json_array(subjects.iter().map(String::as_str))], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
pub(crate) mod test_rows {
    use super::*;

    /// An active child with no risk assessed.
    pub(crate) fn child(document: &str, village: &str) -> ReportRow {
        ReportRow {
            document: document.to_owned(),
            kind: DocumentKind::Child,
            org_unit: OrgUnitCode::new(village),
            subject: None,
            worker: None,
            title: format!("child {document}"),
            day: None,
            started_at: None,
            ended_at: None,
            minutes: None,
            record_status: None,
            review_state: None,
            review_comment: None,
            next_visit: None,
            risk: None,
            active: true,
            needs_or_services: String::new(),
            actions: String::new(),
            concerns: String::new(),
        }
    }

    /// A final, pending home visit of `child` on `day`.
    pub(crate) fn visit(document: &str, village: &str, child_id: &str, day: &str) -> ReportRow {
        ReportRow {
            document: document.to_owned(),
            kind: DocumentKind::HomeVisit,
            subject: Some(SubjectId::new(child_id)),
            worker: Some(AccountId::new("director")),
            title: String::new(),
            day: Date::parse(day),
            record_status: Some(RecordStatus::Final),
            review_state: Some(ReviewState::Pending),
            needs_or_services: "学习用品".to_owned(),
            actions: "联系学校".to_owned(),
            concerns: "safety: concern (河边)".to_owned(),
            ..child(document, village)
        }
    }

    /// A service log of `worker` on `day` with `minutes`.
    pub(crate) fn log(
        document: &str,
        village: &str,
        worker: &str,
        day: &str,
        minutes: i64,
    ) -> ReportRow {
        ReportRow {
            document: document.to_owned(),
            kind: DocumentKind::ServiceLog,
            subject: Some(SubjectId::new("elder")),
            worker: Some(AccountId::new(worker)),
            title: String::new(),
            day: Date::parse(day),
            started_at: Some(1_000),
            ended_at: Some(2_000),
            minutes: Some(minutes),
            record_status: Some(RecordStatus::Final),
            review_state: Some(ReviewState::Approved),
            review_comment: Some("好".to_owned()),
            needs_or_services: "日常护理、衣物清洗".to_owned(),
            ..child(document, village)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use proptest::prelude::*;

    use super::test_rows::*;
    use super::*;
    use crate::store::test_support::open_temp;

    const A: &str = "370402001001";
    const B: &str = "370402001002";
    const C: &str = "370402001003";

    fn put(conn: &Connection, rows: &[ReportRow]) {
        for (seq, row) in rows.iter().enumerate() {
            upsert_record(conn, row, i64::try_from(seq).unwrap() + 1).unwrap();
        }
    }

    fn codes(codes: &[&str]) -> Vec<OrgUnitCode> {
        codes.iter().map(|c| OrgUnitCode::new(*c)).collect()
    }

    fn date(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    #[test]
    fn a_row_reads_back_as_written_and_an_upsert_replaces_it() {
        let (_dir, conn) = open_temp();
        let mut visit = visit("v1", A, "c1", "2024-05-03");
        visit.started_at = Some(5);
        visit.next_visit = Some(date("2024-06-01"));
        visit.review_comment = Some("补充照片".to_owned());
        let mut child = child("c1", A);
        child.risk = Some(RiskLevel::Yellow);
        put(
            &conn,
            &[
                visit.clone(),
                child.clone(),
                log("l1", A, "w", "2024-05-04", 30),
            ],
        );
        let page = list_records(
            &conn,
            &RecordFilter {
                villages: codes(&[A]),
                kind: None,
                from: None,
                to: None,
                review_state: None,
                offset: 0,
                limit: 10,
            },
        )
        .unwrap();
        assert_eq!(page.total, 3);
        assert_eq!(page.items[0], log("l1", A, "w", "2024-05-04", 30));
        assert_eq!(page.items[1], visit);
        assert_eq!(page.items[2], child, "no day: last");

        visit.review_state = Some(ReviewState::Approved);
        upsert_record(&conn, &visit, 9).unwrap();
        let month: String = conn
            .query_row("SELECT month FROM records WHERE document = 'v1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(month, "2024-05");
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
    }

    #[test]
    fn an_upsert_that_moves_a_record_is_found_by_its_new_values_only() {
        let (_dir, conn) = open_temp();
        let filter = |village: &str, from: &str| RecordFilter {
            villages: codes(&[village]),
            kind: Some(DocumentKind::HomeVisit),
            from: Some(date(from)),
            to: None,
            review_state: None,
            offset: 0,
            limit: 10,
        };
        let mut row = visit("v1", A, "c1", "2024-05-03");
        put(&conn, std::slice::from_ref(&row));

        // Only text changes: the row is updated where it stands.
        row.review_comment = Some("已看".to_owned());
        upsert_record(&conn, &row, 2).unwrap();
        assert_eq!(
            list_records(&conn, &filter(A, "2024-05-01")).unwrap().items,
            [row.clone()]
        );

        // A new village, then a new day: the indexes must follow each.
        row.org_unit = OrgUnitCode::new(B);
        upsert_record(&conn, &row, 3).unwrap();
        assert_eq!(
            list_records(&conn, &filter(A, "2024-01-01")).unwrap().total,
            0
        );
        assert_eq!(
            list_records(&conn, &filter(B, "2024-05-01")).unwrap().items,
            [row.clone()]
        );
        row.day = Some(date("2024-05-20"));
        upsert_record(&conn, &row, 4).unwrap();
        assert_eq!(
            list_records(&conn, &filter(B, "2024-05-10")).unwrap().items,
            [row.clone()]
        );
        row.day = Some(date("2024-06-09"));
        upsert_record(&conn, &row, 5).unwrap();
        assert_eq!(
            list_records(&conn, &filter(B, "2024-06-01")).unwrap().items,
            [row]
        );
        let month: String = conn
            .query_row("SELECT month FROM records WHERE document = 'v1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(month, "2024-06");
    }

    #[test]
    fn list_records_filters_and_pages() {
        let (_dir, conn) = open_temp();
        let mut returned = visit("v3", A, "c1", "2024-05-20");
        returned.review_state = Some(ReviewState::Returned);
        put(
            &conn,
            &[
                visit("v1", A, "c1", "2024-04-30"),
                visit("v2", A, "c1", "2024-05-10"),
                returned,
                visit("v4", B, "c2", "2024-05-11"),
                visit("v5", C, "c3", "2024-05-12"),
                child("c1", A),
            ],
        );
        let filter = RecordFilter {
            villages: codes(&[A, B]),
            kind: Some(DocumentKind::HomeVisit),
            from: Some(date("2024-05-01")),
            to: Some(date("2024-05-31")),
            review_state: None,
            offset: 0,
            limit: 2,
        };
        let page = list_records(&conn, &filter).unwrap();
        assert_eq!(page.total, 3);
        let docs: Vec<&str> = page.items.iter().map(|r| r.document.as_str()).collect();
        assert_eq!(docs, ["v3", "v4"]);
        let next = list_records(
            &conn,
            &RecordFilter {
                offset: 2,
                ..filter.clone()
            },
        )
        .unwrap();
        let docs: Vec<&str> = next.items.iter().map(|r| r.document.as_str()).collect();
        assert_eq!(docs, ["v2"]);

        let returned = RecordFilter {
            review_state: Some(ReviewState::Returned),
            limit: 10,
            ..filter
        };
        let page = list_records(&conn, &returned).unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.items[0].document, "v3");
    }

    #[test]
    fn coverage_counts_active_children_visited_in_the_period() {
        let (_dir, conn) = open_temp();
        let mut gone = child("c3", A);
        gone.active = false;
        put(
            &conn,
            &[
                child("c1", A),
                child("c2", A),
                gone,
                child("c4", B),
                visit("v1", A, "c1", "2024-05-02"),
                visit("v2", A, "c1", "2024-05-09"),
                visit("v3", A, "c2", "2024-04-29"),
                visit("v4", A, "c3", "2024-05-02"),
            ],
        );
        let report = coverage(
            &conn,
            &codes(&[C, A, B]),
            date("2024-05-01"),
            date("2024-05-31"),
        )
        .unwrap();
        assert_eq!(
            report,
            vec![
                VillageCoverage {
                    village: OrgUnitCode::new(C),
                    children: 0,
                    visited: 0
                },
                VillageCoverage {
                    village: OrgUnitCode::new(A),
                    children: 2,
                    visited: 1
                },
                VillageCoverage {
                    village: OrgUnitCode::new(B),
                    children: 1,
                    visited: 0
                },
            ]
        );
    }

    /// One child of a generated village: its risk, and its visits as (day offset, start
    /// hour, planned next visit offset).
    type GeneratedChild = (Option<RiskLevel>, Vec<(i64, i64, Option<i64>)>);

    fn generated_children() -> impl Strategy<Value = Vec<GeneratedChild>> {
        let risk = prop_oneof![
            Just(None),
            Just(Some(RiskLevel::Red)),
            Just(Some(RiskLevel::Yellow)),
            Just(Some(RiskLevel::Blue)),
            Just(Some(RiskLevel::Green)),
        ];
        // Few distinct days and hours, so that ties on day and on start time are common.
        let visit = (0..6_i64, 0..2_i64, proptest::option::of(0..200_i64));
        proptest::collection::vec((risk, proptest::collection::vec(visit, 0..4)), 1..8)
    }

    proptest! {
        /// The relay's overdue report (SQL picks the latest visit) must name exactly the
        /// children, latest visits and due dates that core's rule gives the phones.
        #[test]
        fn the_overdue_report_agrees_with_cores_visit_schedule(
            children in generated_children(),
            today_offset in 0..260_i64,
        ) {
            let (_dir, conn) = open_temp();
            let origin = date("2024-01-01").days_since_epoch();
            let day = |offset: i64| Date::from_days_since_epoch(origin + offset).unwrap();
            let mut child_rows = Vec::new();
            let mut visit_rows = Vec::new();
            for (index, (risk, visits)) in children.iter().enumerate() {
                let mut row = child(&format!("c{index}"), A);
                row.risk = *risk;
                for (number, (offset, hour, planned)) in visits.iter().enumerate() {
                    let mut visit = visit(&format!("v{index}-{number}"), A, &row.document, "2024-01-01");
                    visit.day = Some(day(*offset));
                    visit.started_at = Some(hour * 3_600_000);
                    visit.next_visit = planned.map(day);
                    visit_rows.push(visit);
                }
                child_rows.push(row);
            }
            // Insert visits in reverse so that storage order cannot stand in for the rule.
            put(&conn, &child_rows.iter().chain(visit_rows.iter().rev()).cloned().collect::<Vec<_>>());
            let today = day(today_offset);

            let mut expected: Vec<(String, Option<Date>, Option<Date>)> =
                caresync_core::domain::visits_due(&child_rows, &visit_rows)
                    .into_iter()
                    .filter(|due| due.is_overdue(today))
                    .map(|due| (due.child, due.last_visit_day, due.due))
                    .collect();
            expected.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
            let found: Vec<(String, Option<Date>, Option<Date>)> =
                overdue_visits(&conn, &codes(&[A]), today)
                    .unwrap()
                    .into_iter()
                    .map(|o| (o.child, o.last_visit, o.due))
                    .collect();
            prop_assert_eq!(found, expected);
        }
    }

    #[test]
    fn overdue_children_most_overdue_first() {
        let (_dir, conn) = open_temp();
        let mut red = child("red", A);
        red.risk = Some(RiskLevel::Red);
        let mut planned = visit("p2", A, "planned", "2024-05-01");
        planned.next_visit = Some(date("2024-05-20"));
        let mut later_plan = visit("f2", A, "fine", "2024-05-01");
        later_plan.next_visit = Some(date("2024-07-01"));
        let mut gone = child("gone", A);
        gone.active = false;
        put(
            &conn,
            &[
                red,
                // Red: last visit 2024-04-01, due 2024-05-01.
                visit("r1", A, "red", "2024-03-01"),
                visit("r2", A, "red", "2024-04-01"),
                child("planned", B),
                // Only the latest visit's plan counts.
                visit("p1", B, "planned", "2024-04-01"),
                planned,
                child("fine", A),
                later_plan,
                child("never", B),
                // No risk: last visit 2024-03-10, due 90 days later, 2024-06-08.
                child("recent", A),
                visit("n1", A, "recent", "2024-03-10"),
                gone,
                child("other-village", C),
            ],
        );
        let overdue = overdue_visits(&conn, &codes(&[A, B]), date("2024-06-01")).unwrap();
        let summary: Vec<(&str, Option<Date>, Option<Date>)> = overdue
            .iter()
            .map(|o| (o.child.as_str(), o.last_visit, o.due))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("never", None, None),
                ("red", Some(date("2024-04-01")), Some(date("2024-05-01"))),
                (
                    "planned",
                    Some(date("2024-05-01")),
                    Some(date("2024-05-20"))
                ),
            ]
        );
        assert_eq!(overdue[1].risk, Some(RiskLevel::Red));
        assert_eq!(overdue[1].name, "child red");
        assert_eq!(overdue[2].village, OrgUnitCode::new(B));

        let later = overdue_visits(&conn, &codes(&[A]), date("2024-06-09")).unwrap();
        let children: Vec<&str> = later.iter().map(|o| o.child.as_str()).collect();
        assert_eq!(children, ["red", "recent"]);
    }

    #[test]
    fn hours_and_exports_keep_to_the_month_and_villages() {
        let (_dir, conn) = open_temp();
        put(
            &conn,
            &[
                log("l1", A, "w1", "2024-02-01", 60),
                log("l2", A, "w1", "2024-02-29", 30),
                log("l3", B, "w2", "2024-02-10", 45),
                log("l4", A, "w1", "2024-03-01", 90),
                log("l5", C, "w1", "2024-02-15", 15),
                visit("v1", A, "c1", "2024-02-02"),
            ],
        );
        let hours =
            hours_per_worker(&conn, &codes(&[A, B]), YearMonth::new(2024, 2).unwrap()).unwrap();
        assert_eq!(
            hours,
            vec![
                WorkerHours {
                    worker: AccountId::new("w1"),
                    logs: 2,
                    minutes: 90
                },
                WorkerHours {
                    worker: AccountId::new("w2"),
                    logs: 1,
                    minutes: 45
                },
            ]
        );

        let rows = export_rows(
            &conn,
            &codes(&[A, B]),
            YearMonth::new(2024, 2).unwrap(),
            DocumentKind::ServiceLog,
        )
        .unwrap();
        let docs: Vec<&str> = rows.iter().map(|r| r.document.as_str()).collect();
        assert_eq!(docs, ["l1", "l3", "l2"]);
        assert_eq!(rows[0], log("l1", A, "w1", "2024-02-01", 60));
        let visits = export_rows(
            &conn,
            &codes(&[A]),
            YearMonth::new(2024, 2).unwrap(),
            DocumentKind::HomeVisit,
        )
        .unwrap();
        assert_eq!(visits.len(), 1);
    }

    #[test]
    fn subject_titles_name_the_people() {
        let (_dir, conn) = open_temp();
        put(
            &conn,
            &[
                child("c1", A),
                child("c2", B),
                visit("v1", A, "c1", "2024-05-01"),
            ],
        );
        let ids = [
            "c1".to_owned(),
            "c1".to_owned(),
            "missing".to_owned(),
            "c2".to_owned(),
        ];
        let titles = subject_titles(&conn, &ids).unwrap();
        assert_eq!(
            titles,
            HashMap::from([
                ("c1".to_owned(), "child c1".to_owned()),
                ("c2".to_owned(), "child c2".to_owned()),
            ])
        );
    }

    #[test]
    fn village_queries_use_the_index() {
        let (_dir, conn) = open_temp();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM records
                 WHERE org_unit IN (SELECT value FROM json_each(?1)) AND kind = 'service-log'
                   AND day >= ?2 AND day <= ?3",
            )
            .unwrap()
            .query_map(params!["[]", "a", "b"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|line| line.contains("records_unit_kind_day")),
            "{plan:?}"
        );
    }
}
