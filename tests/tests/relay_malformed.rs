//! The malformed-input corpus (design §5, issue 6) against the real relay: every file of
//! `tests/corpus/malformed/` is sent to a `caresync serve --demo` process as one binary
//! WebSocket message, and the relay must answer each with a typed `error` message or a close
//! code (or, for well-formed messages about documents one may not see, the protocol's own
//! answer), never panic, never hang, and keep its memory bounded, while a well-behaved
//! phone keeps syncing a record through it. The corpus is written by
//! `cargo run -p caresync-tests --bin make-malformed-corpus`; its `README.md` says what is
//! wrong with each case.
//!
//! # How a case is sent
//!
//! A case is sent on a fresh socket logged in as `demo-director`, either as the first
//! message (`raw`, for cases about the handshake) or after a valid `join` (`joined`, the
//! relay's `peer` answer awaited first; `joined+ext` offers the `scope` and `refused`
//! extensions), several cases at a time on their own sockets. Where the connection must
//! stay open, the test sends a probe right behind the case, a valid `request` for a document
//! that does not exist: its `doc-unavailable` shows that the relay read past the case and
//! kept the connection, so silence is told apart from a hang without waiting for a
//! timeout. Where the relay must close, no probe is sent (the relay would close with it
//! unread, and the reset that causes can destroy the close frame in flight) unless the
//! close does not come. Groups marked `sequential` share one connection, cases in name order
//! (the `replay-` steps build on each other); [`REPEATS`] sends a case many times in a row.
//! The 8 MiB + 1 message goes in two WebSocket frames, so that the relay reads it whole
//! before refusing it (see [`send_in_two_frames`]).
//!
//! Before the cases, `setup/` stores two records (one in `demo-director`'s village, one in
//! `demo-director-2`'s) that cases name by id. Between groups the well-behaved phone renames
//! its record and must be acknowledged, and at the end a fresh phone must read the last
//! name. The relay's `VmHWM` (peak resident memory, from `/proc/<pid>/status`) must stay
//! below [`PEAK_RSS_BYTES_MAX`]; the test prints it, with `VmRSS`, per group and overall.
//!
//! # What each group must get
//!
//! | group | sent | acceptable answer |
//! |---|---|---|
//! | `codec-`, `truncated-`, `cbor-`, `nesting-`, `field-`, `type-`, `docid-`, `huge-` | joined | `error`, then close 1002: the frame does not decode, names an unknown or relay-only type, or breaks a codec limit |
//! | `sync-data-`, `bloom-` | joined | `error`, then close 1002: `data` is no usable automerge sync message |
//! | `handshake-` | raw | `error`, then close 1002: a message before `join`, or no common protocol version |
//! | `handshake-farewell-` | raw | close 1002 without `error`: the peer's own `error` ends the connection |
//! | `join-` | raw | `error`, then close 1002: a `join` with a field of the wrong type |
//! | `joinodd-` | raw | `peer`: odd but well-formed joins (peer ids are any text; the session authenticates) |
//! | `farewell-` | joined | close 1002 without `error`: `leave` and `error` end the connection |
//! | `oversized-` | joined | close 1009: the message exceeds the WebSocket limit before it is decoded |
//! | `changes-`, `bomb-` | joined | `error`, then close 1008: changes refused (unreadable, too many, inflating too far, invalid or forbidden) |
//! | `refused-` | joined+ext | `caresync-refused`, connection kept: the same refusals for a peer that speaks `refused` |
//! | `replay-` | joined, sequential | `sync` where an answer is due (a change stored, an orphan's dependency to ask for, a peer behind); otherwise the connection stays open and only `sync` may arrive |
//! | `orphan-` | joined, sequential | `sync` (asking for the missing dependency), connection kept; memory stays bounded however often the orphan is sent |
//! | `unknown-` | joined, sequential | `doc-unavailable`: missing and forbidden documents look the same (design §3.4) |
//! | `ephemeral-`, `gossip-` | joined, sequential | no answer and the connection kept: these are dropped (nobody else reads the document; caresync ignores heads gossip) |
//! | `scope-` | joined+ext, sequential | `caresync-scope` for any well-formed cursor |
//!
//! Whatever the group, a close 1011 (internal error), a connection that ends without a close
//! frame, a case that gets no answer within [`CASE_TIMEOUT`], or "panic" in the relay's log
//! fails the test. The cases that first failed here (and the fixes) are named in
//! `core/src/sync/repo/sync_messages.rs` (`make_safe_for_automerge`), `core/src/sync/chunks.rs`
//! (`inflated_bytes`) and `core/src/sync/incoming_changes.rs` (orphans kept once).

