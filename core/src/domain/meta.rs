//! What every caresync document says about itself at its root: kind, schema version and
//! owning org unit. The relay records this when it first stores a document and judges
//! access by the recorded copy, never by what the fields say later (design §3.4).

use std::fmt;

use automerge::{ObjType, ReadDoc, ScalarValue, Value};
use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};
use serde::{Deserialize, Serialize};

/// The schema version this build writes and fully understands.
pub const SCHEMA_VERSION: u32 = 1;

/// Root keys shared by every document kind (see `docs/schema.md`).
pub const KEY_KIND: &str = "kind";
pub const KEY_SCHEMA_VERSION: &str = "schemaVersion";
pub const KEY_ORG_UNIT: &str = "orgUnit";
pub const KEY_WORKER: &str = "worker";
/// The key linking a home visit to its child.
pub const KEY_CHILD_ID: &str = "childId";
/// The key linking a service log to its elder.
pub const KEY_ELDER_ID: &str = "elderId";

/// Codes of org units are the national administrative division codes as strings
/// (e.g. `370402` for a district, longer codes for townships and villages).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgUnitCode(pub String);

/// The stable identifier of an account (its username is not stable; this is).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub String);

/// The identifier of a subject (a child or an elder): the automerge-repo document id of the
/// subject's own document, bs58check as in `automerge:` URLs, without the prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubjectId(pub String);

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_owned())
            }
        }

        // Written by hand rather than derived: `Option<T>` hydrates a string through
        // `T::hydrate_string`, which the derived newtype impl does not provide.
        impl Hydrate for $name {
            fn hydrate_string(text: &str) -> Result<Self, HydrateError> {
                Ok($name(text.to_owned()))
            }
        }

        impl Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;

            fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(&self.0)
            }
        }
    };
}

string_newtype!(OrgUnitCode);
string_newtype!(AccountId);
string_newtype!(SubjectId);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentKind {
    Child,
    Elder,
    HomeVisit,
    ServiceLog,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 4] = [
        DocumentKind::Child,
        DocumentKind::Elder,
        DocumentKind::HomeVisit,
        DocumentKind::ServiceLog,
    ];

    /// The value of the root `kind` key.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Child => "child",
            DocumentKind::Elder => "elder",
            DocumentKind::HomeVisit => "home-visit",
            DocumentKind::ServiceLog => "service-log",
        }
    }

    /// Reads the value of the root `kind` key; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "child" => Some(DocumentKind::Child),
            "elder" => Some(DocumentKind::Elder),
            "home-visit" => Some(DocumentKind::HomeVisit),
            "service-log" => Some(DocumentKind::ServiceLog),
            _ => None,
        }
    }

    /// Subject documents describe a person; the others record work done for one.
    pub fn is_subject(self) -> bool {
        matches!(self, DocumentKind::Child | DocumentKind::Elder)
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Hydrate for DocumentKind {
    fn hydrate_string(text: &str) -> Result<Self, HydrateError> {
        DocumentKind::parse(text).ok_or_else(|| {
            HydrateError::unexpected(
                "one of `child`, `elder`, `home-visit`, `service-log`",
                format!("{text:?}"),
            )
        })
    }
}

impl Reconcile for DocumentKind {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.as_str())
    }
}

/// The facts about a document that access decisions rest on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMeta {
    pub kind: DocumentKind,
    pub schema_version: u32,
    /// The village (or other org unit) that owns the record.
    pub owner: OrgUnitCode,
    /// For service logs and visits: the account that made the record.
    #[serde(default)]
    pub worker: Option<AccountId>,
    /// The subject the document is about. For a home visit or a service log: the child or
    /// elder it links to (`childId` / `elderId`), read from the document. For a child or an
    /// elder: the document's own id, which the document does not contain; [`read_meta`]
    /// leaves it `None` and the caller, who knows the id, sets it with
    /// [`DocumentMeta::with_document_id`]. Care workers' access to elders rests on it.
    #[serde(default)]
    pub subject: Option<SubjectId>,
}

