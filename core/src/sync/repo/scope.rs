//! The scope extension: the relay lists what an account may see, the device syncs what differs.

use super::*;

impl<P: Policy> Repo<P> {
    pub(super) fn scope_requested(
        &mut self,
        connection: ConnectionId,
        since: Option<u64>,
        documents: bool,
    ) {
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
            op: StorageOp::ListScope {
                connection,
                since,
                documents,
            },
        });
    }

    /// Lists the whole scope again to every peer that speaks the scope extension: the
    /// rules changed (org units added while serving), so what an account may see may have
    /// grown. A device takes an unasked listing like an answer and syncs what differs, so a
    /// reviewer connected before a village was added sees its records without reconnecting.
    /// Rules change rarely (an administrator's import); one listing per connection then is
    /// cheaper than tracking which accounts the change touched.
    pub fn relist_scopes(&mut self) {
        if self.config.role != Role::Relay {
            return;
        }
        let listening: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, conn)| conn.speaks(EXTENSION_SCOPE))
            .map(|(id, _)| *id)
            .collect();
        for connection in listening {
            self.scope_requested(connection, None, false);
        }
    }

    pub(super) fn scope_listed(
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
        let mut page: Vec<ScopeEntry> = Vec::new();
        let mut page_bytes = 0usize;
        for entry in entries {
            let bytes = entry.document.as_ref().map_or(0, Vec::len);
            let full = page.len() >= SCOPE_ENTRIES_PER_PAGE_MAX
                || (page_bytes > 0
                    && page_bytes.saturating_add(bytes) > SCOPE_PAGE_DOCUMENT_BYTES_MAX);
            if full {
                pages.push(std::mem::take(&mut page));
                page_bytes = 0;
            }
            page_bytes = page_bytes.saturating_add(bytes);
            page.push(entry);
        }
        if !page.is_empty() {
            pages.push(page);
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

    pub(super) fn scope_received(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        cursor: u64,
        entries: Vec<ScopeEntry>,
        removed: Vec<DocumentId>,
        complete: bool,
    ) {
        let mut behind = Vec::new();
        let mut listed = Vec::new();
        for entry in entries {
            let relay_heads: Vec<ChangeHash> =
                entry.heads.iter().map(|head| ChangeHash(*head)).collect();
            let local = self.index.get(&entry.document_id);
            let up_to_date =
                local.is_some_and(|local| same_heads(&local.local_heads, &relay_heads));
            let carried = entry
                .document
                .filter(|bytes| bytes.len() <= SCOPE_DOCUMENT_BYTES_MAX);
            if !up_to_date && let Some(bytes) = carried {
                listed.push((entry.document_id, bytes, relay_heads));
            } else if up_to_date {
                // Stored, not only remembered: the relay may never send this document again
                // (it has nothing new), so this listing is the acknowledgement a "synced"
                // badge and the next start rely on.
                let changed = self
                    .index
                    .get(&entry.document_id)
                    .is_some_and(|local| !same_heads(&local.relay_heads, &relay_heads));
                if changed {
                    if let Some(local) = self.index.get_mut(&entry.document_id) {
                        local.relay_heads.clone_from(&relay_heads);
                    }
                    self.reindex(entry.document_id);
                    let op = self.next_op();
                    self.pending_ops.insert(op, PendingOp::Bookkeeping);
                    self.effects.push(Effect::Storage {
                        id: op,
                        op: StorageOp::PutRelayHeads {
                            document: entry.document_id,
                            heads: relay_heads,
                        },
                    });
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
            progress
                .outstanding
                .extend(listed.iter().map(|(document, _, _)| *document));
        }
        for document in behind {
            self.begin_sync(now_ms, connection, document);
        }
        for (document, bytes, heads) in listed {
            self.receive_listed(now_ms, connection, document, bytes, heads);
        }
        self.scope_check_finished(connection);
    }

    /// A document that came with the listing: stored like changes a relay sent, once the
    /// document is loaded (the device may hold an older copy).
    fn receive_listed(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        document: DocumentId,
        bytes: Vec<u8>,
        heads: Vec<ChangeHash>,
    ) {
        if !self.ensure_document(now_ms, document) {
            return;
        }
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        if !state.is_ready() || !state.waiting.is_empty() {
            state.waiting.push_back(Waiting::Listed {
                connection,
                bytes,
                heads,
            });
            return;
        }
        self.apply_listed(now_ms, connection, document, &bytes, heads);
    }

    /// Judges and stores the changes of a listed document that the device lacks. When they
    /// are durable, `drive` records the relay as holding them (`PendingWrite::listed`), so
    /// no sync exchange follows. Anything unexpected (unreadable bytes, a refusal, a
    /// device ahead of the listing) falls back to syncing the document the usual way.
    pub(super) fn apply_listed(
        &mut self,
        now_ms: u64,
        connection: ConnectionId,
        document: DocumentId,
        bytes: &[u8],
        heads: Vec<ChangeHash>,
    ) {
        let Some(conn) = self.connections.get(&connection) else {
            return;
        };
        let principal = conn.principal.clone();
        let Some(state) = self.documents.get_mut(&document) else {
            return;
        };
        if state.has_pending_write() {
            // Changes join the document only when all of it is durable (see `DocState::doc`).
            state.waiting.push_back(Waiting::Listed {
                connection,
                bytes: bytes.to_vec(),
                heads,
            });
            return;
        }
        let found = new_changes(&state.doc, &[bytes]);
        let judged = found.and_then(|found| {
            if found.applicable.is_empty() || !found.orphans.is_empty() {
                return Ok(None);
            }
            self.take_changes(Some(connection), &principal, document, found.applicable)
                .map(Some)
        });
        let Ok(Some(accepted)) = judged else {
            self.begin_sync(now_ms, connection, document);
            return;
        };
        let write = self.write_accepted(document, accepted, Some((connection, heads)));
        if let Some(state) = self.documents.get_mut(&document) {
            state.pipeline.push_back(Step {
                write,
                receive: None,
            });
        }
        self.drive(now_ms, document);
    }

    pub(super) fn scope_document_done(&mut self, connection: ConnectionId, document: DocumentId) {
        if let Some(progress) = self
            .connections
            .get_mut(&connection)
            .and_then(|conn| conn.scope.as_mut())
        {
            progress.outstanding.remove(&document);
        }
        self.scope_check_finished(connection);
    }

    pub(super) fn scope_check_finished(&mut self, connection: ConnectionId) {
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
}
