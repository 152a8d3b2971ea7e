//! The relays measured side by side, each started fresh on loopback: ours (the release
//! `caresync` binary), the pinned JS sync server and the samod relay of this crate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use caresync_core::domain::{
    Child as ChildRecord, ChildCategory, Gender, OrgUnitCode, Record, YearMonth,
};
use caresync_tests::js::JsSyncServer;
use caresync_tests::{Device, RelayProcess, login};

pub const PASSWORD: &str = "bench-password";
const TOWNSHIP: &str = "370402001";

/// Which relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ours,
    Js,
    Samod,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Ours, Kind::Js, Kind::Samod];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Js => "js",
            Kind::Samod => "samod",
        }
    }
}

/// How much of our relay's log a failed run prints.
const RECENT_LOG_LINES: usize = 30;

/// A running relay with what a device needs to reach it.
#[derive(Debug)]
pub struct Peer {
    pub kind: Kind,
    process: Process,
    /// Ours: one director token per village, in village order.
    directors: Vec<String>,
    /// Ours: the township reviewer's token.
    reviewer: Option<String>,
}

#[derive(Debug)]
enum Process {
    Ours(RelayProcess),
    Js(JsSyncServer),
    Samod(SamodRelay),
}

impl Peer {
    /// Starts a relay of `kind` on an empty store. Ours gets a township with `villages`
    /// villages, a director account for each and a township reviewer.
    pub fn start(kind: Kind, villages: usize) -> anyhow::Result<Peer> {
        match kind {
            Kind::Ours => start_ours(villages),
            Kind::Js => Ok(Peer {
                kind,
                process: Process::Js(JsSyncServer::start()?),
                directors: Vec::new(),
                reviewer: None,
            }),
            Kind::Samod => Ok(Peer {
                kind,
                process: Process::Samod(SamodRelay::start()?),
                directors: Vec::new(),
                reviewer: None,
            }),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.process {
            Process::Ours(relay) => relay.pid(),
            Process::Js(server) => Some(server.pid()),
            Process::Samod(relay) => Some(relay.child.id()),
        }
    }

    /// Where a director of village `village` (an index) connects.
    pub fn device_url(&self, village: usize) -> String {
        match &self.process {
            Process::Ours(relay) => {
                let token = self
                    .directors
                    .get(village % self.directors.len().max(1))
                    .map_or("", String::as_str);
                relay.ws_url(token)
            }
            Process::Js(server) => server.ws_url(),
            Process::Samod(relay) => relay.ws_url(),
        }
    }

    /// Where the township reviewer connects.
    pub fn reviewer_url(&self) -> String {
        match &self.process {
            Process::Ours(relay) => relay.ws_url(self.reviewer.as_deref().unwrap_or("")),
            Process::Js(server) => server.ws_url(),
            Process::Samod(relay) => relay.ws_url(),
        }
    }

    /// A device as each relay is used: ours with caresync's extensions (the relay tells
    /// it its scope), the peers' plain automerge-repo (documents are asked for by id).
    pub fn device(&self, name: &str) -> Device {
        match self.kind {
            Kind::Ours => Device::new(name),
            Kind::Js | Kind::Samod => Device::plain(name),
        }
    }

    /// The end of our relay's log, to explain a failed run; empty for the peers.
    pub fn recent_log(&self) -> String {
        match &self.process {
            Process::Ours(relay) => {
                let log = relay.output();
                let lines: Vec<&str> = log.lines().collect();
                let first = lines.len().saturating_sub(RECENT_LOG_LINES);
                lines.get(first..).unwrap_or_default().join("\n")
            }
            Process::Js(_) | Process::Samod(_) => String::new(),
        }
    }

    /// True when the relay lists a device's documents to it (our `scope` extension);
    /// otherwise the device must open each document by id.
    pub fn lists_scope(&self) -> bool {
        self.kind == Kind::Ours
    }
}

/// The code of village `index` of the benchmark's township.
pub fn village_code(index: usize) -> String {
    format!("{TOWNSHIP}{:03}", index + 1)
}

/// A child record in village `index`, valid for our relay's checks.
pub fn child_record(village: usize, name: &str) -> anyhow::Result<Record> {
    let born = YearMonth::new(2016, 5).context("a valid month")?;
    let mut child = ChildRecord::new(
        OrgUnitCode::new(village_code(village)),
        name,
        born,
        Gender::Female,
    );
    // Our relay validates records: a child needs at least one category.
    child.categories.push(ChildCategory::LeftBehind);
    Ok(Record::Child(child))
}

fn start_ours(villages: usize) -> anyhow::Result<Peer> {
    let relay = RelayProcess::start()?;
    let mut csv = format!(
        "code,name,level,parent\n370400,Prefecture,prefecture,\n370402,District,district,370400\n{TOWNSHIP},Township,township,370402\n"
    );
    for village in 0..villages {
        csv.push_str(&format!(
            "{},Village {},village,{TOWNSHIP}\n",
            village_code(village),
            village + 1
        ));
    }
    relay.import_org_units(&csv)?;
    let mut directors = Vec::new();
    for village in 0..villages {
        let username = format!("director-{village}");
        relay.add_user(
            &username,
            "village-child-director",
            &village_code(village),
            PASSWORD,
        )?;
        directors.push(login(&relay.http_base(), &username, PASSWORD)?);
    }
    relay.add_user("reviewer", "township-reviewer", TOWNSHIP, PASSWORD)?;
    let reviewer = login(&relay.http_base(), "reviewer", PASSWORD)?;
    Ok(Peer {
        kind: Kind::Ours,
        process: Process::Ours(relay),
        directors,
        reviewer: Some(reviewer),
    })
}

/// `samod-relay` (this crate's other binary) on a temporary data directory.
#[derive(Debug)]
struct SamodRelay {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl SamodRelay {
    fn start() -> anyhow::Result<SamodRelay> {
        let data = tempfile::Builder::new()
            .prefix("caresync-bench-samod-")
            .tempdir()
            .context("cannot make samod's data directory")?;
        let binary = sibling_binary("samod-relay")?;
        let mut child = Command::new(&binary)
            .arg("--data-dir")
            .arg(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().transpose().context("reading samod-relay")?;
        let Some(url) = first
            .as_deref()
            .and_then(|l| l.strip_prefix("listening on "))
        else {
            let _ = child.kill();
            bail!("samod-relay did not start: {first:?}");
        };
        let url = url.trim().to_owned();
        // Keep reading so that the relay never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(SamodRelay {
            child,
            url,
            _data: data,
        })
    }

    fn ws_url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for SamodRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary built next to this one (same target directory and profile).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this binary")?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow!("this binary has no folder"))?;
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{} is missing: build it with `cargo build --release -p caresync-bench`",
            path.display()
        )
    }
}

/// Peak and current resident memory of a process, in MB, from `/proc/<pid>/status`.
pub fn memory_mb(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .with_context(|| format!("cannot read the status of process {pid}"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kb: f64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("a bad {name} line: {line}"))?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// CPU seconds (user + system, all threads) process `pid` has used so far, from
/// `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
        .with_context(|| format!("cannot read the stat of process {pid}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("a bad /proc/{pid}/stat: {stat}"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |index: usize| -> anyhow::Result<f64> {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .with_context(|| format!("no CPU time in /proc/{pid}/stat"))
    };
    Ok((ticks(11)? + ticks(12)?) / CLOCK_TICKS_PER_S)
}

/// The kernel's `USER_HZ`, 100 on every Linux this runs on (`getconf CLK_TCK`).
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// Gives a relay a moment after its last connection so that memory settles.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}
