//! Writes the malformed-input corpus of `tests/corpus/malformed/` (design §5, issue 6).
//!
//! One file per case, each holding the bytes of one binary WebSocket message, named
//! `<group>-<what is wrong>.cbor`. `tests/tests/relay_malformed.rs` replays the files against
//! the real relay; the group (the name's prefix) decides how a case is sent (on a fresh
//! socket, or after a valid `join`) and which answer it must get. `setup/` holds the few valid
//! frames the test sends first (records the cases refer to by id), and `README.md` lists
//! every case with what is wrong with it.
//!
//! Run `cargo run -p caresync-tests --bin make-malformed-corpus`: it deletes the folder's
//! `.cbor` files and writes them again. The output is deterministic (fixed document ids,
//! actors and change times), so `git diff` shows exactly what a change here changed. The
//! files are committed because the suite replays them, not this generator.
//!
//! The records are written for the demo data of `caresync serve --demo`: the first
//! village ([`OWN_VILLAGE`]) is `demo-director`'s, the second ([`OTHER_VILLAGE`])
//! `demo-director-2`'s. The test checks that this still holds before replaying.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail, ensure};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ROOT};
use caresync_core::domain::{ChildCategory, Gender, OrgUnitCode, Record, YearMonth};
use caresync_core::protocol::{
    DocumentId, FRAME_BYTES_MAX, Message, PeerId, STRING_BYTES_MAX, ScopeEntry,
};

/// `demo-director`'s village in the demo data.
const OWN_VILLAGE: &str = "370402102201";
/// `demo-director-2`'s village in the demo data.
const OTHER_VILLAGE: &str = "370402102202";
/// The time of every change made here (seconds since the epoch, 2026-09-21).
const CHANGE_TIME_S: i64 = 1_790_000_000;
/// The sender id the cases use; the relay does not check that it matches the `join`.
const SENDER: &str = "malformed-peer";
/// Any target id: the relay does not read it.
const TARGET: &str = "relay";
/// What each deflate bomb inflates to: far beyond what the relay may hold for one message.
const BOMB_INFLATED_BYTES: usize = 256 * 1024 * 1024;
/// The size of the "huge but within the frame limit" values.
const HUGE_VALUE_BYTES: usize = 1024 * 1024;

