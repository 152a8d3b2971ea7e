//! `caresync-bench`: the design §4 workloads against the peers, on loopback.
//!
//! `cargo run --release -p caresync-bench -- [--quick] [--only a,b,...] [--peers ours,js,samod] [--runs N]`
//!
//! Workloads: a (throughput), b (latency to a reviewer under a's load), c (idle devices
//! and relay memory), d (reconnect with nothing new), e (first sync of a village),
//! f (prefecture history), g (browser cold open), p (physical limits, what automerge
//! alone costs per change of a, and how the relay's receive of a change grows with a
//! record's history). Every relay runs on 127.0.0.1 and is started by the benchmark
//! itself, fresh for every run.

mod automerge_floor;
mod cold_open;
mod peers;
mod physical;
mod prefecture;
mod report;
mod workloads;

/// The load devices use the relay's allocator, so that a machine-level figure is not
/// lowered by the devices' allocations.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use peers::{Kind, Peer};
use report::{Figure, Measured, Target};
use workloads::Sizes;

#[derive(Debug)]
struct Options {
    quick: bool,
    only: Option<Vec<String>>,
    runs: usize,
    /// The relays measured; all three unless `--peers` names some (profiling one alone).
    peers: Vec<Kind>,
}

impl Options {
    fn wants(&self, workload: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|w| w == workload))
    }
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        quick: false,
        only: None,
        runs: 0,
        peers: Kind::ALL.to_vec(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--only" => {
                let list = args.next().context("--only needs a list such as a,b")?;
                options.only = Some(list.split(',').map(|s| s.trim().to_owned()).collect());
            }
            "--peers" => {
                let list = args
                    .next()
                    .context("--peers needs a list such as ours,js")?;
                options.peers = list
                    .split(',')
                    .map(|name| {
                        Kind::ALL
                            .into_iter()
                            .find(|kind| kind.name() == name.trim())
                            .with_context(|| format!("unknown peer {name}: ours, js or samod"))
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            "--runs" => {
                let n = args.next().context("--runs needs a number")?;
                options.runs = n.parse().context("--runs needs a number")?;
            }
            "-h" | "--help" => {
                println!(
                    "caresync-bench [--quick] [--only a,b,c,d,e,f,g,p] [--peers ours,js,samod] [--runs N]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if options.runs == 0 {
        options.runs = if options.quick { 1 } else { 3 };
    }
    Ok(options)
}

/// Builds the release relay and the samod relay next to this binary, then runs this
/// binary again with `CARESYNC_RELAY_BIN` naming the relay: the harness reads the
/// variable, and a child's environment is the safe way to set it.
fn reexec_with_relay() -> anyhow::Result<i32> {
    let me = std::env::current_exe().context("cannot find this binary")?;
    let release = me
        .parent()
        .and_then(|dir| dir.file_name())
        .is_some_and(|name| name == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = caresync_tests::relay::workspace_root()?;
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "-p",
            "caresync-server",
            "-p",
            "caresync-bench",
            "--bins",
        ])
        .current_dir(root);
    if release {
        build.arg("--release");
    } else {
        eprintln!("warning: a debug build measures a debug relay; use `cargo run --release`");
    }
    let started = Instant::now();
    let status = build.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building the relays failed ({status})");
    }
    eprintln!("relays built in {:.1} s", started.elapsed().as_secs_f64());
    let relay: PathBuf = peers::sibling_binary("caresync")?;
    let status = Command::new(&me)
        .args(std::env::args_os().skip(1))
        .env("CARESYNC_RELAY_BIN", relay)
        .status()
        .context("cannot run the benchmark again")?;
    Ok(status.code().unwrap_or(1))
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    if std::env::var_os("CARESYNC_RELAY_BIN").is_none() {
        std::process::exit(reexec_with_relay()?);
    }
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    let mut figures = runtime.block_on(measure(&options))?;
    drop(runtime);
    if options.wants("f") {
        figures.extend(prefecture::run(options.quick)?);
    }
    if options.wants("g") {
        figures.extend(cold_open::run(options.quick)?);
    }
    println!();
    println!(
        "caresync-bench{} ({} run{} each; ratios above 1 mean ours is better)",
        if options.quick { " --quick" } else { "" },
        options.runs,
        if options.runs == 1 { "" } else { "s" }
    );
    print!("{}", report::render(&figures));
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    let failed = OURS_FAILED.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} run(s) of our relay failed (see above)");
    }
    Ok(())
}

