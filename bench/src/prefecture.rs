//! Workload (f) of design §4: a prefecture's history of about a million documents in one
//! SQLite file. Measured: how long the relay takes to start on it (target ≤ 5 s) and how
//! long a township reviewer waits for the township's monthly report (target ≤ 200 ms).
//! Only ours is measured: the peers keep no report tables and have no reports.
//!
//! The prefecture is made by the server library's generator (`caresync_server::bench_data`)
//! and kept under `target/bench-data/` (or the directory `CARESYNC_BENCH_DATA_DIR` names),
//! named by its size and the generator's version, so that later runs reuse it instead of
//! spending minutes making it again.
//!
//! "A township's monthly report" is what the reviewer's dashboard loads for a month: the
//! coverage, overdue and hours reports, requested together as the web app does; the
//! month's Excel ledger export is timed too, and each report on its own.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use caresync_core::domain::OrgUnitCode;
use caresync_server::bench_data::{self, Shape};
use caresync_server::store::DocumentStore;
use caresync_tests::RelayProcess;
use caresync_tests::relay::{relay_binary, workspace_root};

use crate::report::{Figure, Measured, Target};

const WORKLOAD: &str = "f";
/// Threads making documents: the machine has two cores, and the calling thread, which
/// stores them, mostly waits for the makers.
const MAKER_THREADS: usize = 2;
/// Names the directory generated prefectures are kept in, instead of `target/bench-data`.
const DATA_DIR_VARIABLE: &str = "CARESYNC_BENCH_DATA_DIR";
/// How long the relay may take to answer `/healthz` before the run fails.
const HEALTHZ_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(quick: bool) -> anyhow::Result<Vec<Figure>> {
    let documents: u64 = if quick { 5_000 } else { 1_000_000 };
    let (starts, cold_starts, rounds) = if quick { (3, 1, 10) } else { (5, 3, 20) };
    let db = prefecture(documents)?;
    let size = file_size(&db)?;
    // The generator makes about the number asked for; the figure names what the file holds.
    let stored = DocumentStore::open(&db)?.document_count()?;
    eprintln!(
        "[f] prefecture: {} ({:.0} MB)",
        db.display(),
        size as f64 / 1e6
    );
    let binary = relay_binary()?;
    if !binary
        .components()
        .any(|part| part.as_os_str() == "release")
    {
        eprintln!(
            "[f] warning: the relay is not a release build ({}); set CARESYNC_RELAY_PROFILE=release",
            binary.display()
        );
    }

    // Start time: process spawned until `/healthz` answers, several times on the same
    // file. The first start may read the file from disk, later ones from the page cache;
    // the spread shows the difference.
    let mut spawn_to_healthz = Vec::new();
    let mut relay_ready = Vec::new();
    let mut relay = None;
    for attempt in 0..starts {
        if let Some(mut previous) = relay.take() {
            stop(&mut previous)?;
        }
        let started = Instant::now();
        let process = RelayProcess::start_on(&db, &[])?;
        wait_healthy(&process.http_base())?;
        let took = millis(started.elapsed());
        let own = relay_started_ms(&process.output());
        eprintln!(
            "[f] start {}: healthz after {took:.0} ms (relay's own `relay ready` started_ms: {})",
            attempt + 1,
            own.map_or("-".to_owned(), |ms| format!("{ms:.0}"))
        );
        spawn_to_healthz.push(took);
        relay_ready.extend(own);
        relay = Some(process);
    }
    let Some(mut relay) = relay else {
        bail!("no relay was started");
    };

    let reports = measure_reports(&relay, documents, rounds);
    stop(&mut relay)?;
    let reports = reports?;

    // Cold starts: the database's pages dropped from the page cache before each, as after
    // a reboot of the machine, and the first dashboard after it, which reads its pages.
    let in_memory = is_in_memory(&db);
    if in_memory {
        eprintln!(
            "[f] note: {} is in memory (tmpfs), so the cold starts read it from memory too",
            db.display()
        );
    }
    let (township, reviewer) = measured_township(documents);
    let requests = report_requests();
    let dashboard = requests.get(..3).unwrap_or_default();
    let mut cold_start = Vec::new();
    let mut cold_dashboard = Vec::new();
    for attempt in 0..cold_starts {
        evict_from_page_cache(&db)?;
        let started = Instant::now();
        let mut process = RelayProcess::start_on(&db, &[])?;
        let first = wait_healthy(&process.http_base())
            .map(|()| millis(started.elapsed()))
            .and_then(|took| {
                let base = process.http_base();
                let token = caresync_tests::login(&base, &reviewer, bench_data::BENCH_PASSWORD)?;
                Ok((took, dashboard_ms(&base, &token, dashboard)?))
            });
        stop(&mut process)?;
        let (took, dashboard) = first?;
        eprintln!(
            "[f] cold start {}: healthz after {took:.0} ms; then the first dashboard of township {township}: {dashboard:.0} ms",
            attempt + 1
        );
        cold_start.push(took);
        cold_dashboard.push(dashboard);
    }

    let what_start = format!(
        "relay start on {} documents ({:.1} GB SQLite), spawn → /healthz 200 (ours only: peers have no reports)",
        number(stored),
        size as f64 / 1e9
    );
    let mut figures = vec![ours_ms(
        what_start,
        &spawn_to_healthz,
        Some(Target::Ceiling(5_000.0)),
    )];
    if !relay_ready.is_empty() {
        figures.push(ours_ms(
            "relay start, its own `relay ready` started_ms (open db → listening)".to_owned(),
            &relay_ready,
            None,
        ));
    }
    let cold_note = if in_memory {
        "; the file is in memory"
    } else {
        ""
    };
    let what_cold = format!(
        "relay start, cold: the database dropped from the page cache first (posix_fadvise){cold_note}"
    );
    figures.push(ours_ms(
        what_cold,
        &cold_start,
        Some(Target::Ceiling(5_000.0)),
    ));
    figures.extend(reports);
    figures.push(ours_ms(
        format!("township monthly report, the first dashboard after a cold start{cold_note}"),
        &cold_dashboard,
        Some(Target::Ceiling(200.0)),
    ));
    Ok(figures)
}

