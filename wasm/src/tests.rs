//! Native tests of the bindings' logic: the JSON shapes, and whole phones driven the way
//! the page drives them — effects read as JSON, storage kept as JSON, completions written
//! as JSON — syncing with a relay engine in memory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use automerge::{ActorId, AutoCommit, ChangeHash};
use caresync_core::domain::*;
use caresync_core::protocol::{DocumentId, PeerId, ScopeEntry};
use caresync_core::sync::{
    AuditEvent, CloseReason, ConnectionId, Effect, MemoryStore, Notification, Refusal, RefusalCode,
    Repo, RepoConfig, Role, StorageCompletion, StorageOp, StorageOpId, StoredChange,
    TrustingPolicy,
};
use serde_json::{Value as Json, json};

use super::*;
use crate::error::PhoneError;
use crate::json::*;
use crate::phone::{PhoneCore, validation_errors};

const T0: Millis = 1_714_536_000_000; // 2024-05-01T04:00:00Z
const NOW: u64 = 1_714_540_000_000;
const MINUTE: Millis = 60_000;

fn hash(byte: u8) -> ChangeHash {
    ChangeHash([byte; 32])
}

fn doc_id(byte: u8) -> DocumentId {
    DocumentId::random_from([byte; 16])
}

fn child() -> Record {
    let mut child = Child::new(
        OrgUnitCode::new("370402001001"),
        "王小明",
        YearMonth::new(2014, 3).unwrap(),
        Gender::Male,
    );
    child.categories = vec![ChildCategory::LeftBehind];
    child.into()
}

