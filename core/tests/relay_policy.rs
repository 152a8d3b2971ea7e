//! The relay enforces the domain rules end to end: real records written on devices, synced
//! through the sans-IO engine to a relay that runs `RelayPolicy` over an org tree, with
//! what each user would notice asserted on the devices' and the relay's storage.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::{BTreeMap, VecDeque};

use automerge::Automerge;
use caresync_core::domain::{
    Account, AccountId, Checklist, Child, ChildCategory, Gender, HomeVisit, OrgLevel, OrgTree,
    OrgUnit, OrgUnitCode, RecordStatus, Review, ReviewState, Risk, RiskLevel, Role as AccountRole,
    SubjectId, YearMonth,
};
use caresync_core::protocol::{DocumentId, PeerId, ScopeEntry};
use caresync_core::relay_policy::RelayPolicy;
use caresync_core::sync::{
    Access, AuditEvent, ConnectionId, Effect, Notification, Policy, RefusalCode, Repo, RepoConfig,
    Role, StorageCompletion, StorageOp, StorageOpId, TrustingPolicy,
};
use support::MemoryStore;

// ----- the org tree and the accounts ------------------------------------------------

const PREFECTURE: &str = "370400";
const DISTRICT: &str = "370402";
const TOWNSHIP: &str = "370402001";
const VILLAGE_A: &str = "370402001001";
const VILLAGE_B: &str = "370402001002";

/// 2024-06-01 08:00 China time: every event of these tests happens at a fixed time.
const NOW_MS: u64 = 1_717_200_000_000;
const STEPS_MAX: usize = 100_000;

fn org_tree() -> OrgTree {
    let unit = |code: &str, name: &str, level: OrgLevel, parent: Option<&str>| OrgUnit {
        code: OrgUnitCode::new(code),
        name: name.to_owned(),
        level,
        parent: parent.map(OrgUnitCode::new),
    };
    OrgTree::from_units([
        unit(PREFECTURE, "枣庄市", OrgLevel::Prefecture, None),
        unit(DISTRICT, "市中区", OrgLevel::District, Some(PREFECTURE)),
        unit(TOWNSHIP, "中心街街道", OrgLevel::Township, Some(DISTRICT)),
        unit(VILLAGE_A, "东村社区", OrgLevel::Village, Some(TOWNSHIP)),
        unit(VILLAGE_B, "西村社区", OrgLevel::Village, Some(TOWNSHIP)),
    ])
}

fn director(id: &str, village: &str) -> Account {
    Account::new(id, format!("user-{id}"), AccountRole::VillageChildDirector)
        .with_org_units([OrgUnitCode::new(village)])
}

fn reviewer(id: &str) -> Account {
    Account::new(id, format!("user-{id}"), AccountRole::TownshipReviewer)
        .with_org_units([OrgUnitCode::new(TOWNSHIP)])
}

// ----- in-memory storage --------------------------------------------------------------

// ----- the world: one relay, devices, an in-memory network ------------------------------

struct Node<P: Policy> {
    repo: Repo<P>,
    store: MemoryStore,
    /// Storage requests waiting for the driver, completed in order like a single writer.
    pending: VecDeque<(StorageOpId, StorageOp)>,
    notifications: Vec<Notification>,
}

impl<P: Policy> Node<P> {
    fn new(repo: Repo<P>) -> Self {
        Node {
            repo,
            store: MemoryStore::default(),
            pending: VecDeque::new(),
            notifications: Vec::new(),
        }
    }
}

struct Device {
    node: Node<TrustingPolicy>,
    /// Whom the relay takes this device for.
    account: Account,
    connection: Option<ConnectionId>,
}

struct Link {
    device: usize,
    to_relay: VecDeque<Vec<u8>>,
    to_device: VecDeque<Vec<u8>>,
}

struct World {
    relay: Node<RelayPolicy>,
    relay_audit: Vec<AuditEvent>,
    devices: Vec<Device>,
    links: BTreeMap<ConnectionId, Link>,
    next_connection: u64,
}

