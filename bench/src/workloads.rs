//! Workloads (a) to (e) of design §4, each run against one relay at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use caresync_core::domain::Record;
use caresync_core::protocol::{DocumentId, Message, PROTOCOL_VERSION, PeerId};
use caresync_tests::{Device, Traffic};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::peers::{self, Peer};

/// How long one device may wait for an acknowledgement before the benchmark gives up on
/// it (a relay that falls that far behind has failed the workload anyway).
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a slow set-up of the load devices prints how far it got.
const SETUP_PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// How long after the last frame a sync counts as finished, for relays that do not say.
const QUIET: Duration = Duration::from_millis(500);
/// Villages of the benchmark's township; load devices are spread over them.
pub const VILLAGES: usize = 10;

/// Sizes of the workloads: full and `--quick`.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub devices: usize,
    pub documents_per_device: usize,
    pub load_time: Duration,
    /// The changes per second all load devices together offer in (b)'s paced run, where
    /// each device starts a round (a change to each of its documents) at a fixed interval
    /// instead of as soon as the last was acknowledged.
    pub paced_changes_per_s: f64,
    pub probe_every: Duration,
    pub idle: &'static [usize],
    pub reconnect_documents: usize,
    pub village_documents: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            // Small enough that every peer finishes in seconds on a loaded CI machine:
            // `--quick` proves that each workload runs, not how fast.
            Sizes {
                devices: 50,
                documents_per_device: 2,
                load_time: Duration::from_secs(2),
                paced_changes_per_s: 100.0,
                probe_every: Duration::from_millis(50),
                idle: &[200],
                reconnect_documents: 200,
                village_documents: 200,
            }
        } else {
            Sizes {
                devices: 200,
                documents_per_device: 5,
                load_time: Duration::from_secs(10),
                paced_changes_per_s: 1_000.0,
                // About 200 probe changes per run: with 50 ms the run's p99 rested on its
                // two slowest of about 120, and moved by 30 ms between runs of one build.
                probe_every: Duration::from_millis(10),
                idle: &[2_468, 10_000],
                reconnect_documents: 1_000,
                village_documents: 2_200,
            }
        }
    }
}

/// What (a) and (b) measured in one run.
#[derive(Debug)]
pub struct LoadResult {
    pub changes_per_s: f64,
    pub latencies_ms: Vec<f64>,
    /// From the probe's change to the relay's acknowledgement that it is stored.
    pub ack_latencies_ms: Vec<f64>,
    pub peak_rss_mb: f64,
    /// The relay's CPU time (all threads) per acknowledged change during the timed
    /// phase: what the relay itself spends, whatever the load devices cost the machine.
    pub relay_cpu_ms_per_change: f64,
}

fn rename(record: &mut Record, name: String) {
    if let Record::Child(child) = record {
        child.name = name;
    }
}

async fn wait_all_synced(device: &Device, documents: &[DocumentId]) -> anyhow::Result<()> {
    device
        .wait_until(ACK_TIMEOUT, |d| {
            documents.iter().all(|doc| d.is_synced(doc))
        })
        .await
}

/// How much lower than the relay's the load devices' CPU priority is (a `nice` value; 10
/// gives them about a tenth of the CPU against a busy relay thread).
///
/// The 200 load devices stand for phones elsewhere; here they share the relay's two
/// cores, and at equal priority the kernel gave them about half of the CPU, so the relay
/// was starved and the closed loop's thousand changes in flight queued inside the relay,
/// where (b)'s probe waits behind them. At a lower priority the devices take the CPU the
/// relay leaves, and the queue forms in the load generator instead. Every peer is
/// measured the same way.
const LOAD_DEVICES_NICE: i32 = 10;

