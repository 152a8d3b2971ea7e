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
                probe_every: Duration::from_millis(50),
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

/// (a) and (b): `devices` devices each change their own documents in a loop (a change to
/// each, then wait until the relay acknowledged all of them, again) for `load_time`,
/// while a probe device changes one document every `probe_every` and a reviewer connected
/// to the relay times how long each change takes to reach it. With `paced`, each device
/// starts its rounds at a fixed interval so that all together offer
/// `sizes.paced_changes_per_s`, and waits when it is ahead.
pub async fn load(peer: &Peer, sizes: &Sizes, paced: bool) -> anyhow::Result<LoadResult> {
    // Connect and create every document first: only the steady state is timed.
    let mut devices = Vec::new();
    for i in 0..sizes.devices {
        let device = Arc::new(peer.device(&format!("load-{i}")));
        // One village (one director account) per device, as in the field: a director's
        // phone is told of every record of its village, so devices sharing a village
        // would each receive the others' changes too, which is not this workload.
        let village = i;
        device.connect(&peer.device_url(village)).await?;
        let mut documents = Vec::new();
        for d in 0..sizes.documents_per_device {
            documents.push(device.create(&peers::child_record(village, &format!("c{i}-{d}"))?)?);
        }
        devices.push((device, documents));
    }
    for (device, documents) in &devices {
        wait_all_synced(device, documents)
            .await
            .with_context(|| format!("{}: setup never acknowledged", peer.kind.name()))?;
    }
    let probe = peer.device("probe");
    probe.connect(&peer.device_url(0)).await?;
    let probe_doc = probe.create(&peers::child_record(0, "probe")?)?;
    wait_all_synced(&probe, &[probe_doc]).await?;

    // The reviewer follows every document: ours lists the township's documents to it;
    // the peers are asked for each by id, which is how a plain client follows documents.
    let reviewer = peer.device("reviewer");
    reviewer.connect(&peer.reviewer_url()).await?;
    let mut all: Vec<DocumentId> = devices.iter().flat_map(|(_, docs)| docs.clone()).collect();
    all.push(probe_doc);
    if !peer.lists_scope() {
        for doc in &all {
            reviewer.open(doc);
        }
    }
    poll_until(ACK_TIMEOUT, || {
        all.iter().all(|doc| !reviewer.heads(doc).is_empty())
    })
    .await
    .with_context(|| {
        let received = all
            .iter()
            .filter(|doc| !reviewer.heads(doc).is_empty())
            .count();
        format!(
            "the reviewer received {received} of {} documents\n{}",
            all.len(),
            peer.recent_log()
        )
    })?;

    let acknowledged = Arc::new(AtomicU64::new(0));
    let cpu_before = peer.pid().map(peers::cpu_seconds).transpose()?;
    let started = Instant::now();
    let deadline = started + sizes.load_time;
    let round_every = paced.then(|| {
        Duration::from_secs_f64(
            (sizes.devices * sizes.documents_per_device) as f64 / sizes.paced_changes_per_s,
        )
    });
    let mut tasks = Vec::new();
    for (index, (device, documents)) in devices.iter().enumerate() {
        // Each task owns its handle and list: the devices outlive the tasks here.
        let (device, documents) = (device.clone(), documents.clone());
        let acknowledged = Arc::clone(&acknowledged);
        // Paced devices are spread over the interval, so the load is even, not in bursts.
        let mut next_round =
            round_every.map(|every| started + every.mul_f64(index as f64 / sizes.devices as f64));
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
                for doc in &documents {
                    device
                        .change(doc, |record| rename(record, format!("r{round}")))
                        .await?;
                }
                wait_all_synced(&device, &documents).await?;
                acknowledged.fetch_add(documents.len() as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }

    let mut latencies = Vec::new();
    let mut ack_latencies = Vec::new();
    let mut counter = 0u64;
    while Instant::now() < deadline {
        counter += 1;
        probe
            .change(&probe_doc, |record| rename(record, format!("p{counter}")))
            .await?;
        let sent = Instant::now();
        let heads = probe.heads(&probe_doc);
        // Timed separately, to tell the relay's part (its durable acknowledgement to the
        // probe) from the rest of the way (announcing, and the reviewer taking it in).
        let acknowledged = async {
            wait_all_synced(&probe, &[probe_doc]).await?;
            anyhow::Ok(sent.elapsed())
        };
        let received = async {
            reviewer
                .wait_until(ACK_TIMEOUT, |r| r.heads(&probe_doc) == heads)
                .await
                .context("a probe change never reached the reviewer")?;
            anyhow::Ok(sent.elapsed())
        };
        let (acknowledged, received) = tokio::try_join!(acknowledged, received)?;
        ack_latencies.push(acknowledged.as_secs_f64() * 1000.0);
        latencies.push(received.as_secs_f64() * 1000.0);
        tokio::time::sleep(sizes.probe_every).await;
    }
    for task in tasks {
        task.await.context("a load device panicked")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = peer.pid().map(peers::cpu_seconds).transpose()?;
    let changes = acknowledged.load(Ordering::Relaxed) as f64;
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
        latencies_ms: latencies,
        ack_latencies_ms: ack_latencies,
        peak_rss_mb,
        relay_cpu_ms_per_change,
    })
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
