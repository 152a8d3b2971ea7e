//! The repo state machine: many documents over many connections, as device or as relay.
//!
//! Every public method is an event: it takes `now_ms` where time matters, changes the
//! state, and queues [`Effect`]s that the driver takes with [`Repo::take_effects`]. The
//! engine never blocks, never reads a clock and never touches a socket or a disk.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, ChangeHash, ReadDoc};

use super::document::{DocState, PeerDoc, PendingWrite, Status, Step, Waiting};
use super::effect::{AuditEvent, CloseReason, Effect, Notification};
use super::incoming_changes::{judge, new_changes};
use super::limits::{
    DOCUMENT_IDLE_MS_MAX, DOCUMENTS_PER_CONNECTION_MAX, EPHEMERAL_SESSIONS_PER_CONNECTION_MAX,
    HANDSHAKE_MS_MAX, IDLE_DOCUMENTS_IN_MEMORY_MAX, ORPHAN_CHANGES_PER_CONNECTION_MAX,
    QUEUED_MESSAGES_PER_DOCUMENT_MAX, SCOPE_ENTRIES_PER_PAGE_MAX, SYNC_DATA_BYTES_MAX,
};
use super::policy::{Access, Policy, Refusal};
use super::storage::{StorageCompletion, StorageOp, StorageOpId, StoredChange, StoredDocument};
use super::{ConnectionId, RepoError};
use crate::protocol::{
    DocumentId, EXTENSION_REFUSED, EXTENSION_SCOPE, Message, PROTOCOL_VERSION, PeerId,
    PeerMetadata, ScopeEntry, StorageId,
};

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
    scope_cursor: Option<u64>,
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
            scope_cursor,
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

    /// Device: what storage knows about each document, given once at start.
    pub fn restore_index(&mut self, entries: impl IntoIterator<Item = (DocumentId, IndexEntry)>) {
        self.index.extend(entries);
    }

    /// Device: documents with changes the relay has not acknowledged.
    pub fn unsynced_documents(&self) -> Vec<DocumentId> {
        self.index
            .iter()
            .filter(|(_, entry)| !same_heads(&entry.local_heads, &entry.relay_heads))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The durable state of a loaded document.
    pub fn document(&self, document: &DocumentId) -> Option<&Automerge> {
        self.documents
            .get(document)
            .filter(|state| state.is_ready() && state.exists)
            .map(|state| &state.committed)
    }

    /// The state the user sees: durable plus changes still being written.
    pub fn latest(&self, document: &DocumentId) -> Option<&Automerge> {
        self.documents
            .get(document)
            .filter(|state| state.is_ready() && (state.exists || state.latest.is_some()))
            .map(DocState::latest)
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
            .and_then(|peer| peer.sync.their_heads.clone())
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
            .map(|peer| &peer.sync)
    }

    // ----- connections -------------------------------------------------------------

    /// A transport connection opened. On a device this sends `join` at once.
    pub fn connection_opened(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        principal: P::Principal,
    ) {
        let handshake = match self.config.role {
            Role::Relay => Handshake::AwaitingJoin { opened_ms: now_ms },
            Role::Device => Handshake::AwaitingPeer { opened_ms: now_ms },
        };
        self.connections.insert(
            connection,
            Connection {
                principal,
                handshake,
                remote: None,
                extensions: BTreeSet::new(),
                documents: BTreeSet::new(),
                ephemeral_seen: BTreeMap::new(),
                scope: None,
            },
        );
        if self.config.role == Role::Device {
            let join = Message::Join {
                sender_id: self.config.peer_id.clone(),
                supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
                peer_metadata: Some(self.our_metadata(self.config.extensions.clone())),
            };
            self.send(connection, &join);
        }
    }

    /// The transport closed (or the driver gave up on it). Its sync states are dropped.
    pub fn connection_closed(&mut self, connection: ConnectionId) {
        let Some(closed) = self.connections.remove(&connection) else {
            return;
        };
        for document in closed.documents {
            if let Some(state) = self.documents.get_mut(&document) {
                state.peers.remove(&connection);
                state.orphans.remove(&connection);
            }
            if let Some(parked) = self.parked.get_mut(&document) {
                parked.remove(&connection);
                if parked.is_empty() {
                    self.parked.remove(&document);
                }
            }
        }
    }

    /// One binary frame arrived on `connection`.
    pub fn frame_received(&mut self, now_ms: u64, connection: ConnectionId, frame: &[u8]) {
        let message = match Message::decode(frame) {
            Ok(message) => message,
            Err(error) => {
                self.protocol_violation(connection, format!("undecodable frame: {error}"));
                return;
            }
        };
        self.message_received(now_ms, connection, message);
    }

    fn message_received(&mut self, now_ms: u64, connection: ConnectionId, message: Message) {
        let Some(conn) = self.connections.get(&connection) else {
            return;
        };
        let ready = matches!(conn.handshake, Handshake::Ready);
        match message {
            Message::Join {
                sender_id,
                supported_protocol_versions,
                peer_metadata,
            } if self.config.role == Role::Relay && !ready => {
                self.join_received(
                    connection,
                    sender_id,
                    &supported_protocol_versions,
                    peer_metadata,
                );
            }
            Message::Peer {
                sender_id,
                selected_protocol_version,
                peer_metadata,
                ..
            } if self.config.role == Role::Device && !ready => {
                self.peer_received(
                    now_ms,
                    connection,
                    sender_id,
                    &selected_protocol_version,
                    peer_metadata,
                );
            }
            Message::Error { message, .. } => {
                self.close(
                    connection,
                    CloseReason::Protocol(format!("peer error: {message}")),
                );
            }
            _ if !ready => {
                self.protocol_violation(connection, "message before handshake".to_owned());
            }
            Message::Leave { .. } => {
                self.close(connection, CloseReason::Protocol("peer left".to_owned()));
            }
            Message::Request {
                document_id, data, ..
            } => self.sync_received(now_ms, connection, document_id, data, true),
            Message::Sync {
                document_id, data, ..
            } => self.sync_received(now_ms, connection, document_id, data, false),
            Message::DocUnavailable { document_id, .. } => {
                self.unavailable_received(connection, document_id);
            }
            Message::Ephemeral {
                sender_id,
                count,
                session_id,
                document_id,
                data,
                ..
            } => {
                self.ephemeral_received(connection, sender_id, count, session_id, document_id, data)
            }
            Message::ScopeRequest { since, .. } if self.config.role == Role::Relay => {
                self.scope_requested(connection, since);
            }
            Message::Scope {
                cursor,
                entries,
                removed,
                complete,
                ..
            } if self.config.role == Role::Device => {
                self.scope_received(now_ms, connection, cursor, entries, removed, complete);
            }
            Message::Refused {
                document_id,
                code,
                message,
                heads,
                ..
            } if self.config.role == Role::Device => {
                self.refused_received(now_ms, connection, document_id, code, message, &heads);
            }
            // Heads gossip between storage peers is not used by caresync: a device learns
            // the relay's heads through the scope extension instead.
            Message::RemoteSubscriptionChange { .. } | Message::RemoteHeadsChanged { .. } => {}
            other => {
                self.protocol_violation(
                    connection,
                    format!("unexpected message {}", message_type(&other)),
                );
            }
        }
    }

    fn our_metadata(&self, extensions: Vec<String>) -> PeerMetadata {
        PeerMetadata {
            storage_id: self.config.storage_id.clone(),
            is_ephemeral: Some(false),
            caresync_extensions: extensions,
        }
    }

    fn join_received(
        &mut self,
        connection: ConnectionId,
        sender_id: PeerId,
        versions: &[String],
        metadata: Option<PeerMetadata>,
    ) {
        if !versions.iter().any(|version| version == PROTOCOL_VERSION) {
            self.send(
                connection,
                &Message::Error {
                    message: format!(
                        "unsupported protocol version: this relay speaks \"{PROTOCOL_VERSION}\""
                    ),
                    sender_id: Some(self.config.peer_id.clone()),
                    target_id: Some(sender_id),
                },
            );
            self.close(connection, CloseReason::UnsupportedVersion);
            return;
        }
        // A second join with the same sender id replaces the older socket, as in JS.
        let older: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(id, conn)| **id != connection && conn.remote.as_ref() == Some(&sender_id))
            .map(|(id, _)| *id)
            .collect();
        for id in older {
            self.close(
                id,
                CloseReason::Protocol("replaced by a newer connection".to_owned()),
            );
            self.connection_closed(id);
        }
        let offered: BTreeSet<String> = metadata
            .map(|metadata| metadata.caresync_extensions.into_iter().collect())
            .unwrap_or_default();
        let agreed: Vec<String> = self
            .config
            .extensions
            .iter()
            .filter(|extension| offered.contains(*extension))
            .cloned()
            .collect();
        let peer = Message::Peer {
            sender_id: self.config.peer_id.clone(),
            target_id: sender_id.clone(),
            selected_protocol_version: PROTOCOL_VERSION.to_owned(),
            peer_metadata: Some(self.our_metadata(agreed.clone())),
        };
        if let Some(conn) = self.connections.get_mut(&connection) {
            conn.handshake = Handshake::Ready;
            conn.remote = Some(sender_id);
            conn.extensions = agreed.into_iter().collect();
        }
        self.send(connection, &peer);
        self.notify(Notification::PeerReady { connection });
    }

    fn peer_received(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        sender_id: PeerId,
        selected_version: &str,
        metadata: Option<PeerMetadata>,
    ) {
        if selected_version != PROTOCOL_VERSION {
            self.close(connection, CloseReason::UnsupportedVersion);
            return;
        }
        let agreed: BTreeSet<String> = metadata
            .map(|metadata| metadata.caresync_extensions.into_iter().collect())
            .unwrap_or_default();
        let speaks_scope = agreed.contains(EXTENSION_SCOPE);
        if let Some(conn) = self.connections.get_mut(&connection) {
            conn.handshake = Handshake::Ready;
            conn.remote = Some(sender_id.clone());
            conn.extensions = agreed;
        }
        self.notify(Notification::PeerReady { connection });
        if speaks_scope {
            self.send(
                connection,
                &Message::ScopeRequest {
                    sender_id: self.config.peer_id.clone(),
                    target_id: sender_id,
                    since: self.scope_cursor,
                },
            );
        }
        // Push what the relay has not acknowledged, and keep open documents in sync.
        let mut to_sync: BTreeSet<DocumentId> = self.unsynced_documents().into_iter().collect();
        if !speaks_scope {
            to_sync.extend(self.documents.keys().copied());
        }
        for document in to_sync {
            self.begin_sync(now_ms, connection, document);
        }
    }

    // ----- sync messages -------------------------------------------------------------

    fn sync_received(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        document: DocumentId,
        data: Vec<u8>,
        is_request: bool,
    ) {
        if data.len() > SYNC_DATA_BYTES_MAX {
            self.close(connection, CloseReason::LimitExceeded("sync data bytes"));
            return;
        }
        let Some(conn) = self.connections.get(&connection) else {
            return;
        };
        if !conn.documents.contains(&document)
            && conn.documents.len() >= DOCUMENTS_PER_CONNECTION_MAX
        {
            self.close(
                connection,
                CloseReason::LimitExceeded("documents per connection"),
            );
            return;
        }
        let message = if is_request {
            Message::Request {
                document_id: document,
                sender_id: PeerId::from(""),
                target_id: PeerId::from(""),
                data,
            }
        } else {
            Message::Sync {
                document_id: document,
                sender_id: PeerId::from(""),
                target_id: PeerId::from(""),
                data,
            }
        };
        if !self.ensure_document(now_ms, document) {
            return;
        }
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        state.last_used_ms = now_ms;
        if !state.is_ready() || !state.waiting.is_empty() {
            if state.waiting.len() >= QUEUED_MESSAGES_PER_DOCUMENT_MAX {
                self.close(connection, CloseReason::LimitExceeded("queued messages"));
                return;
            }
            state
                .waiting
                .push_back(Waiting::Message(connection, message));
            return;
        }
        self.handle_sync(now_ms, connection, document, message);
    }

    /// Handles a `request` or `sync` for a loaded document.
    fn handle_sync(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        document: DocumentId,
        message: Message,
    ) {
        let (data, is_request) = match message {
            Message::Request { data, .. } => (data, true),
            Message::Sync { data, .. } => (data, false),
            _ => return,
        };
        let Some(conn) = self.connections.get(&connection) else {
            return;
        };
        let principal = conn.principal.clone();
        let speaks_refused = conn.speaks(EXTENSION_REFUSED);
        let mut sync_message = match sync::Message::decode(&data) {
            Ok(message) => message,
            Err(error) => {
                self.protocol_violation(
                    connection,
                    format!("document {document}: undecodable sync message: {error}"),
                );
                return;
            }
        };
        let Some(state) = self.documents.get(&document) else {
            return;
        };
        let access = self
            .policy
            .access(&principal, &document, state.meta.as_ref());
        let known = state.exists || state.latest.is_some();
        let carries_changes = !sync_message.changes.is_empty();
        // `request` means "send it or say you do not have it"; a `sync` for a document we
        // lack is the peer offering it, answered with our (empty) side of the protocol.
        if access == Access::None || (!known && !carries_changes && is_request) {
            // Unknown and forbidden look the same from outside (design §3.4).
            if access == Access::None && known {
                self.effects.push(Effect::Audit(AuditEvent::ReadDenied {
                    connection,
                    document,
                }));
            }
            self.forget_peer(connection, document);
            self.send_unavailable(connection, document);
            return;
        }
        // A reader's device never sends its changes (our read-only flag tells it not to),
        // but its heads show them. Tell it, so the user learns the edit will not sync.
        let reader_has_own_changes = access == Access::Read
            && sync_message
                .heads
                .iter()
                .any(|head| state.latest().get_change_by_hash(head).is_none());
        if reader_has_own_changes {
            let refusal = Refusal {
                code: super::RefusalCode::ReadOnly,
                message: format!("document {document}: this account may only read it"),
            };
            self.refuse(connection, document, refusal, speaks_refused);
            return;
        }
        let mut accepted = None;
        let mut reusable_scratch = None;
        let orphans = state.orphans.get(&connection).cloned().unwrap_or_default();
        if carries_changes || !orphans.is_empty() {
            let mut chunks: Vec<&[u8]> = sync_message.changes.iter().collect();
            chunks.extend(orphans.iter().map(Vec::as_slice));
            let mut still_orphaned = Vec::new();
            let judged = new_changes(state.latest(), &chunks).and_then(|found| {
                still_orphaned = found.orphans;
                if found.applicable.is_empty() {
                    return Ok(None);
                }
                if access == Access::Read {
                    return Err(Refusal {
                        code: super::RefusalCode::ReadOnly,
                        message: format!("document {document}: this account may only read it"),
                    });
                }
                let accepted = judge(
                    &self.policy,
                    &principal,
                    &document,
                    state.meta.as_ref(),
                    state.latest(),
                    &found.scratch,
                    found.applicable,
                )?;
                // Without orphans queued inside it, the scratch copy is exactly the new
                // latest state, which saves applying the changes a second time.
                if still_orphaned.is_empty() {
                    reusable_scratch = Some(found.scratch);
                }
                Ok(Some(accepted))
            });
            match judged {
                Ok(result) => accepted = result,
                Err(refusal) => {
                    self.refuse(connection, document, refusal, speaks_refused);
                    return;
                }
            }
            sync_message.changes = sync::ChunkList::empty();
            if let Some(state) = self.documents.get_mut(&document) {
                still_orphaned.truncate(ORPHAN_CHANGES_PER_CONNECTION_MAX);
                if still_orphaned.is_empty() {
                    state.orphans.remove(&connection);
                } else {
                    state.orphans.insert(connection, still_orphaned);
                }
            }
        }

        // Register the peer's sync state for this document (or adjust it if access changed).
        self.attach_peer(connection, document, access);
        let mut write = None;
        if let Some(accepted) = accepted {
            let Some(state) = self.documents.get_mut(&document) else {
                return;
            };
            let is_new = !state.exists && state.latest.is_none();
            let latest = match reusable_scratch {
                Some(scratch) => scratch,
                None => {
                    let mut latest = state.latest().clone();
                    // The changes were just applied to a copy of this very state while
                    // judging them, so this cannot fail in practice; if it does, the write
                    // still lands and `drive` reports the document as damaged.
                    let _ = latest.apply_changes(accepted.changes.iter().cloned());
                    latest
                }
            };
            state.latest = Some(latest);
            // Recorded metadata is written with the first change, and again when a
            // permitted transfer moves the record.
            let new_meta = if is_new || accepted.meta != state.meta {
                accepted.meta.clone()
            } else {
                None
            };
            let op = self.start_write(document, &accepted.changes, new_meta);
            write = Some(PendingWrite {
                op,
                changes: accepted.changes,
                meta: accepted.meta,
                done: false,
                local: false,
            });
        }
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        state.pipeline.push_back(Step {
            write,
            receive: Some((connection, sync_message)),
        });
        self.drive(now_ms, document);
    }

    fn attach_peer(&mut self, connection: ConnectionId, document: DocumentId, access: Access) {
        if let Some(conn) = self.connections.get_mut(&connection) {
            conn.documents.insert(document);
        }
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        let peer = state
            .peers
            .entry(connection)
            .or_insert_with(|| PeerDoc::new(access));
        if peer.access != access {
            peer.sync.set_read_only(access == Access::Read);
            peer.access = access;
        }
    }

    fn forget_peer(&mut self, connection: ConnectionId, document: DocumentId) {
        if let Some(conn) = self.connections.get_mut(&connection) {
            conn.documents.remove(&document);
        }
        if let Some(state) = self.documents.get_mut(&document) {
            state.peers.remove(&connection);
            state.orphans.remove(&connection);
        }
    }

    fn refuse(
        &mut self,
        connection: ConnectionId,
        document: DocumentId,
        refusal: Refusal,
        speaks_refused: bool,
    ) {
        if self.config.role == Role::Device {
            // A device does not judge its relay; what it cannot read is a broken relay.
            self.protocol_violation(
                connection,
                format!("document {document}: unreadable changes from the relay: {refusal}"),
            );
            return;
        }
        self.effects.push(Effect::Audit(AuditEvent::ChangeRefused {
            connection,
            document,
            refusal: refusal.clone(),
        }));
        let message = format!("document {document}: changes refused: {refusal}");
        // Start this document afresh with the peer: the device returns to our heads and
        // syncs again from there.
        self.forget_peer(connection, document);
        let remote = self.remote_of(connection);
        if speaks_refused {
            let heads = self
                .documents
                .get(&document)
                .map(|state| state.committed.get_heads())
                .unwrap_or_default();
            self.send(
                connection,
                &Message::Refused {
                    sender_id: self.config.peer_id.clone(),
                    target_id: remote,
                    document_id: document,
                    code: refusal.code.as_str().to_owned(),
                    message,
                    heads: heads.iter().map(|head| head.0).collect(),
                },
            );
        } else {
            // A plain automerge-repo peer has no way back; the protocol's answer is `error`
            // followed by closing the socket.
            self.send(
                connection,
                &Message::Error {
                    message: message.clone(),
                    sender_id: Some(self.config.peer_id.clone()),
                    target_id: Some(remote),
                },
            );
            self.close(connection, CloseReason::Refused(message));
        }
    }

    /// Runs the document's pipeline as far as durable writes allow, then sends every peer
    /// what it is missing.
    fn drive(&mut self, now_ms: u64, document: DocumentId) {
        let role = self.config.role;
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        let mut changed = false;
        let mut saved_locally = false;
        let mut broken: Vec<(ConnectionId, String)> = Vec::new();
        let mut relay_ack: Vec<(ConnectionId, Vec<ChangeHash>)> = Vec::new();
        let mut damaged: Vec<String> = Vec::new();
        while let Some(step) = state.pipeline.front() {
            if step.write.as_ref().is_some_and(|write| !write.done) {
                break;
            }
            let Some(step) = state.pipeline.pop_front() else {
                break;
            };
            if let Some(write) = step.write {
                state
                    .stored_rows
                    .extend(write.changes.iter().map(|c| c.hash()));
                let last_write = !state.pipeline.iter().any(|step| step.write.is_some());
                match state.latest.take() {
                    // `latest` is the durable state plus every pending write; after the
                    // last one it is exactly the new durable state.
                    Some(latest) if last_write => state.committed = latest,
                    latest => {
                        state.latest = latest;
                        if let Err(error) = state.committed.apply_changes(write.changes) {
                            damaged.push(error.to_string());
                        }
                    }
                }
                state.exists = true;
                if write.meta.is_some() {
                    state.meta = write.meta;
                }
                changed = true;
                saved_locally |= write.local;
            }
            if let Some((connection, message)) = step.receive
                && let Some(peer) = state.peers.get_mut(&connection)
            {
                if let Err(error) = state
                    .committed
                    .receive_sync_message(&mut peer.sync, message)
                {
                    broken.push((connection, format!("document {document}: {error}")));
                    continue;
                }
                peer.requested = false;
                if let Some(heads) = &peer.sync.their_heads {
                    relay_ack.push((connection, heads.clone()));
                }
            }
        }
        if state.pipeline.is_empty() {
            state.latest = None;
        }
        let heads = state.committed.get_heads();
        let exists = state.exists;
        let meta = state.meta.clone();
        let mut outgoing: Vec<(ConnectionId, Vec<u8>, bool)> = Vec::new();
        for (connection, peer) in &mut state.peers {
            // A hash the peer names in `need` is one it does not have, whatever we think we
            // sent: automerge would not send it twice, and the two sides would ask each
            // other forever (seen in the simulation when a change was dropped for missing
            // dependencies or hidden by a bloom filter false positive).
            if let Some(need) = &peer.sync.their_need {
                for hash in need {
                    peer.sync.sent_hashes.remove(hash);
                }
            }
            if let Some(mut message) = state.committed.generate_sync_message(&mut peer.sync) {
                // Automerge asks for the dependencies of changes queued inside a document;
                // ours wait outside it (see `incoming_changes.rs`), so ask for theirs here.
                if let Some(orphans) = state.orphans.get(connection) {
                    let latest = state.latest.as_ref().unwrap_or(&state.committed);
                    for dependency in missing_dependencies(latest, orphans) {
                        if !message.need.contains(&dependency) {
                            message.need.push(dependency);
                        }
                    }
                    // The encoding requires sorted hashes.
                    message.need.sort();
                }
                let as_request = role == Role::Device && !exists && peer.requested;
                outgoing.push((*connection, message.encode(), as_request));
            }
        }
        state.last_used_ms = now_ms;
        let waiting_compaction = state.compacting.is_none()
            && state.stored_rows.len() >= super::limits::CHANGE_ROWS_BEFORE_COMPACTION_MAX
            && state.pipeline.is_empty();

        for (connection, error) in broken {
            self.protocol_violation(connection, error);
        }
        for detail in damaged {
            self.notify(Notification::DocumentError { document, detail });
        }
        for (connection, data, as_request) in outgoing {
            self.send_sync(connection, document, data, as_request);
        }
        if changed {
            self.notify(Notification::DocumentChanged {
                document,
                heads: heads.clone(),
            });
            if saved_locally {
                self.notify(Notification::LocalChangeSaved {
                    document,
                    heads: heads.clone(),
                });
            }
            if role == Role::Device {
                let entry = self.index.entry(document).or_default();
                entry.local_heads.clone_from(&heads);
                // A device pushes every durable change to every relay it is connected to.
                let unsynced: Vec<ConnectionId> = self
                    .connections
                    .iter()
                    .filter(|(_, conn)| {
                        matches!(conn.handshake, Handshake::Ready)
                            && !conn.documents.contains(&document)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for connection in unsynced {
                    self.begin_sync(now_ms, connection, document);
                }
            } else if let Some(meta) = &meta {
                self.announce(now_ms, document, meta.clone());
            }
        }
        for (connection, their_heads) in relay_ack {
            self.notify(Notification::PeerHeads {
                connection,
                document,
                heads: their_heads.clone(),
            });
            if role == Role::Device {
                self.relay_acknowledged(connection, document, &heads, their_heads);
            }
        }
        if waiting_compaction {
            self.compact(document);
        }
        let deferred = self
            .documents
            .get_mut(&document)
            .filter(|state| state.pipeline.is_empty())
            .and_then(|state| state.deferred_refusal.take());
        if let Some((connection, code, message, heads)) = deferred {
            self.refused_received(now_ms, connection, document, code, message, &heads);
        }
    }

    /// Device: the relay told us its heads for a document; record what it holds.
    fn relay_acknowledged(
        &mut self,
        connection: ConnectionId,
        document: DocumentId,
        our_heads: &[ChangeHash],
        their_heads: Vec<ChangeHash>,
    ) {
        let synced = same_heads(our_heads, &their_heads);
        let entry = self.index.entry(document).or_default();
        if synced && !same_heads(&entry.relay_heads, &their_heads) {
            entry.relay_heads.clone_from(&their_heads);
            let op = self.next_op();
            self.pending_ops.insert(op, PendingOp::Bookkeeping);
            self.effects.push(Effect::Storage {
                id: op,
                op: StorageOp::PutRelayHeads {
                    document,
                    heads: their_heads,
                },
            });
        }
        if synced {
            self.scope_document_done(connection, document);
        }
    }

    /// Relay: tell connections that speak the scope extension about a document that
    /// changed in their scope, by starting to sync it with them.
    fn announce(&mut self, now_ms: u64, document: DocumentId, meta: crate::domain::DocumentMeta) {
        let candidates: Vec<(ConnectionId, Access)> = self
            .connections
            .iter()
            .filter(|(_, conn)| {
                matches!(conn.handshake, Handshake::Ready)
                    && conn.speaks(EXTENSION_SCOPE)
                    && !conn.documents.contains(&document)
                    && conn.documents.len() < DOCUMENTS_PER_CONNECTION_MAX
            })
            .map(|(id, conn)| {
                (
                    *id,
                    self.policy.access(&conn.principal, &document, Some(&meta)),
                )
            })
            .filter(|(_, access)| *access != Access::None)
            .collect();
        if candidates.is_empty() {
            return;
        }
        for (connection, access) in candidates {
            self.attach_peer(connection, document, access);
        }
        self.drive(now_ms, document);
    }

    fn send_sync(
        &mut self,
        connection: ConnectionId,
        document: DocumentId,
        data: Vec<u8>,
        as_request: bool,
    ) {
        let sender_id = self.config.peer_id.clone();
        let target_id = self.remote_of(connection);
        let message = if as_request {
            Message::Request {
                document_id: document,
                sender_id,
                target_id,
                data,
            }
        } else {
            Message::Sync {
                document_id: document,
                sender_id,
                target_id,
                data,
            }
        };
        self.send(connection, &message);
    }

    fn send_unavailable(&mut self, connection: ConnectionId, document: DocumentId) {
        let message = Message::DocUnavailable {
            document_id: document,
            sender_id: self.config.peer_id.clone(),
            target_id: self.remote_of(connection),
        };
        self.send(connection, &message);
    }

    fn unavailable_received(&mut self, connection: ConnectionId, document: DocumentId) {
        self.forget_peer(connection, document);
        self.notify(Notification::DocumentUnavailable { document });
        self.scope_document_done(connection, document);
    }

    fn ephemeral_received(
        &mut self,
        connection: ConnectionId,
        sender_id: PeerId,
        count: u64,
        session_id: String,
        document: DocumentId,
        data: Vec<u8>,
    ) {
        if self.config.role != Role::Relay || data.len() > SYNC_DATA_BYTES_MAX {
            return;
        }
        let Some(conn) = self.connections.get_mut(&connection) else {
            return;
        };
        // Drop repeats of a session unless its count grew, as automerge-repo does.
        let key = (sender_id.0.clone(), session_id.clone());
        if conn
            .ephemeral_seen
            .get(&key)
            .is_some_and(|seen| *seen >= count)
        {
            return;
        }
        if conn.ephemeral_seen.len() >= EPHEMERAL_SESSIONS_PER_CONNECTION_MAX {
            conn.ephemeral_seen.clear();
        }
        conn.ephemeral_seen.insert(key, count);
        let Some(state) = self.documents.get(&document) else {
            return;
        };
        let principal = conn.principal.clone();
        // Only peers that may read the document, and only from a peer that may read it.
        if self
            .policy
            .access(&principal, &document, state.meta.as_ref())
            == Access::None
        {
            return;
        }
        let targets: Vec<ConnectionId> = state
            .peers
            .keys()
            .filter(|other| **other != connection)
            .copied()
            .collect();
        for target in targets {
            let message = Message::Ephemeral {
                sender_id: sender_id.clone(),
                target_id: self.remote_of(target),
                count,
                session_id: session_id.clone(),
                document_id: document,
                data: data.clone(),
            };
            self.send(target, &message);
        }
    }

    // ----- scope extension ---------------------------------------------------------

    fn scope_requested(&mut self, connection: ConnectionId, since: Option<u64>) {
        if !self
            .connections
            .get(&connection)
            .is_some_and(|conn| conn.speaks(EXTENSION_SCOPE))
        {
            self.protocol_violation(connection, "scope extension not negotiated".to_owned());
            return;
        }
        let op = self.next_op();
        self.pending_ops
            .insert(op, PendingOp::ListScope(connection));
        self.effects.push(Effect::Storage {
            id: op,
            op: StorageOp::ListScope { connection, since },
        });
    }

    fn scope_listed(
        &mut self,
        connection: ConnectionId,
        cursor: u64,
        entries: Vec<ScopeEntry>,
        removed: Vec<DocumentId>,
    ) {
        if !self.connections.contains_key(&connection) {
            return;
        }
        let target_id = self.remote_of(connection);
        let mut pages: Vec<Vec<ScopeEntry>> = Vec::new();
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            pages.push(entries.by_ref().take(SCOPE_ENTRIES_PER_PAGE_MAX).collect());
        }
        if pages.is_empty() {
            pages.push(Vec::new());
        }
        let last = pages.len().saturating_sub(1);
        let mut removed = Some(removed);
        for (index, page) in pages.into_iter().enumerate() {
            let message = Message::Scope {
                sender_id: self.config.peer_id.clone(),
                target_id: target_id.clone(),
                cursor,
                entries: page,
                removed: if index == last {
                    removed.take().unwrap_or_default()
                } else {
                    Vec::new()
                },
                complete: index == last,
            };
            self.send(connection, &message);
        }
    }

    fn scope_received(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        cursor: u64,
        entries: Vec<ScopeEntry>,
        removed: Vec<DocumentId>,
        complete: bool,
    ) {
        let mut behind = Vec::new();
        for entry in entries {
            let relay_heads: Vec<ChangeHash> =
                entry.heads.iter().map(|head| ChangeHash(*head)).collect();
            let local = self.index.get(&entry.document_id);
            let up_to_date =
                local.is_some_and(|local| same_heads(&local.local_heads, &relay_heads));
            if up_to_date {
                let entry_heads = relay_heads;
                if let Some(local) = self.index.get_mut(&entry.document_id) {
                    local.relay_heads = entry_heads;
                }
            } else {
                behind.push(entry.document_id);
            }
        }
        for document in removed {
            // The account may no longer see it; the application decides what to erase.
            self.notify(Notification::DocumentUnavailable { document });
        }
        if let Some(conn) = self.connections.get_mut(&connection) {
            let progress = conn.scope.get_or_insert_with(ScopeProgress::default);
            progress.cursor = cursor;
            progress.complete = complete;
            progress.outstanding.extend(behind.iter().copied());
        }
        for document in behind {
            self.begin_sync(now_ms, connection, document);
        }
        self.scope_check_finished(connection);
    }

    fn scope_document_done(&mut self, connection: ConnectionId, document: DocumentId) {
        if let Some(progress) = self
            .connections
            .get_mut(&connection)
            .and_then(|conn| conn.scope.as_mut())
        {
            progress.outstanding.remove(&document);
        }
        self.scope_check_finished(connection);
    }

    fn scope_check_finished(&mut self, connection: ConnectionId) {
        let Some(conn) = self.connections.get_mut(&connection) else {
            return;
        };
        let finished = conn
            .scope
            .as_ref()
            .is_some_and(|progress| progress.complete && progress.outstanding.is_empty());
        if !finished {
            return;
        }
        let Some(progress) = conn.scope.take() else {
            return;
        };
        self.scope_cursor = Some(progress.cursor);
        let op = self.next_op();
        self.pending_ops.insert(op, PendingOp::Bookkeeping);
        self.effects.push(Effect::Storage {
            id: op,
            op: StorageOp::SaveScopeCursor {
                cursor: progress.cursor,
            },
        });
        self.notify(Notification::ScopeSynced { connection });
    }

    // ----- refusal recovery (device) -----------------------------------------------

    fn refused_received(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        document: DocumentId,
        code: String,
        message: String,
        relay_heads: &[[u8; 32]],
    ) {
        self.forget_peer(connection, document);
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        if !state.is_ready() || !state.pipeline.is_empty() {
            // Our own writes are still on their way to storage; return to the relay's
            // state once they are durable, so the refused copy holds them too.
            state.deferred_refusal = Some((connection, code, message, relay_heads.to_vec()));
            return;
        }
        let refused_copy = state.committed.save();
        let known: Vec<ChangeHash> = relay_heads
            .iter()
            .map(|head| ChangeHash(*head))
            .filter(|head| state.committed.get_change_by_hash(head).is_some())
            .collect();
        // Keep only what the relay accepted. A head we do not have yet arrives with the
        // next sync, which starts from the state kept here.
        let reset = if known.is_empty() {
            Ok(Automerge::new().with_actor(self.config.actor.clone()))
        } else {
            state
                .committed
                .fork_at(&known)
                .map(|doc| doc.with_actor(self.config.actor.clone()))
        };
        let Ok(reset) = reset else {
            return;
        };
        let snapshot = reset.save();
        state.committed = reset;
        state.stored_rows.clear();
        let heads = state.committed.get_heads();
        let op = self.next_op();
        self.pending_ops.insert(op, PendingOp::Replace(document));
        self.effects.push(Effect::Storage {
            id: op,
            op: StorageOp::Replace { document, snapshot },
        });
        let entry = self.index.entry(document).or_default();
        entry.local_heads.clone_from(&heads);
        entry.relay_heads = heads;
        self.notify(Notification::ChangesRefused {
            document,
            code,
            message,
            refused_copy,
        });
        self.begin_sync(now_ms, connection, document);
        // The relay may still hold a sync state built from messages we sent before the
        // reset; ask it to forget what it believes we have, so it sends everything again.
        if let Some(peer) = self
            .documents
            .get_mut(&document)
            .and_then(|state| state.peers.get_mut(&connection))
        {
            peer.sync.needs_reset = true;
        }
    }

    // ----- local changes (device, and relay-side review actions) ------------------

    /// Creates a new, empty document known only here until its first change is stored.
    pub fn create(&mut self, now_ms: u64, document: DocumentId) -> Result<(), RepoError> {
        if self.documents.contains_key(&document) || self.index.contains_key(&document) {
            return Err(RepoError::AlreadyExists(document));
        }
        let mut state = DocState::loading(now_ms);
        state.status = Status::Ready;
        state.committed = Automerge::new().with_actor(self.config.actor.clone());
        self.documents.insert(document, state);
        Ok(())
    }

    /// Loads a document into memory (and, on a device, asks connected relays for it if it
    /// is not stored here). Completion shows as [`Notification::DocumentChanged`] or
    /// [`Notification::DocumentUnavailable`].
    pub fn open(&mut self, now_ms: u64, document: DocumentId) {
        let ready_connections: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, conn)| matches!(conn.handshake, Handshake::Ready))
            .map(|(id, _)| *id)
            .collect();
        if !self.ensure_document(now_ms, document) {
            return;
        }
        if self.config.role == Role::Device {
            for connection in ready_connections {
                self.begin_sync(now_ms, connection, document);
            }
        }
    }

    /// Makes a change on a loaded document. The change is shown by [`Repo::latest`] at
    /// once and becomes durable (and is sent to peers) when storage confirms the write.
    pub fn change<F, O>(&mut self, now_ms: u64, document: DocumentId, f: F) -> Result<O, RepoError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<O, AutomergeError>,
    {
        let actor = self.config.actor.clone();
        let Some(state) = self.documents.get_mut(&document) else {
            return Err(RepoError::NotLoaded(document));
        };
        if !state.is_ready() {
            return Err(RepoError::NotLoaded(document));
        }
        let before = state.latest().clone();
        let mut working = before.clone().with_actor(actor);
        let seconds = i64::try_from(now_ms / 1_000).unwrap_or(i64::MAX);
        let output = working
            .transact_with(|_| CommitOptions::default().with_time(seconds), f)
            .map_err(|failure| RepoError::Change(failure.error.to_string()))?
            .result;
        let changes = before.get_changes_added(&working);
        if changes.is_empty() {
            return Ok(output);
        }
        let is_new = !state.exists && state.latest.is_none();
        let meta = state
            .meta
            .clone()
            .or_else(|| crate::domain::read_meta(&working).ok());
        state.latest = Some(working);
        state.last_used_ms = now_ms;
        let new_meta = if is_new { meta.clone() } else { None };
        let op = self.start_write(document, &changes, new_meta);
        if let Some(state) = self.documents.get_mut(&document) {
            state.pipeline.push_back(Step {
                write: Some(PendingWrite {
                    op,
                    changes,
                    meta,
                    done: false,
                    local: true,
                }),
                receive: None,
            });
        }
        Ok(output)
    }

    /// Queues the storage write of changes already applied to the document's `latest`.
    fn start_write(
        &mut self,
        document: DocumentId,
        changes: &[automerge::Change],
        new_document_meta: Option<crate::domain::DocumentMeta>,
    ) -> StorageOpId {
        let op = self.next_op();
        self.pending_ops.insert(op, PendingOp::Write(document));
        let heads = self
            .documents
            .get(&document)
            .map(|state| state.latest().get_heads())
            .unwrap_or_default();
        self.effects.push(Effect::Storage {
            id: op,
            op: StorageOp::PutChanges {
                document,
                meta: new_document_meta,
                changes: changes
                    .iter()
                    .map(|change| StoredChange {
                        hash: change.hash(),
                        bytes: change.raw_bytes().to_vec(),
                    })
                    .collect(),
                heads,
            },
        });
        op
    }

    /// Device: start syncing a document with a connection, loading it first if needed.
    fn begin_sync(&mut self, now_ms: u64, connection: ConnectionId, document: DocumentId) {
        if !self
            .connections
            .get(&connection)
            .is_some_and(|conn| matches!(conn.handshake, Handshake::Ready))
        {
            return;
        }
        if !self.ensure_document(now_ms, document) {
            return;
        }
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        if !state.is_ready() || !state.waiting.is_empty() {
            state.waiting.push_back(Waiting::BeginSync(connection));
            return;
        }
        if state.peers.contains_key(&connection) {
            self.drive(now_ms, document);
            return;
        }
        self.attach_peer(connection, document, Access::Write);
        if let Some(peer) = self
            .documents
            .get_mut(&document)
            .and_then(|state| state.peers.get_mut(&connection))
        {
            peer.requested = true;
        }
        self.drive(now_ms, document);
    }

    // ----- storage -----------------------------------------------------------------

    /// Makes sure a document is in memory or being loaded. Returns false if it cannot be.
    fn ensure_document(&mut self, now_ms: u64, document: DocumentId) -> bool {
        if let Some(state) = self.documents.get_mut(&document) {
            state.last_used_ms = now_ms;
            return true;
        }
        let op = self.next_op();
        self.pending_ops.insert(op, PendingOp::Load(document));
        self.documents.insert(document, DocState::loading(now_ms));
        self.effects.push(Effect::Storage {
            id: op,
            op: StorageOp::Load { document },
        });
        true
    }

    /// Storage finished a request.
    pub fn storage_completed(&mut self, now_ms: u64, completion: StorageCompletion) {
        let Some(pending) = self.pending_ops.remove(&completion.id()) else {
            return;
        };
        match (pending, completion) {
            (PendingOp::Load(document), StorageCompletion::Loaded { stored, .. }) => {
                self.loaded(now_ms, document, stored);
            }
            (PendingOp::Load(document), StorageCompletion::Failed { reason, .. }) => {
                self.notify(Notification::StorageFailed {
                    document: Some(document),
                    reason,
                });
                self.loaded(now_ms, document, None);
            }
            (PendingOp::Write(document), StorageCompletion::Written { id }) => {
                if let Some(state) = self.documents.get_mut(&document) {
                    for step in &mut state.pipeline {
                        if let Some(write) = &mut step.write
                            && write.op == id
                        {
                            write.done = true;
                        }
                    }
                }
                self.drive(now_ms, document);
            }
            (PendingOp::Write(document), StorageCompletion::Failed { reason, .. }) => {
                self.write_failed(now_ms, document, reason);
            }
            (PendingOp::Compact(document, covered), StorageCompletion::Written { .. }) => {
                if let Some(state) = self.documents.get_mut(&document) {
                    state.compacting = None;
                    state.stored_rows.retain(|hash| !covered.contains(hash));
                }
            }
            (PendingOp::Compact(document, _), StorageCompletion::Failed { reason, .. }) => {
                if let Some(state) = self.documents.get_mut(&document) {
                    state.compacting = None;
                }
                self.notify(Notification::StorageFailed {
                    document: Some(document),
                    reason,
                });
            }
            (
                PendingOp::ListScope(connection),
                StorageCompletion::ScopeListed {
                    cursor,
                    entries,
                    removed,
                    ..
                },
            ) => self.scope_listed(connection, cursor, entries, removed),
            (PendingOp::Replace(document), StorageCompletion::Failed { reason, .. }) => {
                self.notify(Notification::StorageFailed {
                    document: Some(document),
                    reason,
                });
            }
            (
                PendingOp::Bookkeeping | PendingOp::ListScope(_),
                StorageCompletion::Failed { reason, .. },
            ) => {
                self.notify(Notification::StorageFailed {
                    document: None,
                    reason,
                });
            }
            _ => {}
        }
    }

    fn loaded(&mut self, now_ms: u64, document: DocumentId, stored: Option<StoredDocument>) {
        let actor = self.config.actor.clone();
        let mut failures = Vec::new();
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        let mut doc = Automerge::new().with_actor(actor);
        let mut rows = Vec::new();
        let mut meta = None;
        let exists = stored.is_some();
        if let Some(stored) = stored {
            if let Some(snapshot) = &stored.snapshot
                && let Err(error) = doc.load_incremental(snapshot)
            {
                failures.push(format!("snapshot: {error}"));
            }
            for row in &stored.changes {
                match doc.load_incremental(&row.bytes) {
                    Ok(_) => rows.push(row.hash),
                    Err(error) => failures.push(format!("change row: {error}")),
                }
            }
            meta = stored.meta;
        }
        state.status = Status::Ready;
        state.committed = doc;
        state.exists = exists;
        state.meta = meta;
        state.stored_rows = rows;
        state.last_used_ms = now_ms;
        if let Some(parked) = self.parked.remove(&document) {
            state.peers.extend(parked);
        }
        let waiting: Vec<Waiting> = state.waiting.drain(..).collect();
        for failure in failures {
            self.notify(Notification::StorageFailed {
                document: Some(document),
                reason: failure,
            });
        }
        if self.config.role == Role::Device && !exists {
            self.index.remove(&document);
        }
        for item in waiting {
            match item {
                Waiting::Message(connection, message) => {
                    self.handle_sync(now_ms, connection, document, message);
                }
                Waiting::BeginSync(connection) => self.begin_sync(now_ms, connection, document),
            }
        }
        if exists {
            let heads = self
                .documents
                .get(&document)
                .map(|state| state.committed.get_heads())
                .unwrap_or_default();
            self.notify(Notification::DocumentChanged { document, heads });
        } else if self.config.role == Role::Device
            && self
                .documents
                .get(&document)
                .is_some_and(|state| state.peers.is_empty() && state.pipeline.is_empty())
            && !self
                .connections
                .values()
                .any(|conn| matches!(conn.handshake, Handshake::Ready))
        {
            self.notify(Notification::DocumentUnavailable { document });
        }
    }

    /// A write failed: nothing of the pending pipeline is durable. Memory returns to the
    /// durable state and every peer starts this document afresh, so they send again.
    fn write_failed(&mut self, now_ms: u64, document: DocumentId, reason: String) {
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        for step in state.pipeline.drain(..) {
            if let Some(write) = step.write {
                self.pending_ops.remove(&write.op);
            }
        }
        state.latest = None;
        for peer in state.peers.values_mut() {
            *peer = PeerDoc::new(peer.access);
        }
        self.notify(Notification::StorageFailed {
            document: Some(document),
            reason,
        });
        self.drive(now_ms, document);
    }

    fn compact(&mut self, document: DocumentId) {
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        let covered = state.stored_rows.clone();
        let snapshot = state.committed.save();
        let op = StorageOpId(self.next_op);
        self.next_op += 1;
        state.compacting = Some(op);
        self.pending_ops
            .insert(op, PendingOp::Compact(document, covered.clone()));
        self.effects.push(Effect::Storage {
            id: op,
            op: StorageOp::Compact {
                document,
                snapshot,
                covered,
            },
        });
    }

    // ----- time ----------------------------------------------------------------------

    /// Time passed: close connections stuck in the handshake, evict idle documents.
    pub fn tick(&mut self, now_ms: u64) {
        let stuck: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, conn)| match conn.handshake {
                Handshake::AwaitingJoin { opened_ms } | Handshake::AwaitingPeer { opened_ms } => {
                    now_ms.saturating_sub(opened_ms) > HANDSHAKE_MS_MAX
                }
                Handshake::Ready => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for connection in stuck {
            self.close(connection, CloseReason::HandshakeTimeout);
        }
        self.evict(now_ms);
    }

    fn evict(&mut self, now_ms: u64) {
        let mut idle: Vec<(u64, DocumentId)> = self
            .documents
            .iter()
            .filter(|(_, state)| {
                let heads = state.committed.get_heads();
                state.is_idle() && state.peers.values().all(|peer| peer.is_quiet(&heads))
            })
            .map(|(id, state)| (state.last_used_ms, *id))
            .collect();
        idle.sort();
        let over = idle.len().saturating_sub(IDLE_DOCUMENTS_IN_MEMORY_MAX);
        for (index, (last_used_ms, document)) in idle.into_iter().enumerate() {
            let too_old = now_ms.saturating_sub(last_used_ms) > DOCUMENT_IDLE_MS_MAX;
            if index >= over && !too_old {
                continue;
            }
            if let Some(state) = self.documents.remove(&document)
                && !state.peers.is_empty()
            {
                self.parked.insert(document, state.peers);
            }
        }
    }

    // ----- helpers -------------------------------------------------------------------

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
            if !held.contains(dependency) && document.get_change_by_hash(dependency).is_none() {
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

fn message_type(message: &Message) -> &'static str {
    match message {
        Message::Join { .. } => "join",
        Message::Peer { .. } => "peer",
        Message::Error { .. } => "error",
        Message::Leave { .. } => "leave",
        Message::Request { .. } => "request",
        Message::Sync { .. } => "sync",
        Message::DocUnavailable { .. } => "doc-unavailable",
        Message::Ephemeral { .. } => "ephemeral",
        Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
        Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
        Message::ScopeRequest { .. } => "caresync-scope-request",
        Message::Scope { .. } => "caresync-scope",
        Message::Refused { .. } => "caresync-refused",
    }
}