/// The CPU priority of (b)'s probe and reviewer threads (a `nice` value), above the
/// relay's.
///
/// Like the load devices, they stand for machines elsewhere (a phone, the township
/// office's computer), but they are what times the relay: on the shared two cores the
/// reviewer, which takes in every change of 200 villages, got its turns behind the relay's
/// three busy threads, and the changes waiting for it were counted as the relay's latency.
/// Measured on 30 Nov at about 10:48 UTC, two interleaved pairs of `--only b`: (b)'s p99
/// 75.1 and 72.9 ms at this priority, 109 and 99.0 at the relay's, with the same rate.
/// Every peer is measured the same way. Raising a priority needs `CAP_SYS_NICE` (root has
/// it); without it the observers run at the relay's priority and the benchmark says so.
const OBSERVERS_NICE: i32 = -5;

/// Gives the calling thread [`OBSERVERS_NICE`], or says once on stderr that it could not.
fn raise_observer_priority() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    // On Linux this sets the calling thread's priority, as for the load devices.
    if let Err(error) = rustix::process::setpriority_process(None, OBSERVERS_NICE) {
        WARNED.call_once(|| {
            eprintln!(
                "note: (b)'s probe and reviewer run at the relay's priority, not {OBSERVERS_NICE}: {error}"
            );
        });
    }
}

/// A runtime for the load devices whose threads run at [`LOAD_DEVICES_NICE`].
fn load_devices_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load-device")
        .on_thread_start(|| {
            // On Linux this sets the calling thread's priority. Without it the figures
            // are those of an equal share, which is what a failure here leaves.
            let _ = rustix::process::setpriority_process(None, LOAD_DEVICES_NICE);
        })
        .enable_all()
        .build()?)
}

/// Which of the load phases of (a) and (b) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPhase {
    /// (a) as design §4 states it: only the load devices, nobody following their
    /// documents.
    Alone,
    /// (b) under (a): the same closed loop while the probe changes one document every
    /// `probe_every` and a reviewer follows every document.
    Observed,
    /// (b) with the load devices paced to offer `paced_changes_per_s` together.
    ObservedPaced,
}

/// (a) and (b): `devices` devices each change their own documents in a loop (a change to
/// each, then wait until the relay acknowledged all of them, again) for `load_time`.
/// In the observed phases a probe device changes one document every `probe_every` and a
/// reviewer connected to the relay times how long each change takes to reach it; paced,
/// each device starts its rounds at a fixed interval so that all together offer
/// `sizes.paced_changes_per_s`, and waits when it is ahead.
pub async fn load(peer: &Peer, sizes: &Sizes, phase: LoadPhase) -> anyhow::Result<LoadResult> {
    let paced = phase == LoadPhase::ObservedPaced;
    let runtime = load_devices_runtime()?;
    let load_devices = LoadDevices {
        devices: (0..sizes.devices)
            .map(|i| (peer.device(&format!("load-{i}")), peer.device_url(i)))
            .collect(),
        sizes: *sizes,
        paced,
        progress_label: format!(
            "[{}] {}",
            if phase == LoadPhase::Alone { "a" } else { "b" },
            peer.kind.name()
        ),
    };
    let (documents_tx, documents_rx) = tokio::sync::oneshot::channel();
    let (load_start_tx, load_start_rx) = tokio::sync::oneshot::channel::<(Instant, Instant)>();
    let loading = runtime.spawn(load_devices.run(documents_tx, load_start_rx));
    let outcome = async {
        let Ok(documents) = documents_rx.await else {
            let error = match loading.await {
                Ok(Err(error)) => error,
                _ => anyhow::anyhow!("the load devices stopped"),
            };
            return Err(error.context(format!("{}: load devices set-up", peer.kind.name())));
        };
        let observing = match phase {
            LoadPhase::Alone => None,
            LoadPhase::Observed | LoadPhase::ObservedPaced => {
                Some(start_observers(peer, sizes, documents).await?)
            }
        };
        time_load(peer, loading, load_start_tx, observing, sizes.load_time).await
    }
    .await;
    runtime.shutdown_background();
    outcome
}