// `common` reads JSON answers with `value["key"]`, which yields `Null` rather than panicking.
#![allow(clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use caresync_core::domain::Record;
use caresync_core::protocol::{DocumentId, Message, PeerId};
use caresync_tests::raw::{RawPeer, Received};
use caresync_tests::{Device, RelayProcess};
use common::*;
use futures_util::StreamExt;

/// How long one case may take to be answered (the probe included).
const CASE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a sequential case's connection is watched after its answers, so that a late
/// answer is charged to the case that caused it rather than to the next.
const SETTLE: Duration = Duration::from_millis(100);
/// Cases of a group that are not sequential run this many at a time, each on its socket.
const CASES_AT_ONCE: usize = 8;
/// The relay's peak resident memory must stay below this (the demo prefecture and the
/// corpus included); the deflate bombs alone would inflate to 256 MiB each.
const PEAK_RSS_BYTES_MAX: u64 = 300 * 1024 * 1024;
/// The village the corpus's records were written for (see the generator).
const CORPUS_VILLAGE: &str = "370402102201";
/// A document no one ever stores: the probe asks for it.
const PROBE_DOCUMENT: [u8; 16] = [0x5a; 16];
const EXTENSIONS: [&str; 2] = ["scope", "refused"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Raw,
    Joined,
    JoinedWithExtensions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// An `error` message, then a close frame with this code.
    ErrorThenClose(u16),
    /// A close frame with this code and no `error` before it.
    Close(u16),
    /// A message of this type, and the connection kept.
    Answer(&'static str),
    /// Nothing but the probe's answer, and the connection kept.
    Ignored,
    /// The connection kept; `sync` messages may or may not come (no answer is due).
    Alive,
}

struct Group {
    prefix: &'static str,
    mode: Mode,
    expect: Expect,
    sequential: bool,
}

const fn group(prefix: &'static str, mode: Mode, expect: Expect, sequential: bool) -> Group {
    Group {
        prefix,
        mode,
        expect,
        sequential,
    }
}

/// Longest prefix first: `handshake-farewell-` before `handshake-`, `joinodd-` before `join-`.
const GROUPS: &[Group] = &[
    group("handshake-farewell-", Mode::Raw, Expect::Close(1002), false),
    group("handshake-", Mode::Raw, Expect::ErrorThenClose(1002), false),
    group("joinodd-", Mode::Raw, Expect::Answer("peer"), false),
    group("join-", Mode::Raw, Expect::ErrorThenClose(1002), false),
    group("codec-", Mode::Joined, Expect::ErrorThenClose(1002), false),
    group(
        "truncated-",
        Mode::Joined,
        Expect::ErrorThenClose(1002),
        false,
    ),
    group("cbor-", Mode::Joined, Expect::ErrorThenClose(1002), false),
    group(
        "nesting-",
        Mode::Joined,
        Expect::ErrorThenClose(1002),
        false,
    ),
    group("field-", Mode::Joined, Expect::ErrorThenClose(1002), false),
    group("type-", Mode::Joined, Expect::ErrorThenClose(1002), false),
    group("docid-", Mode::Joined, Expect::ErrorThenClose(1002), false),
    group("huge-", Mode::Joined, Expect::ErrorThenClose(1002), false),
    group(
        "sync-data-",
        Mode::Joined,
        Expect::ErrorThenClose(1002),
        false,
    ),
    group("bloom-", Mode::Joined, Expect::ErrorThenClose(1002), false),
    group("farewell-", Mode::Joined, Expect::Close(1002), false),
    group("oversized-", Mode::Joined, Expect::Close(1009), false),
    group(
        "changes-",
        Mode::Joined,
        Expect::ErrorThenClose(1008),
        false,
    ),
    group("bomb-", Mode::Joined, Expect::ErrorThenClose(1008), false),
    group(
        "refused-",
        Mode::JoinedWithExtensions,
        Expect::Answer("caresync-refused"),
        false,
    ),
    group("replay-", Mode::Joined, Expect::Answer("sync"), true),
    group("orphan-", Mode::Joined, Expect::Answer("sync"), true),
    group(
        "unknown-",
        Mode::Joined,
        Expect::Answer("doc-unavailable"),
        true,
    ),
    group("ephemeral-", Mode::Joined, Expect::Ignored, true),
    group("gossip-", Mode::Joined, Expect::Ignored, true),
    group(
        "scope-",
        Mode::JoinedWithExtensions,
        Expect::Answer("caresync-scope"),
        true,
    ),
];

/// Cases whose answer differs from their group's. In the `replay-` sequence an answer is
/// due only where the relay learns something or the peer is behind; where the peer repeats
/// what the relay already holds, automerge may stay silent.
const EXPECT_OVERRIDES: &[(&str, Expect)] = &[
    ("replay-02-create-again", Expect::Alive),
    ("replay-04-third-change-again", Expect::Alive),
    ("replay-06-all-changes-reversed", Expect::Alive),
    ("replay-07-same-change-twice-in-one-message", Expect::Alive),
    ("replay-09-need-unknown-hash", Expect::Alive),
    ("replay-10-unsorted-heads-and-need", Expect::Alive),
    ("replay-12-second-have-unknown-hash", Expect::Alive),
];

/// Cases sent several times in a row before the probe: an orphan that a peer repeats must
/// not pile up in the relay's memory.
const REPEATS: &[(&str, usize)] = &[("orphan-1mib-change-without-its-dependency", 100)];

struct Case {
    name: String,
    bytes: Vec<u8>,
}

fn read_cases(dir: &Path) -> anyhow::Result<Vec<Case>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|path| path.extension().is_some_and(|ext| ext == "cbor"));
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .ok_or_else(|| anyhow!("{} has no UTF-8 name", path.display()))?
                .to_owned();
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Case { name, bytes })
        })
        .collect()
}

