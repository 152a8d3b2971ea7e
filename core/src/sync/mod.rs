//! The sans-IO sync engine: the automerge-repo protocol run as a state machine.
//!
//! Drivers (the relay's tokio tasks, the browser's JavaScript glue, the simulation in the
//! test suite) feed it events — frames, storage completions, the time — and carry out the
//! [`Effect`]s it returns. See `ARCHITECTURE.md` for the data flow.

mod chunks;
mod document;
mod effect;
mod held;
mod incoming_changes;
pub mod limits;
mod memory_store;
mod no_access;
mod policy;
mod repo;
mod storage;

pub use effect::{AuditEvent, CloseReason, Effect, Notification};
pub use memory_store::{MemoryDocument, MemoryStore, MemoryStoreError};
pub use policy::{Access, Policy, Refusal, RefusalCode, TrustingPolicy};
pub use repo::{IndexEntry, LoadState, Repo, RepoConfig, Role};
pub use storage::{StorageCompletion, StorageOp, StorageOpId, StoredChange, StoredDocument};

/// Names one transport connection; chosen by the driver, unique while it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

/// Errors of the engine's direct calls (events never fail: they produce effects).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("document {0} is not loaded")]
    NotLoaded(crate::protocol::DocumentId),
    #[error("document {0} already exists")]
    AlreadyExists(crate::protocol::DocumentId),
    #[error("the change could not be made: {0}")]
    Change(String),
}
