//! The crash-restart run of design §5: the real relay is killed with SIGKILL at random
//! moments while several phones write, restarted on the same database, and every phone
//! resyncs. After each crash it checks that
//!
//! - every change the relay told a phone it holds (the heads of its sync messages, which
//!   may only name durably stored changes, and their history) is still there, read back by
//!   a fresh device before the writing phones reconnect (they would otherwise quietly send
//!   a lost change again and hide the loss). Each crash checks the documents written since
//!   the one before, with everything acknowledged of them earlier; the end checks all;
//! - SQLite's `PRAGMA integrity_check` passes (`caresync check-db`, run while the
//!   restarted relay serves, so that the relay itself recovers the crashed WAL);
//!
//! and, in about half the cycles and at the end, that all phones of a village converge:
//! the same documents at the same heads, each acknowledged by the relay.
//!
//! The random choices (when to kill, how long to write offline, what to write) come from a
//! seed, printed at the start; [`SEED_VARIABLE`] repeats a seed. Thread scheduling is not
//! seeded, so a seed repeats the plan of a run, not its exact interleaving.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use automerge::ChangeHash;
use caresync_core::domain::{
    Child, ChildCategory, Gender, Guardian, GuardianRelation, OrgUnitCode, Record, YearMonth,
};
use caresync_core::protocol::DocumentId;
use caresync_core::sync::Notification;
use tokio::task::JoinHandle;

use crate::{Device, RelayProcess, login};

/// Names a seed to repeat a run's plan, e.g. `CARESYNC_CRASH_SEED=1234`.
pub const SEED_VARIABLE: &str = "CARESYNC_CRASH_SEED";

/// Two villages with two directors each: phones of one village share every record (so
/// their edits meet in the same documents), and no document may reach the other village's
/// phones, however the relay was restarted.
const VILLAGES: [&str; 2] = ["370402001001", "370402001002"];
const DIRECTORS_PER_VILLAGE: usize = 2;
const PASSWORD: &str = "crash-test-password";
/// A phone registers a new child while its village has fewer documents in use than this,
/// and otherwise edits one of them.
const ACTIVE_DOCUMENTS_PER_VILLAGE: usize = 4;
/// A document with this many acknowledged changes is no longer edited (it stays checked):
/// past the relay's compaction at 64 stored rows, so every document is compacted once,
/// some of them mid-crash, while the history a fresh reader receives stays short (the
/// engine judges each received change on the state at its dependencies, which costs time
/// quadratic in a document's history).
const RETIRE_AFTER_CHANGES: usize = 72;
/// The relay is killed at a random moment this long after the phones reconnect (or after
/// they converged): early kills land in the resync, later ones in steady writing.
const KILL_WINDOW_MS: u64 = 500;
/// The phones keep writing offline for up to this long after the kill.
const OFFLINE_WRITING_MS_MAX: u64 = 100;
/// Pause between two edits of one phone: several changes per document per second keep
/// the relay's group commit and compaction (every 64 rows) busy at every kill.
const EDIT_PAUSE_MS: (u64, u64) = (2, 30);
/// Generous: the suite runs on a shared 2-core machine.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// What a run did, for its summary line.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub cycles: u32,
    /// Local edits and creations made by the phones, online and offline.
    pub changes_written: u64,
    /// Distinct changes the relay acknowledged before some crash (the history of the heads
    /// it advertised), every one found again after the restart that followed.
    pub changes_acknowledged: u64,
    /// Acknowledged changes looked up in read-back copies, summed over the cycles: each
    /// check looks up everything acknowledged so far, not only the newest.
    pub changes_checked: u64,
    pub documents: usize,
    /// How many times every phone converged (about half the cycles, and the end).
    pub convergences: u32,
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash-restart seed {}: {} cycles, {} changes written, {} acknowledged and all found \
             after the crashes ({} look-ups), {} documents, {} convergences, {:.1} s",
            self.seed,
            self.cycles,
            self.changes_written,
            self.changes_acknowledged,
            self.changes_checked,
            self.documents,
            self.convergences,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The seed named by [`SEED_VARIABLE`], or a new one from the clock.
pub fn seed_from_env() -> anyhow::Result<u64> {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{SEED_VARIABLE}={text:?} is not a number")),
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64)),
    }
}

