//! A child in the village ledger (困境儿童 / 留守儿童 台账).
//!
//! Records about minors are sensitive personal information under PIPL, so the document keeps
//! only what the work needs, and each personal field says below why it exists. There is no
//! full birth date, no address (the village is the owning org unit), no photo, no full ID
//! number, no school name and no health detail beyond what a visit's checklist notes say.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codec::{null_as_default, string_enum, u32_as_int};
use super::meta::{DocumentKind, OrgUnitCode, SCHEMA_VERSION};
use super::person::{Gender, SubjectStatus};
use super::review::Comment;
use super::time::{Date, YearMonth};

string_enum! {
    /// Why a child is in the ledger; a child can be in several categories.
    pub enum ChildCategory {
        /// 孤儿
        Orphan => "orphan",
        /// 事实无人抚养儿童
        DeFactoUnattended => "de-facto-unattended",
        /// 困难家庭儿童 (低保、特困家庭)
        PoorFamily => "poor-family",
        /// 重残儿童
        SeverelyDisabled => "severely-disabled",
        /// 留守儿童
        LeftBehind => "left-behind",
    }
}

string_enum! {
    /// The risk colour of the four-colour assessment (红黄蓝绿分级).
    pub enum RiskLevel {
        /// 红色: high risk, needs intervention now.
        Red => "red",
        /// 黄色: elevated risk, watch closely.
        Yellow => "yellow",
        /// 蓝色: low risk.
        Blue => "blue",
        /// 绿色: no risk found.
        Green => "green",
    }
}

string_enum! {
    /// How a guardian is related to the child.
    pub enum GuardianRelation {
        /// 父亲
        Father => "father",
        /// 母亲
        Mother => "mother",
        /// 祖父母/外祖父母
        Grandparent => "grandparent",
        /// 兄弟姐妹
        Sibling => "sibling",
        /// 其他亲属
        OtherRelative => "other-relative",
        /// 委托监护人/寄养家庭
        Foster => "foster",
        /// 儿童福利机构
        Institution => "institution",
        /// 其他
        Other => "other",
    }
}

/// The latest risk assessment.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Risk {
    pub level: RiskLevel,
    /// The day the assessment was made.
    pub date: Date,
    /// Why this colour; required for red and yellow.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A guardian (监护人).
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guardian {
    /// Kept so that the visitor knows whom to ask for; the guardian is the person the
    /// director works with.
    pub name: String,
    pub relation: GuardianRelation,
    /// Optional: kept only so the director can arrange a visit or reach the guardian in an
    /// emergency.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A reference to an ID card number (身份证号) that is not the number.
///
/// The full number must never be stored on a device. Two things are kept instead: the last
/// four characters, which a person can compare with a card in hand, and the SHA-256 of a
/// salt followed by the number, which lets the server find the same child registered twice
/// without knowing the number. The salt is a per-deployment secret. Because an 18-character
/// ID number has little entropy (region, birth date, sequence), anyone holding the salt can
/// recover a number from its hash by trying candidates: the hash protects against casual
/// disclosure, not against an attacker who has the salt.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdCardRef {
    /// The last four characters of the number (digits, or `X` as the check character).
    pub last4: String,
    /// Lowercase hex SHA-256 of `salt` followed by the normalised number.
    pub sha256: String,
}

/// Why a string is not a valid ID card number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdCardError {
    #[error("an ID card number has 18 characters")]
    Length,
    #[error("an ID card number has 17 digits followed by a digit or X")]
    Character,
    #[error("the check character does not match: the number was mistyped")]
    Checksum,
}

impl IdCardRef {
    /// Computes the reference of a full 18-character number (GB 11643-1999). Spaces around
    /// the number and a lowercase `x` are accepted; the check character is verified so a
    /// mistyped number is caught on the device. The full number is not kept anywhere.
    pub fn from_full_number(number: &str, salt: &str) -> Result<IdCardRef, IdCardError> {
        let normalised = number.trim().to_ascii_uppercase();
        let chars: Vec<char> = normalised.chars().collect();
        if chars.len() != 18 {
            return Err(IdCardError::Length);
        }
        let (body, check) = chars.split_at(17);
        if !body.iter().all(char::is_ascii_digit) {
            return Err(IdCardError::Character);
        }
        let check = check.first().copied().ok_or(IdCardError::Length)?;
        if !(check.is_ascii_digit() || check == 'X') {
            return Err(IdCardError::Character);
        }
        if expected_check_char(body) != Some(check) {
            return Err(IdCardError::Checksum);
        }
        let mut hasher = Sha256::new();
        hasher.update(salt.as_bytes());
        hasher.update(normalised.as_bytes());
        let sha256 = hex(&hasher.finalize());
        let last4: String = chars.get(14..).unwrap_or_default().iter().collect();
        Ok(IdCardRef { last4, sha256 })
    }

    /// True when `number` (with `salt`) is the number this reference was made from.
    pub fn matches(&self, number: &str, salt: &str) -> bool {
        IdCardRef::from_full_number(number, salt).is_ok_and(|other| other == *self)
    }
}

/// The ISO 7064 MOD 11-2 check character of the first 17 digits.
fn expected_check_char(body: &[char]) -> Option<char> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let mut sum = 0;
    for (c, weight) in body.iter().zip(WEIGHTS) {
        sum += c.to_digit(10)? * weight;
    }
    let index = usize::try_from(sum % 11).ok()?;
    CHECK.get(index).copied()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            if let Some(d) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(*d));
            }
        }
    }
    out
}

/// A child in the ledger. Document kind `child`.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Child {
    /// Always [`DocumentKind::Child`]. Defaults to it when absent, because deserialising a
    /// [`Record`](super::Record) takes `kind` to choose the type.
    #[serde(default = "child_kind")]
    pub kind: DocumentKind,
    #[autosurgeon(rename = "schemaVersion", with = "u32_as_int")]
    pub schema_version: u32,
    /// The village the child lives in and whose director keeps the record. It is the only
    /// location kept: visits need the village, not an address.
    #[autosurgeon(rename = "orgUnit")]
    pub org_unit: OrgUnitCode,
    /// The child's name: the director and the reviewer must know whom a record is about.
    pub name: String,
    /// Birth year and month, not the full date: enough to tell age (school stage, when the
    /// child leaves the ledger at 18) without keeping a full identifier.
    #[autosurgeon(rename = "birthYearMonth")]
    #[serde(rename = "birthYearMonth")]
    pub birth: YearMonth,
    /// Needed for reports required by the ministry, which count by gender.
    pub gender: Gender,
    /// Why the child is in the ledger: decides which services and subsidies apply.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub categories: Vec<ChildCategory>,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub guardians: Vec<Guardian>,
    pub status: SubjectStatus,
    /// Optional reference to the ID number, for de-duplication only (see [`IdCardRef`]).
    #[autosurgeon(rename = "idCard", missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_card: Option<IdCardRef>,
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, deserialize_with = "null_as_default")]
    pub comments: Vec<Comment>,
}

fn child_kind() -> DocumentKind {
    DocumentKind::Child
}

impl Child {
    /// A new active child with no categories, risk, guardians or comments yet.
    pub fn new(
        org_unit: OrgUnitCode,
        name: impl Into<String>,
        birth: YearMonth,
        gender: Gender,
    ) -> Self {
        Child {
            kind: DocumentKind::Child,
            schema_version: SCHEMA_VERSION,
            org_unit,
            name: name.into(),
            birth,
            gender,
            categories: Vec::new(),
            risk: None,
            guardians: Vec::new(),
            status: SubjectStatus::Active,
            id_card: None,
            comments: Vec::new(),
        }
    }
}
