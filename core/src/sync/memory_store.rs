//! [`MemoryStore`]: the engine's storage effects carried out on plain data in memory.
//!
//! It is for tests, the simulation and throw-away devices (a benchmark's phones, a test
//! harness's native device): there is no IO, so nothing survives the process, but within
//! it a driver can drop its [`Repo`](super::Repo), build a new one over the same store and
//! find everything that was confirmed. The semantics are the ones every real driver must
//! have: change rows keyed by hash (storing one twice is a no-op), compaction deleting
//! exactly the covered rows, the metadata recorded with the first write, and a sequence
//! number that orders changes for scope cursors.

use std::collections::BTreeMap;

use automerge::{Automerge, AutomergeError, ChangeHash};

use super::repo::IndexEntry;
use super::storage::{StorageCompletion, StorageOp, StorageOpId, StoredChange, StoredDocument};
use crate::domain::DocumentMeta;
use crate::protocol::DocumentId;

/// Everything stored for one document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryDocument {
    /// The compacted (or replaced) state, if compaction or a refusal has written one.
    pub snapshot: Option<Vec<u8>>,
    /// Change rows stored since the snapshot, keyed by hash.
    pub rows: BTreeMap<ChangeHash, Vec<u8>>,
    /// The metadata recorded with the document's first write (or a permitted transfer).
    pub meta: Option<DocumentMeta>,
    /// The document's heads once everything stored is applied.
    pub heads: Vec<ChangeHash>,
    /// Device: the heads the relay last acknowledged.
    pub relay_heads: Vec<ChangeHash>,
    /// The store's sequence number when the document last changed, for scope cursors.
    pub sequence: u64,
}

/// In-memory storage of one repo (a device's or a relay's). See the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStore {
    pub documents: BTreeMap<DocumentId, MemoryDocument>,
    /// Bumped by every write of changes; a relay's scope cursor is a value of it.
    pub sequence: u64,
    /// Device: the cursor of the last complete scope answer.
    pub scope_cursor: Option<u64>,
}

/// Why the memory store could not carry out a request.
#[derive(Debug, thiserror::Error)]
pub enum MemoryStoreError {
    /// A `Replace` snapshot did not load; nothing was changed.
    #[error("the replacement snapshot of {document} does not load: {source}")]
    BadSnapshot {
        document: DocumentId,
        // Boxed: automerge's error is large, and this one is rare.
        source: Box<AutomergeError>,
    },
    /// Only a relay lists scopes, and only it knows whom a connection speaks for.
    #[error("the memory store cannot list a scope; the relay's driver answers ListScope")]
    ListScope,
}

impl MemoryDocument {
    /// Everything stored, as one byte string `Automerge::load` reads: the snapshot, then
    /// the change rows. A relay's scope listing sends this when asked for documents.
    pub fn stored_bytes(&self) -> Vec<u8> {
        let mut bytes = self.snapshot.clone().unwrap_or_default();
        for row in self.rows.values() {
            bytes.extend_from_slice(row);
        }
        bytes
    }
}

impl MemoryStore {
    /// Carries out a write. Reads (`Load`, `ListScope`) change nothing; answer them with
    /// [`MemoryStore::load`] or from the caller's own tables, or use
    /// [`MemoryStore::execute`]. On an error nothing was changed.
    pub fn apply(&mut self, op: &StorageOp) -> Result<(), MemoryStoreError> {
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
                // Loaded before anything is touched, so a bad snapshot leaves the old state.
                let heads = Automerge::load(snapshot)
                    .map_err(|source| MemoryStoreError::BadSnapshot {
                        document: *document,
                        source: Box::new(source),
                    })?
                    .get_heads();
                let stored = self.documents.entry(*document).or_default();
                stored.snapshot = Some(snapshot.clone());
                stored.rows.clear();
                // The engine replaces a document only to return it to what the relay
                // holds, so the relay holds these heads (the web app's store does the same).
                stored.relay_heads.clone_from(&heads);
                stored.heads = heads;
            }
            StorageOp::SaveScopeCursor { cursor } => self.scope_cursor = Some(*cursor),
            StorageOp::PutRelayHeads { document, heads } => {
                // Only for a document stored here: the relay may acknowledge a document
                // this device has since returned to empty, which must not reappear.
                if let Some(stored) = self.documents.get_mut(document) {
                    stored.relay_heads.clone_from(heads);
                }
            }
            StorageOp::Load { .. } | StorageOp::ListScope { .. } => {}
        }
        Ok(())
    }

    /// Carries out any request a device makes and returns its completion: the whole
    /// storage driver of a device kept in memory. `ListScope` (a relay's request) is
    /// answered `Failed`, as is a write that [`MemoryStore::apply`] rejects.
    pub fn execute(&mut self, id: StorageOpId, op: &StorageOp) -> StorageCompletion {
        match op {
            StorageOp::Load { document } => StorageCompletion::Loaded {
                id,
                document: *document,
                stored: self.load(document),
            },
            StorageOp::ListScope { .. } => StorageCompletion::Failed {
                id,
                reason: MemoryStoreError::ListScope.to_string(),
            },
            write => match self.apply(write) {
                Ok(()) => StorageCompletion::Written { id },
                Err(error) => StorageCompletion::Failed {
                    id,
                    reason: error.to_string(),
                },
            },
        }
    }

    /// What a `Load` of `document` returns: `None` when nothing is stored for it.
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

    /// The document as storage holds it (snapshot plus rows); `Ok(None)` if nothing is
    /// stored. Tests compare it with what peers hold.
    pub fn materialise(&self, document: &DocumentId) -> Result<Option<Automerge>, AutomergeError> {
        let Some(stored) = self.load(document) else {
            return Ok(None);
        };
        let mut doc = Automerge::new();
        if let Some(snapshot) = &stored.snapshot {
            doc.load_incremental(snapshot)?;
        }
        for row in &stored.changes {
            doc.load_incremental(&row.bytes)?;
        }
        Ok(Some(doc))
    }

    /// Device: what to give [`Repo::restore_index`](super::Repo::restore_index) when a new
    /// repo starts over this store, so it knows what the relay has not acknowledged
    /// without loading every document.
    pub fn index_entries(&self) -> Vec<(DocumentId, IndexEntry)> {
        self.documents
            .iter()
            .map(|(id, stored)| {
                (
                    *id,
                    IndexEntry {
                        local_heads: stored.heads.clone(),
                        relay_heads: stored.relay_heads.clone(),
                    },
                )
            })
            .collect()
    }
}