/// Runs `cycles` kill-restart cycles against a relay on a new database (see the module
/// documentation), printing a line per cycle. Fails at the first lost change, failed
/// integrity check, refusal or timeout, naming the seed.
pub fn run_crash_cycles(cycles: u32, seed: u64) -> anyhow::Result<Report> {
    println!("crash-restart: seed {seed} ({SEED_VARIABLE}={seed} repeats this plan)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime
        .block_on(run(cycles, seed))
        .with_context(|| format!("crash-restart failed with seed {seed} ({SEED_VARIABLE}={seed})"))
}

/// One village: its directors' phones and a token to read it back with.
struct Village {
    code: String,
    token: String,
    phones: Vec<Phone>,
}

struct Phone {
    device: Arc<Device>,
    token: String,
    /// How many of the device's notifications were already looked at.
    notifications_seen: usize,
}

struct Run {
    relay: RelayProcess,
    villages: Vec<Village>,
    rng: Rng,
    /// Per document: its village and every change acknowledged so far.
    acknowledged: BTreeMap<DocumentId, (usize, HashSet<ChangeHash>)>,
    /// Documents the phones no longer edit (see [`RETIRE_AFTER_CHANGES`]).
    retired: Arc<HashSet<DocumentId>>,
    report: Report,
}

async fn run(cycles: u32, seed: u64) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut run = Run::set_up(seed).await?;
    run.report.seed = seed;
    let outcome = run.all_cycles(cycles).await;
    if outcome.is_err() {
        // The relay's side of a failure; its logs would bury the error if they were part
        // of it.
        eprintln!("the relay's recent output:\n{}", run.relay.output());
    }
    outcome?;
    run.report.documents = run.acknowledged.len();
    run.report.elapsed = started.elapsed();
    println!("{}", run.report);
    Ok(run.report)
}

impl Run {
    async fn all_cycles(&mut self, cycles: u32) -> anyhow::Result<()> {
        for cycle in 1..=cycles {
            self.cycle(cycle, cycles)
                .await
                .with_context(|| format!("in cycle {cycle}"))?;
        }
        self.finish().await.context("in the final check")
    }

    /// Write (after converging, or at once while the phones resync), kill, restart, check
    /// the database and read back what was acknowledged, reconnect the phones.
    async fn cycle(&mut self, cycle: u32, cycles: u32) -> anyhow::Result<()> {
        let cycle_started = Instant::now();
        let converged_first = self.rng.below(2) == 0;
        if converged_first {
            self.converge().await.context("converging before writing")?;
        }
        let converged = cycle_started.elapsed();
        let kill_after = Duration::from_millis(self.rng.below(KILL_WINDOW_MS + 1));
        let offline_for = Duration::from_millis(self.rng.below(OFFLINE_WRITING_MS_MAX + 1));
        let writers = self.start_writers(cycle);
        tokio::time::sleep(kill_after).await;
        self.relay.kill9()?;
        tokio::time::sleep(offline_for).await;
        let written = stop_writers(writers).await?;
        self.report.changes_written += written;
        self.wait_all_disconnected().await?;
        let advertised = self.collect_advertised_heads()?;

        let restart_started = Instant::now();
        self.relay.restart()?;
        let restarted = restart_started.elapsed();
        self.check_integrity()?;
        let read_back_started = Instant::now();
        let (new, checked) = self
            .read_back(&advertised, false)
            .await
            .context("reading back after the restart")?;
        self.report.changes_acknowledged += new;
        self.report.changes_checked += checked;
        let read_back = read_back_started.elapsed();
        self.reconnect().await?;
        self.report.cycles = cycle;
        println!(
            "cycle {cycle}/{cycles}: killed {} ms after {}, {written} changes written, \
             {new} newly acknowledged ({} in all, all found), {} documents, {:.2} s \
             (converging {:.2} s, restart {:.2} s, read-back {:.2} s)",
            kill_after.as_millis(),
            if converged_first {
                "converging"
            } else {
                "reconnecting"
            },
            self.report.changes_acknowledged,
            self.acknowledged.len(),
            cycle_started.elapsed().as_secs_f64(),
            converged.as_secs_f64(),
            restarted.as_secs_f64(),
            read_back.as_secs_f64()
        );
        Ok(())
    }

    /// Converges once more and crashes once more with everything acknowledged, then reads
    /// back every document, so that a loss in a document no longer written shows too.
    async fn finish(&mut self) -> anyhow::Result<()> {
        self.converge().await?;
        for phone in self.phones() {
            phone.device.disconnect().await;
        }
        let advertised = self.collect_advertised_heads()?;
        self.relay.kill9()?;
        self.relay.restart()?;
        self.check_integrity()?;
        let (new, checked) = self.read_back(&advertised, true).await?;
        self.report.changes_acknowledged += new;
        self.report.changes_checked += checked;
        self.relay.stop()?;
        self.check_integrity()
    }
}