/// Runs of our relay that failed: the benchmark prints its table and then fails, so that
/// `scripts/test.sh` notices. A peer's failure is only reported (it is not ours to fix).
static OURS_FAILED: AtomicUsize = AtomicUsize::new(0);

/// Samples per relay kind, in run order.
type Samples = BTreeMap<&'static str, Vec<f64>>;

fn push(samples: &mut Samples, kind: Kind, value: f64) {
    samples.entry(kind.name()).or_default().push(value);
}

/// One figure's samples out of every run of (a)/(b)'s load, per kind of relay.
fn load_samples(
    results: &[(Kind, workloads::LoadResult)],
    value: impl Fn(&workloads::LoadResult) -> f64,
) -> Samples {
    let mut samples = Samples::new();
    for (kind, result) in results {
        push(&mut samples, *kind, value(result));
    }
    samples
}

/// (a)/(b)'s load on every relay, `options.runs` times, with the figures both runs report.
struct LoadRuns {
    results: Vec<(Kind, workloads::LoadResult)>,
    rate: Samples,
    p50: Samples,
    p99: Samples,
}

async fn load_runs(
    options: &Options,
    sizes: &Sizes,
    phase: workloads::LoadPhase,
    label: &str,
) -> LoadRuns {
    let results = each_peer(
        options.runs,
        &options.peers,
        // One village per load device, and one for (b)'s probe.
        sizes.devices + 1,
        label,
        async |peer| workloads::load(peer, sizes, phase).await,
    )
    .await;
    LoadRuns {
        rate: load_samples(&results, |r| r.changes_per_s),
        p50: load_samples(&results, |r| workloads::percentile(&r.latencies_ms, 50.0)),
        p99: load_samples(&results, |r| workloads::percentile(&r.latencies_ms, 99.0)),
        results,
    }
}

/// A figure without a target or extra peers.
fn plain(
    workload: &'static str,
    what: impl Into<String>,
    unit: &'static str,
    samples: &Samples,
) -> Figure {
    figure(workload, what, unit, samples, &[], None)
}

