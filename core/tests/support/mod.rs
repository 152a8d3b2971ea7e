//! The simulated world shared by the engine's tests: devices and a relay built from the
//! sans-IO engine, an in-memory network that keeps each direction in order, and core's
//! [`MemoryStore`] with the semantics the real drivers must have (rows keyed by hash,
//! compaction deleting exactly the covered rows); confirmed writes survive a crash here.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use caresync_core::sync::MemoryStore;

use automerge::{
    ActorId, Automerge, AutomergeError, ChangeHash, ROOT, ReadDoc, transaction::Transactable,
};
use caresync_core::domain::{DocumentMeta, read_meta};
use caresync_core::protocol::{DocumentId, PeerId, ScopeEntry};
use caresync_core::sync::{
    Access, AuditEvent, CloseReason, ConnectionId, Effect, Notification, Policy, Refusal,
    RefusalCode, Repo, RepoConfig, Role, StorageCompletion, StorageOp, StorageOpId, TrustingPolicy,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub const DEVICES: usize = 3;
pub const VILLAGES: [&str; 2] = ["370402001001", "370402001002"];
/// Random steps in each phase of a simulated history.
pub const STEPS: usize = 25;
pub const HEAL_STEPS_MAX: usize = 20_000;

/// The relay's rules in the simulation: a device sees and writes the documents of its own
/// village; a change that sets `forbidden` is refused, so the refusal path is exercised.
#[derive(Debug, Default)]
pub struct VillagePolicy;

impl Policy for VillagePolicy {
    type Principal = String;
    type Before = ();

    fn read_before(&self, _: &DocumentId, _: &Automerge) {}

    fn access(
        &self,
        principal: &String,
        _: &DocumentId,
        recorded: Option<&DocumentMeta>,
    ) -> Access {
        // `reader:<village>` may read that village's documents and write nothing.
        if let Some(village) = principal.strip_prefix("reader:") {
            return match recorded {
                Some(meta) if meta.owner.0 == village => Access::Read,
                _ => Access::None,
            };
        }
        match recorded {
            None => Access::Write,
            Some(meta) if meta.owner.0 == *principal => Access::Write,
            Some(_) => Access::None,
        }
    }

    fn check_change(
        &self,
        village: &String,
        _: &DocumentId,
        recorded: Option<&DocumentMeta>,
        (): (),
        after: &Automerge,
    ) -> Result<Option<DocumentMeta>, Refusal> {
        let meta = match recorded {
            Some(meta) => meta.clone(),
            None => read_meta(after).map_err(|error| Refusal {
                code: RefusalCode::Invalid,
                message: error.to_string(),
            })?,
        };
        if meta.owner.0 != *village {
            return Err(Refusal {
                code: RefusalCode::Forbidden,
                message: "another village".to_owned(),
            });
        }
        if after.get(ROOT, "forbidden").ok().flatten().is_some() {
            return Err(Refusal {
                code: RefusalCode::Invalid,
                message: "forbidden key".to_owned(),
            });
        }
        Ok(Some(meta))
    }
}

pub struct Node<P: Policy> {
    pub repo: Repo<P>,
    pub store: MemoryStore,
    /// Storage requests waiting for the driver, completed in order like a single writer.
    pub pending: VecDeque<(StorageOpId, StorageOp)>,
}

pub struct Device {
    pub node: Node<TrustingPolicy>,
    pub village: String,
    /// Whom the relay takes this device for; its village unless a test says otherwise.
    pub principal: String,
    /// Everything the engine told this device's application.
    pub notifications: Vec<Notification>,
    pub connection: Option<ConnectionId>,
    pub documents: BTreeSet<DocumentId>,
}

pub struct Link {
    pub device: usize,
    pub to_relay: VecDeque<Vec<u8>>,
    pub to_device: VecDeque<Vec<u8>>,
}

pub struct World {
    pub reboots: usize,
    pub evictions: usize,
    pub relay_audit: Vec<AuditEvent>,
    /// Changes a device saw acknowledged that a relay crash lost (must stay empty).
    pub lost_acknowledged: Vec<String>,
    /// Changes checked against the relay's disk at crashes, for the summary line.
    pub acknowledged_checked: usize,
    pub relay_closes: Vec<CloseReason>,
    pub rng: SmallRng,
    pub now_ms: u64,
    pub relay: Node<VillagePolicy>,
    pub devices: Vec<Device>,
    pub links: BTreeMap<ConnectionId, Link>,
    pub next_connection: u64,
    pub next_document: u64,
    pub seed: u64,
}

pub fn actor(seed: u64, index: u64) -> ActorId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..].copy_from_slice(&index.to_le_bytes());
    ActorId::from(bytes.to_vec())
}