fn group_of(name: &str) -> anyhow::Result<&'static Group> {
    GROUPS
        .iter()
        .find(|group| name.starts_with(group.prefix))
        .ok_or_else(|| anyhow!("case {name} belongs to no group of this test"))
}

fn expectation(name: &str, group: &Group) -> Expect {
    EXPECT_OVERRIDES
        .iter()
        .find(|(case, _)| *case == name)
        .map_or(group.expect, |(_, expect)| *expect)
}

/// What the relay did with one case.
#[derive(Debug, Default)]
struct Observed {
    /// Types of the messages that arrived, the probe's answer left out.
    answers: Vec<String>,
    /// The text of an `error` message, if one came.
    error: Option<String>,
    /// The close code (`None` inside for a connection that ended without one) and reason.
    closed: Option<(Option<u16>, String)>,
    /// The probe's `doc-unavailable` arrived: the connection outlived the case.
    probe_answered: bool,
    timed_out: bool,
}

impl Observed {
    fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(error) = &self.error {
            parts.push(format!("error {:?}", shorten(error)));
        }
        let answers: Vec<&String> = self.answers.iter().filter(|a| *a != "error").collect();
        if !answers.is_empty() {
            parts.push(format!("answers {answers:?}"));
        }
        match &self.closed {
            Some((Some(code), reason)) => parts.push(format!("close {code} {:?}", shorten(reason))),
            Some((None, reason)) => parts.push(format!("dropped ({reason})")),
            None if self.probe_answered => parts.push("open".to_owned()),
            None => {}
        }
        if self.timed_out {
            parts.push("TIMED OUT".to_owned());
        }
        parts.join(", ")
    }

    /// The short outcome class counted in the summary.
    fn class(&self) -> String {
        match (&self.error, &self.closed) {
            (Some(_), Some((Some(code), _))) => format!("error + close {code}"),
            (None, Some((Some(code), _))) => format!("close {code}"),
            (_, Some((None, _))) => "dropped without close".to_owned(),
            _ if self.timed_out => "timed out".to_owned(),
            _ => match self.answers.first() {
                Some(first) => format!("answered {first}"),
                None => "no answer, kept open".to_owned(),
            },
        }
    }

    /// Whether this is what `expect` allows; the reason if not.
    fn check(&self, expect: Expect) -> Result<(), String> {
        if self.timed_out && self.probe_answered {
            return Err(
                "kept the connection open without the answer its group requires".to_owned(),
            );
        }
        if self.timed_out {
            return Err(
                "no answer within the case timeout, not even to the probe (a hang)".to_owned(),
            );
        }
        if let Some((code, _)) = &self.closed {
            if *code == Some(1011) {
                return Err("closed with 1011: the relay failed internally".to_owned());
            }
            if code.is_none() {
                return Err("the connection ended without a close frame".to_owned());
            }
        }
        let only_sync = self.answers.iter().all(|answer| answer == "sync");
        let ok = match expect {
            Expect::ErrorThenClose(code) => {
                self.error.is_some() && self.closed.as_ref().is_some_and(|c| c.0 == Some(code))
            }
            Expect::Close(code) => {
                self.error.is_none() && self.closed.as_ref().is_some_and(|c| c.0 == Some(code))
            }
            Expect::Answer(kind) => {
                self.probe_answered
                    && self.closed.is_none()
                    && self.error.is_none()
                    && self.answers.iter().any(|answer| answer == kind)
            }
            Expect::Ignored => {
                self.probe_answered && self.closed.is_none() && self.answers.is_empty()
            }
            Expect::Alive => {
                self.probe_answered && self.closed.is_none() && self.error.is_none() && only_sync
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected {expect:?}"))
        }
    }

    fn done(&self, expect: Expect) -> bool {
        if self.closed.is_some() {
            return true;
        }
        match expect {
            // No probe is sent for these: only the close settles them.
            Expect::ErrorThenClose(_) | Expect::Close(_) => false,
            Expect::Answer(kind) => {
                self.probe_answered && self.answers.iter().any(|answer| answer == kind)
            }
            Expect::Ignored | Expect::Alive => self.probe_answered,
        }
    }
}

