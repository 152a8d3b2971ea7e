//! The authorisation matrix (design §5): every HTTP route and every sync message type
//! against every principal, on one relay running the demo prefecture, each cell asserted
//! with its exact outcome. Both tables are printed when the test runs (see them with
//! `cargo test -p caresync-tests --test relay_authz -- --nocapture`); a cell that differs
//! is marked with `!` and listed under its table with what was expected.
//!
//! The principals (the columns) are seen from one record, a child of the demo's first
//! village (东王庄村, in the township 齐村镇):
//!
//! | column | account | relation to the record |
//! |---|---|---|
//! | director | `demo-director` | village child director of the record's village |
//! | dir-other | `demo-director-2` | director of another village of the same township |
//! | worker | `demo-worker` | care worker of the township (assigned elders, own service logs) |
//! | reviewer | `demo-reviewer` | township reviewer of the record's township |
//! | rev-other | `authz-reviewer-2` | township reviewer of the other township (added here) |
//! | admin | `demo-admin` | bureau administrator of the prefecture |
//! | disabled | `demo-director-3` | logged in, then disabled with `caresync user disable` |
//! | expired | `demo-director-4` | a session issued with a three-second lifetime, used after it |
//! | no-token | none | no session at all |
//!
//! Besides the child, the sync table uses a home visit, an elder (assigned to the care
//! worker) and a service log (the care worker's) of the same village, because the care
//! worker's rights are about elders and service logs.
//!
//! A route added to the relay without a row here fails
//! `every_route_the_relay_declares_has_a_row_in_the_matrix`, which reads the routes from the
//! router's source (the tests crate does not link axum).

// JSON answers are read with `value["key"]`, which yields `Null` rather than panicking.
#![allow(clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use automerge::sync::{self, ChunkList, MessageVersion, SyncDoc};
use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use caresync_core::domain::Record;
use caresync_core::protocol::{DocumentId, Message, RemoteHeads, StorageId};
use caresync_tests::raw::{self, RawPeer, Received};
use caresync_tests::relay::workspace_root;
use caresync_tests::{Device, RelayProcess};
use common::*;
use serde_json::json;

/// The record's village, its township and the other township (the demo's codes).
const VILLAGE: &str = "370402102201";
const TOWNSHIP: &str = "370402102";
const OTHER_TOWNSHIP: &str = "370402104";
/// Every village of the demo prefecture (枣庄市, 370400) starts with this.
const PREFECTURE_PREFIX: &str = "3704";
/// How long a cell waits for the relay's answer; only a failing cell waits this long.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// The lifetime of the expired principal's session.
const SHORT_SESSION_SECS: u64 = 3;
/// The router's fallback (the web app's static files) in the route list.
const FALLBACK: &str = "(fallback: static files)";

// ----- principals --------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Who {
    Director,
    OtherVillage,
    Worker,
    Reviewer,
    OtherTownship,
    Admin,
    Disabled,
    Expired,
    NoToken,
}

/// The columns, in the order of every `expect` array below.
const PRINCIPALS: [Who; 9] = [
    Who::Director,
    Who::OtherVillage,
    Who::Worker,
    Who::Reviewer,
    Who::OtherTownship,
    Who::Admin,
    Who::Disabled,
    Who::Expired,
    Who::NoToken,
];

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::Director => "director",
            Who::OtherVillage => "dir-other",
            Who::Worker => "worker",
            Who::Reviewer => "reviewer",
            Who::OtherTownship => "rev-other",
            Who::Admin => "admin",
            Who::Disabled => "disabled",
            Who::Expired => "expired",
            Who::NoToken => "no-token",
        }
    }

    fn username(self) -> Option<&'static str> {
        match self {
            Who::Director => Some("demo-director"),
            Who::OtherVillage => Some("demo-director-2"),
            Who::Worker => Some("demo-worker"),
            Who::Reviewer => Some("demo-reviewer"),
            Who::OtherTownship => Some("authz-reviewer-2"),
            Who::Admin => Some("demo-admin"),
            Who::Disabled => Some("demo-director-3"),
            Who::Expired => Some("demo-director-4"),
            Who::NoToken => None,
        }
    }

    /// The code every village the account reports on starts with (township staff only).
    fn area_prefix(self) -> Option<&'static str> {
        match self {
            Who::Reviewer => Some(TOWNSHIP),
            Who::OtherTownship => Some(OTHER_TOWNSHIP),
            Who::Admin => Some(PREFECTURE_PREFIX),
            _ => None,
        }
    }
}

// ----- the HTTP table ----------------------------------------------------------------

