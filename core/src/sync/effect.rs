//! What the engine asks its driver to do.

use automerge::ChangeHash;

use super::storage::{StorageOp, StorageOpId};
use super::{ConnectionId, Refusal};
use crate::protocol::DocumentId;

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send one binary frame on a connection.
    Send {
        connection: ConnectionId,
        frame: Vec<u8>,
    },
    /// Close a connection after sending what was queued before this effect.
    Close {
        connection: ConnectionId,
        reason: CloseReason,
    },
    /// Do a storage request and report its completion with the same id.
    Storage { id: StorageOpId, op: StorageOp },
    /// Tell the application something it may show.
    Notify(Notification),
    /// Record an event in the audit log (refused changes, denied reads).
    Audit(AuditEvent),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer broke the protocol (bad frame, message before `join`, ...).
    Protocol(String),
    /// No common protocol version.
    UnsupportedVersion,
    /// The peer exceeded a limit.
    LimitExceeded(&'static str),
    /// A plain automerge-repo peer sent changes the relay refused.
    Refused(String),
    /// Handshake took too long.
    HandshakeTimeout,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Notification {
    /// The handshake with the other side completed.
    PeerReady { connection: ConnectionId },
    /// A document's durable state changed (locally or from a peer).
    DocumentChanged {
        document: DocumentId,
        heads: Vec<ChangeHash>,
    },
    /// A local change is stored on this device.
    LocalChangeSaved {
        document: DocumentId,
        heads: Vec<ChangeHash>,
    },
    /// The other side says it has this document at these heads (for "synced" badges).
    PeerHeads {
        connection: ConnectionId,
        document: DocumentId,
        heads: Vec<ChangeHash>,
    },
    /// The other side does not have (or will not give) the document.
    DocumentUnavailable { document: DocumentId },
    /// The relay refused our changes; the document was returned to the relay's state and
    /// `refused_copy` holds the whole document as it was before, for the user to read.
    ChangesRefused {
        document: DocumentId,
        code: String,
        message: String,
        refused_copy: Vec<u8>,
    },
    /// A storage request failed; the changes involved are not durable and were dropped
    /// from memory, so the document is back at its last durable state.
    StorageFailed {
        document: Option<DocumentId>,
        reason: String,
    },
    /// Durable changes could not be applied in memory (a bug or a damaged store); the
    /// document keeps what it could apply.
    DocumentError {
        document: DocumentId,
        detail: String,
    },
    /// Every document listed by the relay's scope answer is in sync.
    ScopeSynced { connection: ConnectionId },
}

#[derive(Clone, Debug, PartialEq)]
pub enum AuditEvent {
    ChangeRefused {
        connection: ConnectionId,
        document: DocumentId,
        refusal: Refusal,
    },
    ReadDenied {
        connection: ConnectionId,
        document: DocumentId,
    },
    ProtocolViolation {
        connection: ConnectionId,
        detail: String,
    },
}
