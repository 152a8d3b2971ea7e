//! The fuzz targets' kept inputs replayed as ordinary tests (design §5): every file of
//! `fuzz/corpus/<target>/` (seeds and interesting inputs from past runs) and of
//! `fuzz/regressions/<target>/` (inputs that once crashed a target) goes through the same
//! body the fuzz target runs, `caresync_core::fuzzing::<target>`, and none may panic.
//!
//! So a fixed crash stays fixed without libFuzzer or the nightly toolchain. `scripts/fuzz.sh`
//! runs the targets and copies new crashers into `fuzz/regressions/`.
//!
//! The seeds in the corpus are written by `write_seed_corpus` below (ignored; run it with
//! `cargo test -p caresync-tests --test fuzz_replay -- --ignored write_seed_corpus` after
//! a change to the wire format or the records), plus the codec's hand-made frames of
//! `core/tests/corpus/frames/`.

// A test reports failures by panicking; paths, fixed seed values and seed names are
// unwrapped or indexed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Automerge, ROOT};
use caresync_core::domain::{
    AccountId, CareNeedsLevel, Child, ChildCategory, Elder, Gender, Guardian, GuardianRelation,
    HomeVisit, Millis, OrgUnitCode, Record, ServiceLog, SubjectId, YearMonth,
};
use caresync_core::fuzzing::{self, NOW_MS, OTHER_VILLAGE, PEER, STORED_DOCUMENT, VILLAGE};
use caresync_core::protocol::{DocumentId, Message, PeerId, RemoteHeads, StorageId};
use caresync_core::sync::{AuditEvent, Effect, StorageOp};

/// What a fuzz target does with one input.
type Body = fn(&[u8]);

