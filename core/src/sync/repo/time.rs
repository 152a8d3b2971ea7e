//! What happens as time passes: handshake timeouts and eviction of idle documents.

use super::*;

impl<P: Policy> Repo<P> {
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

    pub(super) fn evict(&mut self, now_ms: u64) {
        let mut idle: Vec<(u64, DocumentId)> = self
            .documents
            .iter()
            .filter(|(_, state)| {
                state.is_idle()
                    && state
                        .peers
                        .values()
                        .all(|peer| peer.is_quiet(&state.durable_heads))
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
}
