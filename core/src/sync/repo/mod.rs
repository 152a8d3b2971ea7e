//! The repo state machine: many documents over many connections, as device or as relay.
//!
//! Every public method is an event: it takes `now_ms` where time matters, changes the
//! state, and queues [`Effect`]s that the driver takes with [`Repo::take_effects`]. The
//! engine never blocks, never reads a clock and never touches a socket or a disk.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, Change, ChangeHash, ReadDoc};

use super::document::{DocState, PeerDoc, PendingWrite, Status, Step, Waiting};
use super::effect::{AuditEvent, CloseReason, Effect, Notification};
use super::held::holds;
use super::incoming_changes::{AcceptedChanges, judge, new_changes, sorted};
use super::limits::{
    BLOOM_PROBES_MAX, CHANGE_ROWS_BEFORE_COMPACTION_MAX, DOCUMENT_IDLE_MS_MAX,
    DOCUMENTS_PER_CONNECTION_MAX, EPHEMERAL_SESSIONS_PER_CONNECTION_MAX, HANDSHAKE_MS_MAX,
    IDLE_DOCUMENTS_IN_MEMORY_MAX, ORPHAN_BYTES_PER_CONNECTION_MAX,
    ORPHAN_CHANGES_PER_CONNECTION_MAX, QUEUED_MESSAGES_PER_DOCUMENT_MAX, SCOPE_DOCUMENT_BYTES_MAX,
    SCOPE_ENTRIES_PER_PAGE_MAX, SCOPE_PAGE_DOCUMENT_BYTES_MAX, SYNC_DATA_BYTES_MAX,
    SYNC_HAVES_PER_MESSAGE_MAX,
};
use super::policy::{Access, Policy, Refusal, RefusalCode};
use super::storage::{StorageCompletion, StorageOp, StorageOpId, StoredChange, StoredDocument};
use super::{ConnectionId, RepoError};
use crate::protocol::{
    DocumentId, EXTENSION_REFUSED, EXTENSION_SCOPE, Message, PROTOCOL_VERSION, PeerId,
    PeerMetadata, ScopeEntry, StorageId,
};

mod handshake;
mod local_changes;
mod recovery;
mod scope;
mod storage_events;
mod sync_messages;
mod time;

/// Which side of a connection this repo plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A device: sends `join`, pushes its own changes, asks for its scope.
    Device,
    /// The relay: answers `join`, checks every message against the policy, never
    /// announces documents to plain automerge-repo peers.
    Relay,
}

#[derive(Clone, Debug)]
pub struct RepoConfig {
    pub peer_id: PeerId,
    pub role: Role,
    pub storage_id: Option<StorageId>,
    /// The actor of changes made through [`Repo::change`]. Passed in because core takes no
    /// randomness of its own.
    pub actor: ActorId,
    /// Extensions offered in `join` (device) or accepted (relay).
    pub extensions: Vec<String>,
    /// Device: the cursor of the last complete scope answer, from storage.
    pub scope_cursor: Option<u64>,
}

impl RepoConfig {
    pub fn new(peer_id: PeerId, role: Role, actor: ActorId) -> Self {
        RepoConfig {
            peer_id,
            role,
            storage_id: None,
            actor,
            extensions: vec![EXTENSION_SCOPE.to_owned(), EXTENSION_REFUSED.to_owned()],
            scope_cursor: None,
        }
    }
}

/// Whether a document is in memory, see [`Repo::load_state`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadState {
    NotLoaded,
    Loading,
    /// Loaded, and storage holds nothing for it.
    Missing,
    Ready,
}

/// What a device knows about one document without loading it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexEntry {
    pub local_heads: Vec<ChangeHash>,
    pub relay_heads: Vec<ChangeHash>,
}

#[derive(Debug)]
enum Handshake {
    AwaitingJoin { opened_ms: u64 },
    AwaitingPeer { opened_ms: u64 },
    Ready,
}

#[derive(Debug)]
struct Connection<Principal> {
    principal: Principal,
    handshake: Handshake,
    remote: Option<PeerId>,
    extensions: BTreeSet<String>,
    documents: BTreeSet<DocumentId>,
    ephemeral_seen: BTreeMap<(String, String), u64>,
    /// Device: the scope answer being worked through.
    scope: Option<ScopeProgress>,
    /// Relay: changes of this connection were refused before, so its later ones are
    /// judged on a copy of the document (see `Repo::take_changes`).
    refused_before: bool,
}

#[derive(Debug, Default)]
struct ScopeProgress {
    cursor: u64,
    complete: bool,
    outstanding: BTreeSet<DocumentId>,
}

