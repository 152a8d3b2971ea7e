//! The bodies of the fuzz targets in `fuzz/` (design §5): what each target does with one
//! input, as plain functions.
//!
//! They live here, behind the `fuzzing` feature, rather than in the fuzz crate because the
//! replay test (`tests/tests/fuzz_replay.rs`) must run exactly the same code on the kept
//! corpus and crashers with a stable toolchain and no libFuzzer. A module in core is the
//! least machinery that both can reach: the fuzz crate then builds core and its few
//! dependencies only, not the tests crate's tokio, WebSocket and HTTP stack, which keeps
//! `cargo fuzz build` short; and the feature keeps the module out of the phone's wasm
//! build and core's ordinary API.
//!
//! A body returns normally for every input it rejects; it panics only when core does
//! something wrong (a panic inside core, or a broken invariant asserted here), which is
//! what the fuzzer reports as a crash.

use std::collections::VecDeque;
use std::sync::OnceLock;

use automerge::{ActorId, Automerge};

use crate::domain::{
    Account, Child, ChildCategory, Gender, OrgLevel, OrgTree, OrgUnit, OrgUnitCode, Record,
    Role as AccountRole, YearMonth, read_kind, read_meta, report_row,
};
use crate::protocol::{
    DocumentId, EXTENSION_REFUSED, EXTENSION_SCOPE, Message, PROTOCOL_VERSION, PeerId,
    PeerMetadata, ScopeEntry,
};
use crate::relay_policy::RelayPolicy;
use crate::sync::limits::{DOCUMENT_IDLE_MS_MAX, HANDSHAKE_MS_MAX};
use crate::sync::{
    ConnectionId, Effect, MemoryStore, Policy, Repo, RepoConfig, Role, StorageCompletion,
    StorageOp, StoredChange,
};
use crate::validation;

/// 2024-06-01 08:00 China time: the relay of `relay_receive` lives at a fixed time, so a
/// crasher replays the same way on any day.
pub const NOW_MS: u64 = 1_717_200_000_000;
/// The connection the fuzzed frame arrives on.
pub const CONNECTION: ConnectionId = ConnectionId(1);
/// The peer id the connection joined with.
pub const PEER: &str = "fuzz-phone";
/// The township and the two villages of the relay's org tree.
pub const TOWNSHIP: &str = "370402001";
pub const VILLAGE: &str = "370402001001";
pub const OTHER_VILLAGE: &str = "370402001002";
/// A child record of [`VILLAGE`] that the relay's storage holds before the frame arrives,
/// so that frames about a stored document reach the code that judges changes to it.
pub const STORED_DOCUMENT: DocumentId = DocumentId::from_bytes([7; 16]);

/// Steps of storage completions after which `relay_receive` calls the relay stuck: one
/// frame needs a handful, so reaching this means the engine keeps asking without end.
const SETTLE_ROUNDS_MAX: usize = 1_000;

/// Decodes one frame; a frame that decodes must encode to one that decodes to the same
/// message, or a message passed on by the relay would change on the way.
pub fn frame_decoder(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let encoded = message.encode();
    let again = Message::decode(&encoded);
    assert_eq!(
        again.as_ref(),
        Ok(&message),
        "a decoded message does not survive encoding"
    );
}

