//! A device returning a document to the relay's state after the relay refused its changes.

use super::*;

impl<P: Policy> Repo<P> {
    pub(super) fn refused_received(
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
        let refused_copy = state.doc.save();
        let known: Vec<ChangeHash> = relay_heads
            .iter()
            .map(|head| ChangeHash(*head))
            .filter(|head| holds(&state.doc, head))
            .collect();
        // Keep only what the relay accepted. A head we do not have yet arrives with the
        // next sync, which starts from the state kept here.
        let reset = if known.is_empty() {
            Ok(Automerge::new().with_actor(self.config.actor.clone()))
        } else {
            state
                .doc
                .fork_at(&known)
                .map(|doc| doc.with_actor(self.config.actor.clone()))
        };
        let Ok(reset) = reset else {
            return;
        };
        let snapshot = reset.save();
        state.doc = reset;
        state.stored_rows.clear();
        let heads = state.doc.get_heads();
        state.durable_heads.clone_from(&heads);
        let op = self.next_op();
        self.pending_ops.insert(op, PendingOp::Replace(document));
        self.effects.push(Effect::Storage {
            id: op,
            op: StorageOp::Replace { document, snapshot },
        });
        let entry = self.index.entry(document).or_default();
        entry.local_heads.clone_from(&heads);
        entry.relay_heads = heads;
        self.reindex(document);
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
            peer.sync_mut().needs_reset = true;
        }
    }
}
