//! [`RelayProcess`]: the real `caresync` relay binary, started on a throw-away database.
//!
//! The binary is built once per test process with the same cargo that runs the tests (so
//! the same profile and target directory). `CARESYNC_RELAY_BIN` names a prebuilt binary
//! instead, and `CARESYNC_RELAY_PROFILE` (e.g. `release`, for benchmarks) chooses the
//! profile it is built with.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::output::OutputLog;

/// How long a started relay may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`RelayProcess::stop`] waits after SIGTERM before it kills.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const LISTENING_PREFIX: &str = "listening on http://";

/// A running relay. Dropping it stops it (SIGTERM, then SIGKILL after 10 s).
#[derive(Debug)]
pub struct RelayProcess {
    /// Holds the database across restarts; removed when the relay is dropped.
    dir: tempfile::TempDir,
    /// The database: in `dir`, or one the caller keeps (see [`RelayProcess::start_on`]).
    db: PathBuf,
    extra_args: Vec<String>,
    child: Option<Child>,
    addr: SocketAddr,
    output: OutputLog,
}

impl RelayProcess {
    /// Starts a relay on a new database, listening on a free loopback port.
    pub fn start() -> anyhow::Result<RelayProcess> {
        RelayProcess::start_with(&[])
    }

    /// Starts a relay with extra `caresync serve` arguments (e.g. `--demo`). The relay runs
    /// in the workspace root, so the default `--web-dir` finds the web app.
    pub fn start_with(extra_args: &[&str]) -> anyhow::Result<RelayProcess> {
        let dir = tempfile::Builder::new()
            .prefix("caresync-relay-")
            .tempdir()
            .context("cannot make the relay's temporary directory")?;
        let db = dir.path().join("caresync.db");
        let mut relay = RelayProcess {
            dir,
            db,
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            output: OutputLog::default(),
        };
        relay.spawn()?;
        Ok(relay)
    }