fn main() -> anyhow::Result<()> {
    let root = caresync_tests::relay::workspace_root()?;
    let out = root.join("tests/corpus/malformed");
    let corpus = build(root)?;
    corpus.write(&out)?;
    println!(
        "wrote {} cases and {} setup frames to {}",
        corpus.cases.len(),
        corpus.setup.len(),
        out.display()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The corpus and its files
// ---------------------------------------------------------------------------------------

struct Case {
    name: String,
    about: String,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
    setup: Vec<Case>,
}

impl Corpus {
    fn add(&mut self, name: impl Into<String>, about: impl Into<String>, bytes: Vec<u8>) {
        self.cases.push(Case {
            name: name.into(),
            about: about.into(),
            bytes,
        });
    }

    fn check(&self) -> anyhow::Result<()> {
        let mut names = BTreeSet::new();
        for case in self.cases.iter().chain(&self.setup) {
            ensure!(
                case.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "case name {:?} is not lowercase-kebab",
                case.name
            );
            ensure!(names.insert(&case.name), "duplicate case {}", case.name);
        }
        Ok(())
    }

    /// Replaces the folder's `.cbor` files (and `README.md`) with this corpus.
    fn write(&self, out: &Path) -> anyhow::Result<()> {
        self.check()?;
        let setup_dir = out.join("setup");
        std::fs::create_dir_all(&setup_dir)
            .with_context(|| format!("cannot create {}", setup_dir.display()))?;
        for dir in [out, setup_dir.as_path()] {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.extension().is_some_and(|ext| ext == "cbor") {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                }
            }
        }
        for (dir, cases) in [(out, &self.cases), (setup_dir.as_path(), &self.setup)] {
            for case in cases {
                let path: PathBuf = dir.join(format!("{}.cbor", case.name));
                std::fs::File::create(&path)
                    .and_then(|mut file| file.write_all(&case.bytes))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        std::fs::write(out.join("README.md"), self.readme()?)?;
        Ok(())
    }

    fn readme(&self) -> anyhow::Result<String> {
        let mut text = String::new();
        writeln!(text, "# Malformed-input corpus")?;
        writeln!(text)?;
        writeln!(
            text,
            "Written by `cargo run -p caresync-tests --bin make-malformed-corpus` \
             (`tests/src/bin/make_malformed_corpus.rs`); do not edit by hand. Each `.cbor` \
             file is one binary WebSocket message. `tests/tests/relay_malformed.rs` replays \
             them against the real relay and says, per group, which answer each must get."
        )?;
        writeln!(text)?;
        writeln!(text, "| case | bytes | what is wrong |")?;
        writeln!(text, "|---|---:|---|")?;
        let mut sorted: Vec<&Case> = self.cases.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for case in sorted {
            writeln!(
                text,
                "| `{}` | {} | {} |",
                case.name,
                case.bytes.len(),
                case.about
            )?;
        }
        writeln!(text)?;
        writeln!(text, "Setup frames (`setup/`), sent before the cases:")?;
        writeln!(text)?;
        for case in &self.setup {
            writeln!(text, "- `{}`: {}", case.name, case.about)?;
        }
        Ok(text)
    }
}

// ---------------------------------------------------------------------------------------
// A minimal CBOR writer, so that malformed frames can be made byte by byte
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum C {
    U(u64),
    /// The negative integer `-1 - n`.
    Neg(u64),
    B(Vec<u8>),
    T(String),
    A(Vec<C>),
    M(Vec<(C, C)>),
    Bool(bool),
    Null,
    F64(f64),
    Tag(u64, Box<C>),
    /// Bytes written as they are (invalid UTF-8, reserved bytes, ...).
    Raw(Vec<u8>),
}

fn t(text: &str) -> C {
    C::T(text.to_owned())
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if n < 24 {
        out.push(major | n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend([major | 24, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(major | 25);
        out.extend(n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(major | 26);
        out.extend(n.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend(n.to_be_bytes());
    }
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn encode_into(value: &C, out: &mut Vec<u8>) {
    match value {
        C::U(n) => head(out, 0, *n),
        C::Neg(n) => head(out, 1, *n),
        C::B(bytes) => {
            head(out, 2, len(bytes.len()));
            out.extend(bytes);
        }
        C::T(text) => {
            head(out, 3, len(text.len()));
            out.extend(text.as_bytes());
        }
        C::A(items) => {
            head(out, 4, len(items.len()));
            for item in items {
                encode_into(item, out);
            }
        }
        C::M(pairs) => {
            head(out, 5, len(pairs.len()));
            for (key, value) in pairs {
                encode_into(key, out);
                encode_into(value, out);
            }
        }
        C::Tag(tag, inner) => {
            head(out, 6, *tag);
            encode_into(inner, out);
        }
        C::Bool(false) => out.push(0xf4),
        C::Bool(true) => out.push(0xf5),
        C::Null => out.push(0xf6),
        C::F64(x) => {
            out.push(0xfb);
            out.extend(x.to_be_bytes());
        }
        C::Raw(bytes) => out.extend(bytes),
    }
}

fn cbor(value: &C) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// One frame's fields, in order; `None` values are left out (a missing field).
type Fields = Vec<(&'static str, Option<C>)>;

fn frame(fields: &Fields) -> Vec<u8> {
    let pairs = fields
        .iter()
        .filter_map(|(key, value)| value.clone().map(|value| (t(key), value)))
        .collect();
    cbor(&C::M(pairs))
}

/// `fields` with `key` set to `value` (or left out for `None`); a key the fields lack is
/// added at the end.
fn with(fields: &Fields, key: &'static str, value: Option<C>) -> Fields {
    let mut out: Fields = fields
        .iter()
        .map(|(k, v)| (*k, if *k == key { value.clone() } else { v.clone() }))
        .collect();
    if !fields.iter().any(|(k, _)| *k == key) {
        out.push((key, value));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Valid messages the cases start from
// ---------------------------------------------------------------------------------------

/// A fixed document id; `n` tells the corpus's documents apart.
fn doc(n: u8) -> DocumentId {
    DocumentId::random_from([n; 16])
}

fn id_text(document: DocumentId) -> C {
    C::T(document.to_string())
}

fn join_fields() -> Fields {
    vec![
        ("type", Some(t("join"))),
        ("senderId", Some(t(SENDER))),
        ("supportedProtocolVersions", Some(C::A(vec![t("1")]))),
    ]
}

fn sync_fields(kind: &str, document: DocumentId, data: Vec<u8>) -> Fields {
    vec![
        ("type", Some(t(kind))),
        ("documentId", Some(id_text(document))),
        ("senderId", Some(t(SENDER))),
        ("targetId", Some(t(TARGET))),
        ("data", Some(C::B(data))),
    ]
}

fn unavailable_fields(document: DocumentId) -> Fields {
    vec![
        ("type", Some(t("doc-unavailable"))),
        ("documentId", Some(id_text(document))),
        ("senderId", Some(t(SENDER))),
        ("targetId", Some(t(TARGET))),
    ]
}

fn ephemeral_fields(document: DocumentId, data: Vec<u8>) -> Fields {
    vec![
        ("type", Some(t("ephemeral"))),
        ("senderId", Some(t(SENDER))),
        ("targetId", Some(t(TARGET))),
        ("count", Some(C::U(1))),
        ("sessionId", Some(t("session-1"))),
        ("documentId", Some(id_text(document))),
        ("data", Some(C::B(data))),
    ]
}

fn leave_fields() -> Fields {
    vec![("type", Some(t("leave"))), ("senderId", Some(t(SENDER)))]
}

fn error_fields() -> Fields {
    vec![("type", Some(t("error"))), ("message", Some(t("bye")))]
}

fn subscription_fields() -> Fields {
    vec![
        ("type", Some(t("remote-subscription-change"))),
        ("senderId", Some(t(SENDER))),
        ("targetId", Some(t(TARGET))),
        ("add", Some(C::A(vec![t("storage-a")]))),
        ("remove", Some(C::A(vec![t("storage-b")]))),
    ]
}

fn remote_heads_fields(document: DocumentId) -> Fields {
    vec![
        ("type", Some(t("remote-heads-changed"))),
        ("senderId", Some(t(SENDER))),
        ("targetId", Some(t(TARGET))),
        ("documentId", Some(id_text(document))),
        (
            "newHeads",
            Some(C::M(vec![(
                t("storage-a"),
                C::M(vec![
                    (t("heads"), C::A(vec![])),
                    (t("timestamp"), C::U(1_790_000_000_000)),
                ]),
            )])),
        ),
    ]
}

fn scope_request_fields() -> Fields {
    vec![
        ("type", Some(t("caresync-scope-request"))),
        ("senderId", Some(t(SENDER))),
        ("targetId", Some(t(TARGET))),
        ("since", Some(C::U(0))),
    ]
}

/// A change history made with a fixed actor and time, so the bytes never vary.
struct History {
    changes: Vec<Change>,
}

impl History {
    fn raw(&self, index: usize) -> anyhow::Result<Vec<u8>> {
        self.changes
            .get(index)
            .map(|change| change.raw_bytes().to_vec())
            .ok_or_else(|| anyhow!("the history has no change {index}"))
    }

    fn hash(&self, index: usize) -> anyhow::Result<[u8; 32]> {
        self.changes
            .get(index)
            .map(|change| change.hash().0)
            .ok_or_else(|| anyhow!("the history has no change {index}"))
    }
}

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16].as_slice())
}

fn commit(doc: &mut AutoCommit) {
    doc.commit_with(CommitOptions::default().with_time(CHANGE_TIME_S));
}

fn child(village: &str, name: &str) -> Record {
    let mut child = caresync_core::domain::Child::new(
        OrgUnitCode::new(village),
        name,
        YearMonth::new(2016, 5).unwrap_or_else(|| unreachable!("a valid month")),
        Gender::Female,
    );
    child.categories.push(ChildCategory::LeftBehind);
    Record::Child(child)
}

/// A child record in `village`, then one change per further name.
fn record_history(actor_n: u8, village: &str, names: &[&str]) -> anyhow::Result<History> {
    let mut doc = AutoCommit::new().with_actor(actor(actor_n));
    let mut record = child(village, names.first().copied().unwrap_or("测试"));
    record.save(&mut doc)?;
    commit(&mut doc);
    for name in names.iter().skip(1) {
        if let Record::Child(child) = &mut record {
            (*name).clone_into(&mut child.name);
        }
        record.save(&mut doc)?;
        commit(&mut doc);
    }
    Ok(History {
        changes: doc.get_changes(&[]),
    })
}

/// A document that is no record at all: `changes` changes of a counter field.
fn plain_history(actor_n: u8, changes: usize) -> anyhow::Result<History> {
    let mut doc = AutoCommit::new().with_actor(actor(actor_n));
    for n in 0..changes {
        doc.put(ROOT, "n", i64::try_from(n)?)?;
        commit(&mut doc);
    }
    Ok(History {
        changes: doc.get_changes(&[]),
    })
}

// ---------------------------------------------------------------------------------------
// automerge sync messages, written by hand so that broken ones can be made
// ---------------------------------------------------------------------------------------

fn leb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn hashes(out: &mut Vec<u8>, list: &[[u8; 32]]) {
    leb(out, len(list.len()));
    for hash in list {
        out.extend(hash);
    }
}

/// A bloom filter as automerge writes it: entries, bits per entry, probes, then the bits.
fn bloom(entries: u32, bits_per_entry: u32, probes: u32) -> Vec<u8> {
    let mut out = Vec::new();
    leb(&mut out, u64::from(entries));
    leb(&mut out, u64::from(bits_per_entry));
    leb(&mut out, u64::from(probes));
    let bits = (u64::from(entries) * u64::from(bits_per_entry)).div_ceil(8);
    out.resize(out.len() + usize::try_from(bits).unwrap_or(0), 0);
    out
}

/// A v1 sync message (`0x42`): heads, need, haves of (last sync, bloom bytes), changes.
fn sync_message(
    heads: &[[u8; 32]],
    need: &[[u8; 32]],
    have: &[(Vec<[u8; 32]>, Vec<u8>)],
    changes: &[Vec<u8>],
) -> Vec<u8> {
    let mut out = vec![0x42];
    hashes(&mut out, heads);
    hashes(&mut out, need);
    leb(&mut out, len(have.len()));
    for (last_sync, bloom) in have {
        hashes(&mut out, last_sync);
        leb(&mut out, len(bloom.len()));
        out.extend(bloom);
    }
    leb(&mut out, len(changes.len()));
    for change in changes {
        leb(&mut out, len(change.len()));
        out.extend(change);
    }
    out
}

/// What a peer that holds nothing sends first: no heads, an empty bloom filter.
fn empty_sync_message() -> Vec<u8> {
    sync_message(&[], &[], &[(vec![], vec![])], &[])
}

/// A sync message carrying `changes` with `heads` as the sender's heads.
fn carrying(heads: &[[u8; 32]], changes: &[Vec<u8>]) -> Vec<u8> {
    sync_message(heads, &[], &[(vec![], vec![])], changes)
}

fn decodes_as_sync_message(data: &[u8]) -> bool {
    automerge::sync::Message::decode(data).is_ok()
}

// ---------------------------------------------------------------------------------------
// automerge storage chunks, for the bombs and broken changes
// ---------------------------------------------------------------------------------------

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;
const CHUNK_BUNDLE: u8 = 3;
/// The deflate flag of a column specification.
const COLUMN_DEFLATE: u64 = 0b1000;

/// A chunk: magic bytes, a checksum (automerge inflates before it checks it), the type and
/// the length-prefixed body.
fn chunk(chunk_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend([0xde, 0xad, 0xbe, 0xef, chunk_type]);
    leb(&mut out, len(body.len()));
    out.extend(body);
    out
}

/// `inflated` zero bytes, deflated as hard as deflate goes (about 1000:1).
fn deflated_zeros(inflated: usize) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1024 * 1024];
    let mut left = inflated;
    while left > 0 {
        let n = left.min(block.len());
        encoder.write_all(block.get(..n).unwrap_or_default())?;
        left -= n;
    }
    Ok(encoder.finish()?)
}

/// The body of a document chunk with one actor, no heads and one deflated change column.
fn document_body_with_column(column: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    leb(&mut body, 1);
    leb(&mut body, 16);
    body.extend([7u8; 16]);
    leb(&mut body, 0);
    // Change columns: one, the actor column (id 0, type 1), deflated.
    leb(&mut body, 1);
    leb(&mut body, 1 | COLUMN_DEFLATE);
    leb(&mut body, len(column.len()));
    // Op columns: none.
    leb(&mut body, 0);
    body.extend(column);
    body
}

/// The body of a bundle chunk with no deps, one actor and one deflated change column.
fn bundle_body_with_column(column: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    leb(&mut body, 0);
    leb(&mut body, 1);
    leb(&mut body, 16);
    body.extend([7u8; 16]);
    leb(&mut body, 1);
    leb(&mut body, 1 | COLUMN_DEFLATE);
    leb(&mut body, len(column.len()));
    body.extend(column);
    leb(&mut body, 0);
    body
}

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

/// Documents of the corpus.
struct Docs {
    /// Stored in setup by `demo-director`: the cases that need an existing document use it.
    own: DocumentId,
    /// Stored in setup by `demo-director-2`: another village's record.
    other: DocumentId,
    /// Never stored by anyone.
    unknown: DocumentId,
    /// The record the `replay-` sequence writes.
    replay: DocumentId,
}

fn build(root: &Path) -> anyhow::Result<Corpus> {
    let docs = Docs {
        own: doc(1),
        other: doc(2),
        unknown: doc(3),
        replay: doc(4),
    };
    let own = record_history(1, OWN_VILLAGE, &["种子记录"])?;
    let other = record_history(2, OTHER_VILLAGE, &["别村记录", "别村记录改"])?;
    let mut corpus = Corpus::default();
    corpus.setup.push(Case {
        name: "1-director-stores-own-village-record".to_owned(),
        about: format!(
            "`demo-director` stores a child record {} in its own village",
            docs.own
        ),
        bytes: frame(&sync_fields(
            "sync",
            docs.own,
            carrying(&[own.hash(0)?], &[own.raw(0)?]),
        )),
    });
    corpus.setup.push(Case {
        name: "2-director-2-stores-other-village-record".to_owned(),
        about: format!(
            "`demo-director-2` stores a child record {} in the second village",
            docs.other
        ),
        bytes: frame(&sync_fields(
            "sync",
            docs.other,
            carrying(&[other.hash(0)?], &[other.raw(0)?]),
        )),
    });

    codec_cases(&mut corpus, root)?;
    truncated_cases(&mut corpus, &docs, &own)?;
    cbor_cases(&mut corpus, &docs);
    nesting_cases(&mut corpus, &docs);
    field_cases(&mut corpus, &docs);
    type_cases(&mut corpus, &docs);
    docid_cases(&mut corpus, &docs);
    huge_cases(&mut corpus, &docs);
    handshake_cases(&mut corpus, &docs);
    join_cases(&mut corpus);
    farewell_cases(&mut corpus);
    sync_data_cases(&mut corpus, &docs, &own)?;
    bloom_cases(&mut corpus, &docs, &own)?;
    changes_cases(&mut corpus, &docs, &own, &other)?;
    bomb_cases(&mut corpus)?;
    replay_cases(&mut corpus, &docs)?;
    orphan_cases(&mut corpus, &own)?;
    unknown_cases(&mut corpus, &docs, &other)?;
    ephemeral_cases(&mut corpus, &docs);
    gossip_cases(&mut corpus, &docs);
    scope_cases(&mut corpus);
    oversized_cases(&mut corpus, &docs)?;
    Ok(corpus)
}

/// Asserts that the codec refuses every frame of a group that must not decode.
fn refused_by_codec(corpus: &Corpus, prefix: &str) -> anyhow::Result<()> {
    for case in corpus.cases.iter().filter(|c| c.name.starts_with(prefix)) {
        if let Ok(message) = Message::decode(&case.bytes) {
            bail!("{} decodes, but its group must not: {message:?}", case.name);
        }
    }
    Ok(())
}

/// The malformed frames of core's codec corpus, reused as they are.
fn codec_cases(corpus: &mut Corpus, root: &Path) -> anyhow::Result<()> {
    let dir = root.join("core/tests/corpus/frames");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for path in names {
        let Some(stem) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".cbor"))
        else {
            continue;
        };
        if stem.starts_with("ok-") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        corpus.add(
            format!("codec-{stem}"),
            format!("core's codec corpus frame `core/tests/corpus/frames/{stem}.cbor`"),
            bytes,
        );
    }
    refused_by_codec(corpus, "codec-")
}

fn truncated_cases(corpus: &mut Corpus, docs: &Docs, own: &History) -> anyhow::Result<()> {
    let bases: Vec<(&str, Vec<u8>)> = vec![
        ("join", frame(&join_fields())),
        (
            "sync",
            frame(&sync_fields(
                "sync",
                docs.own,
                carrying(&[own.hash(0)?], &[own.raw(0)?]),
            )),
        ),
        (
            "request",
            frame(&sync_fields("request", docs.unknown, empty_sync_message())),
        ),
        (
            "ephemeral",
            frame(&ephemeral_fields(docs.own, b"cursor".to_vec())),
        ),
        (
            "remote-heads-changed",
            frame(&remote_heads_fields(docs.own)),
        ),
        ("scope-request", frame(&scope_request_fields())),
    ];
    for (kind, bytes) in bases {
        let n = bytes.len();
        let cuts: BTreeSet<usize> = [1, 2, n / 4, n / 2, 3 * n / 4, n - 1].into();
        for cut in cuts {
            corpus.add(
                format!("truncated-{kind}-at-{cut}-of-{n}"),
                format!("a valid `{kind}` frame cut off after {cut} of its {n} bytes"),
                bytes.get(..cut).unwrap_or_default().to_vec(),
            );
        }
    }
    refused_by_codec(corpus, "truncated-")
}

fn cbor_cases(corpus: &mut Corpus, docs: &Docs) {
    let sync = sync_fields("sync", docs.unknown, empty_sync_message());
    let not_maps: Vec<(&str, C)> = vec![
        ("uint", C::U(0)),
        ("negative", C::Neg(0)),
        ("bytes", C::B(frame(&sync))),
        ("text", t("sync")),
        ("null", C::Null),
        ("true", C::Bool(true)),
        ("float", C::F64(1.0)),
        ("tagged-map", C::Tag(55799, Box::new(C::Raw(frame(&sync))))),
        ("array-of-the-map", C::A(vec![C::Raw(frame(&sync))])),
    ];
    for (what, value) in not_maps {
        corpus.add(
            format!("cbor-frame-is-{what}"),
            format!("the frame is a CBOR {what}, not a map"),
            cbor(&value),
        );
    }
    for byte in [0x1c_u8, 0x3d, 0x5e, 0x7f, 0xbf, 0xdf, 0xfc, 0xff] {
        corpus.add(
            format!("cbor-lone-byte-{byte:02x}"),
            format!("a single byte 0x{byte:02x} (reserved, a stray break or an unfinished header)"),
            vec![byte],
        );
    }
    let raw_value = |key: &'static str, raw: Vec<u8>| frame(&with(&sync, key, Some(C::Raw(raw))));
    corpus.add(
        "cbor-invalid-utf8-in-type",
        "the `type` text holds the bytes ff fe",
        raw_value("type", vec![0x62, 0xff, 0xfe]),
    );
    corpus.add(
        "cbor-overlong-utf8-in-sender-id",
        "`senderId` holds an overlong UTF-8 encoding of '/' (c0 af)",
        raw_value("senderId", vec![0x62, 0xc0, 0xaf]),
    );
    corpus.add(
        "cbor-utf16-surrogate-in-sender-id",
        "`senderId` holds a UTF-8-encoded lone surrogate (ed a0 80)",
        raw_value("senderId", vec![0x63, 0xed, 0xa0, 0x80]),
    );
    corpus.add(
        "cbor-indefinite-text-with-a-bytes-chunk",
        "an indefinite `senderId` text whose chunk is a byte string",
        raw_value("senderId", vec![0x7f, 0x41, 0x61, 0xff]),
    );
    corpus.add(
        "cbor-indefinite-text-nested",
        "an indefinite text chunk inside an indefinite `senderId` text",
        raw_value("senderId", vec![0x7f, 0x7f, 0x61, 0x61, 0xff, 0xff]),
    );
    corpus.add(
        "cbor-indefinite-bytes-unterminated",
        "an indefinite `data` byte string without its break",
        raw_value("data", vec![0x5f, 0x41, 0x00]),
    );
    corpus.add(
        "cbor-break-as-a-value",
        "`senderId` is a stray break byte",
        raw_value("senderId", vec![0xff]),
    );
    corpus.add(
        "cbor-reserved-byte-as-a-value",
        "`targetId` is the reserved initial byte 0xfc",
        raw_value("targetId", vec![0xfc]),
    );
    corpus.add(
        "cbor-simple-value-24-below-32",
        "`targetId` is simple value 24 encoded with a 1-byte argument below 32 (not well-formed)",
        raw_value("targetId", vec![0xf8, 0x10]),
    );
    corpus.add(
        "cbor-map-count-2-pow-64-minus-1",
        "a map header claiming 2^64-1 entries, followed by one",
        {
            let mut bytes = vec![0xbb];
            bytes.extend(u64::MAX.to_be_bytes());
            bytes.extend(cbor(&t("type")));
            bytes.extend(cbor(&t("sync")));
            bytes
        },
    );
    corpus.add(
        "cbor-text-length-2-pow-63-in-type",
        "the `type` text claims 2^63 bytes",
        {
            let mut bytes = vec![0xa1, 0x64];
            bytes.extend(b"type");
            bytes.push(0x7b);
            bytes.extend((1u64 << 63).to_be_bytes());
            bytes.extend(b"sync");
            bytes
        },
    );
    corpus.add(
        "cbor-array-count-2-pow-63-under-unknown-key",
        "an unknown key whose array claims 2^63 items",
        {
            let mut fields = sync.clone();
            fields.push((
                "x-array",
                Some(C::Raw({
                    let mut bytes = vec![0x9b];
                    bytes.extend((1u64 << 63).to_be_bytes());
                    bytes.push(0x00);
                    bytes
                })),
            ));
            frame(&fields)
        },
    );
    corpus.add(
        "cbor-map-value-missing-at-end",
        "an indefinite map whose last key has no value before the break",
        {
            let mut bytes = vec![0xbf];
            for (key, value) in sync.iter() {
                if let Some(value) = value {
                    bytes.extend(cbor(&t(key)));
                    bytes.extend(cbor(value));
                }
            }
            bytes.extend(cbor(&t("extra")));
            bytes.push(0xff);
            bytes
        },
    );
    corpus.add(
        "cbor-duplicate-type-key",
        "the key `type` twice (`sync`, then `request`)",
        {
            let mut fields = sync.clone();
            fields.push(("type", Some(t("request"))));
            frame(&fields)
        },
    );
    corpus.add(
        "cbor-duplicate-document-id-key",
        "the key `documentId` twice with two different ids",
        {
            let mut fields = sync.clone();
            fields.push(("documentId", Some(id_text(docs.own))));
            frame(&fields)
        },
    );
    corpus.add(
        "cbor-two-messages-in-one-frame",
        "two complete sync maps back to back in one message",
        [frame(&sync), frame(&sync)].concat(),
    );
    corpus.add(
        "cbor-thousand-trailing-zero-bytes",
        "a valid sync map followed by 1000 zero bytes",
        [frame(&sync), vec![0; 1000]].concat(),
    );
    corpus.add(
        "cbor-only-integer-keys",
        "a map with integer keys only, so no `type`",
        cbor(&C::M(vec![
            (C::U(0), t("sync")),
            (C::U(1), id_text(docs.unknown)),
        ])),
    );
    corpus.add(
        "cbor-type-key-as-bytes",
        "the key `type` written as a byte string, so no `type`",
        cbor(&C::M(vec![
            (C::B(b"type".to_vec()), t("sync")),
            (t("documentId"), id_text(docs.unknown)),
        ])),
    );
}

fn nesting_cases(corpus: &mut Corpus, docs: &Docs) {
    let sync = sync_fields("sync", docs.unknown, empty_sync_message());
    let nested =
        |key: &'static str, opener: &[u8], depth: usize, innermost: &[u8], closer: &[u8]| {
            let mut raw = opener.repeat(depth);
            raw.extend(innermost);
            raw.extend(closer.repeat(depth));
            let mut fields = sync.clone();
            fields.push((key, Some(C::Raw(raw))));
            frame(&fields)
        };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "nesting-arrays-17-under-unknown-key",
            "17 nested one-item arrays under an unknown key, one more than allowed",
            nested("x", &[0x81], 17, &[0x00], &[]),
        ),
        (
            "nesting-arrays-100000-under-unknown-key",
            "100,000 nested one-item arrays (a stack-overflow attempt)",
            nested("x", &[0x81], 100_000, &[0x00], &[]),
        ),
        (
            "nesting-indefinite-arrays-100000",
            "100,000 nested indefinite arrays, never closed",
            nested("x", &[0x9f], 100_000, &[0x00], &[]),
        ),
        (
            "nesting-maps-100000",
            "100,000 nested one-entry maps",
            nested("x", &[0xa1, 0x00], 100_000, &[0x00], &[]),
        ),
        (
            "nesting-tags-100000",
            "100,000 nested tags around an integer",
            nested("x", &[0xc6], 100_000, &[0x00], &[]),
        ),
        (
            "nesting-arrays-100000-as-sender-id",
            "`senderId` is 100,000 nested arrays",
            frame(&with(
                &sync,
                "senderId",
                Some(C::Raw([vec![0x81; 100_000], vec![0x00]].concat())),
            )),
        ),
        (
            "nesting-deep-inside-peer-metadata",
            "a `join` whose `peerMetadata` holds 100,000 nested arrays under an unknown key",
            {
                let mut fields = join_fields();
                let mut raw = vec![0xa1];
                raw.extend(cbor(&t("x")));
                raw.extend(vec![0x81; 100_000]);
                raw.push(0x00);
                fields.push(("peerMetadata", Some(C::Raw(raw))));
                frame(&fields)
            },
        ),
        (
            "nesting-deep-inside-new-heads",
            "`remote-heads-changed` whose `newHeads` value nests 100,000 arrays",
            {
                let mut raw = vec![0xa1];
                raw.extend(cbor(&t("storage-a")));
                raw.extend(vec![0x81; 100_000]);
                raw.push(0x00);
                frame(&with(
                    &remote_heads_fields(docs.own),
                    "newHeads",
                    Some(C::Raw(raw)),
                ))
            },
        ),
    ];
    for (name, about, bytes) in cases {
        corpus.add(name, about, bytes);
    }
}

/// Named values of the wrong type for a field; `None` leaves the field out.
type WrongValues = Vec<(&'static str, Option<C>)>;
/// For each field of a message, its wrong values.
type FieldsWrong = Vec<(&'static str, WrongValues)>;

/// Values of the wrong CBOR type for a text field (`required` adds null and absence).
fn wrong_for_text(required: bool) -> WrongValues {
    let mut kinds = vec![
        ("uint", Some(C::U(7))),
        ("negative", Some(C::Neg(6))),
        ("bytes", Some(C::B(b"peer".to_vec()))),
        ("array", Some(C::A(vec![t("peer")]))),
        ("map", Some(C::M(vec![(t("id"), t("peer"))]))),
        ("bool", Some(C::Bool(true))),
        ("float", Some(C::F64(1.5))),
        ("tagged", Some(C::Tag(0, Box::new(t("peer"))))),
    ];
    if required {
        kinds.push(("null", Some(C::Null)));
        kinds.push(("missing", None));
    }
    kinds
}

fn wrong_for_document_id() -> WrongValues {
    vec![
        ("uint", Some(C::U(7))),
        ("bytes-15", Some(C::B(vec![1; 15]))),
        ("bytes-17", Some(C::B(vec![1; 17]))),
        (
            "bytes-16-tag-24",
            Some(C::Tag(24, Box::new(C::B(vec![1; 16])))),
        ),
        ("array", Some(C::A(vec![t("4NMNnkMhL8jXrdJ9jamS58PAVdXu")]))),
        ("map", Some(C::M(vec![]))),
        ("bool", Some(C::Bool(false))),
        ("float", Some(C::F64(3.0))),
        ("null", Some(C::Null)),
        ("missing", None),
    ]
}

fn wrong_for_data() -> WrongValues {
    vec![
        ("text", Some(t("QgAAAQA="))),
        ("uint", Some(C::U(66))),
        (
            "array-of-bytes",
            Some(C::A(vec![C::B(empty_sync_message())])),
        ),
        ("map", Some(C::M(vec![]))),
        (
            "tag-24",
            Some(C::Tag(24, Box::new(C::B(empty_sync_message())))),
        ),
        ("null", Some(C::Null)),
        ("missing", None),
    ]
}

fn wrong_for_uint() -> WrongValues {
    vec![
        ("negative", Some(C::Neg(0))),
        ("fraction", Some(C::F64(1.5))),
        ("nan", Some(C::F64(f64::NAN))),
        ("infinity", Some(C::F64(f64::INFINITY))),
        ("negative-float", Some(C::F64(-1.0))),
        ("float-2-pow-64", Some(C::F64(18_446_744_073_709_551_616.0))),
        ("text", Some(t("1"))),
        ("bytes", Some(C::B(vec![1]))),
        ("bool", Some(C::Bool(true))),
    ]
}

fn wrong_for_text_array() -> WrongValues {
    vec![
        ("text", Some(t("storage-a"))),
        ("array-of-uint", Some(C::A(vec![C::U(1)]))),
        ("array-of-bytes", Some(C::A(vec![C::B(b"a".to_vec())]))),
        ("array-of-null", Some(C::A(vec![C::Null]))),
        ("map", Some(C::M(vec![(t("a"), t("b"))]))),
        ("uint", Some(C::U(1))),
    ]
}

/// Every field of every message type a device may send after `join`, given a value of the
/// wrong type (or left out where it is required).
fn field_cases(corpus: &mut Corpus, docs: &Docs) {
    let sync = sync_fields("sync", docs.unknown, empty_sync_message());
    let request = sync_fields("request", docs.unknown, empty_sync_message());
    let mut bases: Vec<(&str, Fields, FieldsWrong)> = Vec::new();
    for (kind, fields) in [("sync", sync), ("request", request)] {
        bases.push((
            kind,
            fields,
            vec![
                ("documentId", wrong_for_document_id()),
                ("senderId", wrong_for_text(true)),
                ("targetId", wrong_for_text(true)),
                ("data", wrong_for_data()),
            ],
        ));
    }
    bases.push((
        "doc-unavailable",
        unavailable_fields(docs.unknown),
        vec![
            ("documentId", wrong_for_document_id()),
            ("senderId", wrong_for_text(true)),
            ("targetId", wrong_for_text(true)),
        ],
    ));
    bases.push((
        "ephemeral",
        ephemeral_fields(docs.unknown, b"cursor".to_vec()),
        vec![
            ("senderId", wrong_for_text(true)),
            ("targetId", wrong_for_text(true)),
            ("count", wrong_for_uint()),
            ("sessionId", wrong_for_text(true)),
            ("documentId", wrong_for_document_id()),
            ("data", wrong_for_data()),
        ],
    ));
    bases.push((
        "leave",
        leave_fields(),
        vec![("senderId", wrong_for_text(true))],
    ));
    bases.push((
        "error",
        error_fields(),
        vec![
            ("message", wrong_for_text(true)),
            ("senderId", wrong_for_text(false)),
        ],
    ));
    bases.push((
        "remote-subscription-change",
        subscription_fields(),
        vec![
            ("senderId", wrong_for_text(true)),
            ("add", wrong_for_text_array()),
            ("remove", wrong_for_text_array()),
        ],
    ));
    bases.push((
        "remote-heads-changed",
        remote_heads_fields(docs.own),
        vec![
            ("senderId", wrong_for_text(true)),
            ("documentId", wrong_for_document_id()),
            (
                "newHeads",
                vec![
                    ("array", Some(C::A(vec![]))),
                    ("text", Some(t("storage-a"))),
                    (
                        "value-not-a-map",
                        Some(C::M(vec![(t("storage-a"), t("x"))])),
                    ),
                    (
                        "heads-as-text",
                        Some(C::M(vec![(
                            t("storage-a"),
                            C::M(vec![(t("heads"), t("abc")), (t("timestamp"), C::U(1))]),
                        )])),
                    ),
                    (
                        "heads-of-uint",
                        Some(C::M(vec![(
                            t("storage-a"),
                            C::M(vec![
                                (t("heads"), C::A(vec![C::U(1)])),
                                (t("timestamp"), C::U(1)),
                            ]),
                        )])),
                    ),
                    (
                        "timestamp-negative",
                        Some(C::M(vec![(
                            t("storage-a"),
                            C::M(vec![
                                (t("heads"), C::A(vec![])),
                                (t("timestamp"), C::Neg(0)),
                            ]),
                        )])),
                    ),
                    (
                        "timestamp-missing",
                        Some(C::M(vec![(
                            t("storage-a"),
                            C::M(vec![(t("heads"), C::A(vec![]))]),
                        )])),
                    ),
                    (
                        "storage-id-uint",
                        Some(C::M(vec![(
                            C::U(1),
                            C::M(vec![(t("heads"), C::A(vec![])), (t("timestamp"), C::U(1))]),
                        )])),
                    ),
                    ("null", Some(C::Null)),
                    ("missing", None),
                ],
            ),
        ],
    ));
    bases.push((
        "scope-request",
        scope_request_fields(),
        vec![
            ("senderId", wrong_for_text(true)),
            ("since", wrong_for_uint()),
        ],
    ));
    for (kind, fields, wrong) in bases {
        for (field, values) in wrong {
            for (what, value) in values {
                let field_name = kebab(field);
                corpus.add(
                    format!("field-{kind}-{field_name}-{what}"),
                    match &value {
                        Some(_) => format!("`{kind}` whose `{field}` is {what}"),
                        None => format!("`{kind}` without its `{field}`"),
                    },
                    frame(&with(&fields, field, value)),
                );
            }
        }
    }
}

fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn type_cases(corpus: &mut Corpus, docs: &Docs) {
    let sync = sync_fields("sync", docs.unknown, empty_sync_message());
    let unknown: Vec<(&str, C)> = vec![
        ("empty", t("")),
        ("upper-case-sync", t("SYNC")),
        ("sync-with-trailing-space", t("sync ")),
        ("sync-with-nul", t("sync\0")),
        ("caresync-prefix-only", t("caresync-")),
        (
            "caresync-unknown-extension",
            t("caresync-delete-everything"),
        ),
        ("automerge-url", t("automerge:sync")),
        ("long-4000-chars", t(&"x".repeat(4000))),
        ("uint", C::U(5)),
        ("bytes-sync", C::B(b"sync".to_vec())),
        ("array", C::A(vec![t("sync")])),
        ("null", C::Null),
    ];
    for (what, value) in unknown {
        corpus.add(
            format!("type-unknown-{what}"),
            format!("a sync frame whose `type` is {what}"),
            frame(&with(&sync, "type", Some(value))),
        );
    }
    let relay_only: Vec<(&str, &str, Message)> = vec![
        (
            "type-relay-message-peer",
            "`peer`, which only a relay sends",
            Message::Peer {
                sender_id: PeerId::from(SENDER),
                target_id: PeerId::from(TARGET),
                selected_protocol_version: "1".to_owned(),
                peer_metadata: None,
            },
        ),
        (
            "type-relay-message-scope",
            "`caresync-scope`, which only a relay sends",
            Message::Scope {
                sender_id: PeerId::from(SENDER),
                target_id: PeerId::from(TARGET),
                cursor: 7,
                entries: vec![ScopeEntry {
                    document_id: docs.unknown,
                    heads: vec![[1; 32]],
                    document: None,
                }],
                removed: vec![docs.own],
                complete: true,
            },
        ),
        (
            "type-relay-message-refused",
            "`caresync-refused`, which only a relay sends",
            Message::Refused {
                sender_id: PeerId::from(SENDER),
                target_id: PeerId::from(TARGET),
                document_id: docs.own,
                code: "forbidden".to_owned(),
                message: "no".to_owned(),
                heads: vec![],
            },
        ),
        (
            "type-second-join",
            "a second, valid `join` on a connection that already joined",
            Message::Join {
                sender_id: PeerId::from("malformed-peer-again"),
                supported_protocol_versions: vec!["1".to_owned()],
                peer_metadata: None,
            },
        ),
        (
            "type-scope-request-without-the-extension",
            "`caresync-scope-request` on a connection that did not agree on `scope`",
            Message::ScopeRequest {
                sender_id: PeerId::from(SENDER),
                target_id: PeerId::from(TARGET),
                since: None,
                documents: false,
            },
        ),
    ];
    for (name, about, message) in relay_only {
        corpus.add(name, about, message.encode());
    }
}

fn docid_cases(corpus: &mut Corpus, docs: &Docs) {
    let sixteen = docs.unknown.as_bytes().to_vec();
    let check = |bytes: &[u8]| bs58::encode(bytes).with_check().into_string();
    let good = docs.unknown.to_string();
    let mut bad_checksum = good.clone().into_bytes();
    if let Some(last) = bad_checksum.last_mut() {
        *last = if *last == b'2' { b'3' } else { b'2' };
    }
    let ids: Vec<(&str, String)> = vec![
        (
            "bad-checksum",
            String::from_utf8_lossy(&bad_checksum).into_owned(),
        ),
        (
            "not-base58-zero-and-oh",
            "0OIl0OIl0OIl0OIl0OIl0OIl".to_owned(),
        ),
        ("empty", String::new()),
        (
            "payload-15-bytes",
            check(sixteen.get(..15).unwrap_or_default()),
        ),
        (
            "payload-17-bytes",
            check(&[sixteen.clone(), vec![0]].concat()),
        ),
        ("payload-32-bytes-a-change-hash", check(&[7; 32])),
        ("payload-0-bytes", check(&[])),
        (
            "base58-without-checksum",
            bs58::encode(&sixteen).into_string(),
        ),
        ("automerge-url", format!("automerge:{good}")),
        ("url-with-heads", format!("{good}#{}", check(&[7; 32]))),
        ("leading-space", format!(" {good}")),
        ("fullwidth-digits", "１２３４５６７８９".to_owned()),
        ("1000-base58-chars", "z".repeat(1000)),
        (
            "uuid-text",
            "0b7c7d3e-1f2a-4c55-9c1e-2f1d3b4a5c6d".to_owned(),
        ),
    ];
    for (what, id) in ids {
        for kind in ["sync", "request"] {
            corpus.add(
                format!("docid-{kind}-{what}"),
                format!("`{kind}` for the document id {what:?}"),
                frame(&with(
                    &sync_fields(kind, docs.unknown, empty_sync_message()),
                    "documentId",
                    Some(C::T(id.clone())),
                )),
            );
        }
    }
    corpus.add(
        "docid-ephemeral-bad-checksum",
        "`ephemeral` for a document id with a bad checksum",
        frame(&with(
            &ephemeral_fields(docs.unknown, b"x".to_vec()),
            "documentId",
            Some(C::T(String::from_utf8_lossy(&bad_checksum).into_owned())),
        )),
    );
    corpus.add(
        "docid-doc-unavailable-empty",
        "`doc-unavailable` for an empty document id",
        frame(&with(
            &unavailable_fields(docs.unknown),
            "documentId",
            Some(t("")),
        )),
    );
    corpus.add(
        "docid-remote-heads-changed-bytes-15",
        "`remote-heads-changed` for a 15-byte document id",
        frame(&with(
            &remote_heads_fields(docs.unknown),
            "documentId",
            Some(C::B(vec![1; 15])),
        )),
    );
}

fn huge_cases(corpus: &mut Corpus, docs: &Docs) {
    let over = STRING_BYTES_MAX + 1;
    let sync = sync_fields("sync", docs.unknown, empty_sync_message());
    corpus.add(
        "huge-sender-id-64kib-plus-1",
        "a sync whose `senderId` is one byte over the 64 KiB text limit",
        frame(&with(&sync, "senderId", Some(t(&"p".repeat(over))))),
    );
    corpus.add(
        "huge-target-id-64kib-plus-1",
        "a sync whose `targetId` is one byte over the 64 KiB text limit",
        frame(&with(&sync, "targetId", Some(t(&"r".repeat(over))))),
    );
    corpus.add(
        "huge-type-64kib-plus-1",
        "a `type` one byte over the 64 KiB text limit",
        frame(&with(&sync, "type", Some(t(&"s".repeat(over))))),
    );
    corpus.add(
        "huge-document-id-bytes-64kib-plus-1",
        "a byte-string `documentId` one byte over the 64 KiB limit",
        frame(&with(&sync, "documentId", Some(C::B(vec![1; over])))),
    );
    corpus.add(
        "huge-session-id-64kib-plus-1",
        "an ephemeral `sessionId` one byte over the 64 KiB text limit",
        frame(&with(
            &ephemeral_fields(docs.unknown, b"x".to_vec()),
            "sessionId",
            Some(t(&"s".repeat(over))),
        )),
    );
    corpus.add(
        "huge-error-message-64kib-plus-1",
        "an `error` whose `message` is one byte over the 64 KiB text limit",
        frame(&with(
            &error_fields(),
            "message",
            Some(t(&"e".repeat(over))),
        )),
    );
    corpus.add(
        "huge-indefinite-sender-id-64kib-plus-1",
        "an indefinite `senderId` whose 1 KiB chunks add up to one byte over 64 KiB",
        frame(&with(
            &sync,
            "senderId",
            Some(C::Raw({
                let mut raw = vec![0x7f];
                for _ in 0..64 {
                    raw.extend(cbor(&t(&"p".repeat(1024))));
                }
                raw.extend(cbor(&t("p")));
                raw.push(0xff);
                raw
            })),
        )),
    );
    corpus.add(
        "huge-versions-1025",
        "a `join` offering 1025 protocol versions, one over the array limit",
        frame(&with(
            &join_fields(),
            "supportedProtocolVersions",
            Some(C::A(vec![t("1"); 1025])),
        )),
    );
    corpus.add(
        "huge-subscription-add-1025",
        "`remote-subscription-change` adding 1025 storage ids",
        frame(&with(
            &subscription_fields(),
            "add",
            Some(C::A(
                (0..1025).map(|n| t(&format!("storage-{n}"))).collect(),
            )),
        )),
    );
    corpus.add(
        "huge-new-heads-1025-storage-ids",
        "`remote-heads-changed` with 1025 storage ids",
        frame(&with(
            &remote_heads_fields(docs.unknown),
            "newHeads",
            Some(C::M(
                (0..1025)
                    .map(|n| {
                        (
                            t(&format!("storage-{n}")),
                            C::M(vec![(t("heads"), C::A(vec![])), (t("timestamp"), C::U(1))]),
                        )
                    })
                    .collect(),
            )),
        )),
    );
    corpus.add(
        "huge-new-heads-1025-heads",
        "`remote-heads-changed` with 1025 heads for one storage id",
        frame(&with(
            &remote_heads_fields(docs.unknown),
            "newHeads",
            Some(C::M(vec![(
                t("storage-a"),
                C::M(vec![
                    (t("heads"), C::A(vec![t("abc"); 1025])),
                    (t("timestamp"), C::U(1)),
                ]),
            )])),
        )),
    );
    corpus.add(
        "huge-frame-map-1025-unknown-keys",
        "a sync frame with 1020 unknown keys besides its own, over the map limit",
        {
            let mut pairs: Vec<(C, C)> = sync
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (t(k), v)))
                .collect();
            pairs.extend((0..1020).map(|n| (t(&format!("x{n}")), C::U(n))));
            cbor(&C::M(pairs))
        },
    );
    corpus.add(
        "huge-peer-metadata-1025-keys",
        "a `join` whose `peerMetadata` has 1025 keys",
        frame(&with(
            &join_fields(),
            "peerMetadata",
            Some(C::M(
                (0..1025).map(|n| (t(&format!("k{n}")), C::U(n))).collect(),
            )),
        )),
    );
    corpus.add(
        "huge-extensions-1025",
        "a `join` offering 1025 caresync extensions",
        frame(&with(
            &join_fields(),
            "peerMetadata",
            Some(C::M(vec![(t("caresync"), C::A(vec![t("scope"); 1025]))])),
        )),
    );
}

fn handshake_cases(corpus: &mut Corpus, docs: &Docs) {
    let before_join: Vec<(&str, Vec<u8>)> = vec![
        (
            "sync",
            frame(&sync_fields("sync", docs.unknown, empty_sync_message())),
        ),
        (
            "request",
            frame(&sync_fields("request", docs.unknown, empty_sync_message())),
        ),
        ("doc-unavailable", frame(&unavailable_fields(docs.unknown))),
        (
            "ephemeral",
            frame(&ephemeral_fields(docs.unknown, b"x".to_vec())),
        ),
        ("leave", frame(&leave_fields())),
        ("remote-subscription-change", frame(&subscription_fields())),
        (
            "remote-heads-changed",
            frame(&remote_heads_fields(docs.unknown)),
        ),
        ("scope-request", frame(&scope_request_fields())),
        (
            "peer",
            Message::Peer {
                sender_id: PeerId::from(SENDER),
                target_id: PeerId::from(TARGET),
                selected_protocol_version: "1".to_owned(),
                peer_metadata: None,
            }
            .encode(),
        ),
    ];
    for (kind, bytes) in before_join {
        corpus.add(
            format!("handshake-{kind}-before-join"),
            format!("a valid `{kind}` as the first message, before `join`"),
            bytes,
        );
    }
    let versions: Vec<(&str, Vec<&str>)> = vec![
        ("only-2", vec!["2"]),
        ("empty-list", vec![]),
        ("one-point-oh", vec!["1.0"]),
        ("v1", vec!["v1"]),
        ("one-with-space", vec!["1 "]),
        ("one-thousand-wrong", vec!["0"; 1000]),
    ];
    for (what, list) in versions {
        corpus.add(
            format!("handshake-join-versions-{what}"),
            format!("a `join` whose `supportedProtocolVersions` lacks \"1\" ({list:?})"),
            frame(&with(
                &join_fields(),
                "supportedProtocolVersions",
                Some(C::A(list.iter().map(|v| t(v)).collect())),
            )),
        );
    }
    corpus.add(
        "handshake-farewell-error-before-join",
        "an `error` as the first message: the relay closes without answering",
        frame(&error_fields()),
    );
}

fn join_cases(corpus: &mut Corpus) {
    let join = join_fields();
    for (what, value) in wrong_for_text(true) {
        corpus.add(
            format!("join-sender-id-{what}"),
            format!("a `join` whose `senderId` is {what}"),
            frame(&with(&join, "senderId", value)),
        );
    }
    for (what, value) in [
        ("text", Some(t("1"))),
        ("array-of-uint", Some(C::A(vec![C::U(1)]))),
        ("array-of-float", Some(C::A(vec![C::F64(1.0)]))),
        ("map", Some(C::M(vec![(t("1"), C::Bool(true))]))),
        ("uint", Some(C::U(1))),
    ] {
        corpus.add(
            format!("join-versions-{what}"),
            format!("a `join` whose `supportedProtocolVersions` is {what}"),
            frame(&with(&join, "supportedProtocolVersions", value)),
        );
    }
    let metadata: Vec<(&str, C)> = vec![
        ("text", t("scope")),
        ("array", C::A(vec![t("scope")])),
        ("storage-id-uint", C::M(vec![(t("storageId"), C::U(1))])),
        (
            "is-ephemeral-text",
            C::M(vec![(t("isEphemeral"), t("yes"))]),
        ),
        ("caresync-text", C::M(vec![(t("caresync"), t("scope"))])),
        (
            "caresync-array-of-uint",
            C::M(vec![(t("caresync"), C::A(vec![C::U(1)]))]),
        ),
        (
            "duplicate-storage-id",
            C::Raw({
                let mut raw = vec![0xa2];
                raw.extend(cbor(&t("storageId")));
                raw.extend(cbor(&t("a")));
                raw.extend(cbor(&t("storageId")));
                raw.extend(cbor(&t("b")));
                raw
            }),
        ),
    ];
    for (what, value) in metadata {
        corpus.add(
            format!("join-peer-metadata-{what}"),
            format!("a `join` whose `peerMetadata` is wrong: {what}"),
            frame(&with(&join, "peerMetadata", Some(value))),
        );
    }
    // Odd but well-formed joins: peer ids are any text (automerge-repo does not authenticate
    // them; the session does), so the relay must answer `peer`.
    let odd: Vec<(&str, &str, Fields)> = vec![
        (
            "empty-sender-id",
            "an empty `senderId`",
            with(&join, "senderId", Some(t(""))),
        ),
        (
            "sender-id-64kib",
            "a `senderId` of exactly the 64 KiB text limit",
            with(&join, "senderId", Some(t(&"p".repeat(STRING_BYTES_MAX)))),
        ),
        (
            "sender-id-control-characters",
            "a `senderId` with a newline, a NUL, an escape sequence and a right-to-left override",
            with(&join, "senderId", Some(t("peer\n\0\u{1b}[31m\u{202e}x"))),
        ),
        (
            "sender-id-looks-like-the-relay",
            "a `senderId` that names itself a storage server",
            with(&join, "senderId", Some(t("storage-server-caresync"))),
        ),
        (
            "versions-2-then-1",
            "`supportedProtocolVersions` [\"2\", \"1\"]",
            with(
                &join,
                "supportedProtocolVersions",
                Some(C::A(vec![t("2"), t("1")])),
            ),
        ),
        (
            "versions-absent",
            "no `supportedProtocolVersions` (JS reads it as [\"1\"])",
            with(&join, "supportedProtocolVersions", None),
        ),
        (
            "unknown-extensions",
            "`peerMetadata.caresync` lists extensions the relay does not know",
            with(
                &join,
                "peerMetadata",
                Some(C::M(vec![(
                    t("caresync"),
                    C::A(vec![t("everything"), t(&"x".repeat(1000))]),
                )])),
            ),
        ),
        (
            "metadata-null",
            "`peerMetadata` null, as JS writes an undefined property",
            with(&join, "peerMetadata", Some(C::Null)),
        ),
    ];
    for (what, about, fields) in odd {
        // Each with its own sender id unless the case is about it: the relay closes an
        // older connection that joined with the same id.
        let fields = if fields
            .iter()
            .any(|(k, v)| *k == "senderId" && *v == Some(t(SENDER)))
        {
            with(&fields, "senderId", Some(t(&format!("{SENDER}-{what}"))))
        } else {
            fields
        };
        corpus.add(format!("joinodd-{what}"), about, frame(&fields));
    }
}

fn farewell_cases(corpus: &mut Corpus) {
    corpus.add(
        "farewell-leave",
        "a valid `leave` after joining: the relay closes",
        frame(&leave_fields()),
    );
    corpus.add(
        "farewell-error",
        "a valid `error` after joining: the relay closes",
        frame(&error_fields()),
    );
    corpus.add(
        "farewell-error-with-ids-and-unknown-keys",
        "an `error` with sender, target and unknown keys",
        {
            let mut fields = error_fields();
            fields.push(("senderId", Some(t(SENDER))));
            fields.push(("targetId", Some(t(TARGET))));
            fields.push(("x-trace", Some(C::A(vec![C::U(1), C::Null]))));
            frame(&fields)
        },
    );
}

fn sync_data_cases(corpus: &mut Corpus, docs: &Docs, own: &History) -> anyhow::Result<()> {
    let valid = carrying(&[own.hash(0)?], &[own.raw(0)?]);
    let mut datas: Vec<(String, String, Vec<u8>)> = vec![
        ("empty".into(), "an empty `data`".into(), vec![]),
        (
            "one-byte-42".into(),
            "only the v1 type byte".into(),
            vec![0x42],
        ),
        (
            "unknown-type-byte-41".into(),
            "a message starting with 0x41".into(),
            [
                vec![0x41],
                empty_sync_message().get(1..).unwrap_or_default().to_vec(),
            ]
            .concat(),
        ),
        (
            "unknown-type-byte-00".into(),
            "a message starting with 0x00".into(),
            vec![0x00; 8],
        ),
        (
            "automerge-change-instead".into(),
            "a bare automerge change where a sync message belongs".into(),
            own.raw(0)?,
        ),
        (
            "heads-count-2-pow-63".into(),
            "heads claiming 2^63 hashes".into(),
            {
                let mut data = vec![0x42];
                leb(&mut data, 1 << 63);
                data.extend([1; 32]);
                data
            },
        ),
        (
            "leb128-eleven-bytes".into(),
            "a heads count in an 11-byte LEB128 (longer than any u64)".into(),
            [vec![0x42], vec![0xff; 10], vec![0x01]].concat(),
        ),
        (
            "change-length-beyond-message".into(),
            "a change entry claiming 1 MiB in a message of a few bytes".into(),
            {
                let mut data = vec![0x42, 0, 0, 0, 1];
                leb(&mut data, 1 << 20);
                data.extend([0x85, 0x6f, 0x4a, 0x83]);
                data
            },
        ),
        (
            "1mib-of-ff".into(),
            "1 MiB of 0xff bytes (an endless LEB128 where the heads count belongs)".into(),
            vec![0xff; HUGE_VALUE_BYTES],
        ),
    ];
    let n = valid.len();
    for cut in [1, n / 3, n / 2, n - 1] {
        datas.push((
            format!("valid-message-cut-at-{cut}-of-{n}"),
            format!("a valid sync message carrying a change, cut after {cut} of its {n} bytes"),
            valid.get(..cut).unwrap_or_default().to_vec(),
        ));
    }
    for (what, about, data) in datas {
        ensure!(
            !decodes_as_sync_message(&data),
            "sync-data-{what} decodes as a sync message"
        );
        corpus.add(
            format!("sync-data-{what}"),
            format!("`sync` whose `data` is no automerge sync message: {about}"),
            frame(&sync_fields("sync", docs.own, data)),
        );
    }
    Ok(())
}

/// A deterministic stream of bytes that compresses badly (xorshift).
fn pseudo_random(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Sync messages about the stored record whose bloom filter makes automerge divide by zero
/// or compute (and allocate) billions of probes for every change it might send.
fn bloom_cases(corpus: &mut Corpus, docs: &Docs, own: &History) -> anyhow::Result<()> {
    // The peer claims the record's first change, so the relay consults the filter for it
    // (a peer with no heads gets the whole document without any filter being read).
    let heads = [own.hash(0)?];
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "bloom-zero-bits-per-entry",
            "one entry but zero bits per entry: no bits, and automerge computes `x % 0`",
            bloom(1, 0, 7),
        ),
        (
            "bloom-max-entries-zero-bits",
            "u32::MAX entries and zero bits per entry",
            bloom(u32::MAX, 0, 7),
        ),
        (
            "bloom-probes-2-pow-27",
            "2^27 probes: automerge allocates 512 MiB of probes per change it checks",
            bloom(1, 10, 1 << 27),
        ),
        (
            "bloom-probes-2-pow-20-many-haves",
            "a thousand filters of 2^20 probes each",
            bloom(1, 10, 1 << 20),
        ),
        (
            "bloom-nine-filters",
            "nine ordinary filters (automerge sends one)",
            bloom(1, 10, 7),
        ),
    ];
    for (name, about, filter) in cases {
        let haves: Vec<(Vec<[u8; 32]>, Vec<u8>)> = if name.ends_with("many-haves") {
            vec![(vec![], filter); 1000]
        } else if name.ends_with("nine-filters") {
            vec![(vec![], filter); 9]
        } else {
            vec![(vec![], filter)]
        };
        let data = sync_message(&heads, &[], &haves, &[]);
        ensure!(decodes_as_sync_message(&data), "{name} must decode");
        corpus.add(
            name,
            format!("`sync` of the stored record whose `have` bloom filter has {about}"),
            frame(&sync_fields("sync", docs.own, data)),
        );
    }
    Ok(())
}

/// Changes the relay must refuse; a plain peer is told with `error` and the socket closes.
fn changes_cases(
    corpus: &mut Corpus,
    docs: &Docs,
    own: &History,
    other: &History,
) -> anyhow::Result<()> {
    let new_doc = doc(10);
    let change = own.raw(0)?;
    let body_of_change = change.get(9..).unwrap_or_default().to_vec();
    let mut corrupted = change.clone();
    if let Some(byte) = corrupted.last_mut() {
        *byte ^= 0x55;
    }
    let not_a_record = plain_history(9, 1)?;
    let too_many = plain_history(8, 10_001)?;
    let too_many_changes: Vec<u8> = too_many
        .changes
        .iter()
        .flat_map(|change| change.raw_bytes().to_vec())
        .collect();
    let invalid_record = {
        let mut doc = AutoCommit::new().with_actor(actor(11));
        let mut record = child(OWN_VILLAGE, "");
        if let Record::Child(child) = &mut record {
            child.categories.clear();
        }
        record.save(&mut doc)?;
        commit(&mut doc);
        History {
            changes: doc.get_changes(&[]),
        }
    };
    let huge_name = {
        let mut doc = AutoCommit::new().with_actor(actor(12));
        child(OWN_VILLAGE, &"名".repeat(HUGE_VALUE_BYTES / 3)).save(&mut doc)?;
        commit(&mut doc);
        History {
            changes: doc.get_changes(&[]),
        }
    };
    let kind_changed = {
        // A second change to the stored record that turns it into another kind.
        let mut doc = AutoCommit::load(&change)?.with_actor(actor(1));
        doc.put(ROOT, "kind", "elder")?;
        commit(&mut doc);
        let changes: Vec<Change> = doc.get_changes(&[]);
        History { changes }
    };
    let entries: Vec<(&str, &str, DocumentId, Vec<Vec<u8>>)> = vec![
        (
            "not-automerge",
            "an entry of plain text",
            new_doc,
            vec![b"not an automerge change".to_vec()],
        ),
        (
            "magic-only",
            "an entry of the four magic bytes only",
            new_doc,
            vec![MAGIC.to_vec()],
        ),
        (
            "chunk-length-beyond-entry",
            "a change chunk whose length runs past the entry",
            new_doc,
            vec![change.get(..change.len() / 2).unwrap_or_default().to_vec()],
        ),
        (
            "unknown-chunk-type-7",
            "a chunk of type 7",
            new_doc,
            vec![chunk(7, &body_of_change)],
        ),
        (
            "corrupted-last-byte",
            "a change whose last byte is flipped",
            new_doc,
            vec![corrupted],
        ),
        (
            "change-header-with-empty-body",
            "a change chunk with an empty body",
            new_doc,
            vec![chunk(CHUNK_CHANGE, &[])],
        ),
        (
            "compressed-chunk-not-deflate",
            "a compressed-change chunk whose body is not deflate",
            new_doc,
            vec![chunk(CHUNK_COMPRESSED, b"\xff\xff\xff not deflate")],
        ),
        (
            "document-chunk-garbage",
            "a document chunk of garbage",
            new_doc,
            vec![chunk(CHUNK_DOCUMENT, &pseudo_random(200))],
        ),
        (
            "bundle-chunk-garbage",
            "a bundle chunk of garbage",
            new_doc,
            vec![chunk(CHUNK_BUNDLE, &pseudo_random(200))],
        ),
        (
            "valid-change-then-garbage",
            "a valid change followed by garbage in the same entry",
            new_doc,
            vec![[change.clone(), b"garbage".to_vec()].concat()],
        ),
        (
            "not-a-record",
            "a valid automerge change that makes no record (no `kind`)",
            new_doc,
            vec![not_a_record.raw(0)?],
        ),
        (
            "record-in-another-village",
            "a new child record placed in `demo-director-2`'s village",
            doc(11),
            vec![other.raw(0)?],
        ),
        (
            "invalid-record-empty-name",
            "a child record with an empty name and no category",
            doc(12),
            vec![invalid_record.raw(0)?],
        ),
        (
            "record-with-1mib-name",
            "a child record whose name is 1 MiB",
            doc(13),
            vec![huge_name.raw(0)?],
        ),
        (
            "stored-record-changes-kind",
            "a change turning the stored child record into an elder",
            docs.own,
            vec![kind_changed.raw(1)?],
        ),
        (
            "10001-changes-in-one-entry",
            "10,001 changes in one entry, one more than a message may carry",
            doc(14),
            vec![too_many_changes],
        ),
    ];
    for (what, about, document, changes) in entries {
        let data = carrying(&[], &changes);
        ensure!(decodes_as_sync_message(&data), "changes-{what} must decode");
        corpus.add(
            format!("changes-{what}"),
            format!("`sync` carrying changes the relay must refuse: {about}"),
            frame(&sync_fields("sync", document, data)),
        );
    }
    // The same refusals for a peer that speaks the `refused` extension: it is told with
    // `caresync-refused` and keeps its connection.
    for (what, document, entry) in [
        (
            "not-automerge",
            doc(15),
            b"not an automerge change".to_vec(),
        ),
        ("record-in-another-village", doc(16), other.raw(0)?),
        ("not-a-record", doc(17), not_a_record.raw(0)?),
    ] {
        corpus.add(
            format!("refused-{what}"),
            format!("as `changes-{what}`, from a peer that speaks the `refused` extension"),
            frame(&sync_fields("sync", document, carrying(&[], &[entry]))),
        );
    }
    Ok(())
}

fn bomb_cases(corpus: &mut Corpus) -> anyhow::Result<()> {
    let mib = BOMB_INFLATED_BYTES / (1024 * 1024);
    let zeros = deflated_zeros(BOMB_INFLATED_BYTES)?;
    let bombs: Vec<(String, String, Vec<u8>)> = vec![
        (
            format!("bomb-compressed-change-{mib}mib"),
            format!(
                "a compressed-change chunk whose deflate stream inflates to {mib} MiB of zeros"
            ),
            chunk(CHUNK_COMPRESSED, &zeros),
        ),
        (
            format!("bomb-document-column-{mib}mib"),
            format!("a document chunk whose deflated change column inflates to {mib} MiB"),
            chunk(CHUNK_DOCUMENT, &document_body_with_column(&zeros)),
        ),
        (
            format!("bomb-bundle-column-{mib}mib"),
            format!("a bundle chunk whose deflated change column inflates to {mib} MiB"),
            chunk(CHUNK_BUNDLE, &bundle_body_with_column(&zeros)),
        ),
    ];
    for (index, (name, about, entry)) in bombs.into_iter().enumerate() {
        let data = carrying(&[], &[entry]);
        ensure!(decodes_as_sync_message(&data), "{name} must decode");
        ensure!(data.len() < FRAME_BYTES_MAX, "{name} is too big to send");
        corpus.add(
            name,
            format!("`sync` of a new document carrying {about}"),
            frame(&sync_fields("sync", doc(20 + index as u8), data)),
        );
    }
    // Just under the relay's bound (32 MiB for one message): automerge inflates it, finds
    // no change in it and the relay refuses it; the most memory a refused message may
    // cost, which the test's memory bound covers.
    let under = deflated_zeros(31 * 1024 * 1024)?;
    corpus.add(
        "bomb-compressed-change-31mib-just-under-the-bound",
        "`sync` carrying a compressed-change chunk of 31 MiB of zeros, just under the relay's \
         inflation bound",
        frame(&sync_fields(
            "sync",
            doc(24),
            carrying(&[], &[chunk(CHUNK_COMPRESSED, &under)]),
        )),
    );
    // Many small bombs in one message: each alone could pass a per-chunk bound.
    let small = deflated_zeros(16 * 1024 * 1024)?;
    let entries: Vec<Vec<u8>> = vec![chunk(CHUNK_COMPRESSED, &small); 16];
    corpus.add(
        "bomb-sixteen-compressed-changes-16mib-each",
        "`sync` carrying 16 compressed-change chunks of 16 MiB of zeros each (256 MiB in all)",
        frame(&sync_fields("sync", doc(23), carrying(&[], &entries))),
    );
    Ok(())
}

/// One connection, in name order: a record is written, sent again, its changes arrive out
/// of order and again.
fn replay_cases(corpus: &mut Corpus, docs: &Docs) -> anyhow::Result<()> {
    let history = record_history(4, OWN_VILLAGE, &["重放一", "重放二", "重放三"])?;
    let [h1, h2, h3] = [history.hash(0)?, history.hash(1)?, history.hash(2)?];
    let [c1, c2, c3] = [history.raw(0)?, history.raw(1)?, history.raw(2)?];
    let sorted = |mut list: Vec<[u8; 32]>| {
        list.sort();
        list
    };
    let steps: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        (
            "01-create",
            "sync",
            "the record's first change",
            carrying(&[h1], std::slice::from_ref(&c1)),
        ),
        (
            "02-create-again",
            "sync",
            "exactly the same message again",
            carrying(&[h1], std::slice::from_ref(&c1)),
        ),
        (
            "03-third-change-before-second",
            "sync",
            "the third change, whose dependency (the second) has not arrived",
            carrying(&[h3], std::slice::from_ref(&c3)),
        ),
        (
            "04-third-change-again",
            "sync",
            "the third change once more, still without the second",
            carrying(&[h3], std::slice::from_ref(&c3)),
        ),
        (
            "05-second-change",
            "sync",
            "the missing second change",
            carrying(&[h2], std::slice::from_ref(&c2)),
        ),
        (
            "06-all-changes-reversed",
            "sync",
            "all three changes again, newest first",
            carrying(&[h3], &[c3.clone(), c2.clone(), c1.clone()]),
        ),
        (
            "07-same-change-twice-in-one-message",
            "sync",
            "the second change twice in one message",
            carrying(&[h3], &[c2.clone(), c2]),
        ),
        (
            "08-stale-heads-no-changes",
            "sync",
            "heads of the first change only, as a peer that lost the rest",
            sync_message(&[h1], &[], &[(vec![h1], vec![])], &[]),
        ),
        (
            "09-need-unknown-hash",
            "sync",
            "`need` naming a hash no one has",
            sync_message(&[h3], &[[0xab; 32]], &[(vec![], vec![])], &[]),
        ),
        (
            "10-unsorted-heads-and-need",
            "sync",
            "heads and need in descending order (automerge writes them sorted)",
            {
                let mut heads = sorted(vec![h1, h2, h3]);
                heads.reverse();
                sync_message(&heads, &heads, &[(vec![], vec![])], &[])
            },
        ),
        (
            "11-last-sync-unknown-hash",
            "sync",
            "a `have` whose last sync names a hash the relay never saw",
            sync_message(&[h3], &[], &[(vec![[0xcd; 32]], vec![])], &[]),
        ),
        (
            "12-second-have-unknown-hash",
            "sync",
            "a second `have` whose last sync names an unknown hash",
            sync_message(
                &[h3],
                &[],
                &[(vec![], vec![]), (vec![[0xcd; 32]], vec![])],
                &[],
            ),
        ),
        (
            "13-request-existing",
            "request",
            "a `request` for the record, which now exists",
            empty_sync_message(),
        ),
    ];
    for (step, kind, about, data) in steps {
        ensure!(decodes_as_sync_message(&data), "replay-{step} must decode");
        corpus.add(
            format!("replay-{step}"),
            format!("`{kind}` of a record in the director's village: {about}"),
            frame(&sync_fields(kind, docs.replay, data)),
        );
    }
    Ok(())
}