fn visit() -> HomeVisit {
    HomeVisit::new(
        OrgUnitCode::new("370402001001"),
        AccountId::new("dir-1"),
        SubjectId::new(doc_id(9).to_string()),
        T0,
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap()
}

// ----- document ids and hashes -------------------------------------------------------------

#[test]
fn document_id_text_round_trips() {
    let text = document_id_text(&[7; 16]).unwrap();
    let id: DocumentId = text.parse().unwrap();
    assert_eq!(id.to_string(), text);
}

#[test]
fn document_id_text_refuses_wrong_length() {
    let err = document_id_text(&[7; 15]).unwrap_err();
    assert!(err.contains("16"), "{err}");
}

#[test]
fn heads_are_lowercase_hex_and_read_back() {
    let heads = vec![hash(0xab), hash(0x01)];
    let hex = heads_to_hex(&heads);
    assert_eq!(hex[0], "ab".repeat(32));
    assert_eq!(hex[1], "01".repeat(32));
    assert_eq!(heads_from_hex(&hex).unwrap(), heads);
    // Uppercase is accepted; anything that is not 32 bytes of hex is not.
    assert_eq!(hash_from_hex(&"AB".repeat(32)).unwrap(), hash(0xab));
    for bad in ["", "abc", &"ab".repeat(31), &"zz".repeat(32)] {
        let error = hash_from_hex(bad).unwrap_err();
        assert_eq!(error.code(), "bad-input", "{bad}: {error}");
    }
}

#[test]
fn document_ids_are_read_as_bs58check() {
    let id = doc_id(3);
    assert_eq!(document_from_text(&id.to_string()).unwrap(), id);
    assert_eq!(
        document_from_text("not-an-id").unwrap_err().code(),
        "bad-input"
    );
}

// ----- effects as JSON ---------------------------------------------------------------------

#[test]
fn send_and_close_effects() {
    assert_eq!(
        to_json(&effect_to_json(Effect::Send {
            connection: ConnectionId(3),
            frame: vec![1, 2, 255],
        })),
        json!({"type": "send", "connection": 3, "frame": [1, 2, 255]})
    );
    assert_eq!(
        to_json(&effect_to_json(Effect::Close {
            connection: ConnectionId(3),
            reason: CloseReason::LimitExceeded("SYNC_DATA_BYTES_MAX"),
        })),
        json!({"type": "close", "connection": 3, "code": "limit-exceeded",
               "reason": "SYNC_DATA_BYTES_MAX"})
    );
    assert_eq!(
        to_json(&effect_to_json(Effect::Close {
            connection: ConnectionId(0),
            reason: CloseReason::HandshakeTimeout,
        }))["code"],
        "handshake-timeout"
    );
}

#[test]
fn storage_ops() {
    let document = doc_id(1);
    let text = document.to_string();
    let meta = child().meta().with_document_id(&text);
    let cases = [
        (
            StorageOp::Load { document },
            json!({"type": "load", "document": text}),
        ),
        (
            StorageOp::PutChanges {
                document,
                meta: Some(meta.clone()),
                changes: vec![StoredChange {
                    hash: hash(2),
                    bytes: vec![9, 8],
                }],
                heads: vec![hash(2)],
            },
            json!({"type": "put-changes", "document": text,
                   "meta": {"kind": "child", "schemaVersion": 1, "owner": "370402001001",
                            "worker": null, "subject": text},
                   "changes": [{"hash": "02".repeat(32), "bytes": [9, 8]}],
                   "heads": ["02".repeat(32)]}),
        ),
        (
            StorageOp::PutChanges {
                document,
                meta: None,
                changes: Vec::new(),
                heads: Vec::new(),
            },
            json!({"type": "put-changes", "document": text, "meta": null, "changes": [],
                   "heads": []}),
        ),
        (
            StorageOp::Compact {
                document,
                snapshot: vec![1],
                covered: vec![hash(3)],
            },
            json!({"type": "compact", "document": text, "snapshot": [1],
                   "covered": ["03".repeat(32)]}),
        ),
        (
            StorageOp::SaveScopeCursor { cursor: 42 },
            json!({"type": "save-scope-cursor", "cursor": 42}),
        ),
        (
            StorageOp::PutRelayHeads {
                document,
                heads: vec![hash(4)],
            },
            json!({"type": "put-relay-heads", "document": text, "heads": ["04".repeat(32)]}),
        ),
        (
            StorageOp::ListScope {
                connection: ConnectionId(1),
                since: None,
                documents: true,
            },
            json!({"type": "list-scope", "connection": 1, "since": null}),
        ),
    ];
    for (op, expected) in cases {
        let effect = to_json(&effect_to_json(Effect::Storage {
            id: StorageOpId(7),
            op,
        }));
        assert_eq!(effect, json!({"type": "storage", "id": 7, "op": expected}));
    }
}

#[test]
fn a_replace_op_carries_the_snapshot_heads() {
    let mut doc = AutoCommit::new();
    child().save(&mut doc).unwrap();
    let heads = doc.get_heads();
    let snapshot = doc.save();
    let op = to_json(&storage_op_to_json(StorageOp::Replace {
        document: doc_id(1),
        snapshot: snapshot.clone(),
    }));
    assert_eq!(op["type"], "replace");
    assert_eq!(op["heads"], json!(heads_to_hex(&heads)));
    assert_eq!(op["snapshot"].as_array().unwrap().len(), snapshot.len());
}

#[test]
fn notifications() {
    let document = doc_id(1);
    let text = document.to_string();
    let cases = [
        (
            Notification::PeerReady {
                connection: ConnectionId(2),
            },
            json!({"type": "peer-ready", "connection": 2}),
        ),
        (
            Notification::DocumentChanged {
                document,
                heads: vec![hash(1)],
            },
            json!({"type": "document-changed", "document": text, "heads": ["01".repeat(32)]}),
        ),
        (
            Notification::LocalChangeSaved {
                document,
                heads: vec![],
            },
            json!({"type": "local-change-saved", "document": text, "heads": []}),
        ),
        (
            Notification::PeerHeads {
                connection: ConnectionId(2),
                document,
                heads: vec![],
            },
            json!({"type": "peer-heads", "connection": 2, "document": text, "heads": []}),
        ),
        (
            Notification::DocumentUnavailable { document },
            json!({"type": "document-unavailable", "document": text}),
        ),
        (
            Notification::StorageFailed {
                document: None,
                reason: "disk full".into(),
            },
            json!({"type": "storage-failed", "document": null, "reason": "disk full"}),
        ),
        (
            Notification::DocumentError {
                document,
                detail: "x".into(),
            },
            json!({"type": "document-error", "document": text, "detail": "x"}),
        ),
        (
            Notification::ScopeSynced {
                connection: ConnectionId(2),
            },
            json!({"type": "scope-synced", "connection": 2}),
        ),
    ];
    for (notification, expected) in cases {
        assert_eq!(
            to_json(&effect_to_json(Effect::Notify(notification))),
            json!({"type": "notify", "notification": expected})
        );
    }
}

#[test]
fn a_refusal_carries_the_refused_record() {
    let mut doc = AutoCommit::new();
    let record = child();
    record.save(&mut doc).unwrap();
    let copy = doc.save();
    let json = to_json(&notification_to_json(Notification::ChangesRefused {
        document: doc_id(1),
        code: "invalid".into(),
        message: "姓名不能为空".into(),
        refused_copy: copy.clone(),
    }));
    assert_eq!(json["type"], "changes-refused");
    assert_eq!(json["code"], "invalid");
    assert_eq!(json["message"], "姓名不能为空");
    assert_eq!(json["refusedCopy"].as_array().unwrap().len(), copy.len());
    assert_eq!(json["refusedRecord"], to_json(&record));

    // A copy that is not a record still reaches the user, without the record view.
    let json = to_json(&notification_to_json(Notification::ChangesRefused {
        document: doc_id(1),
        code: "invalid".into(),
        message: String::new(),
        refused_copy: AutoCommit::new().save(),
    }));
    assert_eq!(json["refusedRecord"], Json::Null);
}

#[test]
fn audit_events() {
    let effect = to_json(&effect_to_json(Effect::Audit(AuditEvent::ChangeRefused {
        connection: ConnectionId(1),
        document: doc_id(1),
        refusal: Refusal {
            code: RefusalCode::Forbidden,
            message: "no".into(),
        },
    })));
    assert_eq!(
        effect,
        json!({"type": "audit", "event": "change-refused", "connection": 1,
               "document": doc_id(1).to_string(), "code": "forbidden", "message": "no"})
    );
    let effect = to_json(&effect_to_json(Effect::Audit(
        AuditEvent::ProtocolViolation {
            connection: ConnectionId(1),
            detail: "bad".into(),
        },
    )));
    assert_eq!(effect["event"], "protocol-violation");
    assert_eq!(effect["message"], "bad");
}

// ----- completions and the index from JSON -------------------------------------------------

fn completion(value: Json) -> Result<StorageCompletion, PhoneError> {
    completion_from_json(serde_json::from_value(value).unwrap())
}

#[test]
fn completions_are_read() {
    let document = doc_id(1);
    let text = document.to_string();
    assert_eq!(
        completion(json!({"id": 4, "type": "written"})).unwrap(),
        StorageCompletion::Written { id: StorageOpId(4) }
    );
    assert_eq!(
        completion(json!({"id": 4, "type": "failed", "reason": "quota"})).unwrap(),
        StorageCompletion::Failed {
            id: StorageOpId(4),
            reason: "quota".into()
        }
    );
    assert_eq!(
        completion(json!({"id": 4, "type": "loaded", "document": text, "stored": null})).unwrap(),
        StorageCompletion::Loaded {
            id: StorageOpId(4),
            document,
            stored: None
        }
    );
    let meta = child().meta().with_document_id(&text);
    let loaded = completion(json!({
        "id": 5, "type": "loaded", "document": text,
        "stored": {"snapshot": null, "changes": [{"hash": "aa".repeat(32), "bytes": [1, 2]}],
                   "meta": to_json(&meta)},
    }))
    .unwrap();
    let StorageCompletion::Loaded {
        stored: Some(stored),
        ..
    } = loaded
    else {
        panic!("{loaded:?}");
    };
    assert_eq!(stored.snapshot, None);
    assert_eq!(
        stored.changes,
        vec![StoredChange {
            hash: hash(0xaa),
            bytes: vec![1, 2]
        }]
    );
    assert_eq!(stored.meta, Some(meta));
    // Missing parts of `stored` are empty.
    let loaded = completion(json!({"id": 5, "type": "loaded", "document": text,
                                   "stored": {"snapshot": [7]}}))
    .unwrap();
    assert!(matches!(
        loaded,
        StorageCompletion::Loaded { stored: Some(ref s), .. }
            if s.snapshot == Some(vec![7]) && s.changes.is_empty() && s.meta.is_none()
    ));
}

#[test]
fn bad_completions_are_refused() {
    let text = doc_id(1).to_string();
    for bad in [
        json!({"id": 1, "type": "loaded", "stored": null}),
        json!({"id": 1, "type": "loaded", "document": "nope", "stored": null}),
        json!({"id": 1, "type": "loaded", "document": text,
               "stored": {"changes": [{"hash": "12", "bytes": []}]}}),
    ] {
        assert_eq!(
            completion(bad.clone()).unwrap_err().code(),
            "bad-input",
            "{bad}"
        );
    }
    for bad in [
        json!({"id": 1, "type": "stored"}),
        json!({"type": "written"}),
        json!({"id": -1, "type": "written"}),
        json!({"id": 1, "type": "loaded", "document": text, "stored": {"snapshot": "x"}}),
    ] {
        assert!(
            serde_json::from_value::<CompletionJson>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn index_entries_are_read() {
    let entry: IndexEntryJson = serde_json::from_value(json!({
        "document": doc_id(1).to_string(), "localHeads": ["01".repeat(32)], "relayHeads": [],
    }))
    .unwrap();
    let (document, entry) = index_entry_from_json(&entry).unwrap();
    assert_eq!(document, doc_id(1));
    assert_eq!(entry.local_heads, vec![hash(1)]);
    assert!(entry.relay_heads.is_empty());
}

#[test]
fn validation_errors_have_both_languages() {
    let mut record = child();
    if let Record::Child(child) = &mut record {
        child.name = " ".into();
    }
    let errors = to_json(&validation_errors(&record));
    assert_eq!(errors[0]["field"], "name");
    assert_eq!(errors[0]["code"], "required");
    assert!(!errors[0]["zh"].as_str().unwrap().is_empty());
    assert!(!errors[0]["en"].as_str().unwrap().is_empty());
    assert_eq!(validation_errors(&child()), vec![]);
}

// ----- a phone driven like the page drives it ----------------------------------------------

/// The page's storage, kept as the JSON the ops carry (what IndexedDB would hold).
#[derive(Default)]
struct JsonStore {
    documents: BTreeMap<String, StoredJsonDoc>,
    scope_cursor: Option<u64>,
}

#[derive(Default)]
struct StoredJsonDoc {
    snapshot: Option<Json>,
    changes: BTreeMap<String, Json>,
    meta: Option<Json>,
    local_heads: Json,
    relay_heads: Json,
}

impl JsonStore {
    /// Carries out one `storage` effect and returns its completion, as the page would.
    fn execute(&mut self, id: &Json, op: &Json) -> Json {
        let document = op["document"].as_str().unwrap_or_default().to_owned();
        match op["type"].as_str().unwrap() {
            "load" => {
                let stored = self.documents.get(&document).map(|doc| {
                    json!({
                        "snapshot": doc.snapshot.clone().unwrap_or(Json::Null),
                        "changes": doc.changes.iter()
                            .map(|(hash, bytes)| json!({"hash": hash, "bytes": bytes}))
                            .collect::<Vec<_>>(),
                        "meta": doc.meta.clone().unwrap_or(Json::Null),
                    })
                });
                return json!({"id": id, "type": "loaded", "document": document,
                              "stored": stored});
            }
            "put-changes" => {
                let doc = self.documents.entry(document).or_default();
                for change in op["changes"].as_array().unwrap() {
                    doc.changes.insert(
                        change["hash"].as_str().unwrap().to_owned(),
                        change["bytes"].clone(),
                    );
                }
                if !op["meta"].is_null() {
                    doc.meta = Some(op["meta"].clone());
                }
                doc.local_heads = op["heads"].clone();
            }
            "compact" => {
                if let Some(doc) = self.documents.get_mut(&document) {
                    doc.snapshot = Some(op["snapshot"].clone());
                    for hash in op["covered"].as_array().unwrap() {
                        doc.changes.remove(hash.as_str().unwrap());
                    }
                }
            }
            "replace" => {
                let doc = self.documents.entry(document).or_default();
                doc.snapshot = Some(op["snapshot"].clone());
                doc.changes.clear();
                // The document is now exactly what the relay holds.
                doc.local_heads = op["heads"].clone();
                doc.relay_heads = op["heads"].clone();
            }
            "save-scope-cursor" => self.scope_cursor = op["cursor"].as_u64(),
            "put-relay-heads" => {
                if let Some(doc) = self.documents.get_mut(&document) {
                    doc.relay_heads = op["heads"].clone();
                }
            }
            other => panic!("a phone never asks for {other}"),
        }
        json!({"id": id, "type": "written"})
    }

    fn index(&self) -> Vec<IndexEntryJson> {
        let entries: Vec<Json> = self
            .documents
            .iter()
            .map(|(document, doc)| {
                json!({"document": document, "localHeads": doc.local_heads,
                       "relayHeads": doc.relay_heads})
            })
            .collect();
        serde_json::from_value(Json::Array(entries)).unwrap()
    }
}

/// A phone, its storage, and what it was told.
struct TestPhone {
    core: PhoneCore,
    store: JsonStore,
    notifications: Vec<Json>,
    outbox: Vec<Vec<u8>>,
}

impl TestPhone {
    fn new(name: &str) -> TestPhone {
        TestPhone {
            core: PhoneCore::new(name, &ActorId::random().to_bytes()[..16], None).unwrap(),
            store: JsonStore::default(),
            notifications: Vec::new(),
            outbox: Vec::new(),
        }
    }

    /// A restart: a new engine over the same storage.
    fn restart(&mut self) {
        let mut core = PhoneCore::new(
            "restarted",
            &ActorId::random().to_bytes()[..16],
            self.store.scope_cursor,
        )
        .unwrap();
        core.restore_index(&self.store.index()).unwrap();
        self.core = core;
    }

    /// The page's loop: take effects (as JSON), carry them out, feed completions back,
    /// until the engine asks for nothing more.
    fn run(&mut self) {
        loop {
            let effects = to_json(&self.core.take_effects());
            let effects = effects.as_array().unwrap();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                match effect["type"].as_str().unwrap() {
                    "send" => self
                        .outbox
                        .push(serde_json::from_value(effect["frame"].clone()).unwrap()),
                    "storage" => {
                        let done = self.store.execute(&effect["id"], &effect["op"]);
                        self.core
                            .storage_completed(NOW, serde_json::from_value(done).unwrap())
                            .unwrap();
                    }
                    "notify" => self.notifications.push(effect["notification"].clone()),
                    "close" => panic!("closed: {effect}"),
                    other => panic!("unexpected effect {other}"),
                }
            }
        }
    }

    fn told(&self, kind: &str) -> Vec<&Json> {
        self.notifications
            .iter()
            .filter(|n| n["type"] == kind)
            .collect()
    }
}

/// A relay engine with its storage in memory, and the frames it queued per connection.
struct Relay {
    repo: Repo<TrustingPolicy>,
    store: MemoryStore,
    outboxes: BTreeMap<ConnectionId, Vec<Vec<u8>>>,
}

impl Relay {
    fn new() -> Relay {
        Relay {
            repo: Repo::new(
                RepoConfig::new(PeerId::from("relay"), Role::Relay, ActorId::random()),
                TrustingPolicy,
            ),
            store: MemoryStore::default(),
            outboxes: BTreeMap::new(),
        }
    }

    fn run(&mut self) {
        loop {
            let effects = self.repo.take_effects();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                match effect {
                    Effect::Send { connection, frame } => {
                        self.outboxes.entry(connection).or_default().push(frame);
                    }
                    Effect::Storage { id, op } => {
                        let completion = match op {
                            // One account sees everything it stored.
                            StorageOp::ListScope { documents, .. } => {
                                StorageCompletion::ScopeListed {
                                    id,
                                    cursor: self.store.sequence,
                                    entries: self
                                        .store
                                        .documents
                                        .iter()
                                        .map(|(document, stored)| ScopeEntry {
                                            document_id: *document,
                                            heads: stored.heads.iter().map(|h| h.0).collect(),
                                            document: documents.then(|| stored.stored_bytes()),
                                        })
                                        .collect(),
                                    removed: Vec::new(),
                                }
                            }
                            op => self.store.execute(id, &op),
                        };
                        self.repo.storage_completed(NOW, completion);
                    }
                    Effect::Close { reason, .. } => panic!("relay closed: {reason:?}"),
                    Effect::Notify(_) | Effect::Audit(_) => {}
                }
            }
        }
    }
}

/// Passes frames both ways on one connection until both sides are quiet.
fn sync(phone: &mut TestPhone, relay: &mut Relay, connection: ConnectionId) {
    for _ in 0..1000 {
        phone.run();
        let to_relay = std::mem::take(&mut phone.outbox);
        for frame in &to_relay {
            relay.repo.frame_received(NOW, connection, frame);
        }
        relay.run();
        let to_phone = relay.outboxes.remove(&connection).unwrap_or_default();
        for frame in &to_phone {
            phone.core.frame_received(NOW, connection, frame);
        }
        phone.run();
        if to_relay.is_empty() && to_phone.is_empty() && phone.outbox.is_empty() {
            return;
        }
    }
    panic!("the phone and the relay never went quiet");
}

fn connect(phone: &mut TestPhone, relay: &mut Relay, connection: ConnectionId) {
    relay.repo.connection_opened(NOW, connection, ());
    phone.core.connection_opened(NOW, connection);
    sync(phone, relay, connection);
    assert!(
        !phone.told("peer-ready").is_empty(),
        "{:?}",
        phone.notifications
    );
}

#[test]
fn a_record_is_created_stored_and_read_back() {
    let mut phone = TestPhone::new("phone-a");
    let record = child();
    let document = phone.core.create_record(NOW, &record, [5; 16]).unwrap();
    // Shown at once, before storage confirms.
    assert_eq!(phone.core.record(&document).unwrap(), Some(record.clone()));
    assert_eq!(phone.core.load_state(&document), "ready");

    let effects = to_json(&phone.core.take_effects());
    let op = &effects[0]["op"];
    assert_eq!(effects[0]["type"], "storage");
    assert_eq!(op["type"], "put-changes");
    assert_eq!(op["document"], document.to_string());
    assert_eq!(op["meta"]["kind"], "child");
    assert_eq!(op["changes"].as_array().unwrap().len(), 1);
    let done = phone.store.execute(&effects[0]["id"], op);
    phone
        .core
        .storage_completed(NOW, serde_json::from_value(done).unwrap())
        .unwrap();
    phone.run();
    assert_eq!(phone.told("local-change-saved").len(), 1);
    assert_eq!(phone.core.unsynced_documents(), vec![document.to_string()]);

    let summary = to_json(&phone.core.summary(&document).unwrap().unwrap());
    assert_eq!(summary["title"], "王小明");
    assert_eq!(summary["kind"], "child");
    assert_eq!(summary["document"], document.to_string());

    // After a restart the record comes back from storage.
    phone.restart();
    assert_eq!(phone.core.load_state(&document), "not-loaded");
    assert_eq!(phone.core.record(&document).unwrap(), None);
    assert_eq!(phone.core.unsynced_documents(), vec![document.to_string()]);
    phone.core.open(NOW, document);
    assert_eq!(phone.core.load_state(&document), "loading");
    phone.run();
    assert_eq!(phone.core.load_state(&document), "ready");
    assert_eq!(phone.core.record(&document).unwrap(), Some(record));
}

#[test]
fn an_invalid_record_is_not_created() {
    let mut phone = TestPhone::new("phone-a");
    let mut record = child();
    if let Record::Child(child) = &mut record {
        child.name = String::new();
        child.categories.clear();
    }
    let error = phone.core.create_record(NOW, &record, [5; 16]).unwrap_err();
    assert_eq!(error.code(), "invalid");
    let fields: Vec<&str> = error
        .validation_errors()
        .unwrap()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(fields, ["name", "categories"]);
    assert!(phone.core.take_effects().is_empty());
    assert_eq!(
        phone.core.load_state(&DocumentId::random_from([5; 16])),
        "not-loaded"
    );
}

#[test]
fn an_update_writes_only_what_changed_and_checks_the_transition() {
    let mut phone = TestPhone::new("phone-a");
    let mut visit = visit();
    let document = phone
        .core
        .create_record(NOW, &visit.clone().into(), [6; 16])
        .unwrap();
    phone.run();

    visit.needs = vec!["课业辅导".into()];
    phone
        .core
        .update_record(NOW + 1, document, &visit.clone().into())
        .unwrap();
    let effects = to_json(&phone.core.take_effects());
    let op = &effects[0]["op"];
    assert_eq!(op["type"], "put-changes");
    // Not new: no meta; one change touching only `needs`.
    assert_eq!(op["meta"], Json::Null);
    assert_eq!(op["changes"].as_array().unwrap().len(), 1);
    assert_eq!(
        phone.core.record(&document).unwrap(),
        Some(visit.clone().into())
    );
    let done = phone.store.execute(&effects[0]["id"], op);
    phone
        .core
        .storage_completed(NOW, serde_json::from_value(done).unwrap())
        .unwrap();
    phone.run();

    // Saving the same record again changes nothing.
    phone
        .core
        .update_record(NOW + 2, document, &visit.clone().into())
        .unwrap();
    assert!(phone.core.take_effects().is_empty());

    // Finishing the visit without its checklist breaks rules the draft did not.
    visit.status = RecordStatus::Final;
    visit.ended_at = Some(T0 + 30 * MINUTE);
    let error = phone
        .core
        .update_record(NOW + 3, document, &visit.clone().into())
        .unwrap_err();
    assert_eq!(error.code(), "invalid");
    assert!(
        error
            .validation_errors()
            .unwrap()
            .iter()
            .any(|e| e.field.starts_with("checklist")),
        "{error}"
    );
    assert!(phone.core.take_effects().is_empty());

    // A record of another kind cannot be written into the document.
    let error = phone
        .core
        .update_record(NOW + 4, document, &child())
        .unwrap_err();
    assert_eq!(error.code(), "invalid");
    assert_eq!(error.validation_errors().unwrap()[0].field, "kind");

    // A document that is not open cannot be updated.
    let error = phone
        .core
        .update_record(NOW, doc_id(77), &child())
        .unwrap_err();
    assert_eq!(error.code(), "not-open");
}

#[test]
fn records_sync_through_a_relay_to_another_phone() {
    let mut relay = Relay::new();
    let mut phone_a = TestPhone::new("phone-a");
    let record = child();
    let document = phone_a.core.create_record(NOW, &record, [8; 16]).unwrap();
    phone_a.run();
    assert_eq!(phone_a.core.unsynced_documents().len(), 1);

    connect(&mut phone_a, &mut relay, ConnectionId(1));
    // The relay stored the record and acknowledged it: nothing is left to push.
    assert!(relay.store.documents.contains_key(&document));
    assert_eq!(phone_a.core.unsynced_documents(), Vec::<String>::new());
    let stored = &phone_a.store.documents[&document.to_string()];
    assert_eq!(stored.local_heads, stored.relay_heads);
    assert!(phone_a.store.scope_cursor.is_some());
    assert!(!phone_a.told("scope-synced").is_empty());

    // A second phone learns of it through its scope and reads it.
    let mut phone_b = TestPhone::new("phone-b");
    connect(&mut phone_b, &mut relay, ConnectionId(2));
    assert!(
        phone_b
            .told("document-changed")
            .iter()
            .any(|n| n["document"] == document.to_string())
    );
    phone_b.core.open(NOW, document);
    sync(&mut phone_b, &mut relay, ConnectionId(2));
    assert_eq!(phone_b.core.record(&document).unwrap(), Some(record));

    // Its edit comes back to the first phone.
    let Some(Record::Child(mut edited)) = phone_b.core.record(&document).unwrap() else {
        panic!("not a child");
    };
    edited.name = "王晓明".into();
    phone_b
        .core
        .update_record(NOW, document, &edited.clone().into())
        .unwrap();
    sync(&mut phone_b, &mut relay, ConnectionId(2));
    sync(&mut phone_a, &mut relay, ConnectionId(1));
    assert_eq!(phone_a.core.record(&document).unwrap(), Some(edited.into()));
}

#[test]
fn a_phone_needs_a_sixteen_byte_actor_and_a_peer_id() {
    assert_eq!(
        PhoneCore::new("p", &[1; 15], None).unwrap_err().code(),
        "bad-input"
    );
    assert_eq!(
        PhoneCore::new("", &[1; 16], None).unwrap_err().code(),
        "bad-input"
    );
    let mut phone = PhoneCore::new("p", &[1; 16], Some(3)).unwrap();
    phone.connection_opened(NOW, ConnectionId(0));
    let effects = to_json(&phone.take_effects());
    assert_eq!(effects[0]["type"], "send");
    assert_eq!(effects[0]["connection"], 0);
}