/// The probe and reviewer's thread, ready and waiting for the instant the timed phase
/// ends.
struct Observing {
    start: tokio::sync::oneshot::Sender<Instant>,
    thread: std::thread::JoinHandle<anyhow::Result<Observed>>,
}

/// Starts the probe and the reviewer once the load devices are set up, and returns once
/// the reviewer holds every document.
async fn start_observers(
    peer: &Peer,
    sizes: &Sizes,
    documents: Vec<DocumentId>,
) -> anyhow::Result<Observing> {
    // The probe and the reviewer stand for a phone and a township office elsewhere, so
    // they run on threads of their own, above the relay's priority ([`OBSERVERS_NICE`]):
    // sharing the load devices' runtime, every probe change and every reviewer update
    // waited behind 200 devices' tasks in the benchmark process, which is the load
    // generator's queue, not the relay's.
    // They are two phones, so they do not share a thread either: the reviewer takes in
    // every change of 200 villages (a third of a core), and the probe's acknowledgement
    // waited behind that work.
    let observers = Observers {
        probe: peer.device("probe"),
        // A village of its own (the relay has one more director than load devices), so
        // that it is told of no other device's changes.
        probe_url: peer.device_url(sizes.devices),
        probe_village: sizes.devices,
        reviewer: Arc::new(peer.device("reviewer")),
        reviewer_url: peer.reviewer_url(),
        reviewer_opens_each: !peer.lists_scope(),
        probe_every: sizes.probe_every,
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (start_tx, start_rx) = tokio::sync::oneshot::channel::<Instant>();
    let thread = std::thread::Builder::new().name("probe".to_owned()).spawn(
        move || -> anyhow::Result<Observed> {
            raise_observer_priority();
            // Built and dropped here, outside any runtime, as tokio requires.
            let reviewer_runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("reviewer")
                .on_thread_start(raise_observer_priority)
                .enable_all()
                .build()?;
            let reviewer_handle = reviewer_runtime.handle().clone();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(observers.run(reviewer_handle, documents, ready_tx, start_rx))
        },
    )?;
    if ready_rx.await.is_err() {
        let error = match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(Err(error))) => error,
            _ => anyhow::anyhow!("the probe and reviewer thread stopped"),
        };
        return Err(error.context(peer.recent_log()));
    }
    Ok(Observing {
        start: start_tx,
        thread,
    })
}

/// Runs the timed phase for the load devices (and the observers, if any), and gathers
/// the figures.
async fn time_load(
    peer: &Peer,
    loading: tokio::task::JoinHandle<anyhow::Result<u64>>,
    load_start: tokio::sync::oneshot::Sender<(Instant, Instant)>,
    observing: Option<Observing>,
    load_time: Duration,
) -> anyhow::Result<LoadResult> {
    let cpu_before = peer.pid().map(peers::cpu_seconds).transpose()?;
    let started = Instant::now();
    let deadline = started + load_time;
    // All wait for this; one that has gone reports its error below.
    let _ = load_start.send((started, deadline));
    let observing = observing.map(|observing| {
        let _ = observing.start.send(deadline);
        observing.thread
    });
    let acknowledged = loading.await.context("a load device panicked")??;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = peer.pid().map(peers::cpu_seconds).transpose()?;
    let observed = match observing {
        Some(thread) => tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the probe and reviewer thread panicked"))??,
        None => Observed {
            latencies_ms: Vec::new(),
            ack_latencies_ms: Vec::new(),
        },
    };
    let changes = acknowledged as f64;
    let relay_cpu_ms_per_change = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) if changes > 0.0 => (after - before) * 1000.0 / changes,
        _ => f64::NAN,
    };
    let peak_rss_mb = peer
        .pid()
        .and_then(|pid| peers::memory_mb(pid).ok())
        .map_or(f64::NAN, |(peak, _)| peak);
    Ok(LoadResult {
        changes_per_s: changes / elapsed,
        latencies_ms: observed.latencies_ms,
        ack_latencies_ms: observed.ack_latencies_ms,
        peak_rss_mb,
        relay_cpu_ms_per_change,
    })
}