fn orphan_cases(corpus: &mut Corpus, own: &History) -> anyhow::Result<()> {
    let chain = plain_history(5, 1100)?;
    let without_root: Vec<Vec<u8>> = chain
        .changes
        .iter()
        .skip(1)
        .map(|change| change.raw_bytes().to_vec())
        .collect();
    let big = {
        // One large change whose dependency never arrives.
        let mut doc = AutoCommit::new().with_actor(actor(6));
        doc.put(ROOT, "a", 1)?;
        commit(&mut doc);
        doc.put(
            ROOT,
            "blob",
            automerge::ScalarValue::Bytes(b"orphan ".repeat(HUGE_VALUE_BYTES / 7)),
        )?;
        commit(&mut doc);
        History {
            changes: doc.get_changes(&[]),
        }
    };
    let cases: Vec<(&str, &str, DocumentId, Vec<u8>)> = vec![
        (
            "orphan-second-change-without-first",
            "the second change of a history whose first never comes",
            doc(30),
            carrying(&[chain.hash(1)?], &[chain.raw(1)?]),
        ),
        (
            "orphan-1099-changes-without-their-root",
            "1,099 changes in a chain whose root never comes (beyond the orphan bound)",
            doc(31),
            carrying(&[chain.hash(1099)?], &without_root),
        ),
        (
            "orphan-change-of-another-documents-history",
            "a change of the stored record's history sent for another, new document",
            doc(32),
            carrying(&[own.hash(0)?], &[chain.raw(2)?]),
        ),
        (
            "orphan-1mib-change-without-its-dependency",
            "a 1 MiB change whose dependency never comes (the test sends it many times)",
            doc(33),
            carrying(&[big.hash(1)?], &[big.raw(1)?]),
        ),
    ];
    for (name, about, document, data) in cases {
        ensure!(decodes_as_sync_message(&data), "{name} must decode");
        corpus.add(name, about, frame(&sync_fields("sync", document, data)));
    }
    Ok(())
}

