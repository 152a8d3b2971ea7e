//! [`Device`]: a native caresync device for tests and benchmarks.
//!
//! It is core's engine in [`Role::Device`] with a [`TrustingPolicy`], its storage carried
//! out at once by a [`MemoryStore`] (so a device keeps its records while offline and across
//! [`Device::restart`]), and one tokio task per WebSocket connection that carries binary
//! frames both ways and gives the engine the time every [`TICK`]. Every event runs under
//! one lock and is followed by carrying out every effect it queued, so the engine sees the
//! same order of events a phone's driver would give it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, AutomergeError, ChangeHash};
use caresync_core::domain::Record;
use caresync_core::protocol::{DocumentId, Message, PeerId};
use caresync_core::sync::{
    ConnectionId, Effect, MemoryStore, Notification, Repo, RepoConfig, Role, TrustingPolicy,
};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How often a connected device gives the engine the time (handshake timeouts, eviction).
pub const TICK: Duration = Duration::from_millis(100);
/// How long [`Device::connect`] waits for the socket and then for the `peer` answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Device::disconnect`] lets a connection task send its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames a connection writes to its socket together at most.
const FRAMES_PER_WRITE_MAX: u64 = 64;
/// Frames already received that a connection takes in under one lock at most.
const FRAMES_PER_READ_MAX: usize = 64;
/// What each socket's read buffer starts at; a larger frame grows it as it arrives.
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// How long [`Device::change`] waits for a document it has to load or ask the relay for.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Frames and payload bytes that crossed this device's sockets (WebSocket framing not
/// counted): what a benchmark compares between implementations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub frames_received: u64,
    pub bytes_received: u64,
}

/// The relay refused this device's changes to a document (the `refused` extension).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub document: DocumentId,
    pub code: String,
    pub message: String,
}

/// A native device. Cheap to share by reference; every method takes `&self`.
pub struct Device {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    /// Print every frame (decoded) on stderr: set `CARESYNC_DEVICE_TRACE` to follow a test.
    trace: bool,
    state: Mutex<State>,
    /// Woken after every event, for [`Device::wait_until`].
    changed: Notify,
}

struct State {
    config: RepoConfig,
    repo: Repo<TrustingPolicy>,
    store: MemoryStore,
    connections: BTreeMap<ConnectionId, Connection>,
    /// Connections whose handshake completed.
    ready: BTreeSet<ConnectionId>,
    next_connection: u64,
    notifications: Vec<Notification>,
    /// Why each connection ended, oldest first.
    closes: Vec<String>,
    traffic: Traffic,
}

struct Connection {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    task: Option<JoinHandle<()>>,
}