impl<Principal> Connection<Principal> {
    fn speaks(&self, extension: &str) -> bool {
        self.extensions.contains(extension)
    }
}

#[derive(Debug)]
enum PendingOp {
    Load(DocumentId),
    Write(DocumentId),
    Compact(DocumentId, Vec<ChangeHash>),
    Replace(DocumentId),
    ListScope(ConnectionId),
    Bookkeeping,
}

/// The sans-IO repo. See the module documentation.
#[derive(Debug)]
pub struct Repo<P: Policy> {
    config: RepoConfig,
    policy: P,
    connections: BTreeMap<ConnectionId, Connection<P::Principal>>,
    documents: BTreeMap<DocumentId, DocState>,
    /// Sync states of documents evicted from memory while connections still use them.
    parked: BTreeMap<DocumentId, BTreeMap<ConnectionId, PeerDoc>>,
    pending_ops: BTreeMap<StorageOpId, PendingOp>,
    next_op: u64,
    effects: Vec<Effect>,
    /// Device: heads per document, to decide what needs pushing without loading it.
    index: BTreeMap<DocumentId, IndexEntry>,
    /// Device: the documents of `index` whose local heads the relay has not acknowledged,
    /// kept up to date by `reindex` at every change of `index`. The page asks for them
    /// after every event; computing them from the whole index each time made a first sync
    /// of 5,000 records quadratic (15 of its 30 s in the browser).
    unsynced: BTreeSet<DocumentId>,
    scope_cursor: Option<u64>,
    /// Moves whenever an access answer kept in a document's `no_access` may have gone
    /// stale: the rules were handed out for change, or a connection closed.
    access_generation: u64,
}

impl<P: Policy> Repo<P> {
    pub fn new(config: RepoConfig, policy: P) -> Self {
        let scope_cursor = config.scope_cursor;
        Repo {
            config,
            policy,
            connections: BTreeMap::new(),
            documents: BTreeMap::new(),
            parked: BTreeMap::new(),
            pending_ops: BTreeMap::new(),
            next_op: 0,
            effects: Vec::new(),
            index: BTreeMap::new(),
            unsynced: BTreeSet::new(),
            scope_cursor,
            access_generation: 0,
        }
    }

