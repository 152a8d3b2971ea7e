//! In-memory storage with the semantics the real drivers must have: change rows keyed by
//! hash (storing one twice is a no-op), compaction deleting exactly the covered rows,
//! recorded metadata, and a sequence number for scope cursors.

use std::collections::BTreeMap;

use automerge::{Automerge, ChangeHash};
use caresync_core::domain::DocumentMeta;
use caresync_core::protocol::DocumentId;
use caresync_core::sync::{StorageOp, StoredChange, StoredDocument};

#[derive(Debug, Default, Clone)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    pub rows: BTreeMap<ChangeHash, Vec<u8>>,
    pub meta: Option<DocumentMeta>,
    pub heads: Vec<ChangeHash>,
    /// The store's sequence number when the document last changed, for scope cursors.
    pub sequence: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Store {
    pub documents: BTreeMap<DocumentId, StoredDoc>,
    pub sequence: u64,
    pub scope_cursor: Option<u64>,
}

impl Store {
    /// Carries out a write; reads (`Load`, `ListScope`) are answered by the caller.
    pub fn apply(&mut self, op: &StorageOp) {
        match op {
            StorageOp::PutChanges {
                document,
                meta,
                changes,
                heads,
            } => {
                self.sequence += 1;
                let stored = self.documents.entry(*document).or_default();
                for change in changes {
                    stored
                        .rows
                        .entry(change.hash)
                        .or_insert_with(|| change.bytes.clone());
                }
                if meta.is_some() {
                    stored.meta.clone_from(meta);
                }
                stored.heads.clone_from(heads);
                stored.sequence = self.sequence;
            }
            StorageOp::Compact {
                document,
                snapshot,
                covered,
            } => {
                if let Some(stored) = self.documents.get_mut(document) {
                    stored.snapshot = Some(snapshot.clone());
                    for hash in covered {
                        stored.rows.remove(hash);
                    }
                }
            }
            StorageOp::Replace { document, snapshot } => {
                let stored = self.documents.entry(*document).or_default();
                stored.snapshot = Some(snapshot.clone());
                stored.rows.clear();
                stored.heads = Automerge::load(snapshot).unwrap().get_heads();
            }
            StorageOp::SaveScopeCursor { cursor } => self.scope_cursor = Some(*cursor),
            StorageOp::Load { .. }
            | StorageOp::ListScope { .. }
            | StorageOp::PutRelayHeads { .. } => {}
        }
    }

    pub fn load(&self, document: &DocumentId) -> Option<StoredDocument> {
        self.documents.get(document).map(|stored| StoredDocument {
            snapshot: stored.snapshot.clone(),
            changes: stored
                .rows
                .iter()
                .map(|(hash, bytes)| StoredChange {
                    hash: *hash,
                    bytes: bytes.clone(),
                })
                .collect(),
            meta: stored.meta.clone(),
        })
    }

    /// The document as storage holds it (snapshot plus rows), if anything is stored.
    pub fn materialise(&self, document: &DocumentId) -> Option<Automerge> {
        let stored = self.load(document)?;
        let mut doc = Automerge::new();
        if let Some(snapshot) = &stored.snapshot {
            doc.load_incremental(snapshot).unwrap();
        }
        for row in &stored.changes {
            doc.load_incremental(&row.bytes).unwrap();
        }
        Some(doc)
    }
}
