//! A home visit (家庭走访) by a village child director. Each visit is its own document,
//! linked to the child by `childId` (design §3.5), so the child's document stays small and
//! visits made on two phones never conflict.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::codec::{null_as_default, string_enum, u32_as_int};
use super::meta::{AccountId, DocumentKind, OrgUnitCode, SCHEMA_VERSION, SubjectId};
use super::review::{Comment, RecordStatus, Review};
use super::time::{Date, Millis};

string_enum! {
    /// What the visitor found for one checklist area.
    pub enum CheckStatus {
        /// 正常
        Ok => "ok",
        /// 需关注
        Concern => "concern",
        /// 严重问题
        Serious => "serious",
    }
}

/// One area of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChecklistItem {
    pub status: CheckStatus,
    /// What was seen; required on a final visit when the status is not `ok`.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ChecklistItem {
    pub fn ok() -> Self {
        ChecklistItem {
            status: CheckStatus::Ok,
            note: None,
        }
    }

    pub fn with_note(status: CheckStatus, note: impl Into<String>) -> Self {
        ChecklistItem {
            status,
            note: Some(note.into()),
        }
    }
}

/// The five areas every visit looks at. An area not looked at yet is absent; a final visit
/// must have all five.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checklist {
    /// 监护: is someone actually caring for the child?
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardianship: Option<ChecklistItem>,
    /// 就学: is the child in school, attending?
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schooling: Option<ChecklistItem>,
    /// 健康: illness, disability care, nutrition.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<ChecklistItem>,
    /// 安全: abuse, neglect, dangers at home.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<ChecklistItem>,
    /// 生活: housing, food, clothing.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub living: Option<ChecklistItem>,
}

impl Checklist {
    /// The document keys of the five areas, in display order.
    pub const KEYS: [&'static str; 5] = ["guardianship", "schooling", "health", "safety", "living"];

    /// The areas with their document keys, in display order.
    pub fn items(&self) -> [(&'static str, Option<&ChecklistItem>); 5] {
        [
            ("guardianship", self.guardianship.as_ref()),
            ("schooling", self.schooling.as_ref()),
            ("health", self.health.as_ref()),
            ("safety", self.safety.as_ref()),
            ("living", self.living.as_ref()),
        ]
    }

    /// A checklist with every area `ok`.
    pub fn all_ok() -> Self {
        Checklist {
            guardianship: Some(ChecklistItem::ok()),
            schooling: Some(ChecklistItem::ok()),
            health: Some(ChecklistItem::ok()),
            safety: Some(ChecklistItem::ok()),
            living: Some(ChecklistItem::ok()),
        }
    }
}

/// A referral of the case to another agency (转介).
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referral {
    /// The agency: 学校, 卫生院, 派出所, 妇联, 残联, ...
    pub to: String,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A home visit. Document kind `home-visit`.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HomeVisit {
    /// Always [`DocumentKind::HomeVisit`]. Defaults to it when absent, because deserialising a
    /// [`Record`](super::Record) takes `kind` to choose the type.
    #[serde(default = "home_visit_kind")]
    pub kind: DocumentKind,
    #[autosurgeon(rename = "schemaVersion", with = "u32_as_int")]
    pub schema_version: u32,
    /// The village of the child.
    #[autosurgeon(rename = "orgUnit")]
    pub org_unit: OrgUnitCode,
    /// The account that made the visit.
    pub worker: AccountId,
    /// The child visited: the document id of the child's record.
    #[autosurgeon(rename = "childId")]
    pub child_id: SubjectId,
    #[autosurgeon(rename = "startedAt")]
    pub started_at: Millis,
    /// Absent while the visit is in progress.
    #[autosurgeon(rename = "endedAt", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub checklist: Checklist,
    /// Needs found (发现的需求), one per entry.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub needs: Vec<String>,
    /// Actions taken or planned (采取的措施), one per entry.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub actions: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub referrals: Vec<Referral>,
    #[autosurgeon(rename = "nextVisitDate", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_visit_date: Option<Date>,
    pub status: RecordStatus,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub review: Review,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub comments: Vec<Comment>,
}

fn home_visit_kind() -> DocumentKind {
    DocumentKind::HomeVisit
}

impl HomeVisit {
    /// A draft visit started at `started_at`.
    pub fn new(
        org_unit: OrgUnitCode,
        worker: AccountId,
        child_id: SubjectId,
        started_at: Millis,
    ) -> Self {
        HomeVisit {
            kind: DocumentKind::HomeVisit,
            schema_version: SCHEMA_VERSION,
            org_unit,
            worker,
            child_id,
            started_at,
            ended_at: None,
            checklist: Checklist::default(),
            needs: Vec::new(),
            actions: Vec::new(),
            referrals: Vec::new(),
            next_visit_date: None,
            status: RecordStatus::Draft,
            review: Review::default(),
            comments: Vec::new(),
        }
    }

    /// The calendar date of the visit (China Standard Time).
    pub fn visit_date(&self) -> Option<Date> {
        Date::of_instant(self.started_at)
    }
}