fn shorten(text: &str) -> String {
    let mut end = text.len().min(90);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}

/// The probe: a valid `request` for a document that does not exist.
fn probe(sender: &PeerId) -> anyhow::Result<Vec<u8>> {
    let doc = automerge::Automerge::new();
    let mut state = automerge::sync::State::new();
    let data = automerge::sync::SyncDoc::generate_sync_message(&doc, &mut state)
        .context("a fresh document has a first sync message")?
        .encode();
    Ok(Message::Request {
        document_id: DocumentId::from_bytes(PROBE_DOCUMENT),
        sender_id: sender.clone(),
        target_id: PeerId::from("relay"),
        data,
    }
    .encode())
}

/// Reads what the relay sends until the case is settled: closed, or the probe answered
/// (and the expected answer seen), then `settle` longer.
async fn observe(peer: &mut RawPeer, expect: Expect, settle: Duration) -> anyhow::Result<Observed> {
    let mut observed = Observed::default();
    let deadline = Instant::now() + CASE_TIMEOUT;
    let mut settled_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let wait = match settled_at {
            Some(at) if now >= at => return Ok(observed),
            Some(at) => at - now,
            None if now >= deadline => {
                observed.timed_out = true;
                return Ok(observed);
            }
            None => deadline - now,
        };
        match peer.receive(wait).await? {
            Received::Nothing => {}
            Received::Closed { code, reason } => {
                observed.closed = Some((code, reason));
                return Ok(observed);
            }
            Received::Message(Message::DocUnavailable { document_id, .. })
                if document_id == DocumentId::from_bytes(PROBE_DOCUMENT) =>
            {
                observed.probe_answered = true;
            }
            Received::Message(message) => {
                if let Message::Error { message, .. } = &message {
                    observed.error = Some(message.clone());
                }
                observed.answers.push(message.type_name().to_owned());
            }
        }
        if settled_at.is_none() && observed.done(expect) {
            settled_at = Some(Instant::now() + settle);
        }
    }
}

