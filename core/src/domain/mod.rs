//! The domain model: typed records stored as automerge documents through autosurgeon.
//!
//! One concept per file. Every record type has `load` (from any client's document) and
//! `save` (into a document, touching only what changed); [`Record`] dispatches on the root
//! `kind`. The document layout is specified field by field in `docs/schema.md`.

mod account;
mod child;
pub(crate) mod codec;
mod elder;
mod home_visit;
mod meta;
mod org;
mod person;
mod record;
mod report_row;
mod review;
mod service_log;
mod time;
mod visit_schedule;

pub use account::{Account, Role};
pub use child::{
    Child, ChildCategory, Guardian, GuardianRelation, IdCardError, IdCardRef, Risk, RiskLevel,
};
pub use elder::{CareNeedsLevel, Elder};
pub use home_visit::{CheckStatus, Checklist, ChecklistItem, HomeVisit, Referral};
pub use meta::*;
pub use org::{OrgLevel, OrgTree, OrgUnit};
pub use person::{Gender, SubjectStatus};
pub use record::{Record, read_kind};
pub use report_row::{ReportRow, report_row};
pub use review::{Comment, RecordStatus, Review, ReviewState};
pub use service_log::{
    Confirmation, ConfirmationMethod, DurationOverride, OTHER_SERVICE_PREFIX, ServiceLog,
    ServiceType,
};
pub use time::{CHINA_OFFSET_MILLIS, Date, Millis, YearMonth};
pub use visit_schedule::{
    VisitDue, is_later_visit, next_visit_due, visit_interval_days, visits_due,
};

/// Why a document could not be read as, or written from, a record.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("the document has no `{0}` field")]
    MissingField(&'static str),
    #[error("the document is a `{found}` record, not a `{expected}` record")]
    WrongKind {
        expected: DocumentKind,
        found: String,
    },
    #[error("the document kind {0:?} is not known")]
    UnknownKind(String),
    #[error("the document does not match the schema: {0}")]
    Hydrate(#[from] autosurgeon::HydrateError),
    #[error("the record could not be written: {0}")]
    Reconcile(#[from] autosurgeon::ReconcileError),
    #[error("the document could not be read: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}
