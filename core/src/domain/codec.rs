//! How typed records meet automerge documents written by more than one kind of client.
//!
//! The JavaScript automerge library writes a plain string as a `Text` object and an integral
//! number as a signed int; it can also write `ImmutableString` scalars, `Date` timestamps and
//! floats. Rust code through autosurgeon writes scalar strings and (for unsigned fields)
//! unsigned ints. A record must read the same whichever client wrote it, so every load goes
//! through [`Reader`], which presents the document in one canonical shape:
//!
//! - a `Text` object reads as a scalar string with the same content;
//! - a uint, a timestamp and a float with an integral value read as a signed int;
//! - `null` reads as an absent key, so `null` and absence both mean "no value" for
//!   optional fields and "empty" for lists.
//!
//! Every save goes through [`Writer`], which writes that canonical shape (scalar strings,
//! signed ints, absent keys for `None`) but never rewrites a value a reader would see as
//! unchanged. Without that rule, saving a record loaded from a JavaScript client would replace
//! every `Text` object by an equal scalar, producing a change on every field and losing
//! concurrent character edits made by that client.
//!
//! Always use the `load`/`save` functions of the records (or [`super::Record`]); calling
//! `autosurgeon::hydrate` directly skips this normalisation and fails on `Text` strings.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::RangeBounds;

use automerge::{self as am, AutomergeError, ObjId, ObjType, ScalarValue, Value};
use autosurgeon::{Doc, ReadDoc};

/// A read-only view of a document in the canonical shape described in the module docs.
///
/// It reads each map and list it is asked about once, in one pass over the object, and
/// answers every later question about that object from what it read. autosurgeon asks for
/// each field by key, and automerge seeks each key in the document's columns from the
/// start, so a record of a dozen fields cost a dozen seeks; one pass over the object costs
/// about as much as one or two of them (`core/examples/record_read.rs` measures both). The
/// view borrows the document immutably, so what it read cannot go stale.
#[derive(Debug)]
pub(crate) struct Reader<'d, D>(pub(crate) &'d D, ObjectsRead);

impl<'d, D: ReadDoc> Reader<'d, D> {
    pub(crate) fn new(doc: &'d D) -> Self {
        Reader(doc, ObjectsRead::default())
    }
}

/// `doc.get(obj, prop)` in the canonical shape, answered from `read` where it can be.
fn read_canonical<'a, D: ReadDoc>(
    doc: &'a D,
    read: &ObjectsRead,
    obj: &ObjId,
    prop: am::Prop,
) -> Result<Option<(Value<'a>, ObjId)>, AutomergeError> {
    match read.entry(doc, obj, &prop) {
        Some(found) => canonical(doc, found),
        // Not a map or list, or the property does not fit the object: automerge's own
        // answer (often its error) is the one to give.
        None => canonical(doc, doc.get(obj, prop)?),
    }
}

/// The visible entries of the maps and lists a [`Reader`] has read, by object.
#[derive(Debug, Default)]
pub(crate) struct ObjectsRead(RefCell<HashMap<ObjId, Entries>>);

/// Keys a map may have for a reader to keep its entries. A key is found by a scan of the
/// kept entries, which for a record's dozen fields is quicker than a sorted search (a
/// sorted version cost the relay a fifth more CPU per change under (a)); a larger map,
/// which only a crafted document has, is asked of automerge key by key instead, so that no
/// field costs a scan of thousands of entries.
const MAP_KEYS_KEPT_MAX: usize = 64;