/// A figure in milliseconds of ours alone: the peers keep no report tables.
fn ours_ms(what: String, samples: &[f64], target: Option<Target>) -> Figure {
    Figure {
        workload: WORKLOAD,
        what,
        unit: "ms",
        ours: Measured::of(samples),
        peers: Vec::new(),
        target,
    }
}

/// Drops the database's files from the page cache (clean pages only: the relay that wrote
/// them has stopped), so that the next start reads them from the disk.
fn evict_from_page_cache(db: &Path) -> anyhow::Result<()> {
    for path in sqlite_files(db) {
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        file.sync_all()
            .with_context(|| format!("cannot flush {}", path.display()))?;
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
            .with_context(|| format!("cannot drop {} from the page cache", path.display()))?;
    }
    Ok(())
}

/// True when `path` is on a tmpfs, where the page cache is the only copy and cannot be
/// dropped.
fn is_in_memory(path: &Path) -> bool {
    const TMPFS_MAGIC: i128 = 0x0102_1994;
    rustix::fs::statfs(path).is_ok_and(|stat| i128::from(stat.f_type) == TMPFS_MAGIC)
}

/// The generated prefecture of about `documents` documents: the kept file if there is one,
/// else a new one made now.
fn prefecture(documents: u64) -> anyhow::Result<PathBuf> {
    // The file is large (gigabytes for a million documents); a run may keep it elsewhere,
    // e.g. on another disk, by naming a directory.
    let dir = match std::env::var_os(DATA_DIR_VARIABLE) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root()?.join("target").join("bench-data"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let path = dir.join(format!(
        "prefecture-{documents}-v{}.db",
        bench_data::GENERATOR_VERSION
    ));
    if path.exists() {
        eprintln!(
            "[f] reusing the prefecture generated earlier: {} (delete it to make a new one)",
            path.display()
        );
        return Ok(path);
    }
    // Made under another name and renamed when complete, so that an interrupted run
    // leaves no file that a later run would take for a whole prefecture.
    let partial = dir.join(format!(
        "prefecture-{documents}-v{}.partial.db",
        bench_data::GENERATOR_VERSION
    ));
    for leftover in sqlite_files(&partial) {
        if leftover.exists() {
            std::fs::remove_file(&leftover)
                .with_context(|| format!("cannot remove {}", leftover.display()))?;
        }
    }
    let shape = Shape::for_documents(documents);
    eprintln!(
        "[f] generating a prefecture of about {} documents ({} districts, {} townships, {} villages) into {}",
        number(documents),
        shape.districts,
        shape.townships(),
        shape.villages(),
        partial.display()
    );
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    let step = (documents / 10).max(1);
    let mut next_report = step;
    let mut report_progress = |done: u64| {
        if done >= next_report {
            next_report = (done / step + 1) * step;
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "[f]   {} documents ({:.0}%), {:.0} docs/s, {:.0} s ({} CPU s)",
                number(done),
                done as f64 * 100.0 / documents as f64,
                done as f64 / seconds.max(1e-9),
                seconds,
                cpu_used(cpu_before)
            );
            let _ = std::io::stdout().flush();
        }
    };
    let generated = bench_data::generate(&partial, shape, MAKER_THREADS, &mut report_progress)?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::rename(&partial, &path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    // Wall time depends on what else the machine runs; the CPU time says what generating
    // costs on its own (two cores give about half of it as wall time).
    eprintln!(
        "[f] generated {} documents ({} changes, {} accounts, {} org units) in {:.0} s ({:.0} docs/s; {} CPU s), {:.0} MB; kept for later runs at {}",
        number(generated.documents),
        number(generated.changes),
        generated.accounts,
        generated.units,
        seconds,
        generated.documents as f64 / seconds.max(1e-9),
        cpu_used(cpu_before),
        file_size(&path)? as f64 / 1e6,
        path.display()
    );
    Ok(path)
}

/// The database file and the write-ahead log and shared-memory files SQLite puts beside it.
fn sqlite_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

fn file_size(path: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len())
}