/// Well-formed messages about documents the peer may not see or that do not exist: the
/// answer is `doc-unavailable`, the same for both (design §3.4).
fn unknown_cases(corpus: &mut Corpus, docs: &Docs, other: &History) -> anyhow::Result<()> {
    corpus.add(
        "unknown-request-never-stored",
        "`request` for a document no one stored",
        frame(&sync_fields("request", docs.unknown, empty_sync_message())),
    );
    corpus.add(
        "unknown-request-all-zero-id",
        "`request` for the all-zero document id",
        frame(&sync_fields(
            "request",
            DocumentId::from_bytes([0; 16]),
            empty_sync_message(),
        )),
    );
    corpus.add(
        "unknown-request-all-ff-id-as-bytes",
        "`request` for the all-0xff document id, given as 16 bytes",
        frame(&with(
            &sync_fields("request", docs.unknown, empty_sync_message()),
            "documentId",
            Some(C::B(vec![0xff; 16])),
        )),
    );
    corpus.add(
        "unknown-foreign-request",
        "`request` for `demo-director-2`'s record",
        frame(&sync_fields("request", docs.other, empty_sync_message())),
    );
    corpus.add(
        "unknown-foreign-sync-without-changes",
        "`sync` for `demo-director-2`'s record claiming its heads",
        frame(&sync_fields(
            "sync",
            docs.other,
            sync_message(&[other.hash(0)?], &[], &[(vec![], vec![])], &[]),
        )),
    );
    corpus.add(
        "unknown-foreign-sync-with-a-change",
        "`sync` for `demo-director-2`'s record carrying a change to it",
        frame(&sync_fields(
            "sync",
            docs.other,
            carrying(&[other.hash(1)?], &[other.raw(1)?]),
        )),
    );
    corpus.add(
        "unknown-foreign-request-by-bytes-id",
        "`request` for `demo-director-2`'s record, its id given as bytes",
        frame(&with(
            &sync_fields("request", docs.other, empty_sync_message()),
            "documentId",
            Some(C::B(docs.other.as_bytes().to_vec())),
        )),
    );
    Ok(())
}