impl DocumentMeta {
    /// Completes the metadata of a subject document (child, elder) with its own document id;
    /// other kinds keep the subject they link to.
    #[must_use]
    pub fn with_document_id(mut self, document_id: &str) -> Self {
        if self.kind.is_subject() {
            self.subject = Some(SubjectId::new(document_id));
        }
        self
    }
}

/// Why the root of a document does not describe a caresync record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("the document has no `{0}` key at its root")]
    Missing(&'static str),
    #[error("the root key `{key}` holds {found}, expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("the document kind {0:?} is not known")]
    UnknownKind(String),
    #[error("could not read the document: {0}")]
    Automerge(String),
}

/// Reads kind, schema version, owning org unit, worker and linked subject from the root of
/// a document. Strings may be scalar strings or `Text` objects (what JavaScript writes);
/// the version may be any integral number type.
pub fn read_meta<D: ReadDoc>(doc: &D) -> Result<DocumentMeta, MetaError> {
    let kind_text = root_string(doc, KEY_KIND)?.ok_or(MetaError::Missing(KEY_KIND))?;
    let kind = DocumentKind::parse(&kind_text).ok_or(MetaError::UnknownKind(kind_text))?;
    let schema_version = root_u32(doc, KEY_SCHEMA_VERSION)?;
    let owner = root_string(doc, KEY_ORG_UNIT)?.ok_or(MetaError::Missing(KEY_ORG_UNIT))?;
    let worker = root_string(doc, KEY_WORKER)?.map(AccountId);
    let subject_key = match kind {
        DocumentKind::HomeVisit => Some(KEY_CHILD_ID),
        DocumentKind::ServiceLog => Some(KEY_ELDER_ID),
        DocumentKind::Child | DocumentKind::Elder => None,
    };
    let subject = match subject_key {
        Some(key) => root_string(doc, key)?.map(SubjectId),
        None => None,
    };
    Ok(DocumentMeta {
        kind,
        schema_version,
        owner: OrgUnitCode(owner),
        worker,
        subject,
    })
}

fn describe(value: &Value<'_>) -> String {
    match value {
        Value::Object(obj_type) => format!("a {obj_type:?} object"),
        Value::Scalar(scalar) => format!("the scalar {scalar}"),
    }
}

/// A root string that may be a scalar or a `Text` object; `null` counts as absent.
fn root_string<D: ReadDoc>(doc: &D, key: &'static str) -> Result<Option<String>, MetaError> {
    let found = doc
        .get(automerge::ROOT, key)
        .map_err(|e| MetaError::Automerge(e.to_string()))?;
    match found {
        None => Ok(None),
        Some((Value::Object(ObjType::Text), id)) => doc
            .text(&id)
            .map(Some)
            .map_err(|e| MetaError::Automerge(e.to_string())),
        Some((Value::Scalar(scalar), _)) => match scalar.as_ref() {
            ScalarValue::Str(s) => Ok(Some(s.to_string())),
            ScalarValue::Null => Ok(None),
            _ => Err(MetaError::WrongType {
                key,
                expected: "a string",
                found: describe(&Value::Scalar(scalar.clone())),
            }),
        },
        Some((other, _)) => Err(MetaError::WrongType {
            key,
            expected: "a string",
            found: describe(&other),
        }),
    }
}

fn root_u32<D: ReadDoc>(doc: &D, key: &'static str) -> Result<u32, MetaError> {
    let found = doc
        .get(automerge::ROOT, key)
        .map_err(|e| MetaError::Automerge(e.to_string()))?;
    let wrong = |value: &Value<'_>| MetaError::WrongType {
        key,
        expected: "a whole number from 0 to 4294967295",
        found: describe(value),
    };
    match found {
        None => Err(MetaError::Missing(key)),
        Some((Value::Scalar(scalar), _)) => {
            let number = match scalar.as_ref() {
                ScalarValue::Int(i) => u32::try_from(*i).ok(),
                ScalarValue::Uint(u) => u32::try_from(*u).ok(),
                // JavaScript numbers may arrive as floats; only whole ones are versions.
                ScalarValue::F64(f)
                    if f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX) =>
                {
                    Some(*f as u32)
                }
                _ => None,
            };
            number.ok_or_else(|| wrong(&Value::Scalar(scalar.clone())))
        }
        Some((other, _)) => Err(wrong(&other)),
    }
}
