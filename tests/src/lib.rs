//! caresync-tests: cross-crate integration tests (real relay processes, native devices,
//! the JavaScript automerge-repo client, a browser). The tests live in `tests/tests/`;
//! this library is their harness:
//!
//! - [`RelayProcess`]: the real `caresync` binary on a throw-away database.
//! - [`Device`]: a native device (core's engine over in-memory storage) on real sockets.
//! - [`js`]: the pinned official JavaScript sync server and client (`tests/js/`).
//! - [`login`]: a session token from the relay's JSON API.
//! - [`crash`]: the crash-restart run (SIGKILL the relay while phones write, check that
//!   nothing acknowledged is lost), for the suite and the `crash-restart` binary.
//! - [`raw`]: one WebSocket speaking the protocol a message at a time, to see exactly how
//!   the relay answers what a well-behaved device never sends.

pub mod crash;
pub mod device;
pub mod js;
mod output;
pub mod raw;
pub mod relay;

pub use device::{Device, Refused, Traffic};
pub use relay::RelayProcess;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The answer of `POST /api/v1/login`.
#[derive(Clone, Debug, Deserialize)]
pub struct Session {
    pub token: String,
    /// As the relay sends it (the harness does not interpret it).
    pub expires_at: serde_json::Value,
    pub account: serde_json::Value,
}

#[derive(Serialize)]
struct LoginRequest<'a> {
    username: &'a str,
    password: &'a str,
}

/// Logs in through `POST {http_base}/api/v1/login` and returns the session token, for
/// [`RelayProcess::ws_url`]. Blocking (a short local request).
pub fn login(http_base: &str, username: &str, password: &str) -> anyhow::Result<String> {
    Ok(login_session(http_base, username, password)?.token)
}

/// Like [`login`], returning the whole answer.
pub fn login_session(http_base: &str, username: &str, password: &str) -> anyhow::Result<Session> {
    let url = format!("{http_base}/api/v1/login");
    let mut response = ureq::post(&url)
        .send_json(LoginRequest { username, password })
        .with_context(|| format!("login of {username} at {url} failed"))?;
    response
        .body_mut()
        .read_json::<Session>()
        .with_context(|| format!("the login answer of {url} is not the expected JSON"))
}