/// One object's visible entries, each with the id automerge gives it.
#[derive(Debug)]
enum Entries {
    Map(Vec<(String, Value<'static>, ObjId)>),
    List(Vec<(Value<'static>, ObjId)>),
    /// A map with more than [`MAP_KEYS_KEPT_MAX`] keys: not kept.
    TooManyKeys,
}

impl ObjectsRead {
    /// Forgets everything read, before the document changes.
    fn forget(&self) {
        self.0.borrow_mut().clear();
    }

    /// The entry at `prop` of `obj` (`Some(None)` when it has none), or `None` when `obj`
    /// is not a map or list or `prop` does not address it.
    fn entry<D: ReadDoc>(
        &self,
        doc: &D,
        obj: &ObjId,
        prop: &am::Prop,
    ) -> Option<Option<(Value<'static>, ObjId)>> {
        self.with_entries(doc, obj, |entries| match (entries, prop) {
            (Entries::Map(map), am::Prop::Map(key)) => Some(
                map.iter()
                    .find(|(entry_key, _, _)| entry_key == key)
                    .map(|(_, value, id)| (value.clone(), id.clone())),
            ),
            (Entries::List(list), am::Prop::Seq(index)) => Some(list.get(*index).cloned()),
            // A map not kept, or a property that does not fit the object.
            _ => None,
        })?
    }

    fn length<D: ReadDoc>(&self, doc: &D, obj: &ObjId) -> Option<usize> {
        self.with_entries(doc, obj, |entries| match entries {
            Entries::Map(map) => Some(map.len()),
            Entries::List(list) => Some(list.len()),
            Entries::TooManyKeys => None,
        })?
    }

    /// Runs `answer` on the entries of `obj`, reading them first if this is the first
    /// question about it; `None` when `obj` is not a map or list.
    fn with_entries<D: ReadDoc, T>(
        &self,
        doc: &D,
        obj: &ObjId,
        answer: impl FnOnce(&Entries) -> T,
    ) -> Option<T> {
        if let Some(entries) = self.0.borrow().get(obj) {
            return Some(answer(entries));
        }
        let entries = match doc.object_type(obj)? {
            ObjType::Map | ObjType::Table => {
                let map: Vec<_> = doc
                    .map_range(obj, ..)
                    .take(MAP_KEYS_KEPT_MAX + 1)
                    .map(|item| {
                        let id = item.id();
                        (item.key.into_owned(), item.value.into_value(), id)
                    })
                    .collect();
                if map.len() > MAP_KEYS_KEPT_MAX {
                    Entries::TooManyKeys
                } else {
                    Entries::Map(map)
                }
            }
            ObjType::List => Entries::List(
                doc.list_range(obj, ..)
                    .map(|item| {
                        let id = item.id();
                        (item.value.into_value(), id)
                    })
                    .collect(),
            ),
            ObjType::Text => return None,
        };
        let answer = answer(&entries);
        self.0.borrow_mut().insert(obj.clone(), entries);
        Some(answer)
    }
}

/// A writable view of a document that reads canonically and skips invisible rewrites.
///
/// Like [`Reader`] it reads each object once, and it forgets all it read on every write,
/// so a read after a write sees the write. Saving a record asks about every field twice
/// (autosurgeon compares each with the document, then the writer checks whether the put
/// is visible) and usually writes one or two, so this saves most of the seeks.
#[derive(Debug)]
pub(crate) struct Writer<'d, D>(pub(crate) &'d mut D, ObjectsRead);

impl<'d, D: Doc> Writer<'d, D> {
    pub(crate) fn new(doc: &'d mut D) -> Self {
        Writer(doc, ObjectsRead::default())
    }
}

/// Turns the raw value at a property into the canonical shape.
fn canonical<'a, D: ReadDoc>(
    doc: &'a D,
    found: Option<(Value<'a>, ObjId)>,
) -> Result<Option<(Value<'a>, ObjId)>, AutomergeError> {
    Ok(match found {
        Some((Value::Object(ObjType::Text), id)) => {
            let text = doc.text(&id)?;
            Some((Value::Scalar(Cow::Owned(ScalarValue::from(text))), id))
        }
        // `null` reads as absent: optional fields and lists then take their defaults.
        Some((Value::Scalar(scalar), _)) if matches!(scalar.as_ref(), ScalarValue::Null) => None,
        Some((Value::Scalar(scalar), id)) => Some((Value::Scalar(canonical_scalar(scalar)), id)),
        other => other,
    })
}

fn canonical_scalar(scalar: Cow<'_, ScalarValue>) -> Cow<'_, ScalarValue> {
    let as_int = match scalar.as_ref() {
        ScalarValue::Uint(u) => i64::try_from(*u).ok(),
        ScalarValue::Timestamp(t) => Some(*t),
        ScalarValue::F64(f) => integral_f64(*f),
        _ => None,
    };
    match as_int {
        Some(i) => Cow::Owned(ScalarValue::Int(i)),
        None => scalar,
    }
}

/// JavaScript has only one number type; a float that holds an integer is an integer.
fn integral_f64(f: f64) -> Option<i64> {
    // 2^53: beyond it a float no longer holds every integer exactly.
    const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;
    if f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT_LIMIT {
        // The range check above makes this conversion exact.
        Some(f as i64)
    } else {
        None
    }
}

macro_rules! canonical_read_doc {
    ($ty:ident) => {
        impl<D: ReadDoc> ReadDoc for $ty<'_, D> {
            type Parents<'a>
                = D::Parents<'a>
            where
                Self: 'a;

            fn get_heads(&self) -> Vec<am::ChangeHash> {
                self.0.get_heads()
            }

            fn get<P: Into<am::Prop>>(
                &self,
                obj: &ObjId,
                prop: P,
            ) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
                read_canonical(&*self.0, &self.1, obj, prop.into())
            }

            fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Option<am::ObjType> {
                self.0.object_type(obj)
            }

            fn map_range<'a, O, R>(&'a self, obj: O, range: R) -> am::iter::MapRange<'a>
            where
                R: RangeBounds<String> + 'a,
                O: AsRef<ObjId>,
                R: RangeBounds<String>,
            {
                self.0.map_range(obj, range)
            }

            fn list_range<O: AsRef<ObjId>, R: RangeBounds<usize>>(
                &self,
                obj: O,
                range: R,
            ) -> am::iter::ListRange<'_> {
                self.0.list_range(obj, range)
            }

            fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
                self.1
                    .length(&*self.0, obj.as_ref())
                    .unwrap_or_else(|| self.0.length(obj))
            }

            fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
                self.0.text(obj)
            }