/// Ephemeral messages are never stored and go only to other readers of the document; for
/// these there is nobody, so the relay drops them without an answer.
fn ephemeral_cases(corpus: &mut Corpus, docs: &Docs) {
    let cases: Vec<(&str, &str, Fields)> = vec![
        (
            "ephemeral-unknown-document",
            "for a document that does not exist",
            ephemeral_fields(docs.unknown, b"cursor".to_vec()),
        ),
        (
            "ephemeral-foreign-document",
            "for `demo-director-2`'s record",
            ephemeral_fields(docs.other, b"cursor".to_vec()),
        ),
        (
            "ephemeral-1mib-data",
            "with 1 MiB of data",
            ephemeral_fields(docs.own, vec![0xee; HUGE_VALUE_BYTES]),
        ),
        (
            "ephemeral-empty-data",
            "with empty data",
            ephemeral_fields(docs.own, vec![]),
        ),
        (
            "ephemeral-count-u64-max",
            "with count u64::MAX",
            with(
                &ephemeral_fields(docs.own, b"x".to_vec()),
                "count",
                Some(C::U(u64::MAX)),
            ),
        ),
        (
            "ephemeral-count-zero-replayed",
            "with count 0 (a replay of an older message)",
            with(
                &ephemeral_fields(docs.own, b"x".to_vec()),
                "count",
                Some(C::U(0)),
            ),
        ),
        (
            "ephemeral-count-as-float",
            "with count 2.0 as a float, as JS sends it",
            with(
                &ephemeral_fields(docs.own, b"x".to_vec()),
                "count",
                Some(C::F64(2.0)),
            ),
        ),
        (
            "ephemeral-session-id-64kib",
            "with a 64 KiB session id",
            with(
                &ephemeral_fields(docs.own, b"x".to_vec()),
                "sessionId",
                Some(t(&"s".repeat(STRING_BYTES_MAX))),
            ),
        ),
        (
            "ephemeral-sender-id-not-the-joined-one",
            "claiming another sender id than the one that joined",
            with(
                &ephemeral_fields(docs.own, b"x".to_vec()),
                "senderId",
                Some(t("someone-else")),
            ),
        ),
    ];
    for (name, about, fields) in cases {
        corpus.add(name, format!("`ephemeral` {about}"), frame(&fields));
    }
}

