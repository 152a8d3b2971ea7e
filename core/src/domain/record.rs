//! Loading and saving records, and [`Record`], the sum of the four document kinds.

use automerge::{ScalarValue, Value};
use autosurgeon::{Doc, ReadDoc};
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::child::Child;
use super::codec::{Reader, Writer};
use super::elder::Elder;
use super::home_visit::HomeVisit;
use super::meta::{
    AccountId, DocumentKind, DocumentMeta, KEY_KIND, KEY_ORG_UNIT, KEY_SCHEMA_VERSION, KEY_WORKER,
    OrgUnitCode, SubjectId,
};
use super::review::{Comment, Review};
use super::service_log::ServiceLog;

/// Reads the root `kind` of a document, accepting a scalar string or a `Text` object
/// (`null` reads as absent).
pub fn read_kind<D: ReadDoc>(doc: &D) -> Result<DocumentKind, DomainError> {
    kind_of(&Reader::new(doc))
}

fn kind_of<D: ReadDoc>(reader: &Reader<'_, D>) -> Result<DocumentKind, DomainError> {
    match reader.get(&automerge::ROOT, KEY_KIND)? {
        Some((Value::Scalar(scalar), _)) => match scalar.as_ref() {
            ScalarValue::Str(text) => {
                DocumentKind::parse(text).ok_or_else(|| DomainError::UnknownKind(text.to_string()))
            }
            other => Err(DomainError::UnknownKind(other.to_string())),
        },
        Some((Value::Object(obj_type), _)) => {
            Err(DomainError::UnknownKind(format!("a {obj_type:?} object")))
        }
        None => Err(DomainError::MissingField(KEY_KIND)),
    }
}

/// What each record type declares about its document.
pub(crate) trait Stored: autosurgeon::Hydrate + autosurgeon::Reconcile + Sized {
    const KIND: DocumentKind;
    /// Root keys without which the document is not a record of this kind. Checked before
    /// hydration so that the error names the missing key.
    const REQUIRED_KEYS: &'static [&'static str];
}

pub(crate) fn load_stored<T: Stored, D: ReadDoc>(doc: &D) -> Result<T, DomainError> {
    load_with(&Reader::new(doc))
}

/// Reads a record through `reader`, which may already have read the document's root.
fn load_with<T: Stored, D: ReadDoc>(reader: &Reader<'_, D>) -> Result<T, DomainError> {
    let found = kind_of(reader)?;
    if found != T::KIND {
        return Err(DomainError::WrongKind {
            expected: T::KIND,
            found: found.as_str().to_owned(),
        });
    }
    for key in T::REQUIRED_KEYS {
        // The reader presents `null` as absent, so a null required field is missing too.
        if reader.get(&automerge::ROOT, *key)?.is_none() {
            return Err(DomainError::MissingField(key));
        }
    }
    Ok(autosurgeon::hydrate(reader)?)
}

pub(crate) fn save_stored<T: Stored, D: Doc>(value: &T, doc: &mut D) -> Result<(), DomainError> {
    // A document never changes kind: the relay recorded its kind and judges access by it.
    if doc.get(&automerge::ROOT, KEY_KIND)?.is_some() {
        let found = read_kind(doc)?;
        if found != T::KIND {
            return Err(DomainError::WrongKind {
                expected: T::KIND,
                found: found.as_str().to_owned(),
            });
        }
    }
    let mut writer = Writer::new(doc);
    autosurgeon::reconcile(&mut writer, value)?;
    Ok(())
}

macro_rules! stored_record {
    ($ty:ident, $kind:expr, [$($key:expr),* $(,)?]) => {
        impl Stored for $ty {
            const KIND: DocumentKind = $kind;
            const REQUIRED_KEYS: &'static [&'static str] = &[$($key),*];
        }

        impl $ty {
            /// Reads the record from a document written by any client (scalar strings or
            /// `Text`, any integral number type, absent or `null` optional fields).
            pub fn load<D: ReadDoc>(doc: &D) -> Result<Self, DomainError> {
                load_stored(doc)
            }

            /// Writes the record into `doc`, changing only the values that differ from what
            /// the document holds; keys this version does not know are left alone.
            pub fn save<D: Doc>(&self, doc: &mut D) -> Result<(), DomainError> {
                save_stored(self, doc)
            }
        }
    };
}

stored_record!(
    Child,
    DocumentKind::Child,
    [
        KEY_KIND,
        KEY_SCHEMA_VERSION,
        KEY_ORG_UNIT,
        "name",
        "birthYearMonth",
        "gender",
        "status",
    ]
);
stored_record!(
    Elder,
    DocumentKind::Elder,
    [
        KEY_KIND,
        KEY_SCHEMA_VERSION,
        KEY_ORG_UNIT,
        "name",
        "birthYearMonth",
        "gender",
        "careNeeds",
        "status",
    ]
);
stored_record!(
    HomeVisit,
    DocumentKind::HomeVisit,
    [
        KEY_KIND,
        KEY_SCHEMA_VERSION,
        KEY_ORG_UNIT,
        KEY_WORKER,
        "childId",
        "startedAt",
        "status",
    ]
);
stored_record!(
    ServiceLog,
    DocumentKind::ServiceLog,
    [
        KEY_KIND,
        KEY_SCHEMA_VERSION,
        KEY_ORG_UNIT,
        KEY_WORKER,
        "elderId",
        "checkIn",
    ]
);

/// Any caresync record.
///
/// Its JSON is the document's root map (see `docs/schema.md`): `kind` chooses the type when
/// reading, and the record type writes `kind` itself, so it appears once.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind")]
pub enum Record {
    #[serde(rename = "child")]
    Child(Child),
    #[serde(rename = "elder")]
    Elder(Elder),
    #[serde(rename = "home-visit")]
    HomeVisit(HomeVisit),
    #[serde(rename = "service-log")]
    ServiceLog(ServiceLog),
}