            fn parents<O: AsRef<ObjId>>(
                &self,
                obj: O,
            ) -> Result<Self::Parents<'_>, AutomergeError> {
                self.0.parents(obj)
            }

            fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }
    };
}

canonical_read_doc!(Reader);
canonical_read_doc!(Writer);

impl<D: Doc> Writer<'_, D> {
    /// The document, to change: every change goes through here, so that nothing read
    /// before it is used after it.
    fn doc_mut(&mut self) -> &mut D {
        self.1.forget();
        self.0
    }

    /// True when putting `value` at `(obj, prop)` would not change what a reader sees.
    fn put_is_invisible(
        &self,
        obj: &ObjId,
        prop: &am::Prop,
        value: &ScalarValue,
    ) -> Result<bool, AutomergeError> {
        Ok(
            match read_canonical(&*self.0, &self.1, obj, prop.clone())? {
                Some((Value::Scalar(current), _)) => {
                    current.as_ref() == canonical_scalar(Cow::Borrowed(value)).as_ref()
                }
                Some((Value::Object(_), _)) => false,
                None => matches!(value, ScalarValue::Null),
            },
        )
    }

    fn put_scalar(
        &mut self,
        obj: &ObjId,
        prop: am::Prop,
        value: ScalarValue,
    ) -> Result<(), AutomergeError> {
        if self.put_is_invisible(obj, &prop, &value)? {
            return Ok(());
        }
        // `None` is stored as an absent key, so clients never have to tell null from absent.
        if matches!(value, ScalarValue::Null) && matches!(prop, am::Prop::Map(_)) {
            return self.doc_mut().delete(obj, prop);
        }
        self.doc_mut()
            .put(obj, prop, canonical_scalar(Cow::Owned(value)).into_owned())
    }
}

/// Removes `null` map entries from a value about to be created, so that `None` is absent.
fn strip_nulls(value: &mut am::hydrate::Value) {
    match value {
        am::hydrate::Value::Map(map) => {
            map.retain(|_, entry| {
                !matches!(entry.value, am::hydrate::Value::Scalar(ScalarValue::Null))
            });
            for entry in map.values_mut() {
                strip_nulls(&mut entry.value);
            }
        }
        am::hydrate::Value::List(list) => {
            for index in 0..list.len() {
                if let Some(item) = list.get_mut(index) {
                    strip_nulls(item);
                }
            }
        }
        am::hydrate::Value::Scalar(_) | am::hydrate::Value::Text(_) => {}
    }
}

