//! The relational projection of one record (design §3.6): the columns the relay's query
//! tables and exports need, derived from the record alone so that the relay can update its
//! tables in the same transaction that stores the change. Pure code: the relay decides
//! where the rows go.

use super::child::RiskLevel;
use super::meta::{AccountId, DocumentKind, OrgUnitCode, SubjectId};
use super::review::{RecordStatus, ReviewState};
use super::time::{Date, Millis};

/// One record as the report tables see it. Fields that do not apply to a kind are `None`
/// or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Visits and service logs.
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
    /// Visits: actions and referrals (；-separated). Empty for other kinds.
    pub actions: String,
    /// Visits: the checklist items that are not `ok`, as `item: status (note)`.
    pub concerns: String,
}
