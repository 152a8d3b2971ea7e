//! Storage requests and their completions: loading, durable writes, compaction.

use super::*;

impl<P: Policy> Repo<P> {
    /// Makes sure a document is in memory or being loaded. Returns false if it cannot be.
    pub(super) fn ensure_document(&mut self, now_ms: u64, document: DocumentId) -> bool {
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

    pub(super) fn loaded(
        &mut self,
        now_ms: u64,
        document: DocumentId,
        stored: Option<StoredDocument>,
    ) {
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
        state.durable_heads = doc.get_heads();
        state.doc = doc;
        state.exists = exists;
        state.meta = meta;
        state.stored_rows = rows;
        state.last_used_ms = now_ms;
        if let Some(parked) = self.parked.remove(&document) {
            state.peers.extend(parked);
        }
        for failure in failures {
            self.notify(Notification::StorageFailed {
                document: Some(document),
                reason: failure,
            });
        }
        if self.config.role == Role::Device && !exists {
            self.index.remove(&document);
            self.reindex(document);
        }
        self.run_waiting(now_ms, document);
        if exists {
            let heads = self.durable_heads(&document);
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
    pub(super) fn write_failed(&mut self, now_ms: u64, document: DocumentId, reason: String) {
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        for step in state.pipeline.drain(..) {
            if let Some(write) = step.write {
                self.pending_ops.remove(&write.op);
            }
        }
        // Every change since the durable heads was in a pending write, so the document at
        // those heads is exactly what storage holds.
        let actor = self.config.actor.clone();
        match state.doc.fork_at(&state.durable_heads) {
            Ok(durable) => state.doc = durable.with_actor(actor),
            Err(error) => self
                .effects
                .push(Effect::Notify(Notification::DocumentError {
                    document,
                    detail: format!("the document could not return to its durable state: {error}"),
                })),
        }
        for peer in state.peers.values_mut() {
            *peer = PeerDoc::new(peer.access);
        }
        self.notify(Notification::StorageFailed {
            document: Some(document),
            reason,
        });
        self.drive(now_ms, document);
    }

    pub(super) fn compact(&mut self, document: DocumentId) {
        let op = self.next_op();
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        let covered = state.stored_rows.clone();
        let snapshot = state.doc.save();
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
}
