//! `request`, `sync`, `doc-unavailable` and `ephemeral`: judging what peers send and running each
//! document's pipeline of durable writes.

use super::*;

impl<P: Policy> Repo<P> {
    pub(super) fn sync_received(
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
            state.waiting.push_back(Waiting::Sync {
                connection,
                data,
                is_request,
            });
            return;
        }
        self.handle_sync(now_ms, connection, document, data, is_request);
    }

    /// Handles a `request` or `sync` for a loaded document.
    pub(super) fn handle_sync(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        document: DocumentId,
        data: Vec<u8>,
        is_request: bool,
    ) {
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
        if let Err(problem) = make_safe_for_automerge(&mut sync_message) {
            self.protocol_violation(
                connection,
                format!("document {document}: unusable sync message: {problem}"),
            );
            return;
        }
        let Some(state) = self.documents.get(&document) else {
            return;
        };
        let access = self
            .policy
            .access(&principal, &document, state.meta.as_ref());
        let known = state.is_known();
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
                .any(|head| !holds(&state.doc, head));
        if reader_has_own_changes {
            let refusal = Refusal {
                code: RefusalCode::ReadOnly,
                message: format!("document {document}: this account may only read it"),
            };
            self.refuse(connection, document, refusal, speaks_refused);
            return;
        }
        let orphans = state.orphans.get(&connection).cloned().unwrap_or_default();
        let has_changes = carries_changes || !orphans.is_empty();
        if has_changes && state.has_pending_write() {
            // Changes join the document only when all of it is durable (see `DocState::doc`).
            if let Some(state) = self.documents.get_mut(&document) {
                state.waiting.push_back(Waiting::Sync {
                    connection,
                    data,
                    is_request,
                });
            }
            return;
        }
        let mut accepted = None;
        if has_changes {
            let mut chunks: Vec<&[u8]> = sync_message.changes.iter().collect();
            chunks.extend(orphans.iter().map(Vec::as_slice));
            let found = new_changes(&state.doc, &chunks);
            let mut still_orphaned = Vec::new();
            let judged = found.and_then(|found| {
                still_orphaned = found.orphans;
                if found.applicable.is_empty() {
                    return Ok(None);
                }
                if access == Access::Read {
                    return Err(Refusal {
                        code: RefusalCode::ReadOnly,
                        message: format!("document {document}: this account may only read it"),
                    });
                }
                self.take_changes(Some(connection), &principal, document, found.applicable)
                    .map(Some)
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
                let mut kept_bytes = 0usize;
                still_orphaned.retain(|orphan| {
                    kept_bytes = kept_bytes.saturating_add(orphan.len());
                    kept_bytes <= ORPHAN_BYTES_PER_CONNECTION_MAX
                });
                if still_orphaned.is_empty() {
                    state.orphans.remove(&connection);
                } else {
                    state.orphans.insert(connection, still_orphaned);
                }
            }
        }

        // Register the peer's sync state for this document (or adjust it if access changed).
        self.attach_peer(connection, document, access);
        let write = accepted.and_then(|accepted| self.write_accepted(document, accepted, None));
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        state.pipeline.push_back(Step {
            write,
            receive: Some((connection, sync_message)),
        });
        self.drive(now_ms, document);
    }

    /// Applies changes new to a document (each with its dependencies present, in causal
    /// order) if the policy accepts them. A refused or unusable batch leaves the document
    /// as it was.
    ///
    /// The usual message carries one change made on exactly the state we hold. It is
    /// applied to the document itself and judged there, with what the policy needs of the
    /// state before read first; a refusal then rebuilds that state from the document's
    /// history, which costs far more than the copy it saves, so a connection refused once
    /// has its later changes judged on a copy. So are batches, each change on the state
    /// it was made on. A device's policy judges nothing, and its changes go straight in.
    pub(super) fn take_changes(
        &mut self,
        from: Option<ConnectionId>,
        principal: &P::Principal,
        document: DocumentId,
        changes: Vec<Change>,
    ) -> Result<AcceptedChanges, Refusal> {
        let unusable = |error: automerge::AutomergeError| Refusal {
            code: RefusalCode::Malformed,
            message: format!("the changes could not be applied: {error}"),
        };
        let refused_before = from
            .and_then(|connection| self.connections.get(&connection))
            .is_some_and(|conn| conn.refused_before);
        let Some(state) = self.documents.get_mut(&document) else {
            return Err(Refusal {
                code: RefusalCode::Malformed,
                message: format!("document {document} is not loaded"),
            });
        };
        let heads = state.doc.get_heads();
        let one_on_ours = match changes.as_slice() {
            [change] => sorted(change.deps()) == heads,
            _ => false,
        };
        if self.policy.judges_changes() && (refused_before || !one_on_ours) {
            let mut after = state.doc.clone();
            after
                .apply_changes(changes.iter().cloned())
                .map_err(unusable)?;
            let accepted = judge(
                &self.policy,
                principal,
                &document,
                state.meta.as_ref(),
                &state.doc,
                &after,
                changes,
            )?;
            state.doc = after;
            return Ok(accepted);
        }
        let before = self
            .policy
            .judges_changes()
            .then(|| self.policy.read_before(&document, &state.doc));
        let judged = match state.doc.apply_changes(changes.iter().cloned()) {
            Err(error) => Err(unusable(error)),
            Ok(()) => match before {
                Some(before) => self.policy.check_change(
                    principal,
                    &document,
                    state.meta.as_ref(),
                    before,
                    &state.doc,
                ),
                None => Ok(state
                    .meta
                    .clone()
                    .or_else(|| crate::domain::read_meta(&state.doc).ok())),
            },
        };
        match judged {
            Ok(meta) => Ok(AcceptedChanges { changes, meta }),
            Err(refusal) => {
                // Changes from peers wait for pending writes, so the state to return to is
                // the document at the heads it had.
                let actor = self.config.actor.clone();
                match state.doc.fork_at(&heads) {
                    Ok(before) => state.doc = before.with_actor(actor),
                    Err(error) => self.effects.push(Effect::Notify(Notification::DocumentError {
                        document,
                        detail: format!(
                            "the document could not return to its state before refused changes: {error}"
                        ),
                    })),
                }
                Err(refusal)
            }
        }
    }

    /// Queues the durable write of changes just accepted into the document, for a pipeline
    /// step.
    pub(super) fn write_accepted(
        &mut self,
        document: DocumentId,
        accepted: AcceptedChanges,
        listed: Option<(ConnectionId, Vec<ChangeHash>)>,
    ) -> Option<PendingWrite> {
        let state = self.documents.get(&document)?;
        let is_new = !state.is_known();
        // Recorded metadata is written with the first change, and again when a permitted
        // transfer moves the record.
        let new_meta = if is_new || accepted.meta != state.meta {
            accepted.meta.clone()
        } else {
            None
        };
        let op = self.start_write(document, &accepted.changes, new_meta);
        Some(PendingWrite {
            op,
            changes: accepted.changes,
            meta: accepted.meta,
            done: false,
            local: false,
            listed,
        })
    }

    pub(super) fn attach_peer(
        &mut self,
        connection: ConnectionId,
        document: DocumentId,
        access: Access,
    ) {
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
            peer.sync_mut().set_read_only(access == Access::Read);
            peer.access = access;
        }
    }

    pub(super) fn forget_peer(&mut self, connection: ConnectionId, document: DocumentId) {
        if let Some(conn) = self.connections.get_mut(&connection) {
            conn.documents.remove(&document);
        }
        if let Some(state) = self.documents.get_mut(&document) {
            state.peers.remove(&connection);
            state.orphans.remove(&connection);
        }
    }

    pub(super) fn refuse(
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
        if let Some(conn) = self.connections.get_mut(&connection) {
            conn.refused_before = true;
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
            let heads = self.durable_heads(&document);
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
    pub(super) fn drive(&mut self, now_ms: u64, document: DocumentId) {
        let role = self.config.role;
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        let mut changed = false;
        let mut saved_locally = false;
        let mut broken: Vec<(ConnectionId, String)> = Vec::new();
        let mut relay_ack: Vec<(ConnectionId, Vec<ChangeHash>)> = Vec::new();
        let mut listed_by: Vec<(ConnectionId, Vec<ChangeHash>)> = Vec::new();
        let mut outgoing: Vec<(ConnectionId, Vec<u8>, bool)> = Vec::new();
        while let Some(step) = state.pipeline.front() {
            if step.write.as_ref().is_some_and(|write| !write.done) {
                break;
            }
            let Some(step) = state.pipeline.pop_front() else {
                break;
            };
            // The peer's message is received as if its changes were not in the document
            // yet, as automerge itself would see it: a message without changes whose heads
            // equal ours makes automerge take those heads as already told to the peer, and
            // the peer would never learn that we now hold its changes. So automerge's
            // record of what we last told the peer is kept unless the message's heads are
            // what was durable before this step.
            let sender = step.receive.as_ref().map(|(connection, _)| *connection);
            if let Some((connection, message)) = step.receive
                && let Some(peer) = state.peers.get_mut(&connection)
            {
                let told = if message.heads == state.durable_heads {
                    message.heads.clone()
                } else {
                    peer.sync().last_sent_heads.clone()
                };
                let sync = peer.sync_mut();
                if let Err(error) = state.doc.receive_sync_message(sync, message) {
                    broken.push((connection, format!("document {document}: {error}")));
                } else {
                    sync.last_sent_heads = told;
                    peer.requested = false;
                    if let Some(heads) = &peer.sync().their_heads {
                        relay_ack.push((connection, heads.clone()));
                    }
                }
            }
            if let Some(write) = step.write {
                state
                    .stored_rows
                    .extend(write.changes.iter().map(|c| c.hash()));
                state.made_durable(&write.changes);
                state.exists = true;
                if write.meta.is_some() {
                    state.meta = write.meta;
                }
                changed = true;
                saved_locally |= write.local;
                listed_by.extend(write.listed);
                // Answer the sender now that its changes are durable, before any later
                // message of its is received: that later message may already claim the
                // merged heads (the peer applied our changes meanwhile), and automerge would
                // then see nothing to say, so the peer would never hear that we stored its
                // changes (found by the real-relay test of two phones merging). With a
                // later write pending the answer waits for it, and carries heads that
                // differ from any the peer can claim meanwhile.
                if let Some(connection) = sender
                    && !state.has_pending_write()
                    && let Some(peer) = state.peers.get_mut(&connection)
                    && let Some(message) = peer.answer(&state.doc)
                {
                    outgoing.push((connection, message.encode(), false));
                }
            }
        }
        if state.pipeline.is_empty() {
            // The two agree by construction; the document's own heads are the ones to keep.
            state.durable_heads = state.doc.get_heads();
        }
        let heads = state.durable_heads.clone();
        let exists = state.exists;
        let meta = state.meta.clone();
        // Nothing is said to any peer while the document holds changes storage has not
        // confirmed: automerge would advertise them.
        let settled = !state.has_pending_write();
        for (connection, peer) in state.peers.iter_mut().filter(|_| settled) {
            if let Some(mut message) = peer.next_message(&state.doc, &heads) {
                // Automerge asks for the dependencies of changes queued inside a document;
                // ours wait outside it (see `incoming_changes.rs`), so ask for theirs here.
                if let Some(orphans) = state.orphans.get(connection) {
                    for dependency in missing_dependencies(&state.doc, orphans) {
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
            && state.stored_rows.len() >= CHANGE_ROWS_BEFORE_COMPACTION_MAX
            && state.pipeline.is_empty();

        for (connection, error) in broken {
            self.protocol_violation(connection, error);
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
                self.reindex(document);
                // A relay that listed the document at exactly our heads holds it already.
                listed_by.retain(|(_, relay_heads)| same_heads(relay_heads, &heads));
                // A device pushes every durable change to every relay it is connected to.
                let unsynced: Vec<ConnectionId> = self
                    .connections
                    .iter()
                    .filter(|(id, conn)| {
                        matches!(conn.handshake, Handshake::Ready)
                            && !conn.documents.contains(&document)
                            && !listed_by.iter().any(|(listed, _)| listed == *id)
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
        if role == Role::Device {
            for (connection, relay_heads) in listed_by {
                self.relay_acknowledged(connection, document, &heads, relay_heads);
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
        self.run_waiting(now_ms, document);
    }

    /// Takes up, in the order they came, the messages and listings that waited for the
    /// document to load or for its pending writes, until one of them starts a write.
    pub(super) fn run_waiting(&mut self, now_ms: u64, document: DocumentId) {
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        if !state.is_ready() || state.has_pending_write() || state.waiting.is_empty() {
            return;
        }
        // Taken out, so that what they start (including a nested `drive`) does not see
        // them as still waiting ahead of itself.
        let mut queue = std::mem::take(&mut state.waiting);
        while let Some(item) = queue.pop_front() {
            match item {
                Waiting::Sync {
                    connection,
                    data,
                    is_request,
                } => self.handle_sync(now_ms, connection, document, data, is_request),
                Waiting::BeginSync(connection) => self.begin_sync(now_ms, connection, document),
                Waiting::Listed {
                    connection,
                    bytes,
                    heads,
                } => self.apply_listed(now_ms, connection, document, &bytes, heads),
            }
            let Some(state) = self.documents.get_mut(&document) else {
                return;
            };
            if state.has_pending_write() {
                break;
            }
        }
        if let Some(state) = self.documents.get_mut(&document) {
            // Whatever waited since goes after what was taken out and is still waiting.
            queue.append(&mut state.waiting);
            state.waiting = queue;
        }
    }

    /// Device: the relay told us its heads for a document; record what it holds.
    pub(super) fn relay_acknowledged(
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
            self.reindex(document);
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
    pub(super) fn announce(
        &mut self,
        now_ms: u64,
        document: DocumentId,
        meta: crate::domain::DocumentMeta,
    ) {
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        // Both lists are in ascending connection order, so the kept "no"s are walked once.
        let known_closed = state.no_access.take_under(&meta, self.access_generation);
        let mut known_closed = known_closed.into_iter().peekable();
        let mut closed = Vec::with_capacity(self.connections.len());
        let mut candidates: Vec<(ConnectionId, Access)> = Vec::new();
        for (id, conn) in &self.connections {
            if !matches!(conn.handshake, Handshake::Ready) {
                continue;
            }
            // A connection judged closed stays closed whatever else is true of it, so the
            // kept "no" is looked at before the connection's own sets: under load nearly
            // every connection is another village's, and looking each one's sets up was the
            // engine's largest cost of its own.
            while known_closed.next_if(|known| known < id).is_some() {}
            if known_closed.next_if_eq(id).is_some() {
                closed.push(*id);
                continue;
            }
            if !(conn.speaks(EXTENSION_SCOPE)
                && !conn.documents.contains(&document)
                && conn.documents.len() < DOCUMENTS_PER_CONNECTION_MAX)
            {
                continue;
            }
            match self.policy.access(&conn.principal, &document, Some(&meta)) {
                Access::None => closed.push(*id),
                access => candidates.push((*id, access)),
            }
        }
        state.no_access.keep(meta, self.access_generation, closed);
        if candidates.is_empty() {
            return;
        }
        for (connection, access) in candidates {
            self.attach_peer(connection, document, access);
        }
        self.drive(now_ms, document);
    }

    pub(super) fn send_sync(
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

    pub(super) fn send_unavailable(&mut self, connection: ConnectionId, document: DocumentId) {
        let message = Message::DocUnavailable {
            document_id: document,
            sender_id: self.config.peer_id.clone(),
            target_id: self.remote_of(connection),
        };
        self.send(connection, &message);
    }

    pub(super) fn unavailable_received(&mut self, connection: ConnectionId, document: DocumentId) {
        self.forget_peer(connection, document);
        self.notify(Notification::DocumentUnavailable { document });
        self.scope_document_done(connection, document);
    }

    pub(super) fn ephemeral_received(
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
}

/// Checks a peer's sync message before automerge sees it, and puts its hash lists in the
/// order automerge assumes.
///
/// automerge trusts the bloom filters in `have`: one with entries but no bits makes it
/// divide by zero (a panic), and one with billions of probes makes it compute and allocate
/// them for every change it might send (gigabytes, and the engine stalls); many filters
/// multiply that. Its encoder also asserts that hash lists are sorted, and the answers it
/// builds reuse the peer's heads, so unsorted heads from a peer panicked the relay's debug
/// build and would make its release build send unsorted lists. All four came from the
/// malformed-input corpus (`tests/corpus/malformed/bloom-*`, `replay-10-*`).
fn make_safe_for_automerge(message: &mut sync::Message) -> Result<(), String> {
    if message.have.len() > SYNC_HAVES_PER_MESSAGE_MAX {
        return Err(format!(
            "{} bloom filters, more than {SYNC_HAVES_PER_MESSAGE_MAX}",
            message.have.len()
        ));
    }
    for have in &mut message.have {
        // The wire form: entries, bits per entry and probes as LEB128, then the bits;
        // nothing at all for a filter without entries, which automerge never probes.
        let bytes = have.bloom.to_bytes();
        let mut rest = bytes.as_slice();
        if !rest.is_empty() {
            let _entries = take_leb128(&mut rest)?;
            let _bits_per_entry = take_leb128(&mut rest)?;
            let probes = take_leb128(&mut rest)?;
            if probes > BLOOM_PROBES_MAX {
                return Err(format!(
                    "a bloom filter with {probes} probes, more than {BLOOM_PROBES_MAX}"
                ));
            }
            if rest.is_empty() {
                return Err("a bloom filter with entries but no bits".to_owned());
            }
        }
        have.last_sync.sort();
        have.last_sync.dedup();
    }
    message.heads.sort();
    message.heads.dedup();
    message.need.sort();
    message.need.dedup();
    Ok(())
}

/// Reads one LEB128 number off the front of `bytes`.
fn take_leb128(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *bytes = bytes.get(index + 1..).unwrap_or_default();
            return Ok(value);
        }
    }
    Err("a bloom filter with a malformed header".to_owned())
}