/// A figure from per-kind samples: ours against each peer (and any extra peers).
fn figure(
    workload: &'static str,
    what: impl Into<String>,
    unit: &'static str,
    samples: &Samples,
    extra: &[(&'static str, Measured)],
    target: Option<Target>,
) -> Figure {
    let of = |name: &str| Measured::of(samples.get(name).map_or(&[][..], Vec::as_slice));
    let mut peers: Vec<(&'static str, Measured)> = [Kind::Js, Kind::Samod]
        .iter()
        .map(|kind| (kind.name(), of(kind.name())))
        .collect();
    peers.extend_from_slice(extra);
    Figure {
        workload,
        what: what.into(),
        unit,
        ours: of(Kind::Ours.name()),
        peers,
        target,
    }
}

/// Runs `work` on a fresh relay of each kind, `runs` times; a failure is reported and
/// leaves that sample out, so one peer's failure does not hide the others' figures.
async fn each_peer<T>(
    runs: usize,
    kinds: &[Kind],
    villages: usize,
    label: &str,
    mut work: impl AsyncFnMut(&Peer) -> anyhow::Result<T>,
) -> Vec<(Kind, T)> {
    let mut results = Vec::new();
    for run in 0..runs {
        for &kind in kinds {
            let started = Instant::now();
            let outcome = match Peer::start(kind, villages) {
                Ok(peer) => work(&peer).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(value) => {
                    eprintln!(
                        "{label}: {} run {} done in {:.1} s",
                        kind.name(),
                        run + 1,
                        started.elapsed().as_secs_f64()
                    );
                    results.push((kind, value));
                }
                Err(error) => {
                    if kind == Kind::Ours {
                        OURS_FAILED.fetch_add(1, Ordering::Relaxed);
                    }
                    eprintln!("{label}: {} run {} FAILED: {error:#}", kind.name(), run + 1);
                }
            }
        }
    }
    results
}

async fn measure(options: &Options) -> anyhow::Result<Vec<Figure>> {
    let sizes = Sizes::new(options.quick);
    let runs = options.runs;
    let mut figures = Vec::new();

    // The physical limits, measured where every relay keeps its data (the temp folder).
    let mut fsync = Vec::new();
    let mut loopback = Vec::new();
    if options.wants("p") || options.wants("a") {
        let time = if options.quick {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(1500)
        };
        for _ in 0..runs {
            fsync.push(physical::fsync_rate(&std::env::temp_dir(), time)?);
            loopback.push(physical::loopback_mb_per_s(if options.quick {
                256
            } else {
                1024
            })?);
        }
    }
    let fsync = Measured::of(&fsync);
    // What automerge alone costs per change of (a), on as many documents as (a) changes.
    let mut automerge_us = Vec::new();
    let mut op_tree_us = Vec::new();
    if options.wants("p") || options.wants("a") {
        let time = if options.quick {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(5)
        };
        let documents = sizes.devices * sizes.documents_per_device;
        for _ in 0..runs {
            let (current, op_tree) = automerge_floor::microseconds_per_change(documents, time)?;
            automerge_us.push(current);
            op_tree_us.push(op_tree);
        }
    }
    // The relay's receive of one change as a record's history grows, with both versions.
    let histories: &[usize] = if options.quick {
        &[0, 30]
    } else {
        &[0, 100, 300, 1_000]
    };
    let (receive_documents, receive_rounds) = if options.quick { (10, 5) } else { (50, 20) };
    // Each history length with its samples for 0.12 and 0.6.1; empty unless `p` runs.
    let mut receive_us: Vec<(usize, Vec<f64>, Vec<f64>)> = if options.wants("p") {
        histories
            .iter()
            .map(|&history| (history, Vec::new(), Vec::new()))
            .collect()
    } else {
        Vec::new()
    };
    for _ in 0..runs {
        for (history, current_us, op_tree_us) in &mut receive_us {
            let (current, op_tree) =
                automerge_floor::receive_microseconds(receive_documents, *history, receive_rounds)?;
            current_us.push(current);
            op_tree_us.push(op_tree);
        }
    }

    // (a) as design §4 states it: the load devices alone, nobody following their
    // documents. (b)'s reviewer takes in every change too, and on two shared cores its
    // work and the relay's fan-out to it cost the load; that rate is (b)'s, below.
    if options.wants("a") {
        let LoadRuns { results, rate, .. } =
            load_runs(options, &sizes, workloads::LoadPhase::Alone, "a load").await;
        let rss = load_samples(&results, |r| r.peak_rss_mb);
        let cpu = load_samples(&results, |r| r.relay_cpu_ms_per_change);
        let per_core = load_samples(&results, |r| 1000.0 / r.relay_cpu_ms_per_change);
        let what = format!(
            "stored changes/s, {} devices x {} docs, durable acks",
            sizes.devices, sizes.documents_per_device
        );
        let disk = [("disk fsync", fsync)];
        figures.push(figure(
            "a",
            what.clone(),
            "changes/s",
            &rate,
            &disk,
            Some(Target::Floor(10_000.0)),
        ));
        figures.push(figure(
            "a",
            what.clone(),
            "changes/s",
            &rate,
            &disk,
            Some(Target::FloorTimesPeer("js", 10.0)),
        ));
        figures.push(figure(
            "a",
            what,
            "changes/s",
            &rate,
            &disk,
            Some(Target::FloorTimesPeer("samod", 2.0)),
        ));
        // The load devices share the two cores with the relay and saturate them first,
        // so the rate above is the machine's; the relay's own CPU per change says what
        // the relay would sustain on a core of its own.
        figures.push(plain(
            "a",
            "relay CPU (user+sys, all threads) per acknowledged change, during a",
            "ms",
            &cpu,
        ));
        figures.push(plain(
            "a",
            "changes/s one relay core sustains at that cost (1000 / CPU ms per change)",
            "changes/s",
            &per_core,
        ));
        figures.push(plain("a", "relay peak RSS during a", "MB", &rss));
    }

    // (b) under (a): the same closed loop, with the probe and a reviewer following every
    // document.
    if options.wants("b") {
        let LoadRuns {
            results,
            rate,
            p50,
            p99,
        } = load_runs(options, &sizes, workloads::LoadPhase::Observed, "b under a").await;
        let ack_p99 = load_samples(&results, |r| {
            workloads::percentile(&r.ack_latencies_ms, 99.0)
        });
        let cpu = load_samples(&results, |r| r.relay_cpu_ms_per_change);
        figures.push(plain(
            "b",
            format!(
                "stored changes/s, a's {} devices with b's reviewer following every document",
                sizes.devices
            ),
            "changes/s",
            &rate,
        ));
        figures.push(plain(
            "b",
            "relay CPU per acknowledged change, a with b's reviewer",
            "ms",
            &cpu,
        ));
        figures.push(plain(
            "b",
            "change -> reviewer latency p50, under a",
            "ms",
            &p50,
        ));
        figures.push(figure(
            "b",
            "change -> reviewer latency p99, under a",
            "ms",
            &p99,
            &[],
            Some(Target::Ceiling(100.0)),
        ));
        figures.push(plain(
            "b",
            "change -> the relay's durable ack to the changing device p99, under a",
            "ms",
            &ack_p99,
        ));
    }

    // (b) again with the same devices offering a fixed rate below what the machine
    // sustains: the latency a reviewer sees when the relay is busy but keeping up, rather
    // than the queueing of (a)'s saturating closed loop.
    if options.wants("b") {
        let LoadRuns { rate, p50, p99, .. } = load_runs(
            options,
            &sizes,
            workloads::LoadPhase::ObservedPaced,
            "b paced load",
        )
        .await;
        let offered = format!(
            "{} devices offering {:.0} changes/s together",
            sizes.devices, sizes.paced_changes_per_s
        );
        figures.push(plain(
            "b",
            format!("stored changes/s, {offered}"),
            "changes/s",
            &rate,
        ));
        figures.push(plain(
            "b",
            format!("change -> reviewer latency p50, {offered}"),
            "ms",
            &p50,
        ));
        figures.push(plain(
            "b",
            format!("change -> reviewer latency p99, {offered}"),
            "ms",
            &p99,
        ));
    }

    if options.wants("c") {
        for &count in sizes.idle {
            let results = each_peer(
                runs,
                &options.peers,
                workloads::VILLAGES,
                &format!("c idle {count}"),
                async |peer| workloads::idle(peer, count).await,
            )
            .await;
            let mut joined = Samples::new();
            let mut peak = Samples::new();
            for (kind, (n, hwm, _rss)) in &results {
                push(&mut joined, *kind, *n as f64);
                push(&mut peak, *kind, *hwm);
            }
            let limit = if count <= 2_468 { 200.0 } else { 1024.0 };
            figures.push(figure(
                "c",
                format!("idle devices joined of {count}"),
                "devices",
                &joined,
                &[],
                Some(Target::Floor(count as f64)),
            ));
            figures.push(figure(
                "c",
                format!("relay peak RSS (VmHWM), {count} idle devices"),
                "MB",
                &peak,
                &[],
                Some(Target::Ceiling(limit)),
            ));
        }
    }

    if options.wants("d") {
        let count = sizes.reconnect_documents;
        let results = each_peer(
            runs,
            &options.peers,
            workloads::VILLAGES,
            "d reconnect",
            async |peer| workloads::reconnect(peer, count).await,
        )
        .await;
        let mut trips = Samples::new();
        let mut bytes = Samples::new();
        let mut time = Samples::new();
        for (kind, (traffic, seconds)) in &results {
            push(&mut trips, *kind, traffic.frames_sent as f64);
            push(
                &mut bytes,
                *kind,
                (traffic.bytes_sent + traffic.bytes_received) as f64 / 1024.0,
            );
            push(&mut time, *kind, *seconds * 1000.0);
        }
        figures.push(figure(
            "d",
            format!("reconnect, nothing new, {count} docs: round trips (frames sent)"),
            "round trips",
            &trips,
            &[],
            Some(Target::Ceiling(2.0)),
        ));
        figures.push(figure(
            "d",
            format!("reconnect, nothing new, {count} docs: bytes both ways"),
            "KB",
            &bytes,
            &[],
            Some(Target::Ceiling(64.0)),
        ));
        figures.push(figure("d", format!("reconnect, nothing new, {count} docs: until quiet (incl. 500 ms quiet wait excluded)"), "ms", &time, &[], None));
    }

    if options.wants("e") {
        let count = sizes.village_documents;
        let results = each_peer(
            runs,
            &options.peers,
            workloads::VILLAGES,
            "e first sync",
            async |peer| workloads::first_sync(peer, count).await,
        )
        .await;
        let mut time = Samples::new();
        let mut ratio = Samples::new();
        let mut saved = Samples::new();
        for (kind, (seconds, bytes, saved_bytes)) in &results {
            push(&mut time, *kind, *seconds);
            push(
                &mut ratio,
                *kind,
                *bytes as f64 / (*saved_bytes).max(1) as f64,
            );
            push(&mut saved, *kind, *saved_bytes as f64 / 1024.0);
        }
        figures.push(figure(
            "e",
            format!("first sync of a village, {count} docs: time"),
            "s",
            &time,
            &[],
            Some(Target::Ceiling(1.5)),
        ));
        figures.push(figure(
            "e",
            format!("first sync, {count} docs: bytes both ways / saved size"),
            "x",
            &ratio,
            &[],
            Some(Target::Ceiling(1.2)),
        ));
        figures.push(plain(
            "e",
            format!("first sync, {count} docs: the documents' saved size"),
            "KB",
            &saved,
        ));
    }

    if options.wants("p") || options.wants("a") {
        figures.push(Figure {
            workload: "p",
            what: "disk: write 4 KiB + fsync, in the temp folder".to_owned(),
            unit: "fsyncs/s",
            ours: fsync,
            peers: Vec::new(),
            target: None,
        });
        figures.push(Figure {
            workload: "p",
            what: "loopback TCP, one connection".to_owned(),
            unit: "MB/s",
            ours: Measured::of(&loopback),
            peers: Vec::new(),
            target: None,
        });
        // Both sides of (a)'s exchange in one thread; on two cores, with nothing else to
        // do (no sockets, storage or access rules), that is the most (a) could reach.
        let two_cores: Vec<f64> = automerge_us.iter().map(|us| 2e6 / us).collect();
        // Run by run: the two are measured one after the other, seconds apart, so that a
        // slow period of the machine slows both sides of each ratio.
        let slowdown: Vec<f64> = automerge_us
            .iter()
            .zip(&op_tree_us)
            .map(|(current, op_tree)| current / op_tree)
            .collect();
        for (what, unit, samples) in [
            (
                "automerge alone, one thread: a phone's change, its sync message, the relay's apply and acknowledgement",
                "us/change",
                &automerge_us,
            ),
            (
                "changes/s two cores reach doing only that (2,000,000 / us per change)",
                "changes/s",
                &two_cores,
            ),
            (
                "the same with automerge 0.6.1 (operations in a tree, before the columns of 0.7)",
                "us/change",
                &op_tree_us,
            ),
            (
                "automerge 0.12 against 0.6.1: times the work per change",
                "x",
                &slowdown,
            ),
        ] {
            figures.push(Figure {
                workload: "p",
                what: what.to_owned(),
                unit,
                ours: Measured::of(samples),
                peers: Vec::new(),
                target: None,
            });
        }
    }
    for (history, current_us, op_tree_us) in &receive_us {
        figures.push(Figure {
            workload: "p",
            what: format!(
                "automerge 0.12: the relay's receive of one change to a record whose field was changed {history} times before"
            ),
            unit: "us/change",
            ours: Measured::of(current_us),
            peers: vec![("automerge 0.6.1", Measured::of(op_tree_us))],
            target: None,
        });
    }
    Ok(figures)
}