/// Loads bytes as the relay loads a stored snapshot or change row (`load_incremental` into
/// a new document), then reads the record the way the relay's policy and report tables do:
/// root metadata, the typed record, its validation, its report row, the policy's judgement
/// of it as a new document, and a review-style write of the record back into the document.
pub fn document_load(data: &[u8]) {
    let mut document = Automerge::new().with_actor(ActorId::from([1; 16]));
    if document.load_incremental(data).is_err() {
        return;
    }
    // The whole-document loader takes a different path through automerge (it checks the
    // heads a saved document carries), and peers' `sync` entries may be whole documents.
    let _ = Automerge::load(data);
    let _ = read_kind(&document);
    let _ = read_meta(&document);
    let _ = validation::validate_document_change(&Automerge::new(), &document);
    let policy = relay_policy();
    let before = policy.read_before(&STORED_DOCUMENT, &Automerge::new());
    let _ = policy.check_change(&account(), &STORED_DOCUMENT, None, before, &document);
    let Ok(record) = Record::load(&document) else {
        return;
    };
    let _ = validation::errors(&record);
    let _ = report_row(&STORED_DOCUMENT.to_string(), &record);
    let _ = record.meta();
    // Writing a record back is what the relay does to store a review; afterwards the
    // document must read as that very record, or the review would change other fields.
    let mut transaction = document.transaction();
    if record.save(&mut transaction).is_err() {
        return;
    }
    let _ = transaction.commit();
    if let Ok(reloaded) = Record::load(&document) {
        assert_eq!(reloaded, record, "a saved record reads back differently");
    }
}

/// A relay with one document stored and one peer joined (offering caresync's extensions),
/// fed `frame` on that peer's connection at [`NOW_MS`]. Storage requests are carried out
/// by core's [`MemoryStore`] until the engine is quiet, then time moves past every timeout
/// (handshake, idle documents) and the relay settles again.
///
/// Every frame the relay sends must decode: a peer would otherwise drop the connection.
pub fn relay_receive(frame: &[u8]) {
    let _ = relay_receive_effects(frame);
}

/// [`relay_receive`], returning the effects the frame led to (those of the join before it
/// left out), so a test can check that a seed reaches the code it was made for.
pub fn relay_receive_effects(frame: &[u8]) -> Vec<Effect> {
    let mut relay = FuzzRelay::joined();
    relay.effects.clear();
    relay.repo.frame_received(NOW_MS, CONNECTION, frame);
    relay.settle(NOW_MS);
    let later = NOW_MS + DOCUMENT_IDLE_MS_MAX.max(HANDSHAKE_MS_MAX) + 1;
    relay.repo.tick(later);
    relay.settle(later);
    relay.effects
}

/// The relay's org tree: a township with two villages.
pub fn org_tree() -> OrgTree {
    let unit = |code: &str, level: OrgLevel, parent: Option<&str>| OrgUnit {
        code: OrgUnitCode::new(code),
        name: code.to_owned(),
        level,
        parent: parent.map(OrgUnitCode::new),
    };
    OrgTree::from_units([
        unit(TOWNSHIP, OrgLevel::Township, None),
        unit(VILLAGE, OrgLevel::Village, Some(TOWNSHIP)),
        unit(OTHER_VILLAGE, OrgLevel::Village, Some(TOWNSHIP)),
    ])
}

pub fn relay_policy() -> RelayPolicy {
    RelayPolicy::new(org_tree())
}

/// Whom the fuzzed connection speaks for: the child director of [`VILLAGE`], who may
/// create and change that village's children and visits, so fuzzed changes can be
/// accepted as well as refused.
pub fn account() -> Account {
    Account::new(
        "fuzz-director",
        "fuzz-director",
        AccountRole::VillageChildDirector,
    )
    .with_org_units([OrgUnitCode::new(VILLAGE)])
}

/// The `join` a device sends, offering both caresync extensions.
pub fn join_frame() -> Vec<u8> {
    Message::Join {
        sender_id: PeerId::from(PEER),
        supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
        peer_metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: Some(false),
            caresync_extensions: vec![EXTENSION_SCOPE.to_owned(), EXTENSION_REFUSED.to_owned()],
        }),
    }
    .encode()
}

/// The document stored under [`STORED_DOCUMENT`]: a child of [`VILLAGE`].
pub fn stored_child() -> Automerge {
    let mut document = Automerge::new().with_actor(ActorId::from([2; 16]));
    if let Some(birth) = YearMonth::new(2014, 3) {
        let mut child = Child::new(OrgUnitCode::new(VILLAGE), "王小明", birth, Gender::Male);
        child.categories = vec![ChildCategory::LeftBehind];
        let mut transaction = document.transaction();
        // A fixed record into an empty document: this cannot fail, and if it ever did the
        // relay would simply start with an empty stored document.
        let _ = Record::from(child).save(&mut transaction);
        let _ = transaction.commit();
    }
    document
}

