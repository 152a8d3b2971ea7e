//! What flows into the engine thread and out to each connection's socket.

use caresync_core::domain::Account;
use caresync_core::sync::{ConnectionId, StorageCompletion};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::review::ReviewRequest;

/// An event for the engine thread. Everything that changes the engine's state arrives
/// through this one queue, in order, so the engine needs no locks.
#[derive(Debug)]
pub enum EngineEvent {
    /// A WebSocket connection authenticated as `account` opened.
    Opened {
        connection: ConnectionId,
        account: Box<Account>,
        outbox: mpsc::Sender<Outgoing>,
    },
    /// One binary frame from a connection. `room` holds the frame's bytes in the engine's
    /// queue budget (`ENGINE_QUEUE_BYTES_MAX`) until the engine drops it, handled.
    Frame {
        connection: ConnectionId,
        frame: Vec<u8>,
        room: Option<OwnedSemaphorePermit>,
    },
    /// The socket closed (either side).
    Closed { connection: ConnectionId },
    /// The storage thread finished requests; `changes_stored` counts rows inserted.
    Stored {
        completions: Vec<StorageCompletion>,
        changes_stored: u64,
    },
    /// The clock advanced: handshake timeouts and eviction run.
    Tick,
    /// A township reviewer approves or returns a record through the HTTP API.
    Review(Box<ReviewRequest>),
    /// The org units changed in the database (added from the command line while serving).
    OrgTree(Box<caresync_core::domain::OrgTree>),
    /// Stop: no new connections; finish what storage has in flight.
    Shutdown,
}

/// What the engine hands to one connection's task.
#[derive(Debug)]
pub enum Outgoing {
    Frame(Vec<u8>),
    Close { code: u16, reason: String },
}
