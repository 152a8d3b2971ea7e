//! Storage as effects: the engine asks, the driver does the IO and reports back with a
//! [`StorageCompletion`] carrying the same [`StorageOpId`].

use automerge::ChangeHash;

use crate::domain::DocumentMeta;
use crate::protocol::{DocumentId, ScopeEntry};

/// Names one storage request so its completion can be matched to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageOpId(pub u64);

/// One stored change row: the key is its hash, so storing it twice is a no-op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChange {
    pub hash: ChangeHash,
    pub bytes: Vec<u8>,
}

/// Everything stored for one document, as the driver loads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredDocument {
    /// The compacted snapshot, if compaction has run.
    pub snapshot: Option<Vec<u8>>,
    /// Change rows stored since the snapshot.
    pub changes: Vec<StoredChange>,
    /// The metadata recorded when the document was first stored.
    pub meta: Option<DocumentMeta>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    /// Load a document; answer with [`StorageCompletion::Loaded`].
    Load { document: DocumentId },
    /// Durably store change rows (`INSERT OR IGNORE` by hash), then answer
    /// [`StorageCompletion::Written`]. `meta` is set when the document is new, or when a
    /// permitted transfer changes its recorded owner, and must be recorded with the rows.
    /// `heads` are the document's heads once these rows are stored.
    PutChanges {
        document: DocumentId,
        meta: Option<DocumentMeta>,
        changes: Vec<StoredChange>,
        heads: Vec<ChangeHash>,
    },
    /// In one transaction: replace the snapshot and delete exactly the change rows named in
    /// `covered` (rows stored meanwhile stay).
    Compact {
        document: DocumentId,
        snapshot: Vec<u8>,
        covered: Vec<ChangeHash>,
    },
    /// Replace everything stored for a document by one snapshot: a device returning to
    /// the relay's state after a refusal.
    Replace {
        document: DocumentId,
        snapshot: Vec<u8>,
    },
    /// Relay: list the documents `principal_key` may see, changed since `since`.
    /// Answer with [`StorageCompletion::ScopeListed`].
    ListScope {
        connection: super::ConnectionId,
        since: Option<u64>,
        /// Send each listed document's stored chunks with its entry
        /// ([`ScopeEntry::document`](crate::protocol::ScopeEntry)), within the limits of
        /// `SCOPE_DOCUMENT_BYTES_MAX` and `SCOPE_LISTING_DOCUMENT_BYTES_MAX`.
        documents: bool,
    },
    /// Device: every document listed by the relay's scope answer is now in sync; keep the
    /// cursor so the next reconnect asks only for what changed after it.
    SaveScopeCursor { cursor: u64 },
    /// Device: the relay holds these heads of the document (so it is no longer waiting to
    /// be pushed). Answer with [`StorageCompletion::Written`].
    PutRelayHeads {
        document: DocumentId,
        heads: Vec<ChangeHash>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageCompletion {
    /// `None`: nothing is stored for that document.
    Loaded {
        id: StorageOpId,
        document: DocumentId,
        stored: Option<StoredDocument>,
    },
    Written {
        id: StorageOpId,
    },
    Failed {
        id: StorageOpId,
        reason: String,
    },
    ScopeListed {
        id: StorageOpId,
        cursor: u64,
        entries: Vec<ScopeEntry>,
        removed: Vec<DocumentId>,
    },
}

impl StorageCompletion {
    pub fn id(&self) -> StorageOpId {
        match self {
            StorageCompletion::Loaded { id, .. }
            | StorageCompletion::Written { id }
            | StorageCompletion::Failed { id, .. }
            | StorageCompletion::ScopeListed { id, .. } => *id,
        }
    }
}
