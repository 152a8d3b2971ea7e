//! An elderly or disabled person served at home (居家养老服务对象).

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::codec::{null_as_default, string_enum, u32_as_int};
use super::meta::{DocumentKind, OrgUnitCode, SCHEMA_VERSION};
use super::person::{Gender, SubjectStatus};
use super::review::Comment;
use super::time::YearMonth;

string_enum! {
    /// How much help the person needs in daily life (能力评估等级).
    pub enum CareNeedsLevel {
        /// 能力完好/自理
        Independent => "independent",
        /// 轻度失能
        Mild => "mild",
        /// 中度失能
        Moderate => "moderate",
        /// 重度失能
        Severe => "severe",
        /// 完全失能
        Total => "total",
    }
}

/// A person served by care workers. Document kind `elder`.
///
/// Only the fields the service needs are kept; see the comment on each personal field.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Elder {
    /// Always [`DocumentKind::Elder`]. Defaults to it when absent, because deserialising a
    /// [`Record`](super::Record) takes `kind` to choose the type.
    #[serde(default = "elder_kind")]
    pub kind: DocumentKind,
    #[autosurgeon(rename = "schemaVersion", with = "u32_as_int")]
    pub schema_version: u32,
    /// The village the person lives in: the only location kept; care workers are assigned
    /// to the person, so no address is needed in the record.
    #[autosurgeon(rename = "orgUnit")]
    pub org_unit: OrgUnitCode,
    /// The person's name: the care worker and the person confirming service must recognise
    /// the record.
    pub name: String,
    /// Birth year and month, not the full date: age bands decide subsidy levels.
    #[autosurgeon(rename = "birthYearMonth")]
    #[serde(rename = "birthYearMonth")]
    pub birth: YearMonth,
    /// Needed for reports counted by gender and to match care workers where that matters
    /// (e.g. personal care).
    pub gender: Gender,
    /// Decides which services and how many subsidised hours apply.
    #[autosurgeon(rename = "careNeeds")]
    pub care_needs: CareNeedsLevel,
    pub status: SubjectStatus,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub comments: Vec<Comment>,
}

fn elder_kind() -> DocumentKind {
    DocumentKind::Elder
}

impl Elder {
    /// A new active elder without comments.
    pub fn new(
        org_unit: OrgUnitCode,
        name: impl Into<String>,
        birth: YearMonth,
        gender: Gender,
        care_needs: CareNeedsLevel,
    ) -> Self {
        Elder {
            kind: DocumentKind::Elder,
            schema_version: SCHEMA_VERSION,
            org_unit,
            name: name.into(),
            birth,
            gender,
            care_needs,
            status: SubjectStatus::Active,
            comments: Vec::new(),
        }
    }
}