/// Heads gossip between storage peers, which caresync ignores, in odd shapes.
fn gossip_cases(corpus: &mut Corpus, docs: &Docs) {
    let heads = |heads: Vec<C>, timestamp: C| {
        C::M(vec![(
            t("storage-a"),
            C::M(vec![(t("heads"), C::A(heads)), (t("timestamp"), timestamp)]),
        )])
    };
    let cases: Vec<(&str, &str, Fields)> = vec![
        (
            "gossip-remote-heads-not-base58",
            "`remote-heads-changed` whose heads are not bs58check (passed through unchecked)",
            with(
                &remote_heads_fields(docs.own),
                "newHeads",
                Some(heads(vec![t("not base58 at all")], C::U(1))),
            ),
        ),
        (
            "gossip-remote-heads-timestamp-u64-max",
            "`remote-heads-changed` with timestamp u64::MAX",
            with(
                &remote_heads_fields(docs.own),
                "newHeads",
                Some(heads(vec![], C::U(u64::MAX))),
            ),
        ),
        (
            "gossip-remote-heads-foreign-document",
            "`remote-heads-changed` for `demo-director-2`'s record",
            remote_heads_fields(docs.other),
        ),
        (
            "gossip-remote-heads-1024-storage-ids",
            "`remote-heads-changed` with 1024 storage ids (the limit)",
            with(
                &remote_heads_fields(docs.own),
                "newHeads",
                Some(C::M(
                    (0..1024)
                        .map(|n| {
                            (
                                t(&format!("storage-{n}")),
                                C::M(vec![(t("heads"), C::A(vec![])), (t("timestamp"), C::U(1))]),
                            )
                        })
                        .collect(),
                )),
            ),
        ),
        (
            "gossip-subscription-1024-storage-ids",
            "`remote-subscription-change` adding and removing 1024 storage ids",
            {
                let ids = C::A((0..1024).map(|n| t(&format!("storage-{n}"))).collect());
                with(
                    &with(&subscription_fields(), "add", Some(ids.clone())),
                    "remove",
                    Some(ids),
                )
            },
        ),
        (
            "gossip-subscription-empty",
            "`remote-subscription-change` with neither `add` nor `remove`",
            with(&with(&subscription_fields(), "add", None), "remove", None),
        ),
        (
            "gossip-doc-unavailable-for-stored-record",
            "`doc-unavailable` from the peer for the stored record",
            unavailable_fields(docs.own),
        ),
        (
            "gossip-doc-unavailable-unknown",
            "`doc-unavailable` from the peer for an unknown document",
            unavailable_fields(docs.unknown),
        ),
    ];
    for (name, about, fields) in cases {
        corpus.add(name, about, frame(&fields));
    }
}