/// The relay's storage before the frame: [`stored_child`] as change rows with its
/// recorded metadata. Built once, since every input starts from it.
fn initial_store() -> &'static MemoryStore {
    static STORE: OnceLock<MemoryStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut store = MemoryStore::default();
        let document = stored_child();
        let changes = document
            .get_changes(&[])
            .into_iter()
            .map(|change| StoredChange {
                hash: change.hash(),
                bytes: change.raw_bytes().to_vec(),
            })
            .collect();
        let meta = read_meta(&document)
            .ok()
            .map(|meta| meta.with_document_id(&STORED_DOCUMENT.to_string()));
        // Applying a write to a memory store cannot fail (only `Replace` checks its bytes).
        let _ = store.apply(&StorageOp::PutChanges {
            document: STORED_DOCUMENT,
            meta,
            changes,
            heads: document.get_heads(),
        });
        store
    })
}

/// A relay repo and its storage, driven the way the relay's engine thread drives them.
struct FuzzRelay {
    repo: Repo<RelayPolicy>,
    store: MemoryStore,
    /// Every effect carried out, in order.
    effects: Vec<Effect>,
}

impl FuzzRelay {
    fn joined() -> FuzzRelay {
        let config = RepoConfig::new(PeerId::from("relay"), Role::Relay, ActorId::from([3; 16]));
        let mut relay = FuzzRelay {
            repo: Repo::new(config, relay_policy()),
            store: initial_store().clone(),
            effects: Vec::new(),
        };
        relay.repo.connection_opened(NOW_MS, CONNECTION, account());
        relay.repo.frame_received(NOW_MS, CONNECTION, &join_frame());
        relay.settle(NOW_MS);
        relay
    }

    /// Carries out effects and feeds storage completions back until the engine is quiet.
    fn settle(&mut self, now_ms: u64) {
        let mut completions = VecDeque::new();
        for _ in 0..SETTLE_ROUNDS_MAX {
            for effect in self.repo.take_effects() {
                match &effect {
                    Effect::Send { frame, .. } => {
                        assert!(
                            Message::decode(frame).is_ok(),
                            "the relay sent a frame it cannot decode itself"
                        );
                    }
                    Effect::Storage { id, op } => completions.push_back(self.execute(*id, op)),
                    Effect::Close { .. } | Effect::Notify(_) | Effect::Audit(_) => {}
                }
                self.effects.push(effect);
            }
            let Some(completion) = completions.pop_front() else {
                return;
            };
            self.repo.storage_completed(now_ms, completion);
        }
        assert!(
            completions.is_empty() && !self.repo.has_effects(),
            "the relay did not settle after {SETTLE_ROUNDS_MAX} storage completions"
        );
    }

    /// Answers one storage request; the scope listing, which the memory store leaves to the
    /// relay's driver, lists every stored document as the SQL listing would for an admin.
    fn execute(&mut self, id: crate::sync::StorageOpId, op: &StorageOp) -> StorageCompletion {
        let StorageOp::ListScope {
            since, documents, ..
        } = op
        else {
            return self.store.execute(id, op);
        };
        let entries = self
            .store
            .documents
            .iter()
            .filter(|(_, stored)| since.is_none_or(|since| stored.sequence > since))
            .filter_map(|(document, stored)| {
                // Only documents with a known kind belong to a scope.
                stored.meta.as_ref()?;
                let heads = stored.heads.iter().map(|head| head.0).collect();
                Some(ScopeEntry {
                    document_id: *document,
                    heads,
                    document: documents.then(|| stored.stored_bytes()),
                })
            })
            .collect();
        StorageCompletion::ScopeListed {
            id,
            cursor: self.store.sequence,
            entries,
            removed: Vec::new(),
        }
    }
}