fn stop(relay: &mut RelayProcess) -> anyhow::Result<()> {
    let status = relay.stop()?;
    if let Some(status) = status
        && !status.success()
    {
        bail!("the relay exited {status}; its output:\n{}", relay.output());
    }
    Ok(())
}

fn wait_healthy(base: &str) -> anyhow::Result<()> {
    let agent = agent();
    let deadline = Instant::now() + HEALTHZ_TIMEOUT;
    let url = format!("{base}/healthz");
    loop {
        if let Ok(response) = agent.get(&url).call()
            && response.status() == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer 200 within {HEALTHZ_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The `started_ms` of the relay's `relay ready` log line, if it printed one.
fn relay_started_ms(output: &str) -> Option<f64> {
    let line = output.lines().find(|line| line.contains("relay ready"))?;
    let plain = strip_ansi(line);
    let value = plain.split("started_ms=").nth(1)?;
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The text of a log line without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// One report request: its path under `/api/v1/` and a short name for the figures.
struct Request {
    name: &'static str,
    path: String,
}

/// The township whose reviewer the reports are measured for, and that reviewer's username.
fn measured_township(documents: u64) -> (OrgUnitCode, String) {
    let shape = Shape::for_documents(documents);
    // A township in the middle of the prefecture: nothing about the first or last one
    // is special, but the middle shows no edge effect of either.
    let township = shape.township_code(shape.townships() / 2);
    let reviewer = bench_data::reviewer_username(&township);
    (township, reviewer)
}

/// GETs one report as `token`; its time in milliseconds and its size in bytes.
fn get_report(
    agent: &ureq::Agent,
    base: &str,
    token: &str,
    request: &Request,
) -> anyhow::Result<(f64, usize)> {
    let url = format!("{base}/api/v1/{}", request.path);
    let started = Instant::now();
    let mut response = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .with_context(|| format!("reading {url}"))?;
    let took = millis(started.elapsed());
    if status != 200 {
        bail!(
            "GET {url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok((took, body.len()))
}

/// The dashboard's three reports at once, each on its own connection, as the web app asks
/// for them; the time until the last answered, in milliseconds.
fn dashboard_ms(base: &str, token: &str, dashboard: &[Request]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let answers: Vec<anyhow::Result<(f64, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = dashboard
            .iter()
            .map(|request| scope.spawn(move || get_report(&agent(), base, token, request)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a request thread panicked")))
            })
            .collect()
    });
    for answer in answers {
        answer?;
    }
    Ok(millis(started.elapsed()))
}

/// The coverage, overdue and hours reports of the month the generator's history ends in,
/// and that month's Excel ledger; the dashboard asks for the first three.
fn report_requests() -> [Request; 4] {
    let month = bench_data::report_month();
    let first = format!("{month}-01");
    let last = bench_data::history_end().to_string();
    let today = bench_data::history_end().to_string();
    [
        Request {
            name: "coverage",
            path: format!("reports/coverage?from={first}&to={last}"),
        },
        Request {
            name: "overdue",
            path: format!("reports/overdue?today={today}"),
        },
        Request {
            name: "hours",
            path: format!("reports/hours?month={month}"),
        },
        Request {
            name: "month.xlsx",
            path: format!("exports/month.xlsx?month={month}"),
        },
    ]
}

fn measure_reports(
    relay: &RelayProcess,
    documents: u64,
    rounds: usize,
) -> anyhow::Result<Vec<Figure>> {
    let base = relay.http_base();
    let shape = Shape::for_documents(documents);
    let (township, reviewer) = measured_township(documents);
    let token = caresync_tests::login(&base, &reviewer, bench_data::BENCH_PASSWORD)?;
    let month = bench_data::report_month();
    let requests = report_requests();
    let dashboard = requests.get(..3).unwrap_or_default();

    let client = agent();
    let get = |agent: &ureq::Agent, request: &Request| get_report(agent, &base, &token, request);

    // The first answer after a start is what a reviewer sees after a restart; it is
    // printed, and left out of the medians (statements are prepared and pages read then).
    for request in &requests {
        let (took, bytes) = get(&client, request)?;
        eprintln!(
            "[f] first {} for township {township} ({}): {took:.1} ms, {bytes} bytes",
            request.name, reviewer
        );
    }

    let mut together = Vec::new();
    let mut each: Vec<Vec<f64>> = vec![Vec::new(); requests.len()];
    for _ in 0..rounds {
        together.push(dashboard_ms(&base, &token, dashboard)?);
        for (request, samples) in requests.iter().zip(each.iter_mut()) {
            samples.push(get(&client, request)?.0);
        }
        // The API allows 50 requests a second from one address; staying under it keeps
        // the limiter out of the figures.
        std::thread::sleep(Duration::from_millis(150));
    }

    let scope_note = format!(
        "township {township}, {} villages, month {month}",
        shape.villages_per_township
    );
    let mut figures = vec![ours_ms(
        format!(
            "township monthly report: dashboard's coverage+overdue+hours at once ({scope_note}; ours only)"
        ),
        &together,
        Some(Target::Ceiling(200.0)),
    )];
    for (request, samples) in requests.iter().zip(&each) {
        let export = request.name.ends_with(".xlsx");
        figures.push(ours_ms(
            format!("  {} alone ({})", request.name, request.path),
            samples,
            // The Excel ledger is the monthly report on paper, so it has the same target.
            export.then_some(Target::Ceiling(200.0)),
        ));
    }
    Ok(figures)
}

/// User and system CPU time of this process so far, from `/proc/self/stat` (Linux); `None`
/// where it cannot be read.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // utime and stime are the 12th and 13th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn cpu_used(before: Option<f64>) -> String {
    match (before, process_cpu_seconds()) {
        (Some(before), Some(now)) => format!("{:.0}", now - before),
        _ => "-".to_owned(),
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A count with thousands separators.
fn number(n: u64) -> String {
    crate::report::number(n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_started_ms_from_a_coloured_log_line() {
        let line = "\u{1b}[2m2025-01-01T00:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mcaresync_server::serve\u{1b}[0m\u{1b}[2m:\u{1b}[0m relay ready \u{1b}[3mdb\u{1b}[0m\u{1b}[2m=\u{1b}[0m/x.db \u{1b}[3mstarted_ms\u{1b}[0m\u{1b}[2m=\u{1b}[0m42";
        assert_eq!(relay_started_ms(line), Some(42.0));
        assert_eq!(
            relay_started_ms("INFO relay ready db=/x.db started_ms=7"),
            Some(7.0)
        );
        assert_eq!(relay_started_ms("listening on http://127.0.0.1:1"), None);
    }
}
