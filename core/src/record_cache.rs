//! The record last read for each document, with the heads it was read at.
//!
//! Reading a record out of its automerge document (autosurgeon's hydrate) was the largest
//! part of the relay's work per change under load: every change was read as the state
//! before it, as the state after it, and once more for the report tables. The state before
//! a change is nearly always the state after the previous change to the same document, and
//! the report tables want the state after the last one, so keeping one record per document
//! saves two of the three reads. Heads name a document's whole history (every change hash
//! covers its dependencies), so a record kept for the same document and heads is the record
//! a fresh read would give.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use automerge::ChangeHash;

use crate::domain::Record;
use crate::protocol::DocumentId;

/// Documents whose last record is kept. At a few hundred bytes to a few kilobytes per
/// record this stays within a few megabytes; one relay batch touches far fewer documents.
pub const RECORD_CACHE_DOCUMENTS_MAX: usize = 4_096;

/// One record per document, read at the heads it is kept with.
///
/// The cache is behind a `RefCell` so that a policy judging with `&self` can fill it; a
/// policy is only ever used by the one thread that owns its engine.
#[derive(Default)]
pub struct RecordCache {
    entries: RefCell<HashMap<DocumentId, (Vec<ChangeHash>, Record)>>,
}

impl RecordCache {
    /// The record of `document` at exactly `heads`, if it is kept.
    pub fn get(&self, document: &DocumentId, heads: &[ChangeHash]) -> Option<Record> {
        let entries = self.entries.borrow();
        let (kept_heads, record) = entries.get(document)?;
        (kept_heads.as_slice() == heads).then(|| record.clone())
    }

    /// Keeps `record` as the state of `document` at `heads`, replacing what was kept for it.
    pub fn put(&self, document: DocumentId, heads: Vec<ChangeHash>, record: Record) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= RECORD_CACHE_DOCUMENTS_MAX && !entries.contains_key(&document) {
            // Any entry will do: a miss only costs one read.
            if let Some(evicted) = entries.keys().next().copied() {
                entries.remove(&evicted);
            }
        }
        entries.insert(document, (heads, record));
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A copy starts empty: the records are a cache of what its owner read.
impl Clone for RecordCache {
    fn clone(&self) -> Self {
        RecordCache::default()
    }
}

impl fmt::Debug for RecordCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordCache")
            .field("documents", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::{Child, Gender, OrgUnitCode, Record, YearMonth};

    fn heads(byte: u8) -> Vec<ChangeHash> {
        vec![ChangeHash([byte; 32])]
    }

    fn document(n: u16) -> DocumentId {
        let mut bytes = [0u8; 16];
        bytes[..2].copy_from_slice(&n.to_le_bytes());
        DocumentId::random_from(bytes)
    }

    fn record(name: &str) -> Record {
        let born = YearMonth::new(2015, 3).unwrap();
        Record::Child(Child::new(
            OrgUnitCode::new("370402001001"),
            name,
            born,
            Gender::Female,
        ))
    }

    #[test]
    fn a_record_is_given_back_only_at_the_heads_it_was_kept_with() {
        let cache = RecordCache::default();
        cache.put(document(1), heads(1), record("a"));
        assert_eq!(cache.get(&document(1), &heads(1)), Some(record("a")));
        assert_eq!(cache.get(&document(1), &heads(2)), None);
        assert_eq!(cache.get(&document(2), &heads(1)), None);
        cache.put(document(1), heads(2), record("b"));
        assert_eq!(cache.get(&document(1), &heads(1)), None);
        assert_eq!(cache.get(&document(1), &heads(2)), Some(record("b")));
    }

    #[test]
    fn the_cache_never_keeps_more_than_its_limit() {
        let cache = RecordCache::default();
        for n in 0..RECORD_CACHE_DOCUMENTS_MAX + 10 {
            cache.put(document(u16::try_from(n).unwrap()), heads(1), record("a"));
        }
        assert_eq!(cache.len(), RECORD_CACHE_DOCUMENTS_MAX);
    }
}
