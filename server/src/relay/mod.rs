//! The relay's sync side: an engine thread that owns core's `Repo`, a storage thread that
//! owns the SQLite writer, and one small task per WebSocket connection.
//!
//! ```text
//!  socket task ─frames─▶ ┌──────────────┐ ─jobs──────▶ storage thread ── SQLite (WAL, FULL)
//!  socket task ◀─frames─ │ engine thread│ ◀─completions─┘   (one transaction per round)
//!  HTTP review ─request▶ └──────────────┘
//! ```

pub mod close_codes;
mod connection;
mod engine;
mod events;
pub mod limits;
pub mod review;
mod storage_worker;
mod turns;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use automerge::ActorId;
use caresync_core::domain::OrgTree;
use caresync_core::protocol::PeerId;
use caresync_core::relay_policy::RelayPolicy;
use caresync_core::sync::{Repo, RepoConfig, Role};
use tokio::sync::mpsc;

pub use connection::run as serve_socket;
pub use events::{EngineEvent, Outgoing};
pub use storage_worker::scope_query;

use crate::metrics::Metrics;
use crate::store::DocumentStore;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot start a relay thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("cannot read random bytes: {0}")]
    Random(String),
}

/// The running engine and storage threads.
#[derive(Debug)]
pub struct Relay {
    pub events: mpsc::UnboundedSender<EngineEvent>,
    engine: JoinHandle<()>,
    storage: JoinHandle<()>,
}

impl Relay {
    pub fn start(db_path: &Path, tree: OrgTree, metrics: Arc<Metrics>) -> Result<Self, RelayError> {
        let store = DocumentStore::open(db_path)?;
        let (events, events_rx) = mpsc::unbounded_channel();
        let (jobs, jobs_rx) = std::sync::mpsc::channel();
        let storage_policy = RelayPolicy::new(tree.clone());
        let completions = events.clone();
        let storage = std::thread::Builder::new()
            .name("caresync-storage".to_owned())
            .spawn(move || storage_worker::run(store, storage_policy, jobs_rx, completions))?;

        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|error| RelayError::Random(error.to_string()))?;
        let peer_id = PeerId::from(format!("caresync-relay-{}", hex(&random[..6])));
        // A fresh actor per run: the relay's own changes (reviews) never share an actor
        // with an earlier run's, which automerge requires.
        let config = RepoConfig::new(peer_id, Role::Relay, ActorId::from(random.to_vec()));
        let repo = Repo::new(config, RelayPolicy::new(tree));
        let engine_state = engine::Engine::new(repo, jobs, metrics);
        let engine = std::thread::Builder::new()
            .name("caresync-engine".to_owned())
            .spawn(move || engine_state.run(events_rx))?;
        Ok(Relay {
            events,
            engine,
            storage,
        })
    }

    /// Asks the engine to stop and waits until storage has committed what was in flight.
    pub fn stop(self) {
        let _ = self.events.send(EngineEvent::Shutdown);
        drop(self.events);
        if self.engine.join().is_err() {
            tracing::error!("the engine thread panicked");
        }
        if self.storage.join().is_err() {
            tracing::error!("the storage thread panicked");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