impl Run {
    /// Starts a relay on a new database with the two villages and their directors (added
    /// with the command line, as an administrator would), and connects every phone.
    async fn set_up(seed: u64) -> anyhow::Result<Run> {
        let mut relay = RelayProcess::start()?;
        let mut units = String::from(
            "code,name,level,parent\n\
             370400,枣庄市,prefecture,\n\
             370402,市中区,district,370400\n\
             370402001,中心街道,township,370402\n",
        );
        for (index, village) in VILLAGES.iter().enumerate() {
            units.push_str(&format!("{village},村{index},village,370402001\n"));
        }
        relay.import_org_units(&units)?;
        let mut usernames = Vec::new();
        for (village_index, village) in VILLAGES.iter().enumerate() {
            for director in 0..DIRECTORS_PER_VILLAGE {
                let username = format!("director-{village_index}-{director}");
                relay.add_user(&username, "village-child-director", village, PASSWORD)?;
                usernames.push((village_index, username));
            }
        }
        // The relay reads the org tree at start; a restart makes sure it knows the units
        // added behind its back.
        relay.restart()?;

        let mut villages: Vec<Village> = VILLAGES
            .iter()
            .map(|code| Village {
                code: (*code).to_owned(),
                token: String::new(),
                phones: Vec::new(),
            })
            .collect();
        for (village_index, username) in usernames {
            let token = login(&relay.http_base(), &username, PASSWORD)?;
            let device = Arc::new(Device::new(&username));
            device.connect(&relay.ws_url(&token)).await?;
            let village = villages
                .get_mut(village_index)
                .ok_or_else(|| anyhow!("no village {village_index}"))?;
            village.token.clone_from(&token);
            village.phones.push(Phone {
                device,
                token,
                notifications_seen: 0,
            });
        }
        Ok(Run {
            relay,
            villages,
            rng: Rng::new(seed),
            acknowledged: BTreeMap::new(),
            retired: Arc::new(HashSet::new()),
            report: Report::default(),
        })
    }