// By hand: a derived internally tagged `Serialize` would write `kind` a second time next to
// the record's own `kind` field.
impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Record::Child(r) => r.serialize(serializer),
            Record::Elder(r) => r.serialize(serializer),
            Record::HomeVisit(r) => r.serialize(serializer),
            Record::ServiceLog(r) => r.serialize(serializer),
        }
    }
}

impl Record {
    /// Reads a record of whatever kind the document's root `kind` says.
    pub fn load<D: ReadDoc>(doc: &D) -> Result<Record, DomainError> {
        // One reader for the kind and the record, so the root is read once.
        let reader = Reader::new(doc);
        Ok(match kind_of(&reader)? {
            DocumentKind::Child => Record::Child(load_with(&reader)?),
            DocumentKind::Elder => Record::Elder(load_with(&reader)?),
            DocumentKind::HomeVisit => Record::HomeVisit(load_with(&reader)?),
            DocumentKind::ServiceLog => Record::ServiceLog(load_with(&reader)?),
        })
    }

    pub fn save<D: Doc>(&self, doc: &mut D) -> Result<(), DomainError> {
        match self {
            Record::Child(r) => r.save(doc),
            Record::Elder(r) => r.save(doc),
            Record::HomeVisit(r) => r.save(doc),
            Record::ServiceLog(r) => r.save(doc),
        }
    }

    /// The kind the record's `kind` field holds.
    pub fn kind(&self) -> DocumentKind {
        match self {
            Record::Child(r) => r.kind,
            Record::Elder(r) => r.kind,
            Record::HomeVisit(r) => r.kind,
            Record::ServiceLog(r) => r.kind,
        }
    }

    /// The kind the Rust type stands for (equal to [`Record::kind`] for a valid record).
    pub fn type_kind(&self) -> DocumentKind {
        match self {
            Record::Child(_) => DocumentKind::Child,
            Record::Elder(_) => DocumentKind::Elder,
            Record::HomeVisit(_) => DocumentKind::HomeVisit,
            Record::ServiceLog(_) => DocumentKind::ServiceLog,
        }
    }

    pub fn schema_version(&self) -> u32 {
        match self {
            Record::Child(r) => r.schema_version,
            Record::Elder(r) => r.schema_version,
            Record::HomeVisit(r) => r.schema_version,
            Record::ServiceLog(r) => r.schema_version,
        }
    }

    pub fn org_unit(&self) -> &OrgUnitCode {
        match self {
            Record::Child(r) => &r.org_unit,
            Record::Elder(r) => &r.org_unit,
            Record::HomeVisit(r) => &r.org_unit,
            Record::ServiceLog(r) => &r.org_unit,
        }
    }

    pub fn worker(&self) -> Option<&AccountId> {
        match self {
            Record::Child(_) | Record::Elder(_) => None,
            Record::HomeVisit(r) => Some(&r.worker),
            Record::ServiceLog(r) => Some(&r.worker),
        }
    }

    /// The subject a visit or log links to; `None` for subject records, whose id is their
    /// document id.
    pub fn linked_subject(&self) -> Option<&SubjectId> {
        match self {
            Record::Child(_) | Record::Elder(_) => None,
            Record::HomeVisit(r) => Some(&r.child_id),
            Record::ServiceLog(r) => Some(&r.elder_id),
        }
    }

    /// The review, for the kinds that are reviewed (visits and logs).
    pub fn review(&self) -> Option<&Review> {
        match self {
            Record::Child(_) | Record::Elder(_) => None,
            Record::HomeVisit(r) => Some(&r.review),
            Record::ServiceLog(r) => Some(&r.review),
        }
    }

    pub fn comments(&self) -> &[Comment] {
        match self {
            Record::Child(r) => &r.comments,
            Record::Elder(r) => &r.comments,
            Record::HomeVisit(r) => &r.comments,
            Record::ServiceLog(r) => &r.comments,
        }
    }

    /// The metadata this record's fields declare, as [`super::read_meta`] would read it
    /// from its document. For subject records `subject` is `None` (see
    /// [`DocumentMeta::with_document_id`]).
    pub fn meta(&self) -> DocumentMeta {
        DocumentMeta {
            kind: self.kind(),
            schema_version: self.schema_version(),
            owner: self.org_unit().clone(),
            worker: self.worker().cloned(),
            subject: self.linked_subject().cloned(),
        }
    }

    /// A copy with the review reset and the comments removed: the "Record" part alone,
    /// used to tell which parts a change touched.
    pub(crate) fn record_part(&self) -> Record {
        let mut copy = self.clone();
        match &mut copy {
            Record::Child(r) => r.comments.clear(),
            Record::Elder(r) => r.comments.clear(),
            Record::HomeVisit(r) => {
                r.comments.clear();
                r.review = Review::default();
            }
            Record::ServiceLog(r) => {
                r.comments.clear();
                r.review = Review::default();
            }
        }
        copy
    }
}

impl From<Child> for Record {
    fn from(value: Child) -> Self {
        Record::Child(value)
    }
}

impl From<Elder> for Record {
    fn from(value: Elder) -> Self {
        Record::Elder(value)
    }
}

impl From<HomeVisit> for Record {
    fn from(value: HomeVisit) -> Self {
        Record::HomeVisit(value)
    }
}

impl From<ServiceLog> for Record {
    fn from(value: ServiceLog) -> Self {
        Record::ServiceLog(value)
    }
}