    /// Starts a relay on an existing database that the caller keeps (a benchmark's
    /// generated prefecture), with extra `caresync serve` arguments. The file is used as it
    /// is and left in place when the relay is dropped.
    pub fn start_on(db: &Path, extra_args: &[&str]) -> anyhow::Result<RelayProcess> {
        let dir = tempfile::Builder::new()
            .prefix("caresync-relay-")
            .tempdir()
            .context("cannot make the relay's temporary directory")?;
        let mut relay = RelayProcess {
            dir,
            db: db.to_path_buf(),
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            output: OutputLog::default(),
        };
        relay.spawn()?;
        Ok(relay)
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The sync endpoint for a session token.
    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/sync?token={token}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn db_path(&self) -> PathBuf {
        self.db.clone()
    }

    /// The temporary directory holding the database; it outlives restarts.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The relay's recent stdout and stderr, for failure messages.
    pub fn output(&self) -> String {
        self.output.text()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Asks the relay to shut down (SIGTERM), waits up to 10 s, then kills it. Returns
    /// how it exited; `None` if it was not running.
    pub fn stop(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(Some(status));
        }
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("cannot run `kill`")?;
        if !sent.success() {
            // It may have exited just now; `wait` below tells.
            self.log(format!("[harness] kill -TERM exited {sent}"));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().context("cannot wait for the relay")? {
                return Ok(Some(status));
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.log("[harness] the relay ignored SIGTERM for 10 s; killing it".to_owned());
        child.kill().context("cannot kill the relay")?;
        let status = child.wait().context("cannot wait for the relay")?;
        Ok(Some(status))
    }

    /// Kills the relay at once (SIGKILL), as a power cut would.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // On Unix `Child::kill` is SIGKILL.
            child.kill().context("cannot kill the relay")?;
            child.wait().context("cannot wait for the relay")?;
        }
        Ok(())
    }

    /// Stops the relay if it runs and starts it again on the same database and, so that
    /// devices can reconnect to the same URL, the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Like [`RelayProcess::restart`], with new extra `caresync serve` arguments from now
    /// on: for state made under one setting and used under another (a session issued with
    /// a one-second lifetime, checked by a relay whose other sessions last for days).
    pub fn restart_with(&mut self, extra_args: &[&str]) -> anyhow::Result<()> {
        self.stop()?;
        self.extra_args = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        self.spawn()
    }

    /// `caresync org import` of `csv` (the CLI's CSV: `code,name,level,parent` rows) into
    /// this relay's database, as an administrator would. A running relay picks the units
    /// up within `ORG_TREE_RELOAD_MS`.
    pub fn import_org_units(&self, csv: &str) -> anyhow::Result<String> {
        let path = self.dir().join("org-units.csv");
        std::fs::write(&path, csv).context("cannot write the org-unit CSV")?;
        let path = path.to_str().context("the temporary path is not UTF-8")?;
        let db = self.db_path();
        let db = db.to_str().context("the temporary path is not UTF-8")?;
        self.cli(&["org", "import", "--db", db, "--csv", path], "")
    }

    /// `caresync user add` into this relay's database, the password given on stdin.
    pub fn add_user(
        &self,
        username: &str,
        role: &str,
        org_unit: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let db = self.db_path();
        let db = db.to_str().context("the temporary path is not UTF-8")?;
        self.cli(
            &[
                "user",
                "add",
                "--db",
                db,
                "--username",
                username,
                "--role",
                role,
                "--org-unit",
                org_unit,
            ],
            &format!("{password}\n"),
        )
    }

    /// Runs another `caresync` subcommand (e.g. `user add`) with `stdin` as its input,
    /// from the workspace root. Returns its stdout; fails with its stderr if it fails.
    /// Pass `--db` yourself (see [`RelayProcess::db_path`]).
    pub fn cli(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut child = Command::new(relay_binary()?)
            .args(args)
            .current_dir(workspace_root()?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start caresync")?;
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.as_bytes())
                .context("cannot write caresync's input")?;
        }
        let output = child
            .wait_with_output()
            .context("cannot wait for caresync")?;
        if !output.status.success() {
            bail!(
                "caresync {} exited {}: {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn log(&self, line: String) {
        self.output.push(line);
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let binary = relay_binary()?;
        let db = self.db_path();
        let mut child = Command::new(&binary)
            .arg("serve")
            .arg("--db")
            .arg(&db)
            .arg("--addr")
            .arg(self.addr.to_string())
            .args(&self.extra_args)
            .current_dir(workspace_root()?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let (lines, listening) = mpsc::channel();
        // Both pipes are read to their end for the life of the process: a relay blocked on
        // a full pipe would look like a hung relay.
        if let Some(stdout) = child.stdout.take() {
            self.output.forward(stdout, "", Some(lines));
        }
        if let Some(stderr) = child.stderr.take() {
            self.output.forward(stderr, "[stderr] ", None);
        }
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match listening.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix(LISTENING_PREFIX) {
                        self.addr = addr
                            .trim()
                            .parse()
                            .with_context(|| format!("the relay printed a bad address: {line}"))?;
                        return Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.kill9();
                    bail!(
                        "the relay did not print `{LISTENING_PREFIX}...` within {START_TIMEOUT:?}; its output:\n{}",
                        self.output()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process ended. Give stderr a moment to drain.
                    thread::sleep(Duration::from_millis(100));
                    let status = self
                        .child
                        .take()
                        .map(|mut child| child.wait().map(|status| status.to_string()));
                    bail!(
                        "the relay exited before listening ({:?}); its output:\n{}",
                        status,
                        self.output()
                    );
                }
            }
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> anyhow::Result<&'static Path> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("the tests crate has no parent folder"))
}

/// The `caresync` binary, built on first use (see the module documentation).
pub fn relay_binary() -> anyhow::Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| build_relay().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_relay() -> anyhow::Result<PathBuf> {
    if let Some(binary) = std::env::var_os("CARESYNC_RELAY_BIN") {
        return Ok(PathBuf::from(binary));
    }
    let mut command = Command::new(env!("CARGO"));
    command
        .args([
            "build",
            "-p",
            "caresync-server",
            "--bin",
            "caresync",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(workspace_root()?);
    if let Some(profile) = std::env::var_os("CARESYNC_RELAY_PROFILE") {
        command.arg("--profile").arg(profile);
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .context("cannot run cargo to build the relay")?;
    if !output.status.success() {
        bail!(
            "building the relay failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            let target = message.get("target");
            message.get("reason").and_then(serde_json::Value::as_str) == Some("compiler-artifact")
                && target
                    .and_then(|target| target.get("name"))
                    .and_then(serde_json::Value::as_str)
                    == Some("caresync")
                && target
                    .and_then(|target| target.get("kind"))
                    .and_then(serde_json::Value::as_array)
                    .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .find_map(|message| {
            message
                .get("executable")
                .and_then(serde_json::Value::as_str)
                .map(PathBuf::from)
        })
        .ok_or_else(|| anyhow!("cargo built the relay but named no `caresync` executable"))
}