    fn start_writers(&mut self, cycle: u32) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for village in &self.villages {
            for phone in &village.phones {
                tasks.push(tokio::spawn(write_until_stopped(
                    Arc::clone(&phone.device),
                    village.code.clone(),
                    Arc::clone(&self.retired),
                    cycle,
                    self.rng.fork(),
                    Arc::clone(&stop),
                )));
            }
        }
        Writers { stop, tasks }
    }

    fn phones(&self) -> impl Iterator<Item = &Phone> {
        self.villages.iter().flat_map(|village| &village.phones)
    }

    /// After a kill every phone notices that its socket ended; only then has it read
    /// everything the relay sent before dying.
    async fn wait_all_disconnected(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        while self
            .phones()
            .any(|phone| phone.device.connection_count() > 0)
        {
            if Instant::now() > deadline {
                bail!("a phone did not notice the relay's death within {WAIT:?}");
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Per document, the heads the relay advertised to any phone since the last crash
    /// (its sync messages' heads, reported as `PeerHeads`). Fails on a refusal: the run
    /// writes only what the relay must accept.
    fn collect_advertised_heads(
        &mut self,
    ) -> anyhow::Result<BTreeMap<DocumentId, (usize, BTreeSet<ChangeHash>)>> {
        let mut advertised: BTreeMap<DocumentId, (usize, BTreeSet<ChangeHash>)> = BTreeMap::new();
        for (village_index, village) in self.villages.iter_mut().enumerate() {
            for phone in &mut village.phones {
                let notifications = phone.device.notifications();
                for notification in notifications.iter().skip(phone.notifications_seen) {
                    match notification {
                        // Empty heads say the relay holds nothing of the document yet.
                        Notification::PeerHeads {
                            document, heads, ..
                        } if !heads.is_empty() => {
                            let (village, known) = advertised
                                .entry(*document)
                                .or_insert_with(|| (village_index, BTreeSet::new()));
                            let earlier = self.acknowledged.get(document).map(|(of, _)| *of);
                            if *village != village_index
                                || earlier.is_some_and(|of| of != village_index)
                            {
                                bail!(
                                    "{}: the relay synced {document} of another village",
                                    phone.device.name()
                                );
                            }
                            known.extend(heads.iter().copied());
                        }
                        Notification::ChangesRefused {
                            document,
                            code,
                            message,
                            ..
                        } => bail!(
                            "{}: the relay refused changes to {document}: {code}: {message}",
                            phone.device.name()
                        ),
                        _ => {}
                    }
                }
                phone.notifications_seen = notifications.len();
            }
        }
        Ok(advertised)
    }

    fn check_integrity(&self) -> anyhow::Result<()> {
        let db = self.relay.db_path();
        let db = db.to_str().context("the temporary path is not UTF-8")?;
        let answer = self.relay.cli(&["check-db", "--db", db], "")?;
        if answer.trim() != "ok" {
            bail!("the integrity check answered: {answer}");
        }
        Ok(())
    }

    /// Reads every village back through a fresh device while the writing phones are
    /// offline, and checks that it holds every change acknowledged so far of the documents
    /// advertised since the last crash (of `every_document` if set), the newly advertised
    /// heads and their whole history included. Returns how many changes became
    /// acknowledged now and how many were looked up. Documents the crash could not touch
    /// (not written since the last one) are left to the final check, which reads all.
    async fn read_back(
        &mut self,
        advertised: &BTreeMap<DocumentId, (usize, BTreeSet<ChangeHash>)>,
        every_document: bool,
    ) -> anyhow::Result<(u64, u64)> {
        for (document, (village, _)) in advertised {
            self.acknowledged
                .entry(*document)
                .or_insert_with(|| (*village, HashSet::new()));
        }
        let mut newly_acknowledged = 0;
        let mut checked = 0;
        let mut lost = Vec::new();
        for (village_index, village) in self.villages.iter().enumerate() {
            let documents: Vec<DocumentId> = self
                .acknowledged
                .iter()
                .filter(|(document, (of, _))| {
                    *of == village_index && (every_document || advertised.contains_key(document))
                })
                .map(|(document, _)| *document)
                .collect();
            // A plain automerge-repo peer receives only the documents it asks for by id; a
            // scope-speaking one would download the whole village every time.
            let reader = Device::plain(&format!("reader-{}", village.code));
            reader.connect(&self.relay.ws_url(&village.token)).await?;
            read_documents(&reader, &documents).await?;
            for document in &documents {
                let Some(copy) = reader.document(document) else {
                    lost.push(format!("document {document} is gone"));
                    continue;
                };
                // Every change of the copy with its dependencies, from the change graph's
                // metadata (cheap, unlike rebuilding whole changes).
                let history: HashMap<ChangeHash, Vec<ChangeHash>> = copy
                    .get_changes_meta(&[])
                    .into_iter()
                    .map(|meta| (meta.hash, meta.deps))
                    .collect();
                let Some((_, known)) = self.acknowledged.get_mut(document) else {
                    continue;
                };
                for hash in known.iter() {
                    checked += 1;
                    if !history.contains_key(hash) {
                        lost.push(format!("{document}: change {hash} acknowledged earlier"));
                    }
                }
                let mut stack: Vec<ChangeHash> = advertised
                    .get(document)
                    .map(|(_, heads)| heads.iter().copied().collect())
                    .unwrap_or_default();
                while let Some(hash) = stack.pop() {
                    if known.contains(&hash) {
                        continue;
                    }
                    checked += 1;
                    let Some(deps) = history.get(&hash) else {
                        lost.push(format!("{document}: change {hash} acknowledged now"));
                        continue;
                    };
                    known.insert(hash);
                    newly_acknowledged += 1;
                    stack.extend(deps.iter().copied());
                }
            }
            reader.disconnect().await;
        }
        if !lost.is_empty() {
            bail!(
                "{} acknowledged changes are missing after the restart:\n{}",
                lost.len(),
                lost.join("\n")
            );
        }
        self.retired = Arc::new(
            self.acknowledged
                .iter()
                .filter(|(_, (_, known))| known.len() >= RETIRE_AFTER_CHANGES)
                .map(|(document, _)| *document)
                .collect(),
        );
        Ok((newly_acknowledged, checked))
    }

    async fn reconnect(&self) -> anyhow::Result<()> {
        for phone in self.phones() {
            phone
                .device
                .connect(&self.relay.ws_url(&phone.token))
                .await?;
        }
        Ok(())
    }

    /// Waits until the phones of each village hold the same documents at the same heads,
    /// each acknowledged by the relay.
    async fn converge(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let Some(why) = self.divergence() else {
                self.report.convergences += 1;
                return Ok(());
            };
            if Instant::now() > deadline {
                let closes: Vec<String> = self
                    .phones()
                    .map(|phone| format!("{}: {:?}", phone.device.name(), phone.device.closes()))
                    .collect();
                bail!(
                    "the phones did not converge within {WAIT:?}: {why}\nconnection ends: {closes:#?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Why the phones have not converged yet, or `None` if they have.
    fn divergence(&self) -> Option<String> {
        for village in &self.villages {
            let Some((first, others)) = village.phones.split_first() else {
                continue;
            };
            let documents = first.device.documents();
            for phone in &village.phones {
                let device = &phone.device;
                if !device.is_connected() {
                    return Some(format!("{} is not connected", device.name()));
                }
                if device.documents() != documents {
                    return Some(format!(
                        "{} holds {} documents, {} holds {}",
                        device.name(),
                        device.documents().len(),
                        first.device.name(),
                        documents.len()
                    ));
                }
                if let Some(document) = documents.iter().find(|d| !device.is_synced(d)) {
                    return Some(format!("{} has {document} unacknowledged", device.name()));
                }
            }
            for document in &documents {
                let heads = first.device.heads(document);
                if let Some(other) = others.iter().find(|p| p.device.heads(document) != heads) {
                    return Some(format!(
                        "{document}: {} and {} hold different heads",
                        first.device.name(),
                        other.device.name()
                    ));
                }
            }
        }
        None
    }
}

/// Asks the relay for each of `documents` and waits until `reader` holds each in sync with
/// the relay or was told it is unavailable.
async fn read_documents(reader: &Device, documents: &[DocumentId]) -> anyhow::Result<()> {
    for document in documents {
        reader.open(document);
    }
    reader
        .wait_until(WAIT, |device| {
            let unavailable = device.unavailable();
            documents
                .iter()
                .all(|document| device.is_synced(document) || unavailable.contains(document))
        })
        .await
        .context("the reader did not receive every acknowledged document")
}

/// The phones' writing tasks of one cycle and the flag that ends them.
struct Writers {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<anyhow::Result<u64>>>,
}

/// Ends the writing tasks and returns how many changes they wrote.
async fn stop_writers(writers: Writers) -> anyhow::Result<u64> {
    writers.stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for task in writers.tasks {
        written += task.await.context("a writing task panicked")??;
    }
    Ok(written)
}

/// A director at work: registers children (while the village has fewer than
/// [`ACTIVE_DOCUMENTS_PER_VILLAGE`] not `retired`) and edits names and guardians of the
/// others, online or offline, until `stop` is set. Returns the number of changes made.
async fn write_until_stopped(
    device: Arc<Device>,
    village: String,
    retired: Arc<HashSet<DocumentId>>,
    cycle: u32,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<u64> {
    let mut written = 0;
    while !stop.load(Ordering::Relaxed) {
        let documents: Vec<DocumentId> = device
            .documents()
            .into_iter()
            .filter(|document| !retired.contains(document))
            .collect();
        let label = format!("{}-{cycle}-{written}", device.name());
        if documents.len() < ACTIVE_DOCUMENTS_PER_VILLAGE && rng.below(4) == 0 {
            device.create(&new_child(&village, &label))?;
        } else if let Some(document) = rng.pick(&documents) {
            let guardians = rng.below(3);
            let rename = rng.below(2) == 0;
            device
                .change(document, |record| {
                    if let Record::Child(child) = record {
                        if rename {
                            child.name = format!("儿童 {label}");
                        } else {
                            child.guardians = (0..guardians)
                                .map(|index| Guardian {
                                    name: format!("监护人 {label}-{index}"),
                                    relation: GuardianRelation::Grandparent,
                                    phone: None,
                                })
                                .collect();
                        }
                    }
                })
                .await
                .with_context(|| format!("{} could not edit {document}", device.name()))?;
        } else {
            device.create(&new_child(&village, &label))?;
        }
        written += 1;
        let (low, high) = EDIT_PAUSE_MS;
        tokio::time::sleep(Duration::from_millis(low + rng.below(high - low + 1))).await;
    }
    Ok(written)
}

fn new_child(village: &str, label: &str) -> Record {
    let mut child = Child::new(
        OrgUnitCode::new(village),
        format!("儿童 {label}"),
        YearMonth::new(2016, 5).unwrap_or_else(|| unreachable!("May 2016 is a valid month")),
        Gender::Female,
    );
    child.categories.push(ChildCategory::LeftBehind);
    Record::Child(child)
}

/// SplitMix64: a few lines of seeded randomness, enough for choosing moments and edits,
/// without a dependency.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`0` when `bound` is 0); the modulo bias is irrelevant here.
    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let index = usize::try_from(self.below(items.len() as u64)).ok()?;
        items.get(index)
    }

    /// An independent generator for a writing task, drawn from this one.
    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}
