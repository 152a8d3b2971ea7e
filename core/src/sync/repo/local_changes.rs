//! Documents created, opened and changed on this side, and the storage writes they start.

use super::*;

impl<P: Policy> Repo<P> {
    /// Creates a new, empty document known only here until its first change is stored.
    pub fn create(&mut self, now_ms: u64, document: DocumentId) -> Result<(), RepoError> {
        if self.documents.contains_key(&document) || self.index.contains_key(&document) {
            return Err(RepoError::AlreadyExists(document));
        }
        let mut state = DocState::loading(now_ms);
        state.status = Status::Ready;
        state.doc = Automerge::new().with_actor(self.config.actor.clone());
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
    /// once and is sent to peers when storage confirms the write.
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
        if state.doc.get_actor() != &actor {
            state.doc.set_actor(actor);
        }
        // Made in place: automerge rolls the transaction back if the edit fails, and a
        // change that changes nothing is not committed at all.
        let is_new = !state.is_known();
        let seconds = i64::try_from(now_ms / 1_000).unwrap_or(i64::MAX);
        let done = state
            .doc
            .transact_with(|_| CommitOptions::default().with_time(seconds), f)
            .map_err(|failure| RepoError::Change(failure.error.to_string()))?;
        let output = done.result;
        let Some(change) = done
            .hash
            .and_then(|hash| state.doc.get_change_by_hash(&hash))
        else {
            return Ok(output);
        };
        let changes = vec![change];
        let meta = state
            .meta
            .clone()
            .or_else(|| crate::domain::read_meta(&state.doc).ok());
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
                    listed: None,
                }),
                receive: None,
            });
        }
        Ok(output)
    }

    /// Queues the storage write of changes already applied to the document.
    pub(super) fn start_write(
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
            .map(|state| state.doc.get_heads())
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
    pub(super) fn begin_sync(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        document: DocumentId,
    ) {
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
}
