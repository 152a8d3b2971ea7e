//! The connections a document was last found closed to, so that announcing a change does
//! not ask the policy again about every connection.
//!
//! A relay announces every commit to each connection that is not following the document yet
//! and may see it (`Repo::announce`). With 200 phones each writing its own village's
//! records, that asked the policy about 200 connections per change, nearly always getting
//! "no": 9% of the relay's time under load. The answer depends on the connection's account,
//! the document's id and recorded metadata, and the rules. So the "no"s are kept per
//! document with the metadata and the repo's access generation they were found under, and
//! they are forgotten when either changes. The generation moves whenever the rules may have
//! changed or a connection closed (a driver may reuse a closed connection's id).

use crate::domain::DocumentMeta;

use super::ConnectionId;

/// Connections the policy gave no access to a document, in ascending order.
#[derive(Debug, Default)]
pub(crate) struct NoAccess {
    judged_under: Option<(DocumentMeta, u64)>,
    connections: Vec<ConnectionId>,
}

impl NoAccess {
    /// The connections found closed to the document under `meta` and `generation`; empty
    /// when what was kept was found under anything else.
    pub(crate) fn take_under(&mut self, meta: &DocumentMeta, generation: u64) -> Vec<ConnectionId> {
        let current = self
            .judged_under
            .as_ref()
            .is_some_and(|(kept_meta, kept_generation)| {
                *kept_generation == generation && kept_meta == meta
            });
        let connections = std::mem::take(&mut self.connections);
        if current { connections } else { Vec::new() }
    }

    /// Keeps `connections` (ascending) as the ones closed to the document under `meta` and
    /// `generation`.
    pub(crate) fn keep(
        &mut self,
        meta: DocumentMeta,
        generation: u64,
        connections: Vec<ConnectionId>,
    ) {
        self.judged_under = Some((meta, generation));
        self.connections = connections;
    }
}