/// Scope requests from a peer that agreed on the `scope` extension, with odd cursors.
fn scope_cases(corpus: &mut Corpus) {
    let cursors: Vec<(&str, Option<C>)> = vec![
        ("since-u64-max", Some(C::U(u64::MAX))),
        (
            "since-float-2-pow-53",
            Some(C::F64(9_007_199_254_740_992.0)),
        ),
        ("since-zero", Some(C::U(0))),
        ("since-null", Some(C::Null)),
    ];
    for (what, since) in cursors {
        corpus.add(
            format!("scope-{what}"),
            format!("`caresync-scope-request` with `since` {what}"),
            frame(&with(&scope_request_fields(), "since", since)),
        );
    }
}

/// One message a byte over the WebSocket limit (which equals the codec's frame limit): the
/// relay must stop reading it rather than buffer and decode it.
fn oversized_cases(corpus: &mut Corpus, docs: &Docs) -> anyhow::Result<()> {
    let target = FRAME_BYTES_MAX + 1;
    // The frame's length grows with `data` byte for byte once the length header's width is
    // fixed, so one measurement finds the size.
    let probe = frame(&sync_fields(
        "sync",
        docs.unknown,
        vec![0; FRAME_BYTES_MAX - 1024],
    ));
    let data_len = FRAME_BYTES_MAX - 1024 + (target - probe.len());
    let bytes = frame(&sync_fields("sync", docs.unknown, vec![0; data_len]));
    ensure!(
        bytes.len() == target,
        "the oversized frame has {} bytes",
        bytes.len()
    );
    corpus.add(
        "oversized-sync-frame-8mib-plus-1",
        "a sync frame of 8 MiB + 1 byte, one over the WebSocket message limit",
        bytes,
    );
    Ok(())
}