/// A socket as `demo-director`, joined as `mode` asks.
async fn open(
    relay: &RelayProcess,
    token: &str,
    mode: Mode,
    name: &str,
) -> anyhow::Result<RawPeer> {
    let mut peer = RawPeer::connect(&relay.ws_url(token), name).await?;
    let extensions: &[&str] = match mode {
        Mode::Raw => return Ok(peer),
        Mode::Joined => &[],
        Mode::JoinedWithExtensions => &EXTENSIONS,
    };
    match peer.join(extensions, CASE_TIMEOUT).await? {
        Received::Message(Message::Peer { .. }) => Ok(peer),
        other => bail!("{name}: the join was answered with {}", other.describe()),
    }
}

/// Sends one case (repeated if [`REPEATS`] says so) and the probe, and watches the answer.
async fn run_case(
    peer: &mut RawPeer,
    case: &Case,
    expect: Expect,
    settle: Duration,
) -> anyhow::Result<Observed> {
    let repeats = REPEATS
        .iter()
        .find(|(name, _)| *name == case.name)
        .map_or(1, |(_, n)| *n);
    if case.bytes.len() > caresync_core::protocol::FRAME_BYTES_MAX {
        return send_in_two_frames(peer, &case.bytes, expect).await;
    }
    // A relay that closes the socket part-way makes later sends fail; what it said before
    // closing is what counts, so send errors are left to `observe` to explain.
    for _ in 0..repeats {
        if peer.send_frame(case.bytes.clone()).await.is_err() {
            break;
        }
    }
    // A case that must close gets no probe: the relay would often close with the probe
    // unread in its socket, and the reset that causes can destroy the close frame in flight.
    let closes = matches!(expect, Expect::ErrorThenClose(_) | Expect::Close(_));
    if !closes {
        let _ = peer.send_frame(probe(&peer.peer_id())?).await;
    }
    let mut observed = observe(peer, expect, settle).await?;
    if closes && observed.closed.is_none() {
        // Not closed in time: the probe now tells a relay that ignored the case from one
        // that hangs.
        let _ = peer.send_frame(probe(&peer.peer_id())?).await;
        let later = observe(peer, Expect::Ignored, Duration::ZERO).await?;
        observed.probe_answered = later.probe_answered;
        observed.answers.extend(later.answers);
        observed.closed = later.closed;
    }
    Ok(observed)
}

/// Sends a message bigger than the relay accepts, as two WebSocket frames of one message.
///
/// Sent as one frame, it is refused from the frame's header and the relay closes with
/// megabytes of it unread; the kernel then resets the connection, and the reset can
/// destroy the close frame before this side reads it. In two frames, each within the frame
/// limit, the relay reads the whole message before it finds it too long, so its close
/// arrives intact.
async fn send_in_two_frames(
    peer: &mut RawPeer,
    message: &[u8],
    expect: Expect,
) -> anyhow::Result<Observed> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let (first, rest) = message.split_at(message.len() / 2);
    let frames = [
        Frame::message(first.to_vec(), OpCode::Data(Data::Binary), false),
        Frame::message(rest.to_vec(), OpCode::Data(Data::Continue), true),
    ];
    for frame in frames {
        if peer
            .socket_mut()
            .send(WsMessage::Frame(frame))
            .await
            .is_err()
        {
            break;
        }
    }
    observe(peer, expect, Duration::ZERO).await
}

fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
}

fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    Ok((status_kib(pid, "VmRSS:")?, status_kib(pid, "VmHWM:")?))
}

/// Lines of the relay's log that mention a panic and were not reported yet. The log keeps
/// only its recent lines, so it is read after every case; each panic's lines carry their
/// own timestamp or text, so none is reported twice.
fn new_panic_lines(relay: &RelayProcess, seen: &mut BTreeSet<String>) -> Vec<String> {
    relay
        .output()
        .lines()
        .filter(|line| line.to_lowercase().contains("panic"))
        .filter(|line| seen.insert((*line).to_owned()))
        .map(str::to_owned)
        .collect()
}

/// Sends a setup frame as `login` and waits for the relay to acknowledge the write.
async fn store(relay: &RelayProcess, login: &Login, path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut peer = open(relay, &login.token, Mode::Joined, "setup").await?;
    peer.send_frame(bytes).await?;
    match peer.receive(CASE_TIMEOUT).await? {
        Received::Message(Message::Sync { .. }) => {
            peer.close().await;
            Ok(())
        }
        other => bail!(
            "setup {} was answered with {}",
            path.display(),
            other.describe()
        ),
    }
}

/// The well-behaved phone renames its record and waits until the relay acknowledged it.
async fn steady_step(steady: &Device, record: &DocumentId, name: &str) -> anyhow::Result<()> {
    steady
        .change(record, |record| {
            if let Record::Child(child) = record {
                name.clone_into(&mut child.name);
            }
        })
        .await?;
    wait_synced(steady, record)
        .await
        .with_context(|| format!("the well-behaved phone stopped syncing at {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_answers_every_malformed_input_and_keeps_serving() -> anyhow::Result<()> {
    let started = Instant::now();
    let corpus_dir = caresync_tests::relay::workspace_root()?.join("tests/corpus/malformed");
    let cases = read_cases(&corpus_dir)?;
    ensure!(
        cases.len() >= 200,
        "only {} cases in the corpus",
        cases.len()
    );

    let relay = RelayProcess::start_with(&["--demo"])?;
    let pid = relay.pid().context("the relay has no pid")?;
    let director = login_as(&relay, "demo-director")?;
    let director_2 = login_as(&relay, "demo-director-2")?;
    ensure!(
        director.org_unit == CORPUS_VILLAGE,
        "the corpus was written for village {CORPUS_VILLAGE}, but demo-director's is {}: \
         regenerate it",
        director.org_unit
    );
    let setup = corpus_dir.join("setup");
    store(
        &relay,
        &director,
        &setup.join("1-director-stores-own-village-record.cbor"),
    )
    .await?;
    store(
        &relay,
        &director_2,
        &setup.join("2-director-2-stores-other-village-record.cbor"),
    )
    .await?;

    // The well-behaved phone: it keeps one record in sync through the whole run.
    let steady = phone(&relay, "steady phone", &director).await?;
    let record = steady.create(&child_in(&director.org_unit, "稳定 0"))?;
    wait_synced(&steady, &record).await?;
    let (rss_before, peak_before) = memory(pid)?;
    let mut last_peak = peak_before;
    let mut timing: Vec<String> = Vec::new();
    let corpus_started = Instant::now();

    let mut results: Vec<(String, Expect, Observed)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut seen_panics = BTreeSet::new();
    let mut index = 0;
    let mut steps = 0;
    while index < cases.len() {
        let Some(first) = cases.get(index) else { break };
        let group = group_of(&first.name)?;
        let members: Vec<&Case> = cases
            .iter()
            .skip(index)
            .take_while(|case| group_of(&case.name).is_ok_and(|g| g.prefix == group.prefix))
            .collect();
        index += members.len();
        let group_started = Instant::now();
        let observed: Vec<Observed> = if group.sequential {
            let mut shared: Option<RawPeer> = None;
            let mut observed = Vec::new();
            for case in &members {
                let mut peer = match shared.take() {
                    Some(peer) => peer,
                    None => open(&relay, &director.token, group.mode, group.prefix).await?,
                };
                let outcome =
                    run_case(&mut peer, case, expectation(&case.name, group), SETTLE).await?;
                if outcome.closed.is_none() {
                    shared = Some(peer);
                } else {
                    peer.close().await;
                }
                observed.push(outcome);
            }
            if let Some(peer) = shared {
                peer.close().await;
            }
            observed
        } else {
            // Each case on its own socket, several at once: they cannot affect each other,
            // and the relay's engine handles them one at a time anyway.
            futures_util::stream::iter(members.iter().map(|case| {
                let token = director.token.as_str();
                let relay = &relay;
                async move {
                    let mut peer = open(relay, token, group.mode, "malformed").await?;
                    let expect = expectation(&case.name, group);
                    let observed = run_case(&mut peer, case, expect, Duration::ZERO).await?;
                    peer.close().await;
                    anyhow::Ok(observed)
                }
            }))
            .buffered(CASES_AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?
        };
        for (case, observed) in members.iter().zip(observed) {
            let expect = expectation(&case.name, group);
            if let Err(why) = observed.check(expect) {
                failures.push(format!("{}: {why}, got {}", case.name, observed.summary()));
            }
            results.push((case.name.clone(), expect, observed));
        }
        for line in new_panic_lines(&relay, &mut seen_panics) {
            failures.push(format!("group {}: the relay logged {line:?}", group.prefix));
        }
        // Which groups raised the relay's peak memory, and by how much.
        let (_, peak) = memory(pid)?;
        timing.push(format!(
            "{}: {} cases in {:.1} s, VmHWM {last_peak} -> {peak} kB",
            group.prefix,
            members.len(),
            group_started.elapsed().as_secs_f64()
        ));
        last_peak = peak;
        // Between groups the well-behaved phone writes again and must be acknowledged.
        steps += 1;
        steady_step(&steady, &record, &format!("稳定 {steps}")).await?;
    }
    let (rss_after, peak_after) = memory(pid)?;
    let corpus_time = corpus_started.elapsed();

    // A phone that connects afresh sees the well-behaved phone's last write.
    let fresh = phone(&relay, "fresh phone", &director).await?;
    fresh.open(&record);
    let last_name = format!("稳定 {steps}");
    fresh
        .wait_until(WAIT, |d| {
            child_name(d.record(&record)).as_deref() == Some(last_name.as_str())
        })
        .await
        .context("a fresh phone did not get the well-behaved phone's last write")?;
    for line in new_panic_lines(&relay, &mut seen_panics) {
        failures.push(format!("after the corpus: the relay logged {line:?}"));
    }

    let mut by_class: BTreeMap<String, usize> = BTreeMap::new();
    println!("case | expected | observed");
    for (name, expect, observed) in &results {
        *by_class.entry(observed.class()).or_default() += 1;
        println!("{name} | {expect:?} | {}", observed.summary());
    }
    println!("outcomes of {} cases: {by_class:?}", results.len());
    println!("groups, in the order sent: {timing:#?}");
    println!(
        "relay memory: VmRSS {rss_before} kB -> {rss_after} kB, VmHWM {peak_before} kB -> {peak_after} kB \
         (bound {} kB); corpus replayed in {:.1} s with {steps} well-behaved syncs, {:.1} s in all",
        PEAK_RSS_BYTES_MAX / 1024,
        corpus_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    ensure!(
        failures.is_empty(),
        "{} of {} cases were not answered as their group requires:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
    ensure!(
        peak_after * 1024 < PEAK_RSS_BYTES_MAX,
        "the relay's peak memory reached {peak_after} kB"
    );
    Ok(())
}