impl World {
    pub fn new(seed: u64) -> World {
        let relay_config = RepoConfig::new(PeerId::from("relay"), Role::Relay, actor(seed, 999));
        let devices = (0..DEVICES)
            .map(|index| {
                let config = RepoConfig::new(
                    PeerId::from(format!("device-{index}").as_str()),
                    Role::Device,
                    actor(seed, index as u64),
                );
                Device {
                    node: Node {
                        repo: Repo::new(config, TrustingPolicy),
                        store: MemoryStore::default(),
                        pending: VecDeque::new(),
                    },
                    village: VILLAGES[index % VILLAGES.len()].to_owned(),
                    principal: VILLAGES[index % VILLAGES.len()].to_owned(),
                    notifications: Vec::new(),
                    connection: None,
                    documents: BTreeSet::new(),
                }
            })
            .collect();
        World {
            reboots: 0,
            evictions: 0,
            relay_audit: Vec::new(),
            lost_acknowledged: Vec::new(),
            acknowledged_checked: 0,
            relay_closes: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
            now_ms: 1_700_000_000_000,
            relay: Node {
                repo: Repo::new(relay_config, VillagePolicy),
                store: MemoryStore::default(),
                pending: VecDeque::new(),
            },
            devices,
            links: BTreeMap::new(),
            next_connection: 0,
            next_document: 0,
            seed,
        }
    }

    /// Makes a device speak plain automerge-repo, without caresync's extensions.
    pub fn make_plain(&mut self, device: usize) {
        let mut config = RepoConfig::new(
            PeerId::from(format!("plain-{device}").as_str()),
            Role::Device,
            actor(self.seed, device as u64),
        );
        config.extensions.clear();
        self.devices[device].node.repo = Repo::new(config, TrustingPolicy);
    }

    pub fn connect(&mut self, device: usize) {
        if self.devices[device].connection.is_some() {
            return;
        }
        let connection = ConnectionId(self.next_connection);
        self.next_connection += 1;
        self.links.insert(
            connection,
            Link {
                device,
                to_relay: VecDeque::new(),
                to_device: VecDeque::new(),
            },
        );
        self.devices[device].connection = Some(connection);
        let principal = self.devices[device].principal.clone();
        self.relay
            .repo
            .connection_opened(self.now_ms, connection, principal);
        self.devices[device]
            .node
            .repo
            .connection_opened(self.now_ms, connection, ());
        self.pump();
    }

    pub fn disconnect(&mut self, connection: ConnectionId) {
        if let Some(link) = self.links.remove(&connection) {
            self.devices[link.device].connection = None;
            self.devices[link.device]
                .node
                .repo
                .connection_closed(connection);
            self.relay.repo.connection_closed(connection);
            self.pump();
        }
    }

    /// The relay process dies: confirmed writes survive, unconfirmed ones may or may not
    /// have reached the disk (a prefix of them did, as with one SQLite writer).
    pub fn reboot_relay(&mut self) {
        self.reboots += 1;
        let survived = self.rng.random_range(0..=self.relay.pending.len());
        let pending: Vec<_> = self.relay.pending.drain(..).collect();
        for (_, op) in pending.iter().take(survived) {
            self.relay.store.apply(op).unwrap();
        }
        if let Err(lost) = self.check_acknowledged_durable() {
            self.lost_acknowledged.push(lost);
        }
        let connections: Vec<ConnectionId> = self.links.keys().copied().collect();
        for connection in connections {
            if let Some(link) = self.links.remove(&connection) {
                self.devices[link.device].connection = None;
                self.devices[link.device]
                    .node
                    .repo
                    .connection_closed(connection);
            }
        }
        let config = RepoConfig::new(PeerId::from("relay"), Role::Relay, actor(self.seed, 999));
        self.relay.repo = Repo::new(config, VillagePolicy);
        self.pump();
    }

