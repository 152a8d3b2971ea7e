//! The relational projection of one record (design §3.6): the columns the relay's query
//! tables and exports need, derived from the record alone so that the relay can update its
//! tables in the same transaction that stores the change. Pure code: the relay decides
//! where the rows go.

use serde::{Deserialize, Serialize};

use super::child::RiskLevel;
use super::home_visit::{CheckStatus, HomeVisit};
use super::meta::{AccountId, DocumentKind, OrgUnitCode, SubjectId};
use super::person::SubjectStatus;
use super::record::Record;
use super::review::{RecordStatus, ReviewState};
use super::service_log::{ServiceLog, ServiceType};
use super::time::{Date, Millis};

/// One record as the report tables see it. Fields that do not apply to a kind are `None`
/// or empty. Its JSON (camelCase keys, `null` for `None`) is what a device lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    /// The document id (bs58check), as in an `automerge:` URL.
    pub document: String,
    pub kind: DocumentKind,
    /// The village the record belongs to (its `orgUnit` field).
    pub org_unit: OrgUnitCode,
    /// Visits: the child's document id; service logs: the elder's. `None` for subjects.
    pub subject: Option<SubjectId>,
    /// Visits and service logs: the account that made the record.
    pub worker: Option<AccountId>,
    /// Children and elders: the name. Empty for visits and service logs.
    pub title: String,
    /// Visits: the day (China time) the visit started; service logs: the check-in day.
    pub day: Option<Date>,
    /// Visits: `startedAt`; service logs: `checkIn` (milliseconds since the epoch, UTC).
    pub started_at: Option<Millis>,
    /// Visits: `endedAt`; service logs: `checkOut`.
    pub ended_at: Option<Millis>,
    /// Service logs: the minutes that count for reports (`duration_minutes`).
    pub minutes: Option<i64>,
    /// Visits: their `status`; service logs: `final` once checked out, `draft` before.
    pub record_status: Option<RecordStatus>,
    /// Visits and service logs.
    pub review_state: Option<ReviewState>,
    /// Visits and service logs: the reviewer's comment, if any.
    pub review_comment: Option<String>,
    /// Visits: the planned next visit.
    pub next_visit: Option<Date>,
    /// Children: the current risk level.
    pub risk: Option<RiskLevel>,
    /// Children and elders: still in the ledger (`status == active`). Visits and logs: true.
    pub active: bool,
    /// Export columns, already joined for people to read: visits' needs (；-separated),
    /// service logs' service types (、-separated, Chinese names).
    pub needs_or_services: String,
    /// Visits: actions, then referrals as `转介至<agency>（<reason>）` (；-separated). Empty
    /// for other kinds.
    pub actions: String,
    /// Visits: the checklist items that are not `ok`, in Chinese as `area：status（note）`
    /// (e.g. `就学情况：需关注（本学期经常缺课）`), ；-separated.
    pub concerns: String,
}

/// Joins needs, actions and referrals: a full-width semicolon, as Chinese prose lists
/// sentences, so that entries containing commas stay readable.
const ENTRY_SEPARATOR: &str = "；";
/// Joins service names: the enumeration comma used between short Chinese terms.
const SERVICE_SEPARATOR: &str = "、";

/// The report row of `record`, stored as document `document_id`.
///
/// Pure and total: every record, valid or not, has a row, because the relay must keep its
/// tables in step with whatever it stored (a merged state may break a rule, and the
/// reviewer still has to find it).
pub fn report_row(document_id: &str, record: &Record) -> ReportRow {
    let mut row = ReportRow {
        document: document_id.to_owned(),
        kind: record.type_kind(),
        org_unit: record.org_unit().clone(),
        subject: record.linked_subject().cloned(),
        worker: record.worker().cloned(),
        title: String::new(),
        day: None,
        started_at: None,
        ended_at: None,
        minutes: None,
        record_status: None,
        review_state: record.review().map(|review| review.state),
        review_comment: record.review().and_then(|review| review.comment.clone()),
        next_visit: None,
        risk: None,
        active: true,
        needs_or_services: String::new(),
        actions: String::new(),
        concerns: String::new(),
    };
    match record {
        Record::Child(child) => {
            row.title = child.name.clone();
            row.risk = child.risk.as_ref().map(|risk| risk.level);
            row.active = child.status == SubjectStatus::Active;
        }
        Record::Elder(elder) => {
            row.title = elder.name.clone();
            row.active = elder.status == SubjectStatus::Active;
        }
        Record::HomeVisit(visit) => fill_visit(&mut row, visit),
        Record::ServiceLog(log) => fill_service_log(&mut row, log),
    }
    row
}

fn fill_visit(row: &mut ReportRow, visit: &HomeVisit) {
    row.day = visit.visit_date();
    row.started_at = Some(visit.started_at);
    row.ended_at = visit.ended_at;
    row.record_status = Some(visit.status);
    row.next_visit = visit.next_visit_date;
    row.needs_or_services = visit.needs.join(ENTRY_SEPARATOR);
    let referrals = visit
        .referrals
        .iter()
        .map(|referral| match &referral.reason {
            Some(reason) if !reason.trim().is_empty() => {
                format!("转介至{}（{}）", referral.to, reason.trim())
            }
            _ => format!("转介至{}", referral.to),
        });
    row.actions = visit
        .actions
        .iter()
        .cloned()
        .chain(referrals)
        .collect::<Vec<_>>()
        .join(ENTRY_SEPARATOR);
    row.concerns = visit
        .checklist
        .items()
        .into_iter()
        .filter_map(|(key, item)| {
            let item = item?;
            let status = status_zh(item.status)?;
            let area = area_zh(key);
            Some(match item.note.as_deref().map(str::trim) {
                Some(note) if !note.is_empty() => format!("{area}：{status}（{note}）"),
                _ => format!("{area}：{status}"),
            })
        })
        .collect::<Vec<_>>()
        .join(ENTRY_SEPARATOR);
}

fn fill_service_log(row: &mut ReportRow, log: &ServiceLog) {
    row.day = Date::of_instant(log.check_in);
    row.started_at = Some(log.check_in);
    row.ended_at = log.check_out;
    row.minutes = log.duration_minutes();
    // A service log has no draft/final field: it is in progress until the worker checks
    // out, and complete afterwards, which is what the status means for a visit too.
    row.record_status = Some(if log.check_out.is_some() {
        RecordStatus::Final
    } else {
        RecordStatus::Draft
    });
    row.needs_or_services = log
        .services
        .iter()
        .map(ServiceType::name_zh)
        .collect::<Vec<_>>()
        .join(SERVICE_SEPARATOR);
}

/// The Chinese name of a checklist area, as the visit form labels it.
fn area_zh(key: &str) -> &str {
    match key {
        "guardianship" => "监护情况",
        "schooling" => "就学情况",
        "health" => "健康情况",
        "safety" => "安全情况",
        "living" => "生活情况",
        other => other,
    }
}

/// The Chinese name of a finding; `None` for `ok`, which is not a concern.
fn status_zh(status: CheckStatus) -> Option<&'static str> {
    match status {
        CheckStatus::Ok => None,
        CheckStatus::Concern => Some("需关注"),
        CheckStatus::Serious => Some("严重"),
    }
}