/// Each target's name (its folder under `fuzz/corpus/` and `fuzz/regressions/`) and body.
const TARGETS: [(&str, Body); 3] = [
    ("frame_decoder", fuzzing::frame_decoder),
    ("document_load", fuzzing::document_load),
    ("relay_receive", fuzzing::relay_receive),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly in `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `body` on every kept input of `target`; returns how many ran and which panicked.
fn replay(target: &str, body: Body) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    for folder in ["corpus", "regressions"] {
        for path in inputs(&fuzz_dir().join(folder).join(target)) {
            let data = fs::read(&path).unwrap();
            ran += 1;
            if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
                failures.push(format!("{target}: {}", path.display()));
            }
        }
    }
    (ran, failures)
}

#[test]
fn every_kept_fuzz_input_runs_without_a_panic() {
    let mut failures = Vec::new();
    for (target, body) in TARGETS {
        let (ran, failed) = replay(target, body);
        // An empty corpus would make this test pass without testing anything (a moved
        // folder, a typo): every target has seeds.
        assert!(
            ran > 0,
            "no kept inputs found for {target} under {:?}",
            fuzz_dir()
        );
        println!("{target}: {ran} inputs replayed");
        failures.extend(failed);
    }
    assert!(
        failures.is_empty(),
        "fuzz inputs that panic (reproduce with `cargo +nightly fuzz run <target> <file>` from the repository root):\n{}",
        failures.join("\n")
    );
}

// ----- seeds -------------------------------------------------------------------------

/// The relay's seeds reach what they are named for, so the fuzzer starts from deep inside
/// the engine rather than at the decoder; a change of the engine that makes them shallow
/// (a seed refused at the door) shows here, and the seeds are written again.
#[test]
fn relay_seeds_reach_the_code_they_are_made_for() {
    let stored_write = |effects: &[Effect], document: DocumentId| {
        effects.iter().any(|effect| {
            matches!(effect, Effect::Storage { op: StorageOp::PutChanges { document: d, .. }, .. } if *d == document)
        })
    };
    let refused = |effects: &[Effect]| {
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::Audit(AuditEvent::ChangeRefused { .. })))
    };
    let sent = |effects: &[Effect], type_name: &str| {
        effects.iter().any(|effect| match effect {
            Effect::Send { frame, .. } => {
                Message::decode(frame).is_ok_and(|message| message.type_name() == type_name)
            }
            _ => false,
        })
    };
    let seeds: std::collections::BTreeMap<String, Vec<u8>> = relay_seeds().into_iter().collect();
    let run = |name: &str| fuzzing::relay_receive_effects(&seeds[name]);
    let new_document = DocumentId::from_bytes([9; 16]);

    for name in ["sync-create-child", "sync-new-child", "sync-new-visit"] {
        let effects = run(name);
        assert!(stored_write(&effects, new_document), "{name}: {effects:#?}");
    }
    for name in [
        "sync-create-child-other-village",
        "sync-create-child-invalid",
        "sync-move-stored",
    ] {
        let effects = run(name);
        assert!(refused(&effects), "{name}: {effects:#?}");
    }
    let effects = run("sync-edit-stored");
    assert!(stored_write(&effects, STORED_DOCUMENT), "{effects:#?}");
    let effects = run("request-stored");
    assert!(sent(&effects, "sync"), "{effects:#?}");
    let effects = run("request-unknown");
    assert!(sent(&effects, "doc-unavailable"), "{effects:#?}");
    let effects = run("scope-request");
    assert!(sent(&effects, "caresync-scope"), "{effects:#?}");
    // The orphan is kept back and its missing dependency asked for: nothing is stored.
    let effects = run("sync-orphan-stored");
    assert!(
        !stored_write(&effects, STORED_DOCUMENT) && !refused(&effects),
        "{effects:#?}"
    );
}

/// A day before the relay's time, in the records' milliseconds.
const T0: Millis = NOW_MS as Millis - 86_400_000;

fn child(village: &str, name: &str) -> Record {
    let mut child = Child::new(
        OrgUnitCode::new(village),
        name,
        YearMonth::new(2015, 6).unwrap(),
        Gender::Female,
    );
    child.categories = vec![ChildCategory::LeftBehind];
    child.guardians = vec![Guardian {
        name: "张奶奶".to_owned(),
        relation: GuardianRelation::Grandparent,
        phone: Some("13800000000".to_owned()),
    }];
    Record::from(child)
}

fn records() -> Vec<(&'static str, Record)> {
    let village = OrgUnitCode::new(VILLAGE);
    let mut visit = HomeVisit::new(
        village.clone(),
        AccountId::new("fuzz-director"),
        SubjectId::new(STORED_DOCUMENT.to_string()),
        T0,
    );
    visit.ended_at = Some(T0 + 45 * 60_000);
    visit.needs = vec!["课业辅导".to_owned()];
    let mut log = ServiceLog::new(
        village.clone(),
        AccountId::new("cw-1"),
        SubjectId::new("3Xy7ElderDocId"),
        T0,
    );
    log.check_out = Some(T0 + 90 * 60_000);
    let elder = Elder::new(
        village,
        "李大爷",
        YearMonth::new(1940, 11).unwrap(),
        Gender::Male,
        CareNeedsLevel::Moderate,
    );
    vec![
        ("child", child(VILLAGE, "王小红")),
        ("elder", Record::from(elder)),
        ("visit", Record::from(visit)),
        ("log", Record::from(log)),
    ]
}

/// A document holding `record`, made by actor `actor`.
fn document_of(record: &Record, actor: u8) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from([actor; 16]));
    record.save(&mut doc).unwrap();
    doc
}

/// The `sync` message a device sends once the relay has told it what it holds: automerge's
/// own protocol run between `device` and a relay holding `relay`, the third message.
fn sync_data_with_changes(device: &Automerge, relay: &Automerge) -> Vec<u8> {
    let mut device_state = sync::State::new();
    let mut relay_state = sync::State::new();
    let mut relay = relay.clone();
    let first = device.generate_sync_message(&mut device_state).unwrap();
    relay.receive_sync_message(&mut relay_state, first).unwrap();
    let answer = relay.generate_sync_message(&mut relay_state).unwrap();
    let mut device = device.clone();
    device
        .receive_sync_message(&mut device_state, answer)
        .unwrap();
    device
        .generate_sync_message(&mut device_state)
        .unwrap()
        .encode()
}

fn sync_frame(document: DocumentId, data: Vec<u8>, request: bool) -> Vec<u8> {
    let sender_id = PeerId::from(PEER);
    let target_id = PeerId::from("relay");
    let message = if request {
        Message::Request {
            document_id: document,
            sender_id,
            target_id,
            data,
        }
    } else {
        Message::Sync {
            document_id: document,
            sender_id,
            target_id,
            data,
        }
    };
    message.encode()
}

fn relay_seeds() -> Vec<(String, Vec<u8>)> {
    let new_document = DocumentId::from_bytes([9; 16]);
    let stored = fuzzing::stored_child();
    let mut seeds = Vec::new();
    let empty = Automerge::new();

    // A new record of the director's own village (accepted), of another village
    // (forbidden) and an invalid one (no name).
    for (name, record) in [
        ("create-child", child(VILLAGE, "王小红")),
        ("create-child-other-village", child(OTHER_VILLAGE, "王小红")),
        ("create-child-invalid", child(VILLAGE, "")),
    ] {
        let doc = document_of(&record, 4).document().clone();
        let data = sync_data_with_changes(&doc, &empty);
        seeds.push((
            format!("sync-{name}"),
            sync_frame(new_document, data, false),
        ));
    }
    for (name, record) in records() {
        let doc = document_of(&record, 5).document().clone();
        let data = sync_data_with_changes(&doc, &empty);
        seeds.push((
            format!("sync-new-{name}"),
            sync_frame(new_document, data, false),
        ));
    }

    // The stored child: asked for, changed on top of its heads, changed in a way the
    // rules refuse, and a change whose dependency the relay lacks (an orphan).
    let first_sync = stored
        .clone()
        .generate_sync_message(&mut sync::State::new())
        .unwrap()
        .encode();
    seeds.push((
        "request-stored".to_owned(),
        sync_frame(STORED_DOCUMENT, first_sync.clone(), true),
    ));
    seeds.push((
        "request-unknown".to_owned(),
        sync_frame(new_document, first_sync, true),
    ));
    let mut edited = AutoCommit::load(&stored.save())
        .unwrap()
        .with_actor(ActorId::from([6; 16]));
    edited.put(ROOT, "name", "王小明明").unwrap();
    edited.commit();
    let data = sync_data_with_changes(edited.document(), &stored);
    seeds.push((
        "sync-edit-stored".to_owned(),
        sync_frame(STORED_DOCUMENT, data, false),
    ));
    let mut moved = AutoCommit::load(&stored.save())
        .unwrap()
        .with_actor(ActorId::from([6; 16]));
    moved.put(ROOT, "orgUnit", OTHER_VILLAGE).unwrap();
    moved.commit();
    let data = sync_data_with_changes(moved.document(), &stored);
    seeds.push((
        "sync-move-stored".to_owned(),
        sync_frame(STORED_DOCUMENT, data, false),
    ));
    let mut two_steps = edited.clone();
    two_steps.put(ROOT, "status", "moved-away").unwrap();
    two_steps.commit();
    let last = two_steps
        .document()
        .get_last_local_change()
        .unwrap()
        .clone();
    let orphan = sync::Message {
        heads: two_steps.document().get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: sync::ChunkList::from(vec![last.raw_bytes().to_vec()]),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    seeds.push((
        "sync-orphan-stored".to_owned(),
        sync_frame(STORED_DOCUMENT, orphan.encode(), false),
    ));

    // The other messages a peer may send after the handshake.
    let sender_id = PeerId::from(PEER);
    let target_id = PeerId::from("relay");
    let others = [
        (
            "scope-request",
            Message::ScopeRequest {
                sender_id: sender_id.clone(),
                target_id: target_id.clone(),
                since: None,
                documents: true,
            },
        ),
        (
            "scope-request-since",
            Message::ScopeRequest {
                sender_id: sender_id.clone(),
                target_id: target_id.clone(),
                since: Some(0),
                documents: false,
            },
        ),
        (
            "ephemeral",
            Message::Ephemeral {
                sender_id: sender_id.clone(),
                target_id: target_id.clone(),
                count: 1,
                session_id: "session".to_owned(),
                document_id: STORED_DOCUMENT,
                data: vec![0xa1, 0x61, 0x78, 0x01],
            },
        ),
        (
            "doc-unavailable",
            Message::DocUnavailable {
                document_id: STORED_DOCUMENT,
                sender_id: sender_id.clone(),
                target_id: target_id.clone(),
            },
        ),
        (
            "remote-heads-changed",
            Message::RemoteHeadsChanged {
                sender_id: sender_id.clone(),
                target_id: target_id.clone(),
                document_id: STORED_DOCUMENT,
                new_heads: [(
                    StorageId::from("storage"),
                    RemoteHeads {
                        heads: vec!["2ZbGQCarYNT7L4N6ToCe9ZVNmTMpzNRXCEZ1ZyJPC5gC".to_owned()],
                        timestamp: NOW_MS,
                    },
                )]
                .into_iter()
                .collect(),
            },
        ),
        (
            "leave",
            Message::Leave {
                sender_id: sender_id.clone(),
            },
        ),
        (
            "error",
            Message::Error {
                message: "bye".to_owned(),
                sender_id: Some(sender_id.clone()),
                target_id: Some(target_id.clone()),
            },
        ),
        (
            "join-again",
            Message::Join {
                sender_id: sender_id.clone(),
                supported_protocol_versions: vec!["1".to_owned()],
                peer_metadata: None,
            },
        ),
    ];
    for (name, message) in others {
        seeds.push((name.to_owned(), message.encode()));
    }
    seeds
}

fn document_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (name, record) in records() {
        let mut doc = document_of(&record, 8);
        seeds.push((format!("saved-{name}"), doc.save()));
        // A change row as the relay stores it: one change, not a whole document.
        let change = doc.document().get_last_local_change().unwrap();
        seeds.push((format!("change-{name}"), change.raw_bytes().to_vec()));
    }
    // A record edited after it was saved, then saved incrementally (a snapshot plus a row).
    let mut doc = document_of(&child(VILLAGE, "王小红"), 8);
    let _ = doc.save();
    doc.put(ROOT, "name", "王小丽").unwrap();
    seeds.push(("incremental-child".to_owned(), doc.save_incremental()));
    seeds.push(("stored-child".to_owned(), fuzzing::stored_child().save()));
    seeds.push(("empty-document".to_owned(), Automerge::new().save()));
    seeds
}

/// Writes the seeds into `fuzz/corpus/<target>/seed-*`; see the module documentation.
#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seed_corpus() {
    let corpus = fuzz_dir().join("corpus");
    let mut frames: Vec<(String, Vec<u8>)> =
        inputs(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/corpus/frames"))
            .into_iter()
            .filter(|path| path.extension().is_some_and(|ext| ext == "cbor"))
            .map(|path| {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                (format!("codec-{name}"), fs::read(&path).unwrap())
            })
            .collect();
    let relay = relay_seeds();
    frames.extend(relay.iter().cloned());
    frames.push(("join".to_owned(), fuzzing::join_frame()));
    for (target, seeds) in [
        ("frame_decoder", frames),
        ("document_load", document_seeds()),
        ("relay_receive", relay),
    ] {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
}