enum Outgoing {
    Frame(Vec<u8>),
    /// Send a close frame after everything queued before it, then end the task.
    Close,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl Device {
    /// A device that offers caresync's extensions (`scope`, `refused`) in `join`.
    pub fn new(name: &str) -> Device {
        Device::with_config(name, |_| {})
    }

    /// A device that speaks plain automerge-repo, like the JavaScript client.
    pub fn plain(name: &str) -> Device {
        Device::with_config(name, |config| config.extensions.clear())
    }

    /// A device whose engine configuration `adjust` may change (peer id, extensions).
    pub fn with_config(name: &str, adjust: impl FnOnce(&mut RepoConfig)) -> Device {
        // A random suffix keeps devices of different tests apart on a shared relay, which
        // replaces an older connection that joins with the same peer id.
        let suffix: String = random_bytes()
            .iter()
            .take(4)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let mut config = RepoConfig::new(
            PeerId::from(format!("{name}-{suffix}")),
            Role::Device,
            ActorId::random(),
        );
        adjust(&mut config);
        let repo = Repo::new(config.clone(), TrustingPolicy);
        Device {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                trace: std::env::var_os("CARESYNC_DEVICE_TRACE").is_some(),
                state: Mutex::new(State {
                    config,
                    repo,
                    store: MemoryStore::default(),
                    connections: BTreeMap::new(),
                    ready: BTreeSet::new(),
                    next_connection: 0,
                    notifications: Vec::new(),
                    closes: Vec::new(),
                    traffic: Traffic::default(),
                }),
                changed: Notify::new(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn peer_id(&self) -> PeerId {
        self.shared.lock().config.peer_id.clone()
    }

    // ----- connections ---------------------------------------------------------------

    /// Opens a WebSocket to `ws_url` (which may carry `?token=`) and waits for the
    /// handshake. Fails if the socket cannot be opened (an HTTP refusal of the upgrade
    /// included) or closes before the relay's `peer` answer.
    pub async fn connect(&self, ws_url: &str) -> anyhow::Result<ConnectionId> {
        // Without Nagle's algorithm, as a browser's WebSocket: with it, a frame written while
        // the last is unacknowledged waits up to 40 ms for the relay's delayed ACK.
        // A read buffer of 8 KiB, as the relay's: the library's 128 KiB default is zeroed
        // before every read, which was a twentieth of the benchmark's load devices' time.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let opening = tokio_tungstenite::connect_async_with_config(ws_url, Some(config), true);
        let (socket, _response) = tokio::time::timeout(CONNECT_TIMEOUT, opening)
            .await
            .map_err(|_| anyhow!("{}: opening {ws_url} timed out", self.shared.name))?
            .with_context(|| format!("{}: cannot open {ws_url}", self.shared.name))?;
        let (outgoing, receiver) = mpsc::unbounded_channel();
        let connection = self.shared.event(|state, now_ms| {
            let connection = ConnectionId(state.next_connection);
            state.next_connection += 1;
            state.connections.insert(
                connection,
                Connection {
                    outgoing,
                    task: None,
                },
            );
            state.repo.connection_opened(now_ms, connection, ());
            connection
        });
        let task = tokio::spawn(run_connection(
            Arc::clone(&self.shared),
            connection,
            socket,
            receiver,
        ));
        if let Some(entry) = self.shared.lock().connections.get_mut(&connection) {
            entry.task = Some(task);
        }
        self.wait_until(CONNECT_TIMEOUT, |device| {
            let state = device.shared.lock();
            state.ready.contains(&connection) || !state.connections.contains_key(&connection)
        })
        .await?;
        let state = self.shared.lock();
        if state.ready.contains(&connection) {
            Ok(connection)
        } else {
            Err(anyhow!(
                "{}: the connection to {ws_url} ended during the handshake: {}",
                self.shared.name,
                state.closes.last().map_or("no reason", String::as_str)
            ))
        }
    }

    /// Closes every connection (with a close frame) and waits for their tasks to end.
    pub async fn disconnect(&self) {
        let mut closing: Vec<(ConnectionId, Option<JoinHandle<()>>)> = {
            let mut state = self.shared.lock();
            state
                .connections
                .iter_mut()
                .map(|(id, connection)| {
                    let _ = connection.outgoing.send(Outgoing::Close);
                    (*id, connection.task.take())
                })
                .collect()
        };
        for (_, task) in &mut closing {
            if let Some(task) = task
                && tokio::time::timeout(CLOSE_TIMEOUT, &mut *task)
                    .await
                    .is_err()
            {
                task.abort();
            }
        }
        // A task that was aborted did not clean up after itself.
        self.shared.event(|state, _| {
            for (connection, _) in &closing {
                state.forget_connection(*connection, "closed by this device");
            }
        });
    }

    /// Connections open now (handshake done or not).
    pub fn connection_count(&self) -> usize {
        self.shared.lock().connections.len()
    }

    /// True while at least one connection has completed its handshake.
    pub fn is_connected(&self) -> bool {
        !self.shared.lock().ready.is_empty()
    }

    /// A phone app restarting: every connection closes and a new engine starts over the
    /// same storage, learning from it what the relay has not acknowledged yet.
    pub async fn restart(&self) {
        self.disconnect().await;
        self.shared.event(|state, _| {
            let mut config = state.config.clone();
            config.scope_cursor = state.store.scope_cursor;
            let mut repo = Repo::new(config, TrustingPolicy);
            repo.restore_index(state.store.index_entries());
            state.repo = repo;
        });
    }

    // ----- records -------------------------------------------------------------------

    /// Creates a document holding `record`; it is pushed to connected relays at once and to
    /// others when the device connects.
    pub fn create(&self, record: &Record) -> anyhow::Result<DocumentId> {
        let document = DocumentId::random_from(random_bytes());
        self.shared.event(|state, now_ms| {
            state
                .repo
                .create(now_ms, document)
                .context("creating the document")?;
            state.save(now_ms, document, record)
        })?;
        Ok(document)
    }

    /// Loads the record, lets `edit` change it and saves what changed (`Record::save`
    /// touches only changed fields). Loads the document first if needed, asking the relay
    /// when this device does not hold it.
    pub async fn change(
        &self,
        document: &DocumentId,
        edit: impl FnOnce(&mut Record),
    ) -> anyhow::Result<()> {
        self.load(document).await?;
        self.shared.event(|state, now_ms| {
            let latest = state
                .repo
                .latest(document)
                .ok_or_else(|| anyhow!("document {document} left memory"))?;
            let mut record = Record::load(latest)
                .with_context(|| format!("document {document} is not a record"))?;
            edit(&mut record);
            state.save(now_ms, *document, &record)
        })
    }

    /// Puts one string field at the document's root as one local change, without reading
    /// the record first. The change on the wire is the one [`Device::change`] makes for
    /// the same edit (`Record::save` writes only the field that differs); the benchmark's
    /// load devices use this so that the load generator, which shares the machine with the
    /// relay under test, spends less of it on hydrating and reconciling records.
    pub async fn put_root_string(
        &self,
        document: &DocumentId,
        key: &str,
        value: &str,
    ) -> anyhow::Result<()> {
        self.load(document).await?;
        self.shared.event(|state, now_ms| {
            state
                .repo
                .change(now_ms, *document, |transaction| {
                    transaction.put(automerge::ROOT, key, value)
                })
                .map_err(|error| anyhow!("the change could not be made: {error}"))
        })
    }

    /// Asks connected relays for a document by id (and loads it if stored here). The
    /// answer shows in [`Device::record`] or [`Device::unavailable`].
    pub fn open(&self, document: &DocumentId) {
        self.shared
            .event(|state, now_ms| state.repo.open(now_ms, *document));
    }

    /// The record as this device holds it (including changes still being written), or
    /// `None` if it holds no such document or it is not a readable record.
    pub fn record(&self, document: &DocumentId) -> Option<Record> {
        self.with_document(document, |doc| Record::load(doc).ok())
            .flatten()
    }

    /// A copy of the automerge document, for fields outside the record schema.
    pub fn document(&self, document: &DocumentId) -> Option<Automerge> {
        self.with_document(document, Automerge::clone)
    }

    /// The heads this device holds of a document (empty if none).
    pub fn heads(&self, document: &DocumentId) -> Vec<ChangeHash> {
        self.with_document(document, Automerge::get_heads)
            .unwrap_or_default()
    }

    /// True once a relay has acknowledged every change this device holds of the document.
    pub fn is_synced(&self, document: &DocumentId) -> bool {
        let state = self.shared.lock();
        state.store.documents.get(document).is_some_and(|stored| {
            let ours: BTreeSet<&ChangeHash> = stored.heads.iter().collect();
            let relay: BTreeSet<&ChangeHash> = stored.relay_heads.iter().collect();
            !ours.is_empty() && ours == relay
        })
    }

    /// The documents this device has stored.
    pub fn documents(&self) -> Vec<DocumentId> {
        self.shared.lock().store.documents.keys().copied().collect()
    }

    // ----- what happened -------------------------------------------------------------

    /// Everything the engine told the application, oldest first.
    pub fn notifications(&self) -> Vec<Notification> {
        self.shared.lock().notifications.clone()
    }

    /// The refusals the relay sent (each also returned the document to the relay's state).
    pub fn refusals(&self) -> Vec<Refused> {
        self.shared
            .lock()
            .notifications
            .iter()
            .filter_map(|notification| match notification {
                Notification::ChangesRefused {
                    document,
                    code,
                    message,
                    ..
                } => Some(Refused {
                    document: *document,
                    code: code.clone(),
                    message: message.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The documents a relay said it does not have or will not give.
    pub fn unavailable(&self) -> Vec<DocumentId> {
        self.shared
            .lock()
            .notifications
            .iter()
            .filter_map(|notification| match notification {
                Notification::DocumentUnavailable { document } => Some(*document),
                _ => None,
            })
            .collect()
    }

    /// Why each connection ended, oldest first (the relay's close frame, an engine
    /// decision, a broken socket).
    pub fn closes(&self) -> Vec<String> {
        self.shared.lock().closes.clone()
    }

    pub fn traffic(&self) -> Traffic {
        self.shared.lock().traffic
    }

    pub fn reset_traffic(&self) {
        self.shared.lock().traffic = Traffic::default();
    }

    /// Waits until `condition` holds, checking after every event on this device. Fails
    /// after `timeout`, listing what the device was told, to explain the failure.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Device) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            // Registered before checking, so an event between the check and the wait
            // still wakes us.
            changed.as_mut().enable();
            if condition(self) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                if condition(self) {
                    return Ok(());
                }
                let state = self.shared.lock();
                bail!(
                    "{}: condition not met within {timeout:?}; connections: {}, closes: {:?}, last notifications: {:?}",
                    self.shared.name,
                    state.connections.len(),
                    state.closes,
                    state.notifications.iter().rev().take(8).collect::<Vec<_>>()
                );
            }
        }
    }

    // ----- helpers -------------------------------------------------------------------

    /// Runs `read` on the document in memory, or on the stored copy if the engine evicted
    /// it.
    fn with_document<T>(
        &self,
        document: &DocumentId,
        read: impl FnOnce(&Automerge) -> T,
    ) -> Option<T> {
        let state = self.shared.lock();
        if let Some(doc) = state.repo.latest(document) {
            return Some(read(doc));
        }
        // Storage completes at once here, so the stored copy is the latest state.
        let stored = state.store.materialise(document).ok().flatten()?;
        Some(read(&stored))
    }

    /// Loads a document into the engine, asking the relay if this device lacks it.
    async fn load(&self, document: &DocumentId) -> anyhow::Result<()> {
        let already = self.shared.lock().repo.latest(document).is_some();
        if already {
            return Ok(());
        }
        let unavailable_before = self.unavailable().len();
        self.open(document);
        self.wait_until(LOAD_TIMEOUT, |device| {
            device.shared.lock().repo.latest(document).is_some()
                || device.unavailable().len() > unavailable_before
        })
        .await?;
        if self.shared.lock().repo.latest(document).is_some() {
            Ok(())
        } else {
            Err(anyhow!(
                "{}: document {document} is unavailable",
                self.shared.name
            ))
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // The tasks hold the shared state; without this they would outlive the device.
        let state = self.shared.lock();
        for connection in state.connections.values() {
            if let Some(task) = &connection.task {
                task.abort();
            }
        }
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Device")
            .field("name", &self.shared.name)
            .field("peer_id", &state.config.peer_id)
            .field("connections", &state.connections.len())
            .field("documents", &state.store.documents.len())
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a failing test already; keep the state usable
        // so that the failure message can still be built from it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn trace(&self, direction: &str, frame: &[u8]) {
        if self.trace {
            match Message::decode(frame) {
                Ok(message) => eprintln!("{} {direction} {message:?}", self.name),
                Err(error) => eprintln!("{} {direction} undecodable frame: {error}", self.name),
            }
        }
    }

    /// Runs one engine event, carries out every effect it caused, and wakes waiters.
    fn event<T>(&self, f: impl FnOnce(&mut State, u64) -> T) -> T {
        self.events(|state, now_ms| {
            let result = f(state, now_ms);
            state.carry_out_effects();
            result
        })
    }

    /// Runs `f`, which gives the engine events and carries out their effects, under one
    /// lock, then wakes waiters once.
    fn events<T>(&self, f: impl FnOnce(&mut State, u64) -> T) -> T {
        let result = f(&mut self.lock(), now_ms());
        self.changed.notify_waiters();
        result
    }
}

impl State {
    fn carry_out_effects(&mut self) {
        loop {
            let effects = self.repo.take_effects();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                match effect {
                    Effect::Send { connection, frame } => {
                        if let Some(entry) = self.connections.get(&connection) {
                            let _ = entry.outgoing.send(Outgoing::Frame(frame));
                        }
                    }
                    Effect::Close { connection, reason } => {
                        if let Some(entry) = self.connections.get(&connection) {
                            let _ = entry.outgoing.send(Outgoing::Close);
                        }
                        self.closes
                            .push(format!("closed by the engine: {reason:?}"));
                    }
                    Effect::Storage { id, op } => {
                        let completion = self.store.execute(id, &op);
                        self.repo.storage_completed(now_ms(), completion);
                    }
                    Effect::Notify(notification) => {
                        if let Notification::PeerReady { connection } = &notification {
                            self.ready.insert(*connection);
                        }
                        self.notifications.push(notification);
                    }
                    // Only a relay audits; a device's engine never asks.
                    Effect::Audit(_) => {}
                }
            }
        }
    }

    /// Saves `record` into a loaded document as one local change.
    fn save(&mut self, now_ms: u64, document: DocumentId, record: &Record) -> anyhow::Result<()> {
        let mut failure = None;
        self.repo
            .change(now_ms, document, |transaction| {
                record.save(transaction).map_err(|error| {
                    failure = Some(error);
                    AutomergeError::Fail
                })
            })
            .map_err(|error| match failure {
                Some(failure) => anyhow!("the record could not be saved: {failure}"),
                None => anyhow!("the change could not be made: {error}"),
            })
    }

    fn forget_connection(&mut self, connection: ConnectionId, why: &str) {
        if self.connections.remove(&connection).is_some() {
            self.closes.push(why.to_owned());
        }
        self.ready.remove(&connection);
        self.repo.connection_closed(connection);
    }
}

/// Carries frames between one WebSocket and the engine until either side closes.
async fn run_connection(
    shared: Arc<Shared>,
    connection: ConnectionId,
    socket: Socket,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) {
    let (mut sink, mut stream) = socket.split();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let why = loop {
        tokio::select! {
            queued = outgoing.recv() => match queued {
                Some(Outgoing::Frame(frame)) => {
                    // The frames queued behind this one go in the same write, as the
                    // relay writes them (one system call rather than one each).
                    let mut next = Some(frame);
                    let mut closing = false;
                    let (mut frames, mut bytes) = (0u64, 0u64);
                    let mut fed = Ok(());
                    while let Some(frame) = next.take() {
                        shared.trace("->", &frame);
                        frames += 1;
                        bytes += frame.len() as u64;
                        fed = sink.feed(WsMessage::Binary(frame.into())).await;
                        if fed.is_err() || frames >= FRAMES_PER_WRITE_MAX {
                            break;
                        }
                        match outgoing.try_recv() {
                            Ok(Outgoing::Frame(frame)) => next = Some(frame),
                            Ok(Outgoing::Close) => closing = true,
                            Err(_) => {}
                        }
                    }
                    if let Err(error) = fed.and(sink.flush().await) {
                        break format!("sending failed: {error}");
                    }
                    {
                        let mut state = shared.lock();
                        state.traffic.frames_sent += frames;
                        state.traffic.bytes_sent += bytes;
                    }
                    if closing {
                        let _ = sink.close().await;
                        break "closed by this device".to_owned();
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = sink.close().await;
                    break "closed by this device".to_owned();
                }
            },
            received = stream.next() => {
                // The frames that arrived with this one are taken in under the same lock,
                // one engine event each, and waiters are woken once: the answers they
                // cause then leave in one write, as the relay's do.
                let mut frames = Vec::new();
                let mut next = Some(received);
                let mut ended = None;
                while let Some(received) = next.take() {
                    match received {
                        Some(Ok(WsMessage::Binary(frame))) => frames.push(frame),
                        // Pings are answered by tungstenite itself; the protocol has no
                        // text frames.
                        Some(Ok(WsMessage::Close(frame))) => {
                            ended = Some(match frame {
                                Some(frame) => format!("closed by the server: {} {}", frame.code, frame.reason),
                                None => "closed by the server".to_owned(),
                            });
                        }
                        Some(Ok(_)) => {}
                        Some(Err(error)) => ended = Some(format!("the socket failed: {error}")),
                        None => ended = Some("the server went away".to_owned()),
                    }
                    if ended.is_none() && frames.len() < FRAMES_PER_READ_MAX {
                        next = stream.next().now_or_never();
                    }
                }
                if !frames.is_empty() {
                    shared.events(|state, now_ms| {
                        for frame in &frames {
                            shared.trace("<-", frame);
                            state.traffic.frames_received += 1;
                            state.traffic.bytes_received += frame.len() as u64;
                            state.repo.frame_received(now_ms, connection, frame);
                            state.carry_out_effects();
                        }
                    });
                }
                if let Some(why) = ended {
                    break why;
                }
            }
            _ = ticker.tick() => shared.event(|state, now_ms| state.repo.tick(now_ms)),
        }
    };
    shared.event(|state, _| state.forget_connection(connection, &why));
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// 16 random bytes: automerge's random actor id is a version 4 UUID.
fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    for (byte, random) in bytes.iter_mut().zip(ActorId::random().to_bytes()) {
        *byte = *random;
    }
    bytes
}
