//! The official JavaScript automerge-repo, pinned in `tests/js/`: its sync server as a
//! process ([`JsSyncServer`]) and its client as a command line (`tests/js/client.mjs`,
//! driven by [`js_read`], [`js_write`], [`js_create`]). `scripts/test.sh` installs the
//! packages (`npm ci`) before the tests run.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use caresync_core::protocol::{DocumentId, Message, PROTOCOL_VERSION, PeerId};
use tokio_tungstenite::tungstenite;

use crate::output::OutputLog;
use crate::relay::workspace_root;

/// How long the JS sync server may take to print that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one readiness probe waits for the server's `peer`.
const PROBE_ANSWER_TIMEOUT: Duration = Duration::from_millis(500);
/// The client's own hard timeout (it exits 3 after it), passed in its environment.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// `tests/js/`, where the pinned packages and `client.mjs` live.
pub fn js_dir() -> anyhow::Result<PathBuf> {
    Ok(workspace_root()?.join("tests").join("js"))
}

/// Fails with a hint when `npm ci` has not been run in `tests/js`.
pub fn require_js_packages() -> anyhow::Result<PathBuf> {
    let dir = js_dir()?;
    if !dir.join("node_modules").join("@automerge").is_dir() {
        bail!(
            "the JavaScript packages are not installed: run `npm ci` in {} (scripts/test.sh does)",
            dir.display()
        );
    }
    Ok(dir)
}

/// `@automerge/automerge-repo-sync-server` running on a free loopback port with its data
/// in a temporary directory. Note that it listens on every interface (it takes only a
/// port); tests send it nothing but loopback traffic. Dropping it kills it.
#[derive(Debug)]
pub struct JsSyncServer {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
    output: OutputLog,
}

impl JsSyncServer {
    pub fn start() -> anyhow::Result<JsSyncServer> {
        let dir = require_js_packages()?;
        let entry = dir
            .join("node_modules")
            .join("@automerge")
            .join("automerge-repo-sync-server")
            .join("src")
            .join("index.js");
        let data = tempfile::Builder::new()
            .prefix("caresync-js-sync-server-")
            .tempdir()
            .context("cannot make the sync server's data directory")?;
        let port = free_port()?;
        let mut child = Command::new("node")
            .arg(&entry)
            .env("PORT", port.to_string())
            .env("DATA_DIR", data.path())
            // It serves `public/` relative to its working directory; an empty one will do.
            .current_dir(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start node (is Node.js installed?)")?;
        let output = OutputLog::default();
        let (lines, listening) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            output.forward(stdout, "", Some(lines));
        }
        if let Some(stderr) = child.stderr.take() {
            output.forward(stderr, "[stderr] ", None);
        }
        let mut server = JsSyncServer {
            child,
            port,
            _data: data,
            output,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match listening.recv_timeout(left) {
                Ok(line) if line.starts_with("Listening on port") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = server.child.kill();
                    thread::sleep(Duration::from_millis(100));
                    bail!(
                        "the JS sync server did not start on port {port}; its output:\n{}",
                        server.output()
                    );
                }
            }
        }
        while Instant::now() < deadline {
            if server.probe() {
                return Ok(server);
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the JS sync server on port {port} never answered a join; its output:\n{}",
            server.output()
        );
    }

    /// True when the server answers a `join` with `peer`. The server prints that it listens
    /// before its WebSocket adapter handles connections, and a socket accepted in between
    /// never gets an answer: the first device of a test would wait for nothing.
    fn probe(&self) -> bool {
        let Ok((mut socket, _)) = tungstenite::connect(self.ws_url()) else {
            return false;
        };
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
            let _ = stream.set_read_timeout(Some(PROBE_ANSWER_TIMEOUT));
        }
        let join = Message::Join {
            sender_id: PeerId::from("caresync-tests-probe"),
            supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
            peer_metadata: None,
        };
        if socket
            .send(tungstenite::Message::Binary(join.encode().into()))
            .is_err()
        {
            return false;
        }
        let answered = matches!(
            socket.read(),
            Ok(tungstenite::Message::Binary(frame))
                if matches!(Message::decode(&frame), Ok(Message::Peer { .. }))
        );
        let _ = socket.close(None);
        answered
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node process's id, for a benchmark that reads its memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn output(&self) -> String {
        self.output.text()
    }
}

impl Drop for JsSyncServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `client.mjs read` found.
#[derive(Clone, Debug, PartialEq)]
pub enum JsRead {
    /// The document as JSON (automerge Text and plain strings both as strings).
    Document(serde_json::Value),
    /// The server answered `doc-unavailable`.
    Unavailable,
}

/// `node client.mjs read <ws_url> <document>`.
pub async fn js_read(ws_url: &str, document: &DocumentId) -> anyhow::Result<JsRead> {
    let output = run_client(&["read", ws_url, &document.to_string()]).await?;
    match output.status.code() {
        Some(0) => {
            let document = serde_json::from_slice(&output.stdout)
                .with_context(|| format!("client.mjs read printed no JSON: {output:?}"))?;
            Ok(JsRead::Document(document))
        }
        Some(2) => Ok(JsRead::Unavailable),
        _ => Err(client_failure("read", &output)),
    }
}

/// `node client.mjs write <ws_url> <document> <patch>`: sets `patch.value` at
/// `patch.path` (or each of an array of patches) and returns once the server holds the
/// change.
pub async fn js_write(
    ws_url: &str,
    document: &DocumentId,
    patch: &serde_json::Value,
) -> anyhow::Result<()> {
    let output = run_client(&["write", ws_url, &document.to_string(), &patch.to_string()]).await?;
    match output.status.code() {
        Some(0) => Ok(()),
        Some(2) => Err(anyhow!(
            "client.mjs write: document {document} is unavailable"
        )),
        _ => Err(client_failure("write", &output)),
    }
}

/// `node client.mjs create <ws_url> <json>`: returns the new document's id once the
/// server holds it.
pub async fn js_create(ws_url: &str, initial: &serde_json::Value) -> anyhow::Result<DocumentId> {
    let output = run_client(&["create", ws_url, &initial.to_string()]).await?;
    if output.status.code() != Some(0) {
        return Err(client_failure("create", &output));
    }
    let id = String::from_utf8_lossy(&output.stdout);
    id.trim()
        .parse()
        .map_err(|error| anyhow!("client.mjs create printed a bad id {id:?}: {error:?}"))
}

/// Runs `client.mjs` without blocking the runtime, so devices in the same test keep
/// answering their sockets meanwhile.
async fn run_client(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let dir = require_js_packages()?;
    let run = tokio::process::Command::new("node")
        .arg(dir.join("client.mjs"))
        .args(args)
        .env(
            "CARESYNC_CLIENT_TIMEOUT_MS",
            CLIENT_TIMEOUT.as_millis().to_string(),
        )
        .current_dir(&dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    // The client has its own timeout; this one only guards against node itself hanging.
    tokio::time::timeout(CLIENT_TIMEOUT + Duration::from_secs(10), run)
        .await
        .map_err(|_| anyhow!("client.mjs {} did not exit", args.join(" ")))?
        .context("cannot run node")
}

fn client_failure(command: &str, output: &std::process::Output) -> anyhow::Error {
    let why = match output.status.code() {
        Some(3) => "timed out",
        _ => "failed",
    };
    anyhow!(
        "client.mjs {command} {why} ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

/// A loopback port that was free a moment ago (bound, then released for the server).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a free port")?;
    Ok(listener.local_addr().context("no local address")?.port())
}