fn actor(index: u8) -> automerge::ActorId {
    automerge::ActorId::from(vec![index; 16])
}

impl World {
    fn new() -> World {
        let config = RepoConfig::new(PeerId::from("relay"), Role::Relay, actor(255));
        World {
            relay: Node::new(Repo::new(config, RelayPolicy::new(org_tree()))),
            relay_audit: Vec::new(),
            devices: Vec::new(),
            links: BTreeMap::new(),
            next_connection: 0,
        }
    }

    /// Adds a device signed in as `account`; returns its index.
    fn add_device(&mut self, account: Account) -> usize {
        let index = self.devices.len();
        let config = RepoConfig::new(
            PeerId::from(format!("phone-{}", account.id.as_str()).as_str()),
            Role::Device,
            actor(u8::try_from(index).unwrap()),
        );
        self.devices.push(Device {
            node: Node::new(Repo::new(config, TrustingPolicy)),
            account,
            connection: None,
        });
        index
    }

    fn connect(&mut self, device: usize) -> ConnectionId {
        if let Some(connection) = self.devices[device].connection {
            return connection;
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
        let account = self.devices[device].account.clone();
        self.relay
            .repo
            .connection_opened(NOW_MS, connection, account);
        self.devices[device]
            .node
            .repo
            .connection_opened(NOW_MS, connection, ());
        self.pump();
        connection
    }

    /// Moves the effects of every repo onto links and storage queues.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            let effects = self.relay.repo.take_effects();
            moved |= !effects.is_empty();
            for effect in effects {
                match effect {
                    Effect::Send { connection, frame } => {
                        if let Some(link) = self.links.get_mut(&connection) {
                            link.to_device.push_back(frame);
                        }
                    }
                    Effect::Close { connection, reason } => {
                        panic!("the relay closed {connection:?}: {reason:?}");
                    }
                    Effect::Storage { id, op } => self.relay.pending.push_back((id, op)),
                    Effect::Notify(notification) => self.relay.notifications.push(notification),
                    Effect::Audit(event) => self.relay_audit.push(event),
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
                        Effect::Close { connection, reason } => {
                            panic!("device {index} closed {connection:?}: {reason:?}");
                        }
                        Effect::Storage { id, op } => {
                            self.devices[index].node.pending.push_back((id, op));
                        }
                        Effect::Notify(notification) => {
                            self.devices[index].node.notifications.push(notification);
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

    /// The documents the account of `connection` may see, changed after `since`.
    fn list_scope(
        &self,
        connection: ConnectionId,
        since: Option<u64>,
        documents: bool,
    ) -> Vec<ScopeEntry> {
        let Some(link) = self.links.get(&connection) else {
            return Vec::new();
        };
        let account = &self.devices[link.device].account;
        let policy = self.relay.repo.policy();
        self.relay
            .store
            .documents
            .iter()
            .filter(|(id, stored)| {
                since.is_none_or(|since| stored.sequence > since)
                    && stored
                        .meta
                        .as_ref()
                        .is_some_and(|meta| policy.access(account, id, Some(meta)) != Access::None)
            })
            .map(|(id, stored)| ScopeEntry {
                document_id: *id,
                heads: stored.heads.iter().map(|head| head.0).collect(),
                document: documents.then(|| stored.stored_bytes()),
            })
            .collect()
    }

    fn complete_relay_storage(&mut self) -> bool {
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
            } => StorageCompletion::ScopeListed {
                id,
                cursor: self.relay.store.sequence,
                entries: self.list_scope(connection, since, documents),
                removed: Vec::new(),
            },
            _ => StorageCompletion::Written { id },
        };
        self.relay.repo.storage_completed(NOW_MS, completion);
        self.pump();
        true
    }

    fn complete_device_storage(&mut self, index: usize) -> bool {
        let node = &mut self.devices[index].node;
        let Some((id, op)) = node.pending.pop_front() else {
            return false;
        };
        node.store.apply(&op).unwrap();
        let completion = match op {
            StorageOp::Load { document } => StorageCompletion::Loaded {
                id,
                document,
                stored: node.store.load(&document),
            },
            StorageOp::ListScope { .. } => panic!("device {index} was asked to list a scope"),
            _ => StorageCompletion::Written { id },
        };
        node.repo.storage_completed(NOW_MS, completion);
        self.pump();
        true
    }

    fn deliver(&mut self, connection: ConnectionId, to_relay: bool) -> bool {
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
        if to_relay {
            self.relay.repo.frame_received(NOW_MS, connection, &frame);
        } else {
            self.devices[device]
                .node
                .repo
                .frame_received(NOW_MS, connection, &frame);
        }
        self.pump();
        true
    }

    /// Delivers frames and completes storage requests until nothing is left.
    fn run_until_quiet(&mut self) {
        self.pump();
        for _ in 0..STEPS_MAX {
            let mut progressed = false;
            let connections: Vec<ConnectionId> = self.links.keys().copied().collect();
            for connection in connections {
                progressed |= self.deliver(connection, true);
                progressed |= self.deliver(connection, false);
            }
            progressed |= self.complete_relay_storage();
            for device in 0..self.devices.len() {
                progressed |= self.complete_device_storage(device);
            }
            if !progressed {
                return;
            }
        }
        panic!("the network did not go quiet");
    }

    fn repo(&mut self, device: usize) -> &mut Repo<TrustingPolicy> {
        &mut self.devices[device].node.repo
    }

    fn notifications(&self, device: usize) -> &[Notification] {
        &self.devices[device].node.notifications
    }

    fn relay_doc(&self, document: &DocumentId) -> Option<Automerge> {
        self.relay.store.materialise(document).unwrap()
    }

    fn device_doc(&self, device: usize, document: &DocumentId) -> Option<Automerge> {
        self.devices[device]
            .node
            .store
            .materialise(document)
            .unwrap()
    }

    /// The refusals device `device` was told about for `document`: (code, message).
    fn refusals(&self, device: usize, document: &DocumentId) -> Vec<(String, String)> {
        self.notifications(device)
            .iter()
            .filter_map(|n| match n {
                Notification::ChangesRefused {
                    document: refused,
                    code,
                    message,
                    ..
                } if refused == document => Some((code.clone(), message.clone())),
                _ => None,
            })
            .collect()
    }

    fn unavailable(&self, device: usize, document: &DocumentId) -> bool {
        self.notifications(device).iter().any(
            |n| matches!(n, Notification::DocumentUnavailable { document: d } if d == document),
        )
    }

    fn read_denied(&self, document: &DocumentId) -> bool {
        self.relay_audit.iter().any(
            |event| matches!(event, AuditEvent::ReadDenied { document: d, .. } if d == document),
        )
    }
}

// ----- records ----------------------------------------------------------------------

fn document_id(n: u8) -> DocumentId {
    DocumentId::random_from([n; 16])
}

fn child_in(village: &str, name: &str) -> Child {
    let mut child = Child::new(
        OrgUnitCode::new(village),
        name,
        YearMonth::new(2015, 3).unwrap(),
        Gender::Female,
    );
    child.categories = vec![ChildCategory::LeftBehind];
    child
}

fn final_visit(village: &str, worker: &AccountId, child: &DocumentId) -> HomeVisit {
    let now = i64::try_from(NOW_MS).unwrap();
    let mut visit = HomeVisit::new(
        OrgUnitCode::new(village),
        worker.clone(),
        SubjectId::new(child.to_string()),
        now - 45 * 60_000,
    );
    visit.ended_at = Some(now);
    visit.checklist = Checklist::all_ok();
    visit.status = RecordStatus::Final;
    visit
}

impl World {
    /// Device `device` creates a document holding `save`'s record.
    fn create_record(
        &mut self,
        device: usize,
        document: DocumentId,
        save: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
    ) {
        let repo = self.repo(device);
        repo.create(NOW_MS, document).unwrap();
        repo.change(NOW_MS, document, |tx| {
            save(tx);
            Ok(())
        })
        .unwrap();
        self.pump();
    }

    /// Device `device` edits the child record `document` it holds.
    fn edit_child(&mut self, device: usize, document: DocumentId, edit: impl FnOnce(&mut Child)) {
        let repo = self.repo(device);
        let mut child = Child::load(repo.latest(&document).expect("the child is loaded")).unwrap();
        edit(&mut child);
        repo.change(NOW_MS, document, |tx| {
            child.save(tx).unwrap();
            Ok(())
        })
        .unwrap();
        self.pump();
    }

    /// Device `device` edits the home visit `document` it holds.
    fn edit_visit(
        &mut self,
        device: usize,
        document: DocumentId,
        edit: impl FnOnce(&mut HomeVisit),
    ) {
        let repo = self.repo(device);
        let mut visit =
            HomeVisit::load(repo.latest(&document).expect("the visit is loaded")).unwrap();
        edit(&mut visit);
        repo.change(NOW_MS, document, |tx| {
            visit.save(tx).unwrap();
            Ok(())
        })
        .unwrap();
        self.pump();
    }
}

/// The township's world: director A (village A), director B (village B), the reviewer.
/// Director A is connected and has registered child `CHILD` with the relay.
struct Township {
    world: World,
    director_a: usize,
    director_b: usize,
    reviewer: usize,
    child: DocumentId,
}

const CHILD: u8 = 1;
const VISIT: u8 = 2;

fn township() -> Township {
    let mut world = World::new();
    let director_a = world.add_device(director("dir-a", VILLAGE_A));
    let director_b = world.add_device(director("dir-b", VILLAGE_B));
    let reviewer = world.add_device(reviewer("rev-1"));
    world.connect(director_a);
    world.run_until_quiet();
    let child = document_id(CHILD);
    world.create_record(director_a, child, |tx| {
        child_in(VILLAGE_A, "王小花").save(tx).unwrap();
    });
    world.run_until_quiet();
    Township {
        world,
        director_a,
        director_b,
        reviewer,
        child,
    }
}

fn name_of(doc: &Automerge) -> String {
    Child::load(doc).unwrap().name
}

// ----- tests ------------------------------------------------------------------------

#[test]
fn a_directors_child_record_is_stored_at_the_relay_as_owned_by_the_village() {
    let t = township();
    let world = &t.world;
    assert!(world.refusals(t.director_a, &t.child).is_empty());
    let stored = world
        .relay
        .store
        .documents
        .get(&t.child)
        .expect("the relay stored the child record");
    let meta = stored.meta.as_ref().expect("the relay recorded the meta");
    assert_eq!(meta.owner, OrgUnitCode::new(VILLAGE_A));
    assert_eq!(meta.kind.as_str(), "child");
    let relay = world.relay_doc(&t.child).unwrap();
    assert_eq!(name_of(&relay), "王小花");
    let device = world.device_doc(t.director_a, &t.child).unwrap();
    assert_eq!(device.get_heads(), relay.get_heads());
    assert_eq!(stored.heads, relay.get_heads());
}

#[test]
fn a_director_of_the_neighbouring_village_cannot_open_the_record() {
    let mut t = township();
    let world = &mut t.world;
    world.connect(t.director_b);
    world.run_until_quiet();
    world.repo(t.director_b).open(NOW_MS, t.child);
    world.run_until_quiet();
    assert!(
        world.unavailable(t.director_b, &t.child),
        "director B was told the record is unavailable"
    );
    assert!(world.device_doc(t.director_b, &t.child).is_none());
    assert!(world.repo(t.director_b).document(&t.child).is_none());
    assert!(
        world.read_denied(&t.child),
        "the relay audited the denied read"
    );
}

/// Director A records a final home visit of the child; returns the visit's id.
fn record_visit(t: &mut Township) -> DocumentId {
    let visit = document_id(VISIT);
    let worker = t.world.devices[t.director_a].account.id.clone();
    let child = t.child;
    t.world.create_record(t.director_a, visit, |tx| {
        final_visit(VILLAGE_A, &worker, &child).save(tx).unwrap();
    });
    t.world.run_until_quiet();
    assert!(
        t.world.relay_doc(&visit).is_some(),
        "the visit reached the relay"
    );
    visit
}

#[test]
fn the_reviewer_receives_records_by_scope_and_an_approval_reaches_the_director() {
    let mut t = township();
    let visit = record_visit(&mut t);
    let world = &mut t.world;
    world.connect(t.reviewer);
    world.run_until_quiet();
    // The reviewer never asked for them by id: the scope extension brought both.
    let on_reviewer = world
        .device_doc(t.reviewer, &visit)
        .expect("the visit reached the reviewer");
    assert_eq!(
        on_reviewer.get_heads(),
        world.relay_doc(&visit).unwrap().get_heads()
    );
    assert!(world.device_doc(t.reviewer, &t.child).is_some());
    assert!(
        world
            .notifications(t.reviewer)
            .iter()
            .any(|n| matches!(n, Notification::ScopeSynced { .. }))
    );

    let reviewer_id = world.devices[t.reviewer].account.id.clone();
    let at = i64::try_from(NOW_MS).unwrap();
    world.edit_visit(t.reviewer, visit, |v| {
        v.review = Review::approve(reviewer_id.clone(), at, Some("走访记录完整".to_owned()));
    });
    world.run_until_quiet();

    assert!(world.refusals(t.reviewer, &visit).is_empty());
    let relay = world.relay_doc(&visit).unwrap();
    let review = HomeVisit::load(&relay).unwrap().review;
    assert_eq!(review.state, ReviewState::Approved);
    assert_eq!(review.reviewer, Some(reviewer_id));
    let on_director = world.device_doc(t.director_a, &visit).unwrap();
    assert_eq!(on_director.get_heads(), relay.get_heads());
    assert_eq!(
        HomeVisit::load(&on_director).unwrap().review.state,
        ReviewState::Approved
    );
}

#[test]
fn a_reviewer_editing_the_record_part_is_refused_and_returned_to_the_relay_state() {
    let mut t = township();
    let world = &mut t.world;
    world.connect(t.reviewer);
    world.run_until_quiet();
    assert!(world.device_doc(t.reviewer, &t.child).is_some());
    let relay_before = world.relay_doc(&t.child).unwrap().get_heads();

    world.edit_child(t.reviewer, t.child, |c| c.name = "王小红".to_owned());
    world.run_until_quiet();

    let refusals = world.refusals(t.reviewer, &t.child);
    assert_eq!(refusals.len(), 1, "one refusal: {refusals:?}");
    assert_eq!(refusals[0].0, RefusalCode::Forbidden.as_str());
    // The reviewer's own version is kept for them to read.
    let copy = world
        .notifications(t.reviewer)
        .iter()
        .find_map(|n| match n {
            Notification::ChangesRefused { refused_copy, .. } => Some(refused_copy.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(name_of(&Automerge::load(&copy).unwrap()), "王小红");
    let relay = world.relay_doc(&t.child).unwrap();
    assert_eq!(name_of(&relay), "王小花");
    assert_eq!(relay.get_heads(), relay_before);
    let on_reviewer = world.device_doc(t.reviewer, &t.child).unwrap();
    assert_eq!(on_reviewer.get_heads(), relay.get_heads());
    assert_eq!(name_of(&on_reviewer), "王小花");
    let in_memory = world.repo(t.reviewer).document(&t.child).unwrap();
    assert_eq!(in_memory.get_heads(), relay.get_heads());
    // The director's copy never saw the edit either.
    assert_eq!(
        name_of(&world.device_doc(t.director_a, &t.child).unwrap()),
        "王小花"
    );
    assert!(world.relay_audit.iter().any(|event| matches!(
        event,
        AuditEvent::ChangeRefused { document, refusal, .. }
            if *document == t.child && refusal.code == RefusalCode::Forbidden
    )));
}

#[test]
fn an_invalid_change_is_refused_with_a_bilingual_message_and_not_stored() {
    let mut t = township();
    let world = &mut t.world;
    let relay_before = world.relay_doc(&t.child).unwrap().get_heads();

    // A red risk level needs a reason; none is given.
    world.edit_child(t.director_a, t.child, |c| {
        c.risk = Some(Risk {
            level: RiskLevel::Red,
            date: caresync_core::domain::Date::new(2024, 6, 1).unwrap(),
            reason: None,
        });
    });
    world.run_until_quiet();

    let refusals = world.refusals(t.director_a, &t.child);
    assert_eq!(refusals.len(), 1, "one refusal: {refusals:?}");
    let (code, message) = &refusals[0];
    assert_eq!(code, RefusalCode::Invalid.as_str());
    assert!(
        message.contains("风险等级为红色或黄色时，请写明原因"),
        "Chinese text in {message:?}"
    );
    assert!(
        message.contains("For a red or yellow risk level, give the reason."),
        "English text in {message:?}"
    );
    let relay = world.relay_doc(&t.child).unwrap();
    assert_eq!(relay.get_heads(), relay_before);
    assert_eq!(Child::load(&relay).unwrap().risk, None);
    let on_director = world.device_doc(t.director_a, &t.child).unwrap();
    assert_eq!(on_director.get_heads(), relay_before);
    assert_eq!(Child::load(&on_director).unwrap().risk, None);
}

#[test]
fn a_disabled_account_sees_nothing() {
    let mut t = township();
    let world = &mut t.world;
    let mut disabled = director("dir-a-old", VILLAGE_A);
    disabled.disabled = true;
    let device = world.add_device(disabled);
    world.connect(device);
    world.run_until_quiet();
    world.repo(device).open(NOW_MS, t.child);
    world.run_until_quiet();
    assert!(world.unavailable(device, &t.child));
    assert!(world.device_doc(device, &t.child).is_none());
    assert!(world.repo(device).document(&t.child).is_none());
    assert!(world.read_denied(&t.child));
    // The same account, enabled, would see the record: the test is not vacuous.
    let enabled = world.add_device(director("dir-a-new", VILLAGE_A));
    world.connect(enabled);
    world.run_until_quiet();
    assert!(world.device_doc(enabled, &t.child).is_some());
}

/// The relay keeps which connections may not see a document, so that announcing a change
/// does not ask the rules about every connection again (`sync/no_access.rs`). New rules must
/// make it ask again: here village A is merged into village B's area while director B is
/// connected, and A's next change must reach B's phone.
#[test]
fn a_director_whose_area_grows_receives_the_next_change_of_a_record_now_in_it() {
    let mut t = township();
    let world = &mut t.world;
    world.connect(t.director_b);
    world.run_until_quiet();
    world.edit_child(t.director_a, t.child, |child| {
        child.name = "王小红".to_owned()
    });
    world.run_until_quiet();
    assert!(
        world.device_doc(t.director_b, &t.child).is_none(),
        "director B does not see village A's record yet"
    );

    let unit = |code: &str, name: &str, level: OrgLevel, parent: &str| OrgUnit {
        code: OrgUnitCode::new(code),
        name: name.to_owned(),
        level,
        parent: Some(OrgUnitCode::new(parent)),
    };
    let mut merged = org_tree();
    merged.insert(unit(VILLAGE_A, "东村社区", OrgLevel::Village, VILLAGE_B));
    world.relay.repo.policy_mut().tree = merged;
    world.edit_child(t.director_a, t.child, |child| {
        child.name = "王小兰".to_owned()
    });
    world.run_until_quiet();
    let on_b = world
        .device_doc(t.director_b, &t.child)
        .expect("the change after the merge reached director B");
    assert_eq!(name_of(&on_b), "王小兰");
}