/// What a row asks of the relay.
#[derive(Clone, Copy, Debug)]
enum Ask {
    /// `GET` of this path (`{village}` and `{township}` filled in) with the principal's
    /// token as a bearer header.
    Get(&'static str),
    /// The WebSocket upgrade of `/sync`, the token in the query as the JS client sends it.
    Upgrade,
    /// `POST /api/v1/login` with the principal's own username and password; the anonymous
    /// caller sends a name that does not exist. Login takes credentials, not a token, so
    /// the expired principal's account logs in again.
    Login,
    /// `POST /api/v1/logout` with the session the login row made (the disabled, expired
    /// and anonymous principals: their own token or none).
    Logout,
    /// `POST /api/v1/records/{visit}/review` approving a pending visit of the village.
    Review,
}

/// What a 200 answer must also show.
#[derive(Clone, Copy, Debug)]
enum Check {
    Nothing,
    /// The answer names the principal's own account.
    OwnAccount,
    /// A record list: every item lies in the principal's area, and the record is listed
    /// exactly when its village does.
    RecordsInArea,
    /// A coverage report or overdue list: every village in the principal's area.
    VillagesInArea,
    /// The review answer says the visit is approved.
    Approved,
    /// A file of this content type (prefix).
    Attachment(&'static str),
}

struct Route {
    method: &'static str,
    /// The path as the router declares it (the discovery test compares these).
    declared: &'static str,
    ask: Ask,
    check: Check,
    /// One status per column of [`PRINCIPALS`].
    expect: [u16; 9],
}

fn route(
    method: &'static str,
    declared: &'static str,
    ask: Ask,
    check: Check,
    expect: [u16; 9],
) -> Route {
    Route {
        method,
        declared,
        ask,
        check,
        expect,
    }
}

/// Every route × every principal. Reports and exports are asked for the record's township:
/// a reviewer of the other township is refused (403) rather than shown an empty report.
/// The review row answers 404 to accounts that may not read the visit (as for a visit that
/// does not exist) and 403 to the director, who reads it but may not review.
#[rustfmt::skip]
fn routes() -> Vec<Route> {
    use Ask::*;
    use Check::*;
    vec![
        //                                                                                                          director dir-other worker reviewer rev-other admin disabled expired no-token
        route("GET",  "/healthz",                        Get("/healthz"),                                 Nothing,        [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        route("GET",  "/metrics",                        Get("/metrics"),                                 Nothing,        [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        route("GET",  "/sync",                           Upgrade,                                         Nothing,        [101, 101, 101, 101, 101, 101, 401, 401, 401]),
        route("GET",  FALLBACK,                          Get("/"),                                        Nothing,        [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        route("POST", "/api/v1/login",                   Login,                                           OwnAccount,     [200, 200, 200, 200, 200, 200, 401, 200, 401]),
        route("GET",  "/api/v1/me",                      Get("/api/v1/me"),                               OwnAccount,     [200, 200, 200, 200, 200, 200, 401, 401, 401]),
        route("GET",  "/api/v1/records",                 Get("/api/v1/records?village={village}&kind=child&page_size=500"), RecordsInArea, [403, 403, 403, 200, 403, 200, 401, 401, 401]),
        route("GET",  "/api/v1/records",                 Get("/api/v1/records?kind=child&page_size=500"), RecordsInArea,  [403, 403, 403, 200, 200, 200, 401, 401, 401]),
        route("POST", "/api/v1/records/{id}/review",     Review,                                          Approved,       [403, 404, 404, 200, 404, 200, 401, 401, 401]),
        route("GET",  "/api/v1/reports/coverage",        Get("/api/v1/reports/coverage?township={township}"), VillagesInArea, [403, 403, 403, 200, 403, 200, 401, 401, 401]),
        route("GET",  "/api/v1/reports/overdue",         Get("/api/v1/reports/overdue?township={township}"),  VillagesInArea, [403, 403, 403, 200, 403, 200, 401, 401, 401]),
        route("GET",  "/api/v1/reports/hours",           Get("/api/v1/reports/hours?township={township}"),    Nothing,        [403, 403, 403, 200, 403, 200, 401, 401, 401]),
        route("GET",  "/api/v1/exports/visits.csv",      Get("/api/v1/exports/visits.csv?township={township}"), Attachment("text/csv"), [403, 403, 403, 200, 403, 200, 401, 401, 401]),
        route("GET",  "/api/v1/exports/service-logs.csv", Get("/api/v1/exports/service-logs.csv?township={township}"), Attachment("text/csv"), [403, 403, 403, 200, 403, 200, 401, 401, 401]),
        route("GET",  "/api/v1/exports/month.xlsx",      Get("/api/v1/exports/month.xlsx?township={township}"), Attachment("application/vnd.openxmlformats"), [403, 403, 403, 200, 403, 200, 401, 401, 401]),
        route("POST", "/api/v1/logout",                  Logout,                                          Nothing,        [200, 200, 200, 200, 200, 200, 401, 401, 401]),
    ]
}

// ----- the sync table ----------------------------------------------------------------

/// The outcome of one sync cell.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// The WebSocket upgrade was refused with this HTTP status: no message is ever read.
    Upgrade(u16),
    /// The relay answered `join` with `peer`.
    Peer,
    /// The relay sent the document: its sync messages load into the record.
    Served,
    /// `doc-unavailable`, as for a document that does not exist.
    Unavailable,
    /// The relay acknowledged the change: its heads include it.
    Stored,
    /// `caresync-refused` with this code; the socket stays open.
    Refused(&'static str),
    /// `error`, then the socket closed with this code: a protocol violation (1002), or a
    /// refused change from a plain automerge-repo peer, which has no way back (1008, the
    /// message naming `forbidden`).
    ErrorClose(u16),
    /// The socket closed with this code.
    Close(u16),
    /// Another reader of the document received the `ephemeral` message.
    Forwarded,
    /// No reader received it.
    Dropped,
    /// The scope listing names the document.
    Listed,
    /// The scope listing does not name it.
    Unlisted,
    /// No answer, and the connection stays usable (the next request is answered).
    Ignored,
    /// Anything else, described.
    Other(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Upgrade(status) => write!(f, "{status}"),
            Outcome::Peer => f.write_str("peer"),
            Outcome::Served => f.write_str("served"),
            Outcome::Unavailable => f.write_str("unavail"),
            Outcome::Stored => f.write_str("stored"),
            Outcome::Refused(code) => write!(f, "refused:{code}"),
            Outcome::ErrorClose(code) => write!(f, "error+{code}"),
            Outcome::Close(code) => write!(f, "close {code}"),
            Outcome::Forwarded => f.write_str("forwarded"),
            Outcome::Dropped => f.write_str("dropped"),
            Outcome::Listed => f.write_str("listed"),
            Outcome::Unlisted => f.write_str("unlisted"),
            Outcome::Ignored => f.write_str("ignored"),
            Outcome::Other(text) => f.write_str(text),
        }
    }
}

const U401: Outcome = Outcome::Upgrade(401);
const PEER: Outcome = Outcome::Peer;
const SERVED: Outcome = Outcome::Served;
const UNAVAIL: Outcome = Outcome::Unavailable;
const STORED: Outcome = Outcome::Stored;
const FORBIDDEN: Outcome = Outcome::Refused("forbidden");
const READ_ONLY: Outcome = Outcome::Refused("read-only");
const ERROR_1008: Outcome = Outcome::ErrorClose(1008);
const ERROR_1002: Outcome = Outcome::ErrorClose(1002);
const CLOSE_1002: Outcome = Outcome::Close(1002);
const FORWARDED: Outcome = Outcome::Forwarded;
const DROPPED: Outcome = Outcome::Dropped;
const LISTED: Outcome = Outcome::Listed;
const UNLISTED: Outcome = Outcome::Unlisted;
const IGNORED: Outcome = Outcome::Ignored;

/// The documents of the sync table, all in the record's village.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Child,
    Visit,
    Elder,
    Log,
}

impl Kind {
    fn api_name(self) -> &'static str {
        match self {
            Kind::Child => "child",
            Kind::Visit => "home-visit",
            Kind::Elder => "elder",
            Kind::Log => "service-log",
        }
    }
}

/// What a sync row sends, each on a fresh connection of the principal.
#[derive(Clone, Copy, Debug)]
enum Probe {
    /// `join` offering the `refused` extension.
    Join,
    /// A second `join` after the handshake.
    JoinTwice,
    /// `request` for the child before `join`.
    RequestBeforeJoin,
    /// `request` for the document from an empty one (what a phone asks first).
    Request(Kind),
    /// `sync` without changes for the document.
    Sync(Kind),
    /// `sync` carrying one change to the record part (a name or a note) made on the
    /// document's current state, from a peer that speaks `refused`.
    Write(Kind),
    /// The same from a plain automerge-repo peer (no extensions).
    WritePlain(Kind),
    /// `ephemeral` about the child while an admin's connection syncs it.
    Ephemeral,
    /// `doc-unavailable` for the child.
    DocUnavailable,
    /// `remote-subscription-change` adding a storage id.
    RemoteSubscriptionChange,
    /// `remote-heads-changed` for the child.
    RemoteHeadsChanged,
    /// `caresync-scope-request` after agreeing on the scope extension.
    ScopeRequest,
    /// `caresync-scope-request` without having agreed on it.
    ScopeRequestUnagreed,
    /// `leave`.
    Leave,
    /// `error`.
    Error,
    /// `peer`, `caresync-scope` and `caresync-refused`: the relay's messages, from a client.
    Peer,
    Scope,
    Refused,
}

struct SyncRow {
    label: &'static str,
    probe: Probe,
    expect: [Outcome; 9],
}

fn sync_row(label: &'static str, probe: Probe, expect: [Outcome; 9]) -> SyncRow {
    SyncRow {
        label,
        probe,
        expect,
    }
}

/// Every message type × every principal. Without a valid session the upgrade is refused
/// (401) before any message, so the last three columns are 401 in every row. A document
/// an account may not read answers `doc-unavailable` whatever the message, writes
/// included; a reader's write is refused `read-only`, a writer's write to a part it may
/// not write `forbidden` (and `error` plus close 1008 for a plain peer, which has no way
/// back). `ephemeral` reaches other readers only from an account that may read the
/// document. Heads gossip (`remote-*`) and `doc-unavailable` from a client are ignored.
/// A protocol violation (the relay's own messages, a second `join`, anything before
/// `join`, an extension not agreed) is answered with `error` naming it, then close 1002;
/// a client's `leave` or `error` closes with 1002 without an answer.
#[rustfmt::skip]
fn sync_rows() -> Vec<SyncRow> {
    use Kind::*;
    vec![
        //                                                                  director    dir-other  worker     reviewer    rev-other  admin       disabled expired no-token
        sync_row("join",                         Probe::Join,                     [PEER,       PEER,      PEER,      PEER,       PEER,      PEER,       U401, U401, U401]),
        sync_row("join, again",                  Probe::JoinTwice,                [ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, U401, U401, U401]),
        sync_row("request before join",          Probe::RequestBeforeJoin,        [ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, U401, U401, U401]),
        sync_row("request child",                Probe::Request(Child),           [SERVED,     UNAVAIL,   UNAVAIL,   SERVED,     UNAVAIL,   SERVED,     U401, U401, U401]),
        sync_row("request home-visit",           Probe::Request(Visit),           [SERVED,     UNAVAIL,   UNAVAIL,   SERVED,     UNAVAIL,   SERVED,     U401, U401, U401]),
        sync_row("request elder",                Probe::Request(Elder),           [UNAVAIL,    UNAVAIL,   SERVED,    SERVED,     UNAVAIL,   SERVED,     U401, U401, U401]),
        sync_row("request service-log",          Probe::Request(Log),             [UNAVAIL,    UNAVAIL,   SERVED,    SERVED,     UNAVAIL,   SERVED,     U401, U401, U401]),
        sync_row("sync child",                   Probe::Sync(Child),              [SERVED,     UNAVAIL,   UNAVAIL,   SERVED,     UNAVAIL,   SERVED,     U401, U401, U401]),
        sync_row("sync+change child",            Probe::Write(Child),             [STORED,     UNAVAIL,   UNAVAIL,   FORBIDDEN,  UNAVAIL,   STORED,     U401, U401, U401]),
        sync_row("sync+change elder",            Probe::Write(Elder),             [UNAVAIL,    UNAVAIL,   READ_ONLY, FORBIDDEN,  UNAVAIL,   STORED,     U401, U401, U401]),
        sync_row("sync+change service-log",      Probe::Write(Log),               [UNAVAIL,    UNAVAIL,   STORED,    FORBIDDEN,  UNAVAIL,   STORED,     U401, U401, U401]),
        sync_row("sync+change child, plain peer", Probe::WritePlain(Child),       [STORED,     UNAVAIL,   UNAVAIL,   ERROR_1008, UNAVAIL,   STORED,     U401, U401, U401]),
        sync_row("ephemeral child",              Probe::Ephemeral,                [FORWARDED,  DROPPED,   DROPPED,   FORWARDED,  DROPPED,   FORWARDED,  U401, U401, U401]),
        sync_row("doc-unavailable child",        Probe::DocUnavailable,           [IGNORED,    IGNORED,   IGNORED,   IGNORED,    IGNORED,   IGNORED,    U401, U401, U401]),
        sync_row("remote-subscription-change",   Probe::RemoteSubscriptionChange, [IGNORED,    IGNORED,   IGNORED,   IGNORED,    IGNORED,   IGNORED,    U401, U401, U401]),
        sync_row("remote-heads-changed child",   Probe::RemoteHeadsChanged,       [IGNORED,    IGNORED,   IGNORED,   IGNORED,    IGNORED,   IGNORED,    U401, U401, U401]),
        sync_row("caresync-scope-request",       Probe::ScopeRequest,             [LISTED,     UNLISTED,  UNLISTED,  LISTED,     UNLISTED,  LISTED,     U401, U401, U401]),
        sync_row("scope-request, not agreed",    Probe::ScopeRequestUnagreed,     [ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, U401, U401, U401]),
        sync_row("leave",                        Probe::Leave,                    [CLOSE_1002, CLOSE_1002, CLOSE_1002, CLOSE_1002, CLOSE_1002, CLOSE_1002, U401, U401, U401]),
        sync_row("error",                        Probe::Error,                    [CLOSE_1002, CLOSE_1002, CLOSE_1002, CLOSE_1002, CLOSE_1002, CLOSE_1002, U401, U401, U401]),
        sync_row("peer (the relay's)",           Probe::Peer,                     [ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, U401, U401, U401]),
        sync_row("caresync-scope (the relay's)", Probe::Scope,                    [ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, U401, U401, U401]),
        sync_row("caresync-refused (the relay's)", Probe::Refused,                [ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, ERROR_1002, U401, U401, U401]),
    ]
}

// ----- the tests ---------------------------------------------------------------------

#[test]
fn every_route_the_relay_declares_has_a_row_in_the_matrix() -> anyhow::Result<()> {
    let declared = declared_routes()?;
    let rows: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|row| (row.method.to_owned(), row.declared.to_owned()))
        .collect();
    let missing: Vec<_> = declared.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorisation matrix (add one to `routes()`): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for routes the relay does not declare: {stale:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_message_type_against_every_principal() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut fixture = Fixture::start().await?;
    let setup = started.elapsed();

    let http = http_matrix(&mut fixture).await?;
    let sync = sync_matrix(&mut fixture).await?;
    let stored = fixture.check_writes().await?;
    println!(
        "authorisation matrix: {} HTTP cells, {} sync cells, {} writes checked on the relay; setup {:.1} s, total {:.1} s",
        http.cells,
        sync.cells,
        stored,
        setup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let mismatches: Vec<String> = http.mismatches.into_iter().chain(sync.mismatches).collect();
    assert!(
        mismatches.is_empty(),
        "{} cells differ from the matrix:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    Ok(())
}

// ----- the fixture -------------------------------------------------------------------

struct Fixture {
    relay: RelayProcess,
    /// Each principal's session token (none for the anonymous one).
    tokens: HashMap<Who, String>,
    /// The sessions the login row made, for the logout row.
    second_sessions: HashMap<Who, String>,
    documents: HashMap<Kind, DocumentId>,
    /// The documents as the relay held them at the start, for making changes.
    copies: HashMap<Kind, Automerge>,
    /// Every change the sync table sent and whether the relay acknowledged it.
    writes: Vec<(Kind, ChangeHash, bool)>,
}

impl Fixture {
    async fn start() -> anyhow::Result<Fixture> {
        // The expired principal's session is made by a relay that issues sessions of a
        // few seconds; the relay then restarts on the same database with the default
        // lifetime for everyone else, and the test waits for that one session to end.
        let ttl = SHORT_SESSION_SECS.to_string();
        let mut relay = RelayProcess::start_with(&["--demo", "--session-ttl-secs", &ttl])?;
        let db = relay.db_path();
        let db = db
            .to_str()
            .context("the temporary path is UTF-8")?
            .to_owned();
        relay.add_user(
            "authz-reviewer-2",
            "township-reviewer",
            OTHER_TOWNSHIP,
            PASSWORD,
        )?;
        let mut tokens = HashMap::new();
        let expired = login_as(&relay, "demo-director-4")?;
        let issued = Instant::now();
        let me = format!("{}/api/v1/me", relay.http_base());
        assert_eq!(
            get(&me, Some(&expired.token))?.status,
            200,
            "the short session must work before it expires, or the expired column proves nothing"
        );
        tokens.insert(Who::Expired, expired.token);
        relay.restart_with(&["--demo"])?;
        let expiry = Duration::from_secs(SHORT_SESSION_SECS) + Duration::from_millis(500);
        tokio::time::sleep(expiry.saturating_sub(issued.elapsed())).await;

        for who in [
            Who::Director,
            Who::OtherVillage,
            Who::Worker,
            Who::Reviewer,
            Who::OtherTownship,
            Who::Admin,
            Who::Disabled,
        ] {
            let username = who.username().context("a named principal")?;
            tokens.insert(who, login_as(&relay, username)?.token);
        }
        let disabled = tokens.get(&Who::Disabled).context("no disabled token")?;
        assert_eq!(get(&me, Some(disabled))?.status, 200);
        relay.cli(
            &[
                "user",
                "disable",
                "--db",
                &db,
                "--username",
                "demo-director-3",
            ],
            "",
        )?;

        let admin = tokens.get(&Who::Admin).context("no admin token")?.clone();
        let mut documents = HashMap::new();
        for kind in [Kind::Child, Kind::Visit, Kind::Elder, Kind::Log] {
            let pending = if kind == Kind::Visit {
                "&review_state=pending"
            } else {
                ""
            };
            let url = format!(
                "{}/api/v1/records?village={VILLAGE}&kind={}{pending}&page_size=1",
                relay.http_base(),
                kind.api_name()
            );
            let list = get(&url, Some(&admin))?.json()?;
            let id = list["items"][0]["id"]
                .as_str()
                .with_context(|| format!("the demo village has no {kind:?}: {list}"))?;
            if kind == Kind::Log {
                assert_eq!(list["items"][0]["worker"], "acct-demo-worker", "{list}");
            }
            documents.insert(kind, id.parse::<DocumentId>()?);
        }
        let worker = tokens.get(&Who::Worker).context("no worker token")?;
        let assigned = get(&me, Some(worker))?.json()?;
        let elder = documents.get(&Kind::Elder).context("no elder")?.to_string();
        assert!(
            assigned["assigned_elders"]
                .as_array()
                .is_some_and(|elders| elders.iter().any(|e| e == elder.as_str())),
            "the elder must be assigned to the care worker: {assigned}"
        );

        // A plain device syncs only what it opens (no scope listing of the prefecture).
        let copier = Device::plain("authz-copies");
        copier.connect(&relay.ws_url(&admin)).await?;
        let mut copies = HashMap::new();
        for (kind, document) in &documents {
            copier.open(document);
            wait_record(&copier, document).await?;
            copies.insert(
                *kind,
                copier.document(document).context("the copy vanished")?,
            );
        }
        copier.disconnect().await;
        Ok(Fixture {
            relay,
            tokens,
            second_sessions: HashMap::new(),
            documents,
            copies,
            writes: Vec::new(),
        })
    }

    fn token(&self, who: Who) -> Option<&str> {
        self.tokens.get(&who).map(String::as_str)
    }

    fn document(&self, kind: Kind) -> anyhow::Result<DocumentId> {
        self.documents
            .get(&kind)
            .copied()
            .with_context(|| format!("no {kind:?} document"))
    }

    fn sync_url(&self, who: Who) -> String {
        match self.token(who) {
            Some(token) => self.relay.ws_url(token),
            None => format!("ws://{}/sync", self.relay.addr()),
        }
    }

    /// A fresh connection of `who` that joined offering `extensions`, or the outcome that
    /// ended it first (the upgrade refused, no `peer` answer).
    async fn joined(
        &self,
        who: Who,
        extensions: &[&str],
    ) -> anyhow::Result<Result<RawPeer, Outcome>> {
        let mut peer = match raw::upgrade(&self.sync_url(who), None).await? {
            Ok(socket) => RawPeer::new(socket, who.label()),
            Err(status) => return Ok(Err(Outcome::Upgrade(status))),
        };
        match peer.join(extensions, ANSWER_WAIT).await? {
            Received::Message(Message::Peer { .. }) => Ok(Ok(peer)),
            other => Ok(Err(unexpected(&other))),
        }
    }

    /// Every change the relay acknowledged is in its copy of the document, and no other.
    async fn check_writes(&self) -> anyhow::Result<usize> {
        let admin = self.token(Who::Admin).context("no admin token")?;
        let checker = Device::plain("authz-check");
        checker.connect(&self.relay.ws_url(admin)).await?;
        for kind in [Kind::Child, Kind::Elder, Kind::Log] {
            let document = self.document(kind)?;
            let stored: Vec<ChangeHash> = self
                .writes
                .iter()
                .filter(|(k, _, acknowledged)| *k == kind && *acknowledged)
                .map(|(_, hash, _)| *hash)
                .collect();
            checker.open(&document);
            checker
                .wait_until(WAIT, |device| {
                    device.document(&document).is_some_and(|doc| {
                        stored
                            .iter()
                            .all(|hash| doc.get_change_by_hash(hash).is_some())
                    })
                })
                .await
                .with_context(|| format!("an acknowledged change to the {kind:?} is missing"))?;
            let doc = checker
                .document(&document)
                .context("the document vanished")?;
            for (_, hash, _) in self
                .writes
                .iter()
                .filter(|(k, _, acknowledged)| *k == kind && !acknowledged)
            {
                assert!(
                    doc.get_change_by_hash(hash).is_none(),
                    "a change to the {kind:?} the relay did not acknowledge was stored: {hash}"
                );
            }
        }
        checker.disconnect().await;
        Ok(self.writes.len())
    }
}

// ----- running the HTTP table ----------------------------------------------------------

/// The cells of a table and the ones that differ, described.
struct Tally {
    cells: usize,
    mismatches: Vec<String>,
}

async fn http_matrix(fixture: &mut Fixture) -> anyhow::Result<Tally> {
    let mut printed = Vec::new();
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for row in routes() {
        let name = match row.ask {
            Ask::Get(path) => format!("{} {}", row.method, fill(path)),
            _ => format!("{} {}", row.method, row.declared),
        };
        let mut line = Vec::new();
        for (who, want) in PRINCIPALS.iter().zip(row.expect) {
            let (status, problem) = http_cell(fixture, &row, *who).await?;
            cells += 1;
            let ok = status == want && problem.is_none();
            if status != want {
                mismatches.push(format!(
                    "{name} × {}: got {status}, want {want}",
                    who.label()
                ));
            }
            if let Some(problem) = problem {
                mismatches.push(format!("{name} × {}: {problem}", who.label()));
            }
            line.push((status.to_string(), ok));
        }
        printed.push((name, line));
    }
    print_table(
        "HTTP routes × principals (status codes)",
        &printed,
        &mismatches,
    );
    Ok(Tally { cells, mismatches })
}

fn fill(path: &str) -> String {
    path.replace("{village}", VILLAGE)
        .replace("{township}", TOWNSHIP)
}

/// The status of one cell and, for a 200, what its content check found wrong.
async fn http_cell(
    fixture: &mut Fixture,
    row: &Route,
    who: Who,
) -> anyhow::Result<(u16, Option<String>)> {
    let base = fixture.relay.http_base();
    let token = fixture.token(who).map(str::to_owned);
    let answer = match row.ask {
        Ask::Get(path) => get(&format!("{base}{}", fill(path)), token.as_deref())?,
        Ask::Upgrade => {
            return Ok(match raw::upgrade(&fixture.sync_url(who), None).await? {
                Ok(socket) => {
                    RawPeer::new(socket, who.label()).close().await;
                    (101, None)
                }
                Err(status) => (status, None),
            });
        }
        Ask::Login => {
            let body = match who.username() {
                Some(username) => json!({"username": username, "password": PASSWORD}),
                None => json!({"username": "authz-nobody", "password": PASSWORD}),
            };
            let answer = post(&format!("{base}/api/v1/login"), None, &body)?;
            if answer.status == 200 {
                let token = answer.json()?["token"]
                    .as_str()
                    .context("a login answer without a token")?
                    .to_owned();
                fixture.second_sessions.insert(who, token);
            }
            answer
        }
        Ask::Logout => {
            let session = match who {
                Who::Disabled | Who::Expired | Who::NoToken => token,
                _ => fixture.second_sessions.get(&who).cloned(),
            };
            post(
                &format!("{base}/api/v1/logout"),
                session.as_deref(),
                &json!({}),
            )?
        }
        Ask::Review => {
            let visit = fixture.document(Kind::Visit)?;
            post(
                &format!("{base}/api/v1/records/{visit}/review"),
                token.as_deref(),
                &json!({"action": "approve"}),
            )?
        }
    };
    let problem = if answer.status == 200 {
        content_problem(fixture, row.check, who, &answer)?
    } else {
        None
    };
    Ok((answer.status, problem))
}

/// What is wrong with a 200 answer's content, if anything.
fn content_problem(
    fixture: &Fixture,
    check: Check,
    who: Who,
    answer: &Answer,
) -> anyhow::Result<Option<String>> {
    let in_area = |village: &serde_json::Value| {
        who.area_prefix()
            .is_some_and(|prefix| village.as_str().is_some_and(|v| v.starts_with(prefix)))
    };
    Ok(match check {
        Check::Nothing => None,
        Check::OwnAccount => {
            let body = answer.json()?;
            let account = if body["account"].is_object() {
                &body["account"]
            } else {
                &body
            };
            (account["username"].as_str() != who.username())
                .then(|| format!("the answer names another account: {account}"))
        }
        Check::RecordsInArea => {
            let body = answer.json()?;
            let items = body["items"].as_array().context("a list without items")?;
            let child = fixture.document(Kind::Child)?.to_string();
            let listed = items.iter().any(|item| item["id"] == child.as_str());
            let sees_village = who.area_prefix().is_some_and(|p| VILLAGE.starts_with(p));
            if let Some(outside) = items.iter().find(|item| !in_area(&item["village"])) {
                Some(format!("lists a record outside its area: {outside}"))
            } else if body["total"].as_u64() != u64::try_from(items.len()).ok() {
                Some(format!(
                    "the list has more than one page: {}",
                    body["total"]
                ))
            } else if listed != sees_village {
                Some(format!(
                    "the record is listed: {listed}, its village is in the area: {sees_village}"
                ))
            } else {
                None
            }
        }
        Check::VillagesInArea => {
            let body = answer.json()?;
            let villages = body["villages"].as_array().or_else(|| body.as_array());
            let villages = villages.context("neither a coverage report nor a list")?;
            villages
                .iter()
                .find(|item| !in_area(&item["village"]))
                .map(|outside| format!("names a village outside its area: {outside}"))
        }
        Check::Approved => {
            let body = answer.json()?;
            (body["review_state"] != "approved").then(|| format!("not approved: {body}"))
        }
        Check::Attachment(kind) => {
            let content_type = answer.content_type.as_deref().unwrap_or("none");
            (!content_type.starts_with(kind) || answer.body.is_empty()).then(|| {
                format!(
                    "not a {kind} file: {content_type}, {} bytes",
                    answer.body.len()
                )
            })
        }
    })
}

// ----- running the sync table --------------------------------------------------------

async fn sync_matrix(fixture: &mut Fixture) -> anyhow::Result<Tally> {
    let mut printed = Vec::new();
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for row in sync_rows() {
        let mut line = Vec::new();
        for (who, want) in PRINCIPALS.iter().zip(row.expect.iter()) {
            let got = sync_cell(fixture, row.probe, *who)
                .await
                .with_context(|| format!("{} × {}", row.label, who.label()))?;
            cells += 1;
            if got != *want {
                mismatches.push(format!(
                    "{} × {}: got {got}, want {want}",
                    row.label,
                    who.label()
                ));
            }
            line.push((got.to_string(), got == *want));
        }
        printed.push((row.label.to_owned(), line));
    }
    print_table("sync message types × principals", &printed, &mismatches);
    Ok(Tally { cells, mismatches })
}

async fn sync_cell(fixture: &mut Fixture, probe: Probe, who: Who) -> anyhow::Result<Outcome> {
    let child = fixture.document(Kind::Child)?;
    let extensions: &[&str] = match probe {
        Probe::ScopeRequest => &["scope", "refused"],
        Probe::WritePlain(_) => &[],
        _ => &["refused"],
    };
    if let Probe::RequestBeforeJoin = probe {
        let mut peer = match raw::upgrade(&fixture.sync_url(who), None).await? {
            Ok(socket) => RawPeer::new(socket, who.label()),
            Err(status) => return Ok(Outcome::Upgrade(status)),
        };
        let request = request_message(&peer, child, true)?;
        peer.send(&request).await?;
        return closing(&mut peer).await;
    }
    let mut peer = match fixture.joined(who, extensions).await? {
        Ok(peer) => peer,
        Err(outcome) => return Ok(outcome),
    };
    let sender_id = peer.peer_id();
    let target_id = peer.relay_id();
    let outcome = match probe {
        Probe::Join => Outcome::Peer,
        Probe::RequestBeforeJoin => Outcome::Other("handled above".to_owned()),
        Probe::JoinTwice => {
            let join = Message::Join {
                sender_id,
                supported_protocol_versions: vec!["1".to_owned()],
                peer_metadata: None,
            };
            peer.send(&join).await?;
            closing(&mut peer).await?
        }
        Probe::Request(kind) | Probe::Sync(kind) => {
            let document = fixture.document(kind)?;
            let is_request = matches!(probe, Probe::Request(_));
            peer.send(&request_message(&peer, document, is_request)?)
                .await?;
            answer_about(&mut peer, document, None).await?
        }
        Probe::Write(kind) | Probe::WritePlain(kind) => {
            let document = fixture.document(kind)?;
            let copy = fixture
                .copies
                .get(&kind)
                .with_context(|| format!("no copy of the {kind:?}"))?;
            let (data, hash) = change_message(copy, who)?;
            peer.send(&Message::Sync {
                document_id: document,
                sender_id,
                target_id,
                data,
            })
            .await?;
            let outcome = answer_about(&mut peer, document, Some(hash)).await?;
            fixture
                .writes
                .push((kind, hash, outcome == Outcome::Stored));
            outcome
        }
        Probe::Ephemeral => ephemeral_outcome(fixture, &mut peer, who, child).await?,
        Probe::DocUnavailable => {
            peer.send(&Message::DocUnavailable {
                document_id: child,
                sender_id,
                target_id,
            })
            .await?;
            ignored_outcome(&mut peer).await?
        }
        Probe::RemoteSubscriptionChange => {
            peer.send(&Message::RemoteSubscriptionChange {
                sender_id,
                target_id,
                add: Some(vec![StorageId::from("authz-storage")]),
                remove: None,
            })
            .await?;
            ignored_outcome(&mut peer).await?
        }
        Probe::RemoteHeadsChanged => {
            let heads = RemoteHeads {
                heads: Vec::new(),
                timestamp: 1_790_000_000_000,
            };
            peer.send(&Message::RemoteHeadsChanged {
                sender_id,
                target_id,
                document_id: child,
                new_heads: BTreeMap::from([(StorageId::from("authz-storage"), heads)]),
            })
            .await?;
            ignored_outcome(&mut peer).await?
        }
        Probe::ScopeRequest => {
            // A listing names documents only; their kinds come from the administrator's
            // view, read now so that records stored by earlier cells are known.
            let admin = fixture.token(Who::Admin).context("no admin token")?;
            let kinds = every_records_kind(&fixture.relay, admin)?;
            scope_outcome(&mut peer, who, child, &kinds).await?
        }
        Probe::ScopeRequestUnagreed => {
            peer.send(&Message::ScopeRequest {
                sender_id,
                target_id,
                since: None,
                documents: false,
            })
            .await?;
            closing(&mut peer).await?
        }
        Probe::Leave => {
            peer.send(&Message::Leave { sender_id }).await?;
            closing(&mut peer).await?
        }
        Probe::Error => {
            peer.send(&Message::Error {
                message: "authorisation matrix".to_owned(),
                sender_id: Some(sender_id),
                target_id: Some(target_id),
            })
            .await?;
            closing(&mut peer).await?
        }
        Probe::Peer => {
            peer.send(&Message::Peer {
                sender_id,
                target_id,
                selected_protocol_version: "1".to_owned(),
                peer_metadata: None,
            })
            .await?;
            closing(&mut peer).await?
        }
        Probe::Scope => {
            peer.send(&Message::Scope {
                sender_id,
                target_id,
                cursor: 0,
                entries: Vec::new(),
                removed: Vec::new(),
                complete: true,
            })
            .await?;
            closing(&mut peer).await?
        }
        Probe::Refused => {
            peer.send(&Message::Refused {
                sender_id,
                target_id,
                document_id: child,
                code: "forbidden".to_owned(),
                message: "authorisation matrix".to_owned(),
                heads: Vec::new(),
            })
            .await?;
            closing(&mut peer).await?
        }
    };
    peer.close().await;
    Ok(outcome)
}

/// A `request` (or `sync`) for `document` from an empty document: what a phone that does
/// not hold it sends first.
fn request_message(
    peer: &RawPeer,
    document: DocumentId,
    is_request: bool,
) -> anyhow::Result<Message> {
    let data = Automerge::new()
        .generate_sync_message(&mut sync::State::new())
        .context("an empty document has a first sync message")?
        .encode();
    let (sender_id, target_id) = (peer.peer_id(), peer.relay_id());
    Ok(if is_request {
        Message::Request {
            document_id: document,
            sender_id,
            target_id,
            data,
        }
    } else {
        Message::Sync {
            document_id: document,
            sender_id,
            target_id,
            data,
        }
    })
}

/// A sync message carrying one change to the record part of `copy`, made by a fresh actor,
/// and the change's hash.
fn change_message(copy: &Automerge, who: Who) -> anyhow::Result<(Vec<u8>, ChangeHash)> {
    let mut doc = copy.fork().with_actor(ActorId::random());
    let mut record = Record::load(&doc).context("the copy is not a record")?;
    let mark = format!("矩阵 {}", who.label());
    match &mut record {
        Record::Child(child) => child.name = mark,
        Record::Elder(elder) => elder.name = mark,
        Record::ServiceLog(log) => log.note = Some(mark),
        Record::HomeVisit(visit) => visit.needs.push(mark),
    }
    let mut transaction = doc.transaction();
    record
        .save(&mut transaction)
        .context("saving the edited record")?;
    let (hash, _patches) = transaction.commit();
    let hash = hash.context("the edit changed nothing")?;
    let change = doc
        .get_change_by_hash(&hash)
        .context("the change just made is missing")?;
    let message = sync::Message {
        heads: doc.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: ChunkList::from(change.raw_bytes().to_vec()),
        flags: None,
        version: MessageVersion::V1,
    };
    Ok((message.encode(), hash))
}

/// The relay's answer about `document`: served (its sync messages load into the record),
/// stored (a sync message whose heads include `written`), unavailable, refused, or closed.
async fn answer_about(
    peer: &mut RawPeer,
    document: DocumentId,
    written: Option<ChangeHash>,
) -> anyhow::Result<Outcome> {
    let mut doc = Automerge::new();
    let mut state = sync::State::new();
    loop {
        let received = peer.receive(ANSWER_WAIT).await?;
        match &received {
            Received::Message(Message::Sync {
                document_id, data, ..
            }) if *document_id == document => {
                let message = sync::Message::decode(data).context("the relay's sync data")?;
                match written {
                    // Before the write commits the relay may answer with its older heads;
                    // the acknowledgement follows.
                    Some(hash) if message.heads.contains(&hash) => return Ok(Outcome::Stored),
                    Some(_) => {}
                    None => {
                        doc.receive_sync_message(&mut state, message)
                            .context("the relay's sync message does not apply")?;
                        if Record::load(&doc).is_ok() {
                            return Ok(Outcome::Served);
                        }
                    }
                }
            }
            Received::Message(Message::DocUnavailable { document_id, .. })
                if *document_id == document =>
            {
                return Ok(Outcome::Unavailable);
            }
            Received::Message(Message::Refused {
                document_id, code, ..
            }) if *document_id == document => {
                return Ok(match code.as_str() {
                    "forbidden" => Outcome::Refused("forbidden"),
                    "read-only" => Outcome::Refused("read-only"),
                    "invalid" => Outcome::Refused("invalid"),
                    other => Outcome::Other(format!("refused:{other}")),
                });
            }
            Received::Message(Message::Error { message, .. }) => {
                let then = peer.receive(ANSWER_WAIT).await?;
                return Ok(match then {
                    Received::Closed {
                        code: Some(code), ..
                    } if message.contains("forbidden") => Outcome::ErrorClose(code),
                    other => {
                        Outcome::Other(format!("error {message:?}, then {}", other.describe()))
                    }
                });
            }
            _ => return Ok(closed_outcome(&received)),
        }
    }
}

/// A close with a code, or what arrived instead.
fn closed_outcome(received: &Received) -> Outcome {
    match received {
        Received::Closed {
            code: Some(code), ..
        } => Outcome::Close(*code),
        other => unexpected(other),
    }
}

/// How the relay ends a connection: a close, or `error` (naming the violation) and then
/// the close.
async fn closing(peer: &mut RawPeer) -> anyhow::Result<Outcome> {
    let received = peer.receive(ANSWER_WAIT).await?;
    let Received::Message(Message::Error { message, .. }) = &received else {
        return Ok(closed_outcome(&received));
    };
    Ok(match peer.receive(ANSWER_WAIT).await? {
        Received::Closed {
            code: Some(code), ..
        } => Outcome::ErrorClose(code),
        other => Outcome::Other(format!("error {message:?}, then {}", other.describe())),
    })
}

fn unexpected(received: &Received) -> Outcome {
    Outcome::Other(received.describe())
}

/// Asks for a document that does not exist; the first thing to arrive must be its
/// `doc-unavailable`, so the message sent before it got no answer and did not end the
/// connection.
async fn ignored_outcome(peer: &mut RawPeer) -> anyhow::Result<Outcome> {
    let probe = random_document();
    peer.send(&request_message(peer, probe, true)?).await?;
    let received = peer.receive(ANSWER_WAIT).await?;
    Ok(match &received {
        Received::Message(Message::DocUnavailable { document_id, .. }) if *document_id == probe => {
            Outcome::Ignored
        }
        Received::Closed {
            code: Some(code), ..
        } => Outcome::Close(*code),
        other => unexpected(other),
    })
}

fn random_document() -> DocumentId {
    let mut bytes = [0u8; 16];
    for (byte, random) in bytes.iter_mut().zip(ActorId::random().to_bytes()) {
        *byte = *random;
    }
    DocumentId::random_from(bytes)
}

/// Does an `ephemeral` message of `peer` about the child reach an admin's connection that
/// syncs the child? After it, `peer` waits for an answer of its own (so the relay has
/// handled the message) and a second admin connection sends a marker; the listener has
/// seen the principal's message before the marker, or never will.
async fn ephemeral_outcome(
    fixture: &Fixture,
    peer: &mut RawPeer,
    who: Who,
    child: DocumentId,
) -> anyhow::Result<Outcome> {
    let (Ok(mut listener), Ok(mut marker)) = (
        fixture.joined(Who::Admin, &["refused"]).await?,
        fixture.joined(Who::Admin, &["refused"]).await?,
    ) else {
        bail!("the admin's connections did not open");
    };
    listener
        .send(&request_message(&listener, child, true)?)
        .await?;
    let served = answer_about(&mut listener, child, None).await?;
    if served != Outcome::Served {
        bail!("the admin's listener was not served the child: {served}");
    }
    let ephemeral = |sender: &RawPeer, session: String| Message::Ephemeral {
        sender_id: sender.peer_id(),
        target_id: sender.relay_id(),
        count: 1,
        session_id: session,
        document_id: child,
        data: vec![0xa0],
    };
    let session = format!("authz-{}", who.label());
    let marker_session = format!("marker-{}", who.label());
    peer.send(&ephemeral(peer, session.clone())).await?;
    let handled = ignored_outcome(peer).await?;
    if handled != Outcome::Ignored {
        return Ok(handled);
    }
    marker
        .send(&ephemeral(&marker, marker_session.clone()))
        .await?;
    let mut forwarded = false;
    loop {
        match listener.receive(ANSWER_WAIT).await? {
            Received::Message(Message::Ephemeral { session_id, .. }) => {
                if session_id == marker_session {
                    break;
                }
                forwarded |= session_id == session;
            }
            // The child's sync traffic is not what this row is about.
            Received::Message(_) => {}
            other => bail!(
                "the listener got {} instead of the marker",
                other.describe()
            ),
        }
    }
    listener.close().await;
    marker.close().await;
    Ok(if forwarded {
        Outcome::Forwarded
    } else {
        Outcome::Dropped
    })
}

/// The kind of every record the bureau administrator can list through the API (all of
/// the demo prefecture's). A scope listing names documents only.
fn every_records_kind(
    relay: &RelayProcess,
    admin: &str,
) -> anyhow::Result<HashMap<DocumentId, Kind>> {
    let mut kinds = HashMap::new();
    for kind in [Kind::Child, Kind::Visit, Kind::Elder, Kind::Log] {
        for page in 1.. {
            let url = format!(
                "{}/api/v1/records?kind={}&page_size=500&page={page}",
                relay.http_base(),
                kind.api_name()
            );
            let list = get(&url, Some(admin))?.json()?;
            let items = list["items"]
                .as_array()
                .with_context(|| format!("no items: {list}"))?;
            for item in items {
                let id = item["id"]
                    .as_str()
                    .with_context(|| format!("no id: {item}"))?;
                kinds.insert(id.parse::<DocumentId>()?, kind);
            }
            if items.len() < 500 {
                break;
            }
        }
    }
    ensure!(kinds.len() > 100, "only {} demo records", kinds.len());
    Ok(kinds)
}

/// Lists the whole scope and says whether the child is in it. The listing must also hold
/// only kinds the role may read at all, whatever the document.
async fn scope_outcome(
    peer: &mut RawPeer,
    who: Who,
    child: DocumentId,
    kinds: &HashMap<DocumentId, Kind>,
) -> anyhow::Result<Outcome> {
    // With the documents, as a first sync asks: each must be the listed document at the
    // listed heads, and only of a kind the role may read.
    peer.send(&Message::ScopeRequest {
        sender_id: peer.peer_id(),
        target_id: peer.relay_id(),
        since: None,
        documents: true,
    })
    .await?;
    let readable: &[Kind] = match who {
        Who::Director | Who::OtherVillage => &[Kind::Child, Kind::Visit],
        Who::Worker => &[Kind::Elder, Kind::Log],
        _ => &[Kind::Child, Kind::Visit, Kind::Elder, Kind::Log],
    };
    let mut listed = false;
    loop {
        let received = peer.receive(ANSWER_WAIT).await?;
        let Received::Message(Message::Scope {
            entries, complete, ..
        }) = &received
        else {
            return Ok(unexpected(&received));
        };
        for entry in entries {
            let Some(bytes) = &entry.document else {
                return Ok(Outcome::Other(format!(
                    "lists {} without the document asked for",
                    entry.document_id
                )));
            };
            let carried_heads: Vec<[u8; 32]> = Automerge::load(bytes)
                .map(|doc| doc.get_heads().iter().map(|head| head.0).collect())
                .unwrap_or_default();
            if carried_heads != entry.heads {
                return Ok(Outcome::Other(format!(
                    "carries {} at other heads than it lists",
                    entry.document_id
                )));
            }
            match kinds.get(&entry.document_id) {
                Some(kind) if readable.contains(kind) => {}
                Some(kind) => {
                    return Ok(Outcome::Other(format!(
                        "lists a {} ({})",
                        kind.api_name(),
                        entry.document_id
                    )));
                }
                None => {
                    return Ok(Outcome::Other(format!(
                        "lists {}, which is no demo record",
                        entry.document_id
                    )));
                }
            }
        }
        listed |= entries.iter().any(|entry| entry.document_id == child);
        if *complete {
            return Ok(if listed {
                Outcome::Listed
            } else {
                Outcome::Unlisted
            });
        }
    }
}

// ----- printing ----------------------------------------------------------------------

/// Prints a table: one line per row, one column per principal; `!` marks a cell that
/// differs from the matrix, and the differences follow the table.
fn print_table(title: &str, rows: &[(String, Vec<(String, bool)>)], mismatches: &[String]) {
    let first = rows
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = PRINCIPALS
        .iter()
        .enumerate()
        .map(|(column, who)| {
            rows.iter()
                .filter_map(|(_, cells)| cells.get(column))
                .map(|(text, _)| text.chars().count() + 1)
                .chain([who.label().len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("\n{title}\n{:first$}", "");
    for (who, width) in PRINCIPALS.iter().zip(&widths) {
        out.push_str(&format!("  {:<width$}", who.label()));
    }
    out.push('\n');
    for (name, cells) in rows {
        out.push_str(&format!("{name:first$}"));
        for ((text, ok), width) in cells.iter().zip(&widths) {
            let cell = if *ok {
                text.clone()
            } else {
                format!("!{text}")
            };
            out.push_str(&format!("  {cell:<width$}"));
        }
        out.push('\n');
    }
    for mismatch in mismatches {
        out.push_str(&format!("! {mismatch}\n"));
    }
    println!("{out}");
}

// ----- the routes the relay declares -------------------------------------------------

/// (method, path) of every route in the router's source: `server/src/routes.rs` and the
/// API router it nests (`server/src/api/mod.rs`), plus the fallback. Any other file of the
/// server that declares routes fails, so that a new router cannot hide from the matrix.
fn declared_routes() -> anyhow::Result<BTreeSet<(String, String)>> {
    let server = workspace_root()?.join("server/src");
    let app_file = server.join("routes.rs");
    let api_file = server.join("api/mod.rs");
    let markers = [
        ".route(",
        ".route_service(",
        ".nest(",
        ".nest_service(",
        ".fallback(",
        ".fallback_service(",
        ".merge(",
    ];
    let mut files = Vec::new();
    rust_files(&server, &mut files)?;
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        if *file != app_file && *file != api_file && markers.iter().any(|m| text.contains(m)) {
            bail!(
                "{} declares routes: add them to the authorisation matrix and to `declared_routes`",
                file.display()
            );
        }
    }
    let app = std::fs::read_to_string(&app_file)?;
    let api = std::fs::read_to_string(&api_file)?;
    for text in [&app, &api] {
        for unknown in [".route_service(", ".nest_service(", ".merge(", ".fallback("] {
            if text.contains(unknown) {
                bail!("the router uses `{unknown}`: teach `declared_routes` to read it");
            }
        }
    }
    if api.contains(".nest(") || api.contains("fallback") {
        bail!("the API router nests or falls back: teach `declared_routes` to read it");
    }
    let nests: Vec<String> = app
        .match_indices(".nest(")
        .filter_map(|(at, _)| app.get(at..).and_then(first_literal))
        .collect();
    let [prefix] = nests.as_slice() else {
        bail!(
            "the router nests {nests:?}, not exactly the API: teach `declared_routes` to read it"
        );
    };
    let mut routes = BTreeSet::new();
    routes_in(&app, "", &mut routes)?;
    routes_in(&api, prefix, &mut routes)?;
    if app.contains(".fallback_service(") {
        routes.insert(("GET".to_owned(), FALLBACK.to_owned()));
    }
    Ok(routes)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Adds `(METHOD, prefix + path)` for each `.route("path", method(handler)...)` in `text`.
fn routes_in(text: &str, prefix: &str, out: &mut BTreeSet<(String, String)>) -> anyhow::Result<()> {
    for (at, marker) in text.match_indices(".route(") {
        let rest = text.get(at + marker.len()..).unwrap_or_default();
        let path = first_literal(rest).context("a route without a path literal")?;
        let call = balanced(rest).context("a route call without its closing parenthesis")?;
        let mut methods = 0;
        for method in [
            "get", "post", "put", "patch", "delete", "head", "options", "any",
        ] {
            let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                call.get(..i)
                    .and_then(|before| before.chars().last())
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            });
            if called {
                methods += 1;
                out.insert((method.to_uppercase(), format!("{prefix}{path}")));
            }
        }
        if methods == 0 {
            bail!("the route {path} names no method the discovery knows");
        }
    }
    Ok(())
}

/// The first string literal in `text`.
fn first_literal(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let length = text.get(start..)?.find('"')?;
    text.get(start..start + length).map(str::to_owned)
}

/// `text` up to the parenthesis that closes the call it starts inside of.
fn balanced(text: &str) -> Option<&str> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return text.get(..i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}
