//! Helpers shared by the real-relay tests: demo accounts, records to write, waiting.
#![allow(dead_code)]

use std::time::Duration;

use anyhow::Context;
use caresync_core::domain::{
    AccountId, Child, ChildCategory, Gender, HomeVisit, OrgUnitCode, Record, SubjectId, YearMonth,
};
use caresync_core::protocol::DocumentId;
use caresync_tests::{Device, RelayProcess, login_session};

pub const PASSWORD: &str = "demo-password";
/// Generous: the suite runs on a shared 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// A logged-in demo account: its token, id and first org unit.
#[derive(Debug, Clone)]
pub struct Login {
    pub token: String,
    pub account_id: String,
    pub org_unit: String,
}

pub fn login_as(relay: &RelayProcess, username: &str) -> anyhow::Result<Login> {
    let session = login_session(&relay.http_base(), username, PASSWORD)?;
    let account_id = session.account["id"]
        .as_str()
        .context("the login answer has no account id")?
        .to_owned();
    let org_unit = session.account["org_units"][0]
        .as_str()
        .context("the account has no org unit")?
        .to_owned();
    Ok(Login {
        token: session.token,
        account_id,
        org_unit,
    })
}

/// A device connected to `relay` as `login`.
pub async fn phone(relay: &RelayProcess, name: &str, login: &Login) -> anyhow::Result<Device> {
    let device = Device::new(name);
    device.connect(&relay.ws_url(&login.token)).await?;
    Ok(device)
}

pub fn child_in(village: &str, name: &str) -> Record {
    let mut child = Child::new(
        OrgUnitCode::new(village),
        name,
        YearMonth::new(2016, 5).unwrap_or_else(|| unreachable!("a valid month")),
        Gender::Female,
    );
    child.categories.push(ChildCategory::LeftBehind);
    Record::Child(child)
}

pub fn visit_to(village: &str, worker: &str, child: &DocumentId, started_at: i64) -> Record {
    Record::HomeVisit(HomeVisit::new(
        OrgUnitCode::new(village),
        AccountId::new(worker),
        SubjectId::new(child.to_string()),
        started_at,
    ))
}

pub fn child_name(record: Option<Record>) -> Option<String> {
    match record {
        Some(Record::Child(child)) => Some(child.name),
        _ => None,
    }
}

pub async fn wait_synced(device: &Device, document: &DocumentId) -> anyhow::Result<()> {
    let document = *document;
    device
        .wait_until(WAIT, move |device| device.is_synced(&document))
        .await
        .with_context(|| format!("{} never saw {document} acknowledged", device.name()))
}

pub async fn wait_record(device: &Device, document: &DocumentId) -> anyhow::Result<Record> {
    let document = *document;
    device
        .wait_until(WAIT, move |device| device.record(&document).is_some())
        .await
        .with_context(|| format!("{} never received {document}", device.name()))?;
    device
        .record(&document)
        .context("the record vanished after arriving")
}

/// One HTTP answer, whatever its status.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub set_cookie: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// `GET url` with an optional bearer token.
pub fn get(url: &str, token: Option<&str>) -> anyhow::Result<Answer> {
    let mut request = agent().get(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    answer(request.call().with_context(|| format!("GET {url}"))?)
}

/// `POST url` with a JSON body and an optional bearer token.
pub fn post(url: &str, token: Option<&str>, body: &serde_json::Value) -> anyhow::Result<Answer> {
    let mut request = agent().post(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    answer(
        request
            .send_json(body)
            .with_context(|| format!("POST {url}"))?,
    )
}

fn answer(mut response: ureq::http::Response<ureq::Body>) -> anyhow::Result<Answer> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after");
    let set_cookie = header("set-cookie");
    let content_type = header("content-type");
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .context("reading the body")?;
    Ok(Answer {
        status: response.status().as_u16(),
        retry_after,
        set_cookie,
        content_type,
        body,
    })
}

/// The first line of the relay's audit log that `wanted` accepts, waiting up to [`WAIT`].
///
/// The relay writes audit entries on its storage thread after it has answered the peer,
/// and nobody waits for them, so a test that has just seen a refusal polls the log.
pub async fn wait_audit_line(
    relay: &RelayProcess,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let db = relay.db_path();
    let db = db.to_str().context("temp path is UTF-8")?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let audit = relay.cli(&["audit", "--db", db], "")?;
        if let Some(line) = audit.lines().find(|line| wanted(line)) {
            return Ok(line.to_owned());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("not in the audit log after {WAIT:?}:\n{audit}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