impl<D: Doc> Doc for Writer<'_, D> {
    fn put<O: AsRef<ObjId>, P: Into<am::Prop>, V: Into<am::ScalarValue>>(
        &mut self,
        obj: O,
        prop: P,
        value: V,
    ) -> Result<(), AutomergeError> {
        self.put_scalar(obj.as_ref(), prop.into(), value.into())
    }

    fn put_object<O: AsRef<am::ObjId>, P: Into<am::Prop>>(
        &mut self,
        obj: O,
        prop: P,
        value: am::ObjType,
    ) -> Result<ObjId, AutomergeError> {
        self.doc_mut().put_object(obj, prop, value)
    }

    fn insert<O: AsRef<ObjId>, V: Into<am::ScalarValue>>(
        &mut self,
        obj: O,
        index: usize,
        value: V,
    ) -> Result<(), AutomergeError> {
        let value = canonical_scalar(Cow::Owned(value.into())).into_owned();
        self.doc_mut().insert(obj, index, value)
    }

    fn insert_object<O: AsRef<ObjId>>(
        &mut self,
        obj: O,
        index: usize,
        value: am::ObjType,
    ) -> Result<ObjId, AutomergeError> {
        self.doc_mut().insert_object(obj, index, value)
    }

    fn increment<O: AsRef<ObjId>, P: Into<am::Prop>>(
        &mut self,
        obj: O,
        prop: P,
        value: i64,
    ) -> Result<(), AutomergeError> {
        self.doc_mut().increment(obj, prop, value)
    }

    fn delete<O: AsRef<ObjId>, P: Into<am::Prop>>(
        &mut self,
        obj: O,
        prop: P,
    ) -> Result<(), AutomergeError> {
        self.doc_mut().delete(obj, prop)
    }

    fn splice_text<O: AsRef<ObjId>>(
        &mut self,
        obj: O,
        pos: usize,
        del: isize,
        text: &str,
    ) -> Result<(), AutomergeError> {
        self.doc_mut().splice_text(obj, pos, del, text)
    }

    fn update_text<O: AsRef<ObjId>>(&mut self, obj: O, text: &str) -> Result<(), AutomergeError> {
        self.doc_mut().update_text(obj, text)
    }

    fn batch_create<O: AsRef<ObjId>, P: Into<am::Prop>>(
        &mut self,
        obj: O,
        prop: P,
        mut value: am::hydrate::Value,
        insert: bool,
    ) -> Result<(), AutomergeError> {
        let prop = prop.into();
        if let (am::hydrate::Value::Scalar(scalar), false) = (&value, insert) {
            return self.put_scalar(obj.as_ref(), prop, scalar.clone());
        }
        strip_nulls(&mut value);
        self.doc_mut().batch_create(obj, prop, value, insert)
    }

    fn init_root_from_hydrate(&mut self, value: &am::hydrate::Map) -> Result<(), AutomergeError> {
        let mut root = am::hydrate::Value::Map(value.clone());
        strip_nulls(&mut root);
        match root {
            am::hydrate::Value::Map(map) => self.doc_mut().init_root_from_hydrate(&map),
            // `root` was built as a map two lines above and `strip_nulls` keeps its shape.
            _ => Ok(()),
        }
    }
}

/// Stores a `u32` as a signed int, the number type JavaScript clients write, and reads any
/// integral number. Used as `#[autosurgeon(with = "crate::domain::codec::u32_as_int")]`.
pub(crate) mod u32_as_int {
    use autosurgeon::{Hydrate, HydrateError, Prop, ReadDoc, Reconciler};

    pub(crate) fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<u32, HydrateError> {
        let value = i64::hydrate(doc, obj, prop)?;
        u32::try_from(value).map_err(|_| {
            HydrateError::unexpected("a whole number from 0 to 4294967295", value.to_string())
        })
    }

    pub(crate) fn reconcile<R: Reconciler>(value: &u32, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.i64(i64::from(*value))
    }
}

/// Declares an enumeration stored as a lowercase kebab-case string, so that JavaScript
/// clients can write it as a plain string.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The string stored in documents.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Reads the string stored in documents; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::autosurgeon::Hydrate for $name {
            fn hydrate_string(text: &str) -> Result<Self, ::autosurgeon::HydrateError> {
                Self::parse(text).ok_or_else(|| {
                    ::autosurgeon::HydrateError::unexpected(
                        concat!("one of ", $("`", $text, "` ",)+ "for ", stringify!($name)),
                        format!("{text:?}"),
                    )
                })
            }
        }

        impl ::autosurgeon::Reconcile for $name {
            type Key<'a> = ::autosurgeon::reconcile::NoKey;

            fn reconcile<R: ::autosurgeon::Reconciler>(
                &self,
                mut reconciler: R,
            ) -> Result<(), R::Error> {
                reconciler.str(self.as_str())
            }
        }
    };
}

pub(crate) use string_enum;

/// Serialises a type as the string documents store (its `Display`) and reads it back with
/// its `parse`, so that its JSON is exactly what a JavaScript client sees in the document.
macro_rules! serde_via_str {
    ($name:ident, $expected:literal) => {
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                struct Visitor;

                impl ::serde::de::Visitor<'_> for Visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expected)
                    }

                    fn visit_str<E: ::serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        $name::parse(text).ok_or_else(|| {
                            E::invalid_value(::serde::de::Unexpected::Str(text), &self)
                        })
                    }
                }

                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

pub(crate) use serde_via_str;

/// Reads `null` as the default value, as the document reader does: the schema lets a client
/// write `null` for an absent list or map (`#[serde(default, deserialize_with = ...)]`).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}