    pub fn peer_id(&self) -> &PeerId {
        &self.config.peer_id
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The effects queued since the last call, in the order they must be carried out.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Whether effects are queued: a driver that feeds completions back in the same round
    /// checks this to know whether to carry out effects again.
    pub fn has_effects(&self) -> bool {
        !self.effects.is_empty()
    }

    /// Device: what storage knows about each document, given once at start.
    pub fn restore_index(&mut self, entries: impl IntoIterator<Item = (DocumentId, IndexEntry)>) {
        for (document, entry) in entries {
            self.index.insert(document, entry);
            self.reindex(document);
        }
    }

    /// Device: documents with changes the relay has not acknowledged.
    pub fn unsynced_documents(&self) -> Vec<DocumentId> {
        self.unsynced.iter().copied().collect()
    }

    /// Device: brings `unsynced` in line with the index entry of `document`, after any
    /// change of that entry.
    fn reindex(&mut self, document: DocumentId) {
        let unsynced = self
            .index
            .get(&document)
            .is_some_and(|entry| !same_heads(&entry.local_heads, &entry.relay_heads));
        if unsynced {
            self.unsynced.insert(document);
        } else {
            self.unsynced.remove(&document);
        }
    }

    /// The stored state of a loaded document. While a write is pending the document in
    /// memory is ahead of storage and this is `None`; [`Repo::latest`] shows it then.
    pub fn document(&self, document: &DocumentId) -> Option<&Automerge> {
        self.documents
            .get(document)
            .filter(|state| state.is_ready() && state.exists && !state.has_pending_write())
            .map(|state| &state.doc)
    }

    /// The heads of what storage holds of a loaded document, if anything is stored.
    pub fn stored_heads(&self, document: &DocumentId) -> Option<Vec<ChangeHash>> {
        self.documents
            .get(document)
            .filter(|state| state.is_ready() && state.exists)
            .map(|state| state.durable_heads.clone())
    }

    /// The state the user sees: durable plus changes still being written.
    pub fn latest(&self, document: &DocumentId) -> Option<&Automerge> {
        self.documents
            .get(document)
            .filter(|state| state.is_ready() && state.is_known())
            .map(|state| &state.doc)
    }

    /// Where a document stands in memory: a driver that made a local change on behalf of a
    /// user (the relay writing a review) waits for `Ready` or `Missing` after [`Repo::open`].
    pub fn load_state(&self, document: &DocumentId) -> LoadState {
        match self.documents.get(document) {
            None => LoadState::NotLoaded,
            Some(state) if !state.is_ready() => LoadState::Loading,
            Some(state) if state.is_known() => LoadState::Ready,
            Some(_) => LoadState::Missing,
        }
    }

    /// The metadata recorded when the document was first stored (owner, kind, worker).
    pub fn recorded_meta(&self, document: &DocumentId) -> Option<&crate::domain::DocumentMeta> {
        self.documents
            .get(document)
            .and_then(|state| state.meta.as_ref())
    }

    /// Storage requests issued and not yet completed: a driver shutting down waits for zero
    /// so that nothing a peer was told is lost.
    pub fn pending_storage_ops(&self) -> usize {
        self.pending_ops.len()
    }

    /// The policy, for a driver that learns new rules (org units added while serving).
    pub fn policy_mut(&mut self) -> &mut P {
        self.access_generation += 1;
        &mut self.policy
    }

    pub fn loaded_documents(&self) -> usize {
        self.documents.len()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Heads the remote side of `connection` last told us for `document`.
    pub fn peer_heads(
        &self,
        connection: ConnectionId,
        document: &DocumentId,
    ) -> Option<Vec<ChangeHash>> {
        self.documents
            .get(document)
            .and_then(|state| state.peers.get(&connection))
            .or_else(|| {
                self.parked
                    .get(document)
                    .and_then(|peers| peers.get(&connection))
            })
            .and_then(|peer| peer.sync().their_heads.clone())
    }

    /// The automerge sync state kept for `document` on `connection`, for diagnostics.
    pub fn sync_state(
        &self,
        connection: ConnectionId,
        document: &DocumentId,
    ) -> Option<&sync::State> {
        self.documents
            .get(document)
            .and_then(|state| state.peers.get(&connection))
            .map(PeerDoc::sync)
    }
    // ----- helpers -------------------------------------------------------------------

    /// The heads of what storage holds of a loaded document (empty if it is not loaded).
    fn durable_heads(&self, document: &DocumentId) -> Vec<ChangeHash> {
        self.documents
            .get(document)
            .map(|state| state.durable_heads.clone())
            .unwrap_or_default()
    }

    fn next_op(&mut self) -> StorageOpId {
        let op = StorageOpId(self.next_op);
        self.next_op += 1;
        op
    }

    fn remote_of(&self, connection: ConnectionId) -> PeerId {
        self.connections
            .get(&connection)
            .and_then(|conn| conn.remote.clone())
            .unwrap_or_else(|| PeerId::from(""))
    }

    fn send(&mut self, connection: ConnectionId, message: &Message) {
        self.effects.push(Effect::Send {
            connection,
            frame: message.encode(),
        });
    }

    fn notify(&mut self, notification: Notification) {
        self.effects.push(Effect::Notify(notification));
    }

    fn close(&mut self, connection: ConnectionId, reason: CloseReason) {
        self.effects.push(Effect::Close { connection, reason });
        self.connection_closed(connection);
    }

    fn protocol_violation(&mut self, connection: ConnectionId, detail: String) {
        self.effects
            .push(Effect::Audit(AuditEvent::ProtocolViolation {
                connection,
                detail: detail.clone(),
            }));
        let target_id = self
            .connections
            .get(&connection)
            .and_then(|c| c.remote.clone());
        self.send(
            connection,
            &Message::Error {
                message: detail.clone(),
                sender_id: Some(self.config.peer_id.clone()),
                target_id,
            },
        );
        self.close(connection, CloseReason::Protocol(detail));
    }
}

/// Dependencies of the `orphans` that neither `document` nor the orphans themselves hold.
fn missing_dependencies(document: &Automerge, orphans: &[Vec<u8>]) -> Vec<ChangeHash> {
    let changes: Vec<automerge::Change> = orphans
        .iter()
        .filter_map(|bytes| automerge::Change::from_bytes(bytes.clone()).ok())
        .collect();
    let held: BTreeSet<ChangeHash> = changes.iter().map(automerge::Change::hash).collect();
    let mut missing = BTreeSet::new();
    for change in &changes {
        for dependency in change.deps() {
            if !held.contains(dependency) && !holds(document, dependency) {
                missing.insert(*dependency);
            }
        }
    }
    missing.into_iter().collect()
}

/// Heads compared as sets: automerge sorts them, but storage or JS may not.
fn same_heads(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    let a: BTreeSet<&ChangeHash> = a.iter().collect();
    let b: BTreeSet<&ChangeHash> = b.iter().collect();
    a == b
}