/// (a)'s load devices, each with the URL it connects to (its own village's director).
struct LoadDevices {
    devices: Vec<(Device, String)>,
    sizes: Sizes,
    paced: bool,
    /// Starts the set-up's progress lines: the workload and the relay under test.
    progress_label: String,
}

impl LoadDevices {
    /// Connects every device and creates its documents, sends the documents' ids on
    /// `documents` once the relay acknowledged all of them, then runs the load from the
    /// start instant to the deadline `start` brings. Returns the acknowledged changes.
    async fn run(
        self,
        documents: tokio::sync::oneshot::Sender<Vec<DocumentId>>,
        start: tokio::sync::oneshot::Receiver<(Instant, Instant)>,
    ) -> anyhow::Result<u64> {
        let LoadDevices {
            devices: unconnected,
            sizes,
            paced,
            progress_label,
        } = self;
        // Connect and create every document first: only the steady state is timed.
        let mut devices = Vec::new();
        let setup_started = Instant::now();
        let mut progress_said = setup_started;
        for (village, (device, url)) in unconnected.into_iter().enumerate() {
            // One village (one director account) per device, as in the field: a
            // director's phone is told of every record of its village, so devices sharing
            // a village would each receive the others' changes too, which is not this
            // workload.
            device.connect(&url).await?;
            let mut docs = Vec::new();
            for d in 0..sizes.documents_per_device {
                let name = format!("c{village}-{d}");
                docs.push(device.create(&peers::child_record(village, &name)?)?);
            }
            // Each device's documents are stored before the next device joins, so that a
            // relay whose work per message grows with its connections and documents
            // (samod's hub) answers each `join` with nothing queued ahead of it. With
            // all devices creating at once, samod's answer to the 117th `join` took
            // longer than core's handshake limit and the set-up failed.
            let device_started = Instant::now();
            wait_all_synced(&device, &docs)
                .await
                .with_context(|| format!("load-{village}: set-up never acknowledged"))?;
            devices.push((Arc::new(device), docs));
            // A set-up that takes minutes says how far it got; a quick one says nothing.
            if progress_said.elapsed() >= SETUP_PROGRESS_EVERY {
                progress_said = Instant::now();
                eprintln!(
                    "{progress_label}: {} of {} load devices set up in {:.0} s \
                     (the last one's documents stored in {:.1} s)",
                    devices.len(),
                    sizes.devices,
                    setup_started.elapsed().as_secs_f64(),
                    device_started.elapsed().as_secs_f64(),
                );
            }
        }
        let all = devices.iter().flat_map(|(_, docs)| docs.clone()).collect();
        if documents.send(all).is_err() {
            bail!("the benchmark stopped before the load started");
        }
        let (started, deadline) = start.await.context("the load never started")?;

        let acknowledged = Arc::new(AtomicU64::new(0));
        let round_every = paced.then(|| {
            Duration::from_secs_f64(
                (sizes.devices * sizes.documents_per_device) as f64 / sizes.paced_changes_per_s,
            )
        });
        let mut tasks = Vec::new();
        for (index, (device, docs)) in devices.iter().enumerate() {
            // Each task owns its handle and list: the devices outlive the tasks here.
            let (device, docs) = (device.clone(), docs.clone());
            let acknowledged = Arc::clone(&acknowledged);
            // Paced devices are spread over the interval, so the load is even, not in
            // bursts.
            let mut next_round = round_every
                .map(|every| started + every.mul_f64(index as f64 / sizes.devices as f64));
            tasks.push(tokio::spawn(async move {
                let mut round = 0u64;
                loop {
                    if let (Some(at), Some(every)) = (next_round, round_every) {
                        if at >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                        // A device that fell behind starts its next round at once, without
                        // catching up on the rounds it missed.
                        next_round = Some((at + every).max(Instant::now()));
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                    round += 1;
                    // The field is put directly: the same change on the wire as the app's
                    // load-edit-save, for less of the CPU the relay under test also needs.
                    let name = format!("r{round}");
                    for doc in &docs {
                        device.put_root_string(doc, "name", &name).await?;
                    }
                    wait_all_synced(&device, &docs).await?;
                    acknowledged.fetch_add(docs.len() as u64, Ordering::Relaxed);
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await.context("a load device panicked")??;
        }
        Ok(acknowledged.load(Ordering::Relaxed))
    }
}

/// (b)'s probe, which changes one document every `probe_every`, and the reviewer that
/// follows every document and times how long each probe change takes to reach it.
struct Observers {
    probe: Device,
    probe_url: String,
    /// The probe's own village, the one after the load devices'.
    probe_village: usize,
    /// Shared with the task that runs its connection on the reviewer's own thread.
    reviewer: Arc<Device>,
    reviewer_url: String,
    /// The peers list nothing to a client, so it asks for each document by id.
    reviewer_opens_each: bool,
    probe_every: Duration,
}

/// What the probe and reviewer timed.
struct Observed {
    latencies_ms: Vec<f64>,
    ack_latencies_ms: Vec<f64>,
}

impl Observers {
    /// Connects both, says `ready` once the reviewer holds every load document and the
    /// probe's, then times probe changes from the instant `start` brings until the
    /// deadline it names.
    async fn run(
        self,
        reviewer_runtime: tokio::runtime::Handle,
        mut documents: Vec<DocumentId>,
        ready: tokio::sync::oneshot::Sender<()>,
        start: tokio::sync::oneshot::Receiver<Instant>,
    ) -> anyhow::Result<Observed> {
        let Observers {
            probe,
            probe_url,
            probe_village,
            reviewer,
            reviewer_url,
            reviewer_opens_each,
            probe_every,
        } = self;
        probe.connect(&probe_url).await?;
        let probe_doc = probe.create(&peers::child_record(probe_village, "probe")?)?;
        wait_all_synced(&probe, &[probe_doc]).await?;
        documents.push(probe_doc);

        // Ours lists the township's documents to the reviewer; the peers are asked for
        // each by id, which is how a plain client follows documents.
        // Its connection's task, which takes in everything the relay sends it, runs on
        // the reviewer's thread; this thread only waits for what it shows.
        let connecting = {
            let reviewer = Arc::clone(&reviewer);
            reviewer_runtime.spawn(async move { reviewer.connect(&reviewer_url).await })
        };
        connecting
            .await
            .context("the reviewer's thread stopped")??;
        if reviewer_opens_each {
            for doc in &documents {
                reviewer.open(doc);
            }
        }
        poll_until(ACK_TIMEOUT, || {
            documents.iter().all(|doc| !reviewer.heads(doc).is_empty())
        })
        .await
        .with_context(|| {
            let received = documents
                .iter()
                .filter(|doc| !reviewer.heads(doc).is_empty())
                .count();
            format!(
                "the reviewer received {received} of {} documents",
                documents.len()
            )
        })?;
        if ready.send(()).is_err() {
            bail!("the load stopped before the probe started");
        }
        let deadline = start.await.context("the load never started")?;

        let mut latencies_ms = Vec::new();
        let mut ack_latencies_ms = Vec::new();
        let mut counter = 0u64;
        while Instant::now() < deadline {
            counter += 1;
            probe
                .change(&probe_doc, |record| rename(record, format!("p{counter}")))
                .await?;
            let sent = Instant::now();
            let heads = probe.heads(&probe_doc);
            // Timed separately, to tell the relay's part (its durable acknowledgement to
            // the probe) from the rest of the way (announcing, and the reviewer taking it
            // in).
            let acknowledged = async {
                wait_all_synced(&probe, &[probe_doc]).await?;
                anyhow::Ok(sent.elapsed())
            };
            // The reviewer watches on its own thread, as its own phone would: waiting here,
            // this thread took the reviewer's lock at each of the thousands of changes a
            // second the reviewer takes in, and the probe's acknowledgement waited behind
            // that (a trace showed up to 100 ms between the relay writing the
            // acknowledgement and the probe holding it).
            let received = {
                let reviewer = Arc::clone(&reviewer);
                let heads = heads.clone();
                reviewer_runtime.spawn(async move {
                    reviewer
                        .wait_until(ACK_TIMEOUT, |r| r.heads(&probe_doc) == heads)
                        .await
                        .context("a probe change never reached the reviewer")?;
                    anyhow::Ok(sent.elapsed())
                })
            };
            let received = async { received.await.context("the reviewer's thread stopped")? };
            let (acknowledged, received) = tokio::try_join!(acknowledged, received)?;
            ack_latencies_ms.push(acknowledged.as_secs_f64() * 1000.0);
            latencies_ms.push(received.as_secs_f64() * 1000.0);
            tokio::time::sleep(probe_every).await;
        }
        Ok(Observed {
            latencies_ms,
            ack_latencies_ms,
        })
    }
}

/// Checks `condition` every 10 ms until it holds.
async fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() > deadline {
            bail!("not done within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Waits until a device's traffic has not changed for [`QUIET`]; returns when the last
/// change happened.
async fn wait_quiet(device: &Device) -> Instant {
    let mut last = device.traffic();
    let mut last_change = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = device.traffic();
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= QUIET {
            return last_change;
        }
    }
}

/// The `p`-th percentile (0 to 100) of `samples`, nearest rank.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or(f64::NAN)
}

/// (c): `count` connections that join and then stay idle (answering pings); returns how
/// many joined and the relay's peak and current RSS in MB once they all have.
pub async fn idle(peer: &Peer, count: usize) -> anyhow::Result<(usize, f64, f64)> {
    let url = peer.device_url(0);
    let joined = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::new();
    // A few joins in flight at a time, as devices arriving over a morning would be, but
    // fast enough for the benchmark.
    let batch = 64;
    let mut i = 0;
    while i < count {
        let mut pending = Vec::new();
        for j in i..(i + batch).min(count) {
            let url = url.clone();
            pending.push(tokio::spawn(async move { join_idle(&url, j).await }));
        }
        i += batch;
        for handle in pending {
            match handle.await {
                Ok(Ok(task)) => {
                    joined.fetch_add(1, Ordering::Relaxed);
                    sockets.push(task);
                }
                Ok(Err(error)) => eprintln!(
                    "{}: an idle device failed to join: {error:#}",
                    peer.kind.name()
                ),
                Err(error) => eprintln!("{}: an idle device panicked: {error}", peer.kind.name()),
            }
        }
    }
    peers::settle().await;
    let (peak, current) = match peer.pid() {
        Some(pid) => peers::memory_mb(pid)?,
        None => (f64::NAN, f64::NAN),
    };
    for socket in &sockets {
        socket.abort();
    }
    Ok((joined.load(Ordering::Relaxed) as usize, peak, current))
}

/// Opens one socket, joins, and leaves a task reading it (so pings are answered).
async fn join_idle(url: &str, index: usize) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .context("connecting timed out")??;
    let join = Message::Join {
        sender_id: PeerId::from(format!("idle-{index}-{}", std::process::id())),
        supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
        peer_metadata: None,
    };
    socket.send(WsMessage::Binary(join.encode().into())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(WsMessage::Binary(frame)))) => {
                if matches!(Message::decode(&frame), Ok(Message::Peer { .. })) {
                    break;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => bail!("the socket failed: {error}"),
            Ok(None) => bail!("closed before `peer`"),
            Err(_) => bail!("no `peer` within 30 s"),
        }
    }
    Ok(tokio::spawn(async move {
        while let Some(Ok(_)) = socket.next().await {}
    }))
}

/// A device holding `count` documents of village `village`, all acknowledged.
async fn writer_with(
    peer: &Peer,
    village: usize,
    count: usize,
) -> anyhow::Result<(Device, Vec<DocumentId>)> {
    let device = peer.device("writer");
    device.connect(&peer.device_url(village)).await?;
    let mut documents = Vec::with_capacity(count);
    for i in 0..count {
        documents.push(device.create(&peers::child_record(village, &format!("v{i}"))?)?);
    }
    poll_until(ACK_TIMEOUT * 2, || {
        documents.iter().all(|doc| device.is_synced(doc))
    })
    .await
    .with_context(|| {
        format!(
            "{}: the writer's documents were never acknowledged",
            peer.kind.name()
        )
    })?;
    Ok((device, documents))
}

/// (d): a device holding `count` acknowledged documents reconnects with nothing new.
/// Returns the frames it sent (each waits for an answer: the round trips) and the bytes
/// both ways, in KB.
pub async fn reconnect(peer: &Peer, count: usize) -> anyhow::Result<(Traffic, f64)> {
    let (device, documents) = writer_with(peer, 1, count).await?;
    device.disconnect().await;
    device.reset_traffic();
    let started = Instant::now();
    device.connect(&peer.device_url(1)).await?;
    if !peer.lists_scope() {
        // A plain client learns nothing on its own: it syncs each document it holds.
        for doc in &documents {
            device.open(doc);
        }
    }
    let done = wait_quiet(&device).await;
    Ok((device.traffic(), done.duration_since(started).as_secs_f64()))
}

/// (e): a village's `count` documents to an empty device. Returns the seconds until it
/// held them all, the bytes both ways, and the documents' saved size.
pub async fn first_sync(peer: &Peer, count: usize) -> anyhow::Result<(f64, u64, u64)> {
    let (writer, documents) = writer_with(peer, 2, count).await?;
    let mut saved = 0u64;
    let mut heads = Vec::with_capacity(documents.len());
    for doc in &documents {
        let automerge = writer.document(doc).context("the writer lost a document")?;
        saved += automerge.save().len() as u64;
        heads.push(automerge.get_heads());
    }
    writer.disconnect().await;
    let fresh = peer.device("fresh");
    let started = Instant::now();
    fresh.connect(&peer.device_url(2)).await?;
    if !peer.lists_scope() {
        for doc in &documents {
            fresh.open(doc);
        }
    }
    poll_until(ACK_TIMEOUT * 2, || {
        documents
            .iter()
            .zip(&heads)
            .all(|(doc, heads)| fresh.heads(doc) == *heads)
    })
    .await
    .with_context(|| {
        format!(
            "{}: the fresh device never held the village",
            peer.kind.name()
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    // Frames still in flight once the documents are complete belong to the sync too.
    wait_quiet(&fresh).await;
    let traffic = fresh.traffic();
    Ok((seconds, traffic.bytes_sent + traffic.bytes_received, saved))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The load devices put the name directly instead of loading, editing and saving the
    /// record as the app does; what the relay under test receives must be the same change.
    #[tokio::test]
    async fn the_load_devices_put_is_the_apps_rename() -> anyhow::Result<()> {
        let device = Device::new("load");
        let by_app = device.create(&peers::child_record(0, "c0-0")?)?;
        let put_directly = device.create(&peers::child_record(0, "c0-0")?)?;
        device
            .change(&by_app, |record| rename(record, "r1".to_owned()))
            .await?;
        device.put_root_string(&put_directly, "name", "r1").await?;
        let last_change = |document: &DocumentId| {
            let change = device
                .document(document)
                .and_then(|doc| doc.get_last_local_change())
                .expect("the device made a change");
            change.decode()
        };
        let (app, direct) = (last_change(&by_app), last_change(&put_directly));
        // Both documents were made by the same actor in the same steps, so even the
        // operations' ids and predecessors match.
        assert_eq!(direct.operations, app.operations);
        assert_eq!(direct.seq, app.seq);
        assert_eq!(device.record(&put_directly), device.record(&by_app));
        Ok(())
    }
}
