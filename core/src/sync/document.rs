//! The engine's view of one document: its durable state, the writes on their way to
//! storage, and one sync state per connection.

use std::collections::{BTreeMap, VecDeque};

use automerge::sync;
use automerge::{Automerge, Change, ChangeHash};

use super::ConnectionId;
use super::no_access::NoAccess;
use super::policy::Access;
use super::storage::StorageOpId;
use crate::domain::DocumentMeta;

#[derive(Debug)]
pub(crate) enum Status {
    /// Waiting for storage to answer a `Load`.
    Loading,
    Ready,
}

/// Work that arrived before the document was loaded.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// The automerge sync message of a `request` (`is_request`) or `sync` from a connection.
    Sync {
        connection: ConnectionId,
        data: Vec<u8>,
        is_request: bool,
    },
    /// Start syncing this document with a connection (device side).
    BeginSync(ConnectionId),
    /// The document as a scope listing carried it, at the relay's durable `heads`
    /// (device side).
    Listed {
        connection: ConnectionId,
        bytes: Vec<u8>,
        heads: Vec<ChangeHash>,
    },
}

/// One step of a document's pipeline. Steps complete in order: the sync state of a peer
/// learns about changes only once they are durable, so no heads including an uncommitted
/// change are ever advertised (design §3.3).
#[derive(Debug)]
pub(crate) struct Step {
    pub write: Option<PendingWrite>,
    /// A peer's sync message with its changes removed, applied once `write` is durable.
    pub receive: Option<(ConnectionId, sync::Message)>,
}

#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub op: StorageOpId,
    pub changes: Vec<Change>,
    pub meta: Option<DocumentMeta>,
    pub done: bool,
    /// Made on this device (so the user can be told it is saved).
    pub local: bool,
    /// Device: the changes came with a scope listing of this connection, which holds
    /// them durably at these heads. Once they are stored the document needs no exchange
    /// with that relay if nothing else changed meanwhile.
    pub listed: Option<(ConnectionId, Vec<ChangeHash>)>,
}

#[derive(Debug)]
pub(crate) struct PeerDoc {
    pub sync: sync::State,
    pub access: Access,
    /// Device side: we asked with `request` and have not heard back yet.
    pub requested: bool,
}

impl PeerDoc {
    pub(crate) fn new(access: Access) -> Self {
        let sync = if access == Access::Read {
            sync::State::new_read_only()
        } else {
            sync::State::new()
        };
        PeerDoc {
            sync,
            access,
            requested: false,
        }
    }

    /// The peer has told us it holds what we hold: safe to drop the document from memory
    /// and keep only this state. (`in_flight` stays set on whichever side spoke last, so it
    /// says nothing here; a late message simply loads the document again.)
    pub(crate) fn is_quiet(&self, our_heads: &[ChangeHash]) -> bool {
        self.sync.their_heads.as_deref() == Some(our_heads)
    }
}

#[derive(Debug)]
pub(crate) struct DocState {
    pub status: Status,
    /// Everything durable, and nothing else.
    pub committed: Automerge,
    /// `committed` plus the changes of pending writes; `None` when nothing is pending.
    pub latest: Option<Automerge>,
    /// Metadata recorded when the document was first stored.
    pub meta: Option<DocumentMeta>,
    /// Whether anything is stored for the document.
    pub exists: bool,
    pub pipeline: VecDeque<Step>,
    pub waiting: VecDeque<Waiting>,
    pub peers: BTreeMap<ConnectionId, PeerDoc>,
    /// Hashes of the change rows in storage since the last snapshot: exactly what the next
    /// compaction may delete.
    pub stored_rows: Vec<ChangeHash>,
    pub compacting: Option<StorageOpId>,
    pub last_used_ms: u64,
    /// Changes a connection sent whose dependencies we lack, retried with its next message.
    pub orphans: BTreeMap<ConnectionId, Vec<Vec<u8>>>,
    /// Device: a refusal that arrived while our own writes were pending.
    pub deferred_refusal: Option<(ConnectionId, String, String, Vec<[u8; 32]>)>,
    /// Relay: connections the policy last said may not see this document.
    pub no_access: NoAccess,
}

impl DocState {
    pub(crate) fn loading(now_ms: u64) -> Self {
        DocState {
            status: Status::Loading,
            committed: Automerge::new(),
            latest: None,
            meta: None,
            exists: false,
            pipeline: VecDeque::new(),
            waiting: VecDeque::new(),
            peers: BTreeMap::new(),
            stored_rows: Vec::new(),
            compacting: None,
            last_used_ms: now_ms,
            deferred_refusal: None,
            orphans: BTreeMap::new(),
            no_access: NoAccess::default(),
        }
    }

    /// The state new changes build on: durable plus pending.
    pub(crate) fn latest(&self) -> &Automerge {
        self.latest.as_ref().unwrap_or(&self.committed)
    }

    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.status, Status::Ready)
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.is_ready()
            && self.pipeline.is_empty()
            && self.waiting.is_empty()
            && self.compacting.is_none()
            && self.orphans.is_empty()
    }
}
