//! A service log (服务记录): one visit of a care worker to an elder, with check-in,
//! check-out and the person's confirmation. Each log is its own document linked to the
//! elder by `elderId`.

use std::fmt;

use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};
use serde::{Deserialize, Serialize};

use super::codec::{null_as_default, serde_via_str, string_enum, u32_as_int};
use super::meta::{AccountId, DocumentKind, OrgUnitCode, SCHEMA_VERSION, SubjectId};
use super::review::{Comment, Review};
use super::time::Millis;

const MILLIS_PER_MINUTE: Millis = 60 * 1000;

/// The prefix of a service type that is not one of the standard five.
pub const OTHER_SERVICE_PREFIX: &str = "other:";

/// A kind of service. Stored as a kebab-case string; a service configured locally beyond the
/// standard five is stored as `other:` followed by its name (e.g. `other:理发`), so that
/// every client can still read the list as strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceType {
    /// 探视访问
    Visiting,
    /// 日常护理
    DailyCare,
    /// 心理疏导
    Counselling,
    /// 精神慰藉
    EmotionalComfort,
    /// 衣物清洗
    Laundry,
    /// A service configured locally; the name as shown to workers.
    Other(String),
}

impl ServiceType {
    /// The five standard services.
    pub const STANDARD: [ServiceType; 5] = [
        ServiceType::Visiting,
        ServiceType::DailyCare,
        ServiceType::Counselling,
        ServiceType::EmotionalComfort,
        ServiceType::Laundry,
    ];

    /// The string stored in documents.
    pub fn to_stored(&self) -> String {
        match self {
            ServiceType::Visiting => "visiting".to_owned(),
            ServiceType::DailyCare => "daily-care".to_owned(),
            ServiceType::Counselling => "counselling".to_owned(),
            ServiceType::EmotionalComfort => "emotional-comfort".to_owned(),
            ServiceType::Laundry => "laundry".to_owned(),
            ServiceType::Other(name) => format!("{OTHER_SERVICE_PREFIX}{name}"),
        }
    }

    /// The name shown to people (forms, exports, reports): the standard Chinese term, or
    /// the configured name of an `other:` service.
    pub fn name_zh(&self) -> &str {
        match self {
            ServiceType::Visiting => "探视访问",
            ServiceType::DailyCare => "日常护理",
            ServiceType::Counselling => "心理疏导",
            ServiceType::EmotionalComfort => "精神慰藉",
            ServiceType::Laundry => "衣物清洗",
            ServiceType::Other(name) => name,
        }
    }

    /// Reads the stored string; `None` for anything that is neither a standard service nor
    /// `other:<name>`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "visiting" => ServiceType::Visiting,
            "daily-care" => ServiceType::DailyCare,
            "counselling" => ServiceType::Counselling,
            "emotional-comfort" => ServiceType::EmotionalComfort,
            "laundry" => ServiceType::Laundry,
            _ => ServiceType::Other(text.strip_prefix(OTHER_SERVICE_PREFIX)?.to_owned()),
        })
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}

serde_via_str!(
    ServiceType,
    "one of `visiting`, `daily-care`, `counselling`, `emotional-comfort`, `laundry`, `other:<name>`"
);

impl Hydrate for ServiceType {
    fn hydrate_string(text: &str) -> Result<Self, HydrateError> {
        ServiceType::parse(text).ok_or_else(|| {
            HydrateError::unexpected(
                "one of `visiting`, `daily-care`, `counselling`, `emotional-comfort`, `laundry`, `other:<name>`",
                format!("{text:?}"),
            )
        })
    }
}

impl Reconcile for ServiceType {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_stored())
    }
}

string_enum! {
    /// How the person served confirmed (or declined to confirm) the service.
    pub enum ConfirmationMethod {
        /// 本人签字 on the worker's phone.
        Signature => "signature",
        /// 按手印, for people who cannot write.
        Thumbprint => "thumbprint",
        /// 口头确认, witnessed by the worker.
        Verbal => "verbal",
        /// 家属代为确认: a family member confirmed for the person.
        FamilyMember => "family-member",
    }
}

/// The confirmation by the person served.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    /// `false` records that the person was asked and declined: the reviewer must see that.
    pub confirmed: bool,
    pub at: Millis,
    pub method: ConfirmationMethod,
}

/// A duration entered by hand instead of the one check-in and check-out give (the worker
/// forgot to check out, the phone died). The reason is required so the reviewer can judge.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationOverride {
    pub minutes: i64,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A service log. Document kind `service-log`.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLog {
    /// Always [`DocumentKind::ServiceLog`]. Defaults to it when absent, because deserialising a
    /// [`Record`](super::Record) takes `kind` to choose the type.
    #[serde(default = "service_log_kind")]
    pub kind: DocumentKind,
    #[autosurgeon(rename = "schemaVersion", with = "u32_as_int")]
    pub schema_version: u32,
    /// The village of the elder served.
    #[autosurgeon(rename = "orgUnit")]
    pub org_unit: OrgUnitCode,
    /// The care worker's account.
    pub worker: AccountId,
    /// The elder served: the document id of the elder's record.
    #[autosurgeon(rename = "elderId")]
    pub elder_id: SubjectId,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub services: Vec<ServiceType>,
    #[autosurgeon(rename = "checkIn")]
    pub check_in: Millis,
    /// Absent while the service is in progress.
    #[autosurgeon(rename = "checkOut", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_out: Option<Millis>,
    #[autosurgeon(rename = "durationOverride", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_override: Option<DurationOverride>,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
    /// What was done, anything unusual.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub review: Review,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub comments: Vec<Comment>,
}

fn service_log_kind() -> DocumentKind {
    DocumentKind::ServiceLog
}

impl ServiceLog {
    /// A log checked in at `check_in`, with no services yet.
    pub fn new(
        org_unit: OrgUnitCode,
        worker: AccountId,
        elder_id: SubjectId,
        check_in: Millis,
    ) -> Self {
        ServiceLog {
            kind: DocumentKind::ServiceLog,
            schema_version: SCHEMA_VERSION,
            org_unit,
            worker,
            elder_id,
            services: Vec::new(),
            check_in,
            check_out: None,
            duration_override: None,
            confirmation: None,
            note: None,
            review: Review::default(),
            comments: Vec::new(),
        }
    }

    /// Whole minutes between check-in and check-out (rounded down); `None` before check-out
    /// and when check-out is before check-in.
    pub fn measured_minutes(&self) -> Option<i64> {
        let out = self.check_out?;
        let span = out.checked_sub(self.check_in)?;
        (span >= 0).then_some(span / MILLIS_PER_MINUTE)
    }

    /// The minutes that count for reports: the override if there is one, otherwise the
    /// measured duration. The duration is derived, never stored, so check-in and check-out
    /// cannot disagree with it.
    pub fn duration_minutes(&self) -> Option<i64> {
        match &self.duration_override {
            Some(manual) => Some(manual.minutes),
            None => self.measured_minutes(),
        }
    }
}
