//! What every HTTP handler and WebSocket task shares.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use caresync_core::domain::OrgTree;
use caresync_core::sync::ConnectionId;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::auth::password_checker::PasswordChecker;
use crate::auth::rate_limit::AddressLimiter;
use crate::auth::throttle::LoginThrottle;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::relay::EngineEvent;

/// Settings of a running relay that handlers consult.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a session token lives.
    pub session_ttl_ms: u64,
    /// Origins besides the relay's own allowed to open `/sync` from a browser.
    pub allowed_origins: Vec<String>,
    /// A sync connection silent for this long is closed.
    pub idle_timeout_ms: u64,
    /// Frame bytes from all connections that may wait for the engine thread.
    pub engine_queue_bytes_max: usize,
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub engine: mpsc::UnboundedSender<EngineEvent>,
    pub metrics: Arc<Metrics>,
    pub throttle: Arc<LoginThrottle>,
    pub limiter: Arc<AddressLimiter>,
    pub passwords: Arc<PasswordChecker>,
    pub settings: Arc<Settings>,
    /// The org tree as last read from the database (see `serve::watch_org_tree`).
    tree: Arc<RwLock<Arc<OrgTree>>>,
    /// Becomes true when the relay starts shutting down.
    pub shutdown: watch::Receiver<bool>,
    pub sockets: Arc<SocketCounter>,
    /// Room in the engine's queue, in bytes (`Settings::engine_queue_bytes_max`): a frame
    /// holds its size in permits until the engine has handled it.
    pub engine_room: Arc<Semaphore>,
    next_connection: Arc<AtomicU64>,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        engine: mpsc::UnboundedSender<EngineEvent>,
        metrics: Arc<Metrics>,
        settings: Settings,
        tree: OrgTree,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        AppState {
            db,
            engine,
            metrics,
            throttle: Arc::new(LoginThrottle::default()),
            limiter: Arc::new(AddressLimiter::default()),
            passwords: Arc::new(PasswordChecker::default()),
            engine_room: Arc::new(Semaphore::new(
                settings
                    .engine_queue_bytes_max
                    .clamp(1, Semaphore::MAX_PERMITS),
            )),
            settings: Arc::new(settings),
            tree: Arc::new(RwLock::new(Arc::new(tree))),
            shutdown,
            sockets: Arc::new(SocketCounter::default()),
            next_connection: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The current org tree.
    pub fn tree(&self) -> Arc<OrgTree> {
        self.tree
            .read()
            .map(|tree| Arc::clone(&tree))
            .unwrap_or_else(|poisoned| Arc::clone(&poisoned.into_inner()))
    }

    pub fn set_tree(&self, tree: OrgTree) {
        match self.tree.write() {
            Ok(mut current) => *current = Arc::new(tree),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(tree),
        }
    }

    pub fn next_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed))
    }
}

/// Open WebSocket tasks, so that shutdown can wait for them to say goodbye.
#[derive(Debug, Default)]
pub struct SocketCounter {
    open: AtomicUsize,
}

impl SocketCounter {
    pub fn opened(self: &Arc<Self>) -> SocketGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        SocketGuard(Arc::clone(self))
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// Counts a socket as open until dropped, even if its task panics.
#[derive(Debug)]
pub struct SocketGuard(Arc<SocketCounter>);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}