    /// At a crash: every head a device has stored as acknowledged by the relay must be on
    /// the relay's disk. A relay that acknowledged a change before its write was durable
    /// would otherwise go unnoticed, because the device would simply send it again.
    pub fn check_acknowledged_durable(&mut self) -> Result<(), String> {
        for (index, device) in self.devices.iter().enumerate() {
            for (id, stored) in &device.node.store.documents {
                if stored.relay_heads.is_empty() {
                    continue;
                }
                let relay_doc = self.relay.store.materialise(id).unwrap();
                for head in &stored.relay_heads {
                    self.acknowledged_checked += 1;
                    let durable = relay_doc
                        .as_ref()
                        .is_some_and(|doc| doc.get_change_by_hash(head).is_some());
                    if !durable {
                        return Err(format!(
                            "device {index} saw change {head} of {id} acknowledged, but the relay's disk lacks it at crash {}",
                            self.reboots
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves effects from every repo onto links and storage queues.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            let relay_effects = self.relay.repo.take_effects();
            moved |= !relay_effects.is_empty();
            for effect in relay_effects {
                match effect {
                    Effect::Send { connection, frame } => {
                        if let Some(link) = self.links.get_mut(&connection) {
                            link.to_device.push_back(frame);
                        }
                    }
                    Effect::Close { connection, reason } => {
                        self.relay_closes.push(reason);
                        if let Some(link) = self.links.remove(&connection) {
                            self.devices[link.device].connection = None;
                            self.devices[link.device]
                                .node
                                .repo
                                .connection_closed(connection);
                        }
                    }
                    Effect::Storage { id, op } => self.relay.pending.push_back((id, op)),
                    Effect::Notify(notification) => trace(|| format!("relay: {notification:?}")),
                    Effect::Audit(event) => {
                        trace(|| format!("relay audit: {event:?}"));
                        self.relay_audit.push(event);
                    }
                }
            }
            for index in 0..self.devices.len() {
                let effects = self.devices[index].node.repo.take_effects();
                moved |= !effects.is_empty();
                for effect in effects {
                    match effect {
                        Effect::Send { connection, frame } => {
                            if let Some(link) = self.links.get_mut(&connection) {
                                link.to_relay.push_back(frame);
                            }
                        }
                        Effect::Close { connection, .. } => {
                            if self.links.remove(&connection).is_some() {
                                self.devices[index].connection = None;
                                self.relay.repo.connection_closed(connection);
                            }
                        }
                        Effect::Storage { id, op } => {
                            self.devices[index].node.pending.push_back((id, op));
                        }
                        Effect::Notify(notification) => {
                            trace(|| format!("device {index}: {notification:?}"));
                            // Documents that arrive from the relay become editable here,
                            // so replicas edit the same records concurrently.
                            if let Notification::DocumentChanged { document, .. } = &notification {
                                self.devices[index].documents.insert(*document);
                            }
                            self.devices[index].notifications.push(notification);
                        }
                        Effect::Audit(_) => {}
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    pub fn complete_relay_storage(&mut self) -> bool {
        let Some((id, op)) = self.relay.pending.pop_front() else {
            return false;
        };
        self.relay.store.apply(&op).unwrap();
        let completion = match op {
            StorageOp::Load { document } => StorageCompletion::Loaded {
                id,
                document,
                stored: self.relay.store.load(&document),
            },
            StorageOp::ListScope {
                connection,
                since,
                documents,
            } => {
                let village = self
                    .links
                    .get(&connection)
                    .map(|link| self.devices[link.device].village.clone())
                    .unwrap_or_default();
                let entries = self
                    .relay
                    .store
                    .documents
                    .iter()
                    .filter(|(_, stored)| {
                        stored
                            .meta
                            .as_ref()
                            .is_some_and(|meta| meta.owner.0 == village)
                            && since.is_none_or(|since| stored.sequence > since)
                    })
                    .map(|(id, stored)| ScopeEntry {
                        document_id: *id,
                        heads: stored.heads.iter().map(|head| head.0).collect(),
                        document: documents.then(|| stored.stored_bytes()),
                    })
                    .collect();
                StorageCompletion::ScopeListed {
                    id,
                    cursor: self.relay.store.sequence,
                    entries,
                    removed: Vec::new(),
                }
            }
            _ => StorageCompletion::Written { id },
        };
        self.relay.repo.storage_completed(self.now_ms, completion);
        self.pump();
        true
    }

    pub fn complete_device_storage(&mut self, index: usize) -> bool {
        let device = &mut self.devices[index];
        let Some((id, op)) = device.node.pending.pop_front() else {
            return false;
        };
        let completion = device.node.store.execute(id, &op);
        device.node.repo.storage_completed(self.now_ms, completion);
        self.pump();
        true
    }

    pub fn deliver(&mut self, connection: ConnectionId, to_relay: bool) -> bool {
        let Some(link) = self.links.get_mut(&connection) else {
            return false;
        };
        let device = link.device;
        let frame = if to_relay {
            link.to_relay.pop_front()
        } else {
            link.to_device.pop_front()
        };
        let Some(frame) = frame else {
            return false;
        };
        trace(|| {
            let direction = if to_relay {
                format!("device {device} -> relay")
            } else {
                format!("relay -> device {device}")
            };
            format!("{direction} on {connection:?}: {}", describe_frame(&frame))
        });
        if to_relay {
            self.relay
                .repo
                .frame_received(self.now_ms, connection, &frame);
        } else {
            self.devices[device]
                .node
                .repo
                .frame_received(self.now_ms, connection, &frame);
        }
        self.pump();
        true
    }

    /// Device `index` creates a child record of its village; returns its id.
    pub fn create_document(&mut self, index: usize) -> DocumentId {
        let now_ms = self.now_ms;
        self.next_document += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.seed.to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_document.to_le_bytes());
        let document = DocumentId::random_from(bytes);
        let village = self.devices[index].village.clone();
        let device = &mut self.devices[index];
        device.node.repo.create(now_ms, document).unwrap();
        device
            .node
            .repo
            .change(now_ms, document, |tx| {
                tx.put(ROOT, "kind", "child")?;
                tx.put(ROOT, "schemaVersion", 1_u64)?;
                tx.put(ROOT, "orgUnit", village.as_str())?;
                Ok::<(), AutomergeError>(())
            })
            .unwrap();
        device.documents.insert(document);
        self.pump();
        document
    }

    /// Device `index` sets `key` in a document it has loaded (opening it first if not, in
    /// which case nothing is changed and false is returned).
    pub fn edit_document(
        &mut self,
        index: usize,
        document: DocumentId,
        key: &str,
        value: u64,
        forbidden: bool,
    ) -> bool {
        let now_ms = self.now_ms;
        let device = &mut self.devices[index];
        if device.node.repo.latest(&document).is_none() {
            device.node.repo.open(now_ms, document);
            self.pump();
            return false;
        }
        device
            .node
            .repo
            .change(now_ms, document, |tx| {
                tx.put(ROOT, key, value)?;
                if forbidden {
                    tx.put(ROOT, "forbidden", true)?;
                }
                Ok::<(), AutomergeError>(())
            })
            .unwrap();
        self.pump();
        true
    }

    pub fn edit(&mut self, index: usize) {
        let create = self.devices[index].documents.is_empty() || self.rng.random_bool(0.1);
        if create {
            self.create_document(index);
        } else {
            let documents: Vec<DocumentId> =
                self.devices[index].documents.iter().copied().collect();
            let document = documents[self.rng.random_range(0..documents.len())];
            let forbidden = self.rng.random_bool(0.05);
            let value: u64 = self.rng.random_range(0..1_000);
            let key = format!("note-{index}");
            self.edit_document(index, document, &key, value, forbidden);
        }
    }

    pub fn random_step(&mut self) {
        self.now_ms += self.rng.random_range(1..50);
        match self.rng.random_range(0..100) {
            0..=29 => {
                let device = self.rng.random_range(0..self.devices.len());
                self.edit(device);
            }
            30..=59 => {
                let connections: Vec<ConnectionId> = self.links.keys().copied().collect();
                if !connections.is_empty() {
                    let connection = connections[self.rng.random_range(0..connections.len())];
                    let to_relay = self.rng.random_bool(0.5);
                    self.deliver(connection, to_relay);
                }
            }
            60..=71 => {
                self.complete_relay_storage();
            }
            72..=83 => {
                let device = self.rng.random_range(0..self.devices.len());
                self.complete_device_storage(device);
            }
            84..=90 => {
                let device = self.rng.random_range(0..self.devices.len());
                self.connect(device);
            }
            91..=96 => {
                let connections: Vec<ConnectionId> = self.links.keys().copied().collect();
                if !connections.is_empty() {
                    let connection = connections[self.rng.random_range(0..connections.len())];
                    self.disconnect(connection);
                }
            }
            97 => self.reboot_relay(),
            _ => {
                // Half the time the relay sits idle long enough to evict documents while
                // devices stay connected.
                if self.rng.random_bool(0.5) {
                    self.now_ms += caresync_core::sync::limits::DOCUMENT_IDLE_MS_MAX + 1;
                }
                let loaded = self.relay.repo.loaded_documents();
                self.relay.repo.tick(self.now_ms);
                self.evictions += loaded.saturating_sub(self.relay.repo.loaded_documents());
                self.pump();
            }
        }
    }

    /// Plays the seeded history the simulation checks: everyone connects, then two phases
    /// of random steps with a heal between them. In the second phase every device of a
    /// village holds the records the others made in the first, so they edit the same
    /// records concurrently, offline or not.
    pub fn play_history(seed: u64) -> Result<World, String> {
        let mut world = World::new(seed);
        for device in 0..world.devices.len() {
            world.connect(device);
        }
        for _ in 0..STEPS {
            world.random_step();
        }
        world.heal()?;
        for _ in 0..STEPS {
            world.random_step();
        }
        world.heal()?;
        Ok(world)
    }

    /// Connects everyone and runs until no frame or storage request is left.
    pub fn heal(&mut self) -> Result<(), String> {
        for device in 0..self.devices.len() {
            self.connect(device);
        }
        for _ in 0..HEAL_STEPS_MAX {
            let mut progressed = false;
            for device in 0..self.devices.len() {
                if self.devices[device].connection.is_none() {
                    self.connect(device);
                    progressed = true;
                }
            }
            progressed |= self.complete_relay_storage();
            for device in 0..self.devices.len() {
                progressed |= self.complete_device_storage(device);
            }
            let connections: Vec<ConnectionId> = self.links.keys().copied().collect();
            for connection in connections {
                progressed |= self.deliver(connection, true);
                progressed |= self.deliver(connection, false);
            }
            if !progressed {
                return Ok(());
            }
        }
        Err("the network did not go quiet".to_owned())
    }

    /// Every device holds, for every document of its village, exactly the relay's state.
    /// Returns how many of the relay's documents hold changes from several devices.
    pub fn check_converged(&self) -> Result<usize, String> {
        let mut shared = 0;
        for (id, stored) in &self.relay.store.documents {
            let relay_doc = self.relay.store.materialise(id).unwrap().unwrap();
            let actors: BTreeSet<ActorId> = relay_doc
                .get_changes(&[])
                .iter()
                .map(|change| change.actor_id().clone())
                .collect();
            if actors.len() > 1 {
                shared += 1;
            }
            let relay_heads = sorted(relay_doc.get_heads());
            if sorted(stored.heads.clone()) != relay_heads {
                return Err(format!(
                    "relay's recorded heads of {id} differ from its rows"
                ));
            }
            if relay_doc.get(ROOT, "forbidden").unwrap().is_some() {
                return Err(format!("relay stored a refused change in {id}"));
            }
            let owner = stored.meta.as_ref().map(|meta| meta.owner.0.clone());
            for (index, device) in self.devices.iter().enumerate() {
                if owner.as_deref() != Some(device.village.as_str()) {
                    if device.node.store.documents.contains_key(id)
                        && !device.documents.contains(id)
                    {
                        return Err(format!("device {index} holds {id} of another village"));
                    }
                    continue;
                }
                let Some(device_doc) = device.node.store.materialise(id).unwrap() else {
                    return Err(format!("device {index} lacks {id}"));
                };
                if sorted(device_doc.get_heads()) != relay_heads {
                    return Err(format!(
                        "device {index} has {id} at {:?}, relay at {:?}",
                        device_doc.get_heads(),
                        relay_heads
                    ));
                }
            }
        }
        for (index, device) in self.devices.iter().enumerate() {
            for (id, stored) in &device.node.store.documents {
                // A document returned to an empty state after a refusal holds nothing.
                let empty = stored.rows.is_empty()
                    && (stored.snapshot.is_none()
                        || device
                            .node
                            .store
                            .materialise(id)
                            .unwrap()
                            .unwrap()
                            .get_heads()
                            .is_empty());
                if empty {
                    continue;
                }
                if !self.relay.store.documents.contains_key(id) {
                    return Err(format!(
                        "device {index}'s document {id} never reached the relay"
                    ));
                }
            }
            // What the phone shows as waiting: the engine keeps it as a set it updates
            // with every index change; storage says it from the heads it holds.
            let waiting: BTreeSet<DocumentId> =
                device.node.repo.unsynced_documents().into_iter().collect();
            let stored_waiting: BTreeSet<DocumentId> = device
                .node
                .store
                .documents
                .iter()
                .filter(|(_, stored)| {
                    sorted(stored.heads.clone()) != sorted(stored.relay_heads.clone())
                })
                .map(|(id, _)| *id)
                .collect();
            if waiting != stored_waiting {
                return Err(format!(
                    "device {index} shows {waiting:?} as waiting, its storage {stored_waiting:?}"
                ));
            }
        }
        Ok(shared)
    }
}

/// A one-line summary of a frame for traces: type, document, heads, need and changes.
pub fn describe_frame(frame: &[u8]) -> String {
    use caresync_core::protocol::Message;
    let short = |hashes: &[ChangeHash]| -> Vec<String> {
        hashes
            .iter()
            .map(|h| h.to_string().chars().take(6).collect())
            .collect()
    };
    match Message::decode(frame) {
        Ok(
            Message::Sync {
                document_id, data, ..
            }
            | Message::Request {
                document_id, data, ..
            },
        ) => match automerge::sync::Message::decode(&data) {
            Ok(message) => {
                let changes: Vec<String> = message
                    .changes
                    .iter()
                    .map(
                        |chunk| match automerge::Change::from_bytes(chunk.to_vec()) {
                            Ok(change) => change.hash().to_string().chars().take(6).collect(),
                            Err(_) => format!("entry({} bytes)", chunk.len()),
                        },
                    )
                    .collect();
                format!(
                    "sync {document_id} heads={:?} need={:?} have={:?} changes={changes:?}",
                    short(&message.heads),
                    short(&message.need),
                    message
                        .have
                        .iter()
                        .map(|have| short(&have.last_sync))
                        .collect::<Vec<_>>()
                )
            }
            Err(error) => format!("sync {document_id} undecodable: {error}"),
        },
        Ok(Message::Refused { code, message, .. }) => format!("caresync-refused {code}: {message}"),
        Ok(message) => message.type_name().to_owned(),
        Err(error) => format!("undecodable frame: {error}"),
    }
}

/// Prints what happens when `CARESYNC_SIM_TRACE` is set, to follow one failing seed.
pub fn trace(line: impl FnOnce() -> String) {
    if std::env::var_os("CARESYNC_SIM_TRACE").is_some() {
        println!("{}", line());
    }
}

pub fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}
