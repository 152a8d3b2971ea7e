//! The relay's abuse limits against the real process (design §5), each with its exact
//! status or close code (`server/src/relay/close_codes.rs`, `server/src/relay/limits.rs`,
//! `server/src/auth/`):
//!
//! | limit | answer |
//! |---|---|
//! | a WebSocket message over `FRAME_BYTES_MAX` (8 MiB), whole or in fragments | close 1009 |
//! | more than 500 messages/s on a director's socket, beyond a burst of 5,000 | close 4008 |
//! | 2,500 messages/s on a township reviewer's socket (its limit is 20,000/s) | stays open |
//! | more than 50 API requests/s from one address, beyond a burst of 200 | 429, `Retry-After: 1` |
//! | 30 failed logins from one address (per account: `relay_api.rs`) | 429 with `Retry-After` |
//! | a socket silent (not even a pong) for `--idle-timeout-secs` | close 4002 |
//! | an `Origin` that is neither the relay's own nor listed with `--allow-origin` | 403 at the upgrade |
//! | no `join` within `HANDSHAKE_MS_MAX` (10 s) | close 4003 |
//! | frames waiting for the engine beyond `--engine-queue-bytes-max` (256 MiB) | the socket is not read until they fit |
//!
//! Every close code must also reach a client that still had messages on the way: the relay
//! reads on until the client answers its close (`CLOSE_HANDSHAKE_MS_MAX`), or the kernel
//! would reset the connection and drop the close frame.
//!
//! Each test starts its own relay: the limits it trips (an address locked out of the API or
//! of logins, a one-second idle timeout) would disturb the others.

// JSON answers are read with `value["key"]`, which yields `Null` rather than panicking.
#![allow(clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use caresync_core::protocol::{DocumentId, FRAME_BYTES_MAX, Message, StorageId};
use caresync_tests::raw::{self, RawPeer, Received};
use caresync_tests::{Device, RelayProcess};
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How long a test waits for a close it expects; only a failing test waits this long.
const CLOSE_WAIT: Duration = Duration::from_secs(20);
/// The burst of messages one socket may send at once (`MESSAGES_BURST_MAX`).
const MESSAGES_BURST: u64 = 5_000;
/// The burst of API requests one address may make at once (`API_REQUESTS_BURST_MAX`).
const API_BURST: u32 = 200;
/// API requests per second one address may make, sustained (`API_REQUESTS_PER_SECOND_MAX`).
const API_PER_SECOND: f64 = 50.0;
/// Failed logins one address may make in the window (`LOGIN_FAILURES_PER_ADDRESS_MAX`).
const LOGIN_FAILURES_PER_ADDRESS: usize = 30;

/// A socket of the demo director that has completed the handshake.
async fn joined(relay: &RelayProcess, login: &Login, name: &str) -> anyhow::Result<RawPeer> {
    let mut peer = RawPeer::connect(&relay.ws_url(&login.token), name).await?;
    match peer.join(&["refused"], CLOSE_WAIT).await? {
        Received::Message(Message::Peer { .. }) => Ok(peer),
        other => bail!("{name}: the relay answered join with {}", other.describe()),
    }
}

/// The next close of `peer`, skipping any message before it.
async fn close_code(peer: &mut RawPeer) -> anyhow::Result<Option<u16>> {
    loop {
        match peer.receive(CLOSE_WAIT).await? {
            Received::Message(_) => {}
            Received::Closed { code, reason } => {
                println!("closed: {code:?} {reason}");
                return Ok(code);
            }
            Received::Nothing => bail!("the socket was not closed within {CLOSE_WAIT:?}"),
        }
    }
}

fn random_document() -> DocumentId {
    let mut bytes = [0u8; 16];
    for (byte, random) in bytes
        .iter_mut()
        .zip(automerge::ActorId::random().to_bytes())
    {
        *byte = *random;
    }
    DocumentId::random_from(bytes)
}

/// A message the relay takes without answering, so that only our side of the socket is
/// busy when it is sent many times.
fn unanswered_message(peer: &RawPeer) -> Vec<u8> {
    Message::RemoteSubscriptionChange {
        sender_id: peer.peer_id(),
        target_id: peer.relay_id(),
        add: Some(vec![StorageId::from("abuse-storage")]),
        remove: None,
    }
    .encode()
}

/// Asks for a document that does not exist and expects its `doc-unavailable` next: the
/// socket is open and everything sent before was handled without an answer.
async fn still_answers(peer: &mut RawPeer) -> anyhow::Result<()> {
    let document = random_document();
    let empty = automerge::sync::SyncDoc::generate_sync_message(
        &automerge::Automerge::new(),
        &mut automerge::sync::State::new(),
    )
    .context("an empty document has a first sync message")?;
    peer.send(&Message::Request {
        document_id: document,
        sender_id: peer.peer_id(),
        target_id: peer.relay_id(),
        data: empty.encode(),
    })
    .await?;
    match peer.receive(CLOSE_WAIT).await? {
        Received::Message(Message::DocUnavailable { document_id, .. })
            if document_id == document =>
        {
            Ok(())
        }
        other => bail!("expected doc-unavailable, got {}", other.describe()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_closes_the_socket_with_1009() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let started = Instant::now();

    // At the limit the socket takes the message and the codec judges it: zeros are not a
    // protocol message (1002).
    let mut at_limit = joined(&relay, &director, "at-limit").await?;
    at_limit.send_frame(vec![0; FRAME_BYTES_MAX]).await?;
    assert_eq!(close_code(&mut at_limit).await?, Some(1002));
    println!("at the limit: {:.1} s", started.elapsed().as_secs_f64());

    // One byte more in one frame: the relay refuses it from the frame's header, before
    // reading any of it. Only the header is sent, so the relay leaves nothing unread and
    // its close frame cannot be lost to a reset connection.
    let mut whole = HandSocket::joined(&relay, &director.token).await?;
    whole
        .write_header(OPCODE_BINARY, true, FRAME_BYTES_MAX + 1)
        .await?;
    assert_eq!(whole.close_code().await?, Some(1009));

    // Fragments each far below the frame limit, adding up to one byte more than the
    // message limit: refused once the last fragment has arrived.
    let mut fragmented = HandSocket::joined(&relay, &director.token).await?;
    let fragment = 1024 * 1024;
    let zeros = vec![0u8; fragment];
    for index in 0..FRAME_BYTES_MAX / fragment {
        let opcode = if index == 0 {
            OPCODE_BINARY
        } else {
            OPCODE_CONTINUATION
        };
        fragmented.write_header(opcode, false, fragment).await?;
        fragmented.write_payload(&zeros).await?;
    }
    fragmented
        .write_header(OPCODE_CONTINUATION, true, 1)
        .await?;
    fragmented.write_payload(&[0]).await?;
    assert_eq!(fragmented.close_code().await?, Some(1009));

    // The relay itself is unharmed.
    let mut after = joined(&relay, &director, "after").await?;
    still_answers(&mut after).await?;
    Ok(())
}

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;

/// A WebSocket spoken by hand over TCP (RFC 6455 §5), for frames no WebSocket library
/// sends: a header announcing more than the relay accepts, without the bytes. Client
/// frames are masked with the all-zero key, which leaves the payload as it is.
struct HandSocket {
    tcp: TcpStream,
}

impl HandSocket {
    /// Upgrades `/sync` with `token` and completes the protocol's handshake.
    async fn joined(relay: &RelayProcess, token: &str) -> anyhow::Result<HandSocket> {
        let mut tcp = TcpStream::connect(relay.addr()).await?;
        let request = format!(
            "GET /sync?token={token} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            relay.addr()
        );
        tcp.write_all(request.as_bytes()).await?;
        // The answer to an upgrade ends with an empty line and nothing follows it until
        // the client speaks, so reading byte by byte cannot take a frame's bytes.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(
                tcp.read_u8()
                    .await
                    .context("the upgrade was not answered")?,
            );
        }
        let head = String::from_utf8_lossy(&head);
        if !head.starts_with("HTTP/1.1 101") {
            bail!("the upgrade was refused: {head}");
        }
        let mut socket = HandSocket { tcp };
        let join = Message::Join {
            sender_id: format!("by-hand-{}", random_document()).into(),
            supported_protocol_versions: vec!["1".to_owned()],
            peer_metadata: None,
        }
        .encode();
        socket.write_header(OPCODE_BINARY, true, join.len()).await?;
        socket.write_payload(&join).await?;
        // The relay pings a new socket at once; the answer to `join` follows.
        let (opcode, payload) = loop {
            let (opcode, payload) = socket.read_frame().await?;
            if opcode != OPCODE_PING {
                break (opcode, payload);
            }
        };
        match Message::decode(&payload) {
            Ok(Message::Peer { .. }) if opcode == OPCODE_BINARY => Ok(socket),
            other => bail!("join by hand was answered with opcode {opcode}: {other:?}"),
        }
    }

    async fn write_header(&mut self, opcode: u8, last: bool, length: usize) -> anyhow::Result<()> {
        let mut header = vec![if last { 0x80 | opcode } else { opcode }];
        // Every client frame is masked (the 0x80 bit), here with the key 0, 0, 0, 0.
        match u16::try_from(length) {
            Ok(short) if short < 126 => header.push(0x80 | u8::try_from(short)?),
            Ok(short) => {
                header.push(0x80 | 126);
                header.extend(short.to_be_bytes());
            }
            Err(_) => {
                header.push(0x80 | 127);
                header.extend(u64::try_from(length)?.to_be_bytes());
            }
        }
        header.extend([0u8; 4]);
        self.tcp.write_all(&header).await?;
        Ok(())
    }

    async fn write_payload(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        self.tcp.write_all(payload).await?;
        Ok(())
    }

    /// The next frame from the relay (never masked): its opcode and payload.
    async fn read_frame(&mut self) -> anyhow::Result<(u8, Vec<u8>)> {
        let first = self.tcp.read_u8().await?;
        let second = self.tcp.read_u8().await?;
        let length = match second & 0x7f {
            126 => u64::from(self.tcp.read_u16().await?),
            127 => self.tcp.read_u64().await?,
            short => u64::from(short),
        };
        let mut payload = vec![0u8; usize::try_from(length)?];
        self.tcp.read_exact(&mut payload).await?;
        Ok((first & 0x0f, payload))
    }

    /// The code of the relay's close frame, skipping what comes before it.
    async fn close_code(&mut self) -> anyhow::Result<Option<u16>> {
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        loop {
            let (opcode, payload) = tokio::time::timeout_at(deadline, self.read_frame())
                .await
                .context("no close frame in time")??;
            if opcode == OPCODE_CLOSE {
                let code = match payload.as_slice() {
                    [high, low, reason @ ..] => {
                        println!("closed: {}", String::from_utf8_lossy(reason));
                        Some(u16::from_be_bytes([*high, *low]))
                    }
                    _ => None,
                };
                return Ok(code);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_faster_than_the_rate_limit_close_the_socket_with_4008() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let mut peer = joined(&relay, &director, "flood").await?;
    let message = unanswered_message(&peer);

    // Within the burst: 4,000 messages at once are taken, and the socket still answers.
    let within = 4_000;
    {
        let socket = peer.socket_mut();
        for _ in 0..within {
            socket
                .feed(WsMessage::Binary(message.clone().into()))
                .await?;
        }
        socket.flush().await?;
    }
    still_answers(&mut peer)
        .await
        .context("4,000 messages at once, within the burst, were not taken")?;

    // Beyond it, as fast as the socket goes: the relay closes with 4008.
    let (mut sink, mut stream) = peer.into_socket().split();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(within));
    let writer = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 200_000 {
                for _ in 0..100 {
                    if sink
                        .feed(WsMessage::Binary(message.clone().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
                sent.fetch_add(100, Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let code = loop {
        match tokio::time::timeout(CLOSE_WAIT, stream.next()).await {
            Err(_) => bail!("no close within {CLOSE_WAIT:?} of flooding"),
            Ok(Some(Ok(WsMessage::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => bail!("the socket failed before its close frame: {error}"),
            Ok(None) => bail!("the connection ended without a close frame"),
        }
    };
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    let sent = sent.load(Ordering::Relaxed);
    println!(
        "closed with {code:?} after {sent} messages in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(4008));
    assert!(
        sent > MESSAGES_BURST,
        "closed after {sent} messages, within the burst of {MESSAGES_BURST}"
    );
    Ok(())
}

/// A township reviewer's phone acknowledges the changes of every village it follows, so it
/// may send ten times a director's rate. Sent at 2,500 messages/s for 4 s, twice the burst:
/// a director's socket would be closed after about 2.5 s, the reviewer's stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_reviewer_may_send_faster_than_a_director() -> anyhow::Result<()> {
    const PER_TICK: u64 = 25;
    const TICK: Duration = Duration::from_millis(10);
    const SEND_FOR: Duration = Duration::from_secs(4);
    /// A director's limit (`MESSAGES_PER_SECOND_MAX`).
    const DIRECTOR_PER_SECOND: f64 = 500.0;
    let relay = RelayProcess::start_with(&["--demo"])?;
    let reviewer = login_as(&relay, "demo-reviewer")?;
    let mut peer = joined(&relay, &reviewer, "busy-reviewer").await?;
    let message = unanswered_message(&peer);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut ticks = tokio::time::interval(TICK);
    while started.elapsed() < SEND_FOR {
        ticks.tick().await;
        let socket = peer.socket_mut();
        for _ in 0..PER_TICK {
            socket
                .feed(WsMessage::Binary(message.clone().into()))
                .await?;
        }
        socket.flush().await?;
        sent += PER_TICK;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Otherwise the machine sent too slowly for the test to show anything.
    let director_allows = MESSAGES_BURST as f64 + DIRECTOR_PER_SECOND * elapsed;
    assert!(
        sent as f64 > director_allows,
        "sent {sent} messages in {elapsed:.2} s, which a director's socket would take too"
    );
    still_answers(&mut peer).await.with_context(|| {
        format!("the reviewer's socket after {sent} messages in {elapsed:.2} s")
    })?;
    Ok(())
}

#[test]
fn the_api_answers_429_with_retry_after_beyond_its_request_rate() -> anyhow::Result<()> {
    let relay = RelayProcess::start()?;
    let me = format!("{}/api/v1/me", relay.http_base());
    let started = Instant::now();
    let mut answered = 0u32;
    let limited = loop {
        let answer = get(&me, None)?;
        if answer.status == 429 {
            break answer;
        }
        assert_eq!(answer.status, 401, "request {answered}");
        answered += 1;
        if answered > 5_000 {
            bail!("5,000 requests and no 429");
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    println!("429 after {answered} requests in {elapsed:.2} s");
    // The burst is served whole; beyond it only what the sustained rate refilled meanwhile.
    assert!(
        answered >= API_BURST,
        "only {answered} requests before the 429"
    );
    // The bucket refills continuously, so allow the rate's worth of the time taken plus one.
    let allowed = f64::from(API_BURST) + API_PER_SECOND * elapsed + 1.0;
    assert!(
        f64::from(answered) <= allowed,
        "{answered} requests answered in {elapsed:.2} s, more than {allowed:.0}"
    );
    assert_eq!(limited.retry_after.as_deref(), Some("1"));
    assert_eq!(limited.json()?["error"], "too-many-requests");

    // Only the API is limited: health checks are not.
    assert_eq!(
        get(&format!("{}/healthz", relay.http_base()), None)?.status,
        200
    );
    // After the time `Retry-After` names, requests are answered again.
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(get(&me, None)?.status, 401);
    Ok(())
}

#[test]
fn failed_logins_from_one_address_lock_it_whatever_the_names() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let login = format!("{}/api/v1/login", relay.http_base());
    for attempt in 0..LOGIN_FAILURES_PER_ADDRESS {
        // A different name each time: no single account reaches its own limit of 5.
        let answer = post(
            &login,
            None,
            &json!({"username": format!("nobody-{attempt}"), "password": "guess"}),
        )?;
        assert_eq!(answer.status, 401, "attempt {attempt}");
    }
    // Now even a right password of a real account is not checked from this address.
    let locked = post(
        &login,
        None,
        &json!({"username": "demo-director", "password": PASSWORD}),
    )?;
    assert_eq!(locked.status, 429);
    assert_eq!(locked.json()?["error"], "too-many-requests");
    let retry: u64 = locked
        .retry_after
        .context("no Retry-After")?
        .parse()
        .context("Retry-After is not seconds")?;
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_is_closed_with_4002_and_answering_pings_keeps_it_open()
-> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo", "--idle-timeout-secs", "1"])?;
    let director = login_as(&relay, "demo-director")?;
    // The device reads its socket all the time, so it answers the relay's pings. A plain
    // one syncs nothing on connecting: after its handshake only its pongs reach the relay.
    let device = Device::plain("answers pings");
    device.connect(&relay.ws_url(&director.token)).await?;
    // This socket, spoken by hand, never answers a ping.
    let mut silent = HandSocket::joined(&relay, &director.token).await?;
    let started = Instant::now();
    assert_eq!(silent.close_code().await?, Some(4002));
    let idle = started.elapsed();
    println!("idle close after {:.1} s", idle.as_secs_f64());
    // The relay checks at each ping, every half of the timeout.
    assert!(
        idle >= Duration::from_millis(900) && idle <= Duration::from_secs(5),
        "closed after {idle:?} with a one-second idle timeout"
    );
    // By now the device has been idle well past the timeout too, but for its pongs.
    tokio::time::sleep(Duration::from_millis(2_500).saturating_sub(started.elapsed())).await;
    assert!(
        device.is_connected() && device.closes().is_empty(),
        "a socket that answers pings was closed: {:?}",
        device.closes()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_relays_own_and_listed_origins_may_upgrade() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo", "--allow-origin", "https://app.example"])?;
    let director = login_as(&relay, "demo-director")?;
    let with_token = relay.ws_url(&director.token);
    let without_token = format!("ws://{}/sync", relay.addr());
    let own = format!("http://{}", relay.addr());
    let next_port = format!(
        "http://{}:{}",
        relay.addr().ip(),
        relay.addr().port().wrapping_add(1)
    );
    // (Origin, URL, expected status of the upgrade)
    let cases: [(Option<&str>, &str, u16); 8] = [
        (None, &with_token, 101),
        (Some(&own), &with_token, 101),
        (Some("https://app.example"), &with_token, 101),
        (Some("https://app.example/"), &with_token, 101),
        (Some("http://evil.example"), &with_token, 403),
        (Some(&next_port), &with_token, 403),
        // The Origin is checked before the session: a foreign page learns nothing of it.
        (Some("http://evil.example"), &without_token, 403),
        (None, &without_token, 401),
    ];
    let mut wrong = Vec::new();
    for (origin, url, want) in cases {
        let got = match raw::upgrade(url, origin).await? {
            Ok(socket) => {
                RawPeer::new(socket, "origin").close().await;
                101
            }
            Err(status) => status,
        };
        let token = if url == with_token {
            "token"
        } else {
            "no token"
        };
        println!(
            "Origin {:<28} {token:<9} → {got}",
            origin.unwrap_or("(none)")
        );
        if got != want {
            wrong.push(format!(
                "Origin {origin:?}, {token}: got {got}, want {want}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

/// Connections the stress test closes; each has input the relay has not read.
const UNREAD_CLOSES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_close_code_arrives_even_when_input_is_left_unread() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let mut lost = Vec::new();
    for attempt in 0..UNREAD_CLOSES {
        let mut peer = joined(&relay, &director, "unread").await?;
        // A protocol violation, and right behind it more messages than the relay reads
        // before it acts on the violation: the relay closes with input still queued.
        let violation = Message::Peer {
            sender_id: peer.peer_id(),
            target_id: peer.relay_id(),
            selected_protocol_version: "1".to_owned(),
            peer_metadata: None,
        }
        .encode();
        let filler = Message::RemoteSubscriptionChange {
            sender_id: peer.peer_id(),
            target_id: peer.relay_id(),
            add: Some(vec![StorageId::from("unread".repeat(100))]),
            remove: None,
        }
        .encode();
        let socket = peer.socket_mut();
        socket.feed(WsMessage::Binary(violation.into())).await?;
        for _ in 0..500 {
            socket
                .feed(WsMessage::Binary(filler.clone().into()))
                .await?;
        }
        // The relay may already have gone; what it sent before is what counts.
        let _ = socket.flush().await;
        let code = loop {
            match peer.receive(CLOSE_WAIT).await? {
                Received::Message(_) => {}
                Received::Closed { code, reason } => break code.ok_or(reason),
                Received::Nothing => bail!("attempt {attempt}: no close within {CLOSE_WAIT:?}"),
            }
        };
        if code != Ok(1002) {
            lost.push(format!("attempt {attempt}: {code:?}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {UNREAD_CLOSES} closes did not arrive with their code: {lost:#?}",
        lost.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_joins_is_closed_with_4003() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let started = Instant::now();
    let mut peer = RawPeer::connect(&relay.ws_url(&director.token), "never joins").await?;
    // Reading answers pings, so the idle timeout (60 s) is not what closes it.
    let code = close_code(&mut peer).await?;
    let elapsed = started.elapsed();
    println!("closed after {:.1} s", elapsed.as_secs_f64());
    assert_eq!(code, Some(4003));
    // HANDSHAKE_MS_MAX is 10 s; the engine checks it once a second.
    assert!(
        elapsed >= Duration::from_millis(9_500) && elapsed <= Duration::from_secs(15),
        "closed after {elapsed:?}"
    );
    Ok(())
}

/// Frames wait for the engine within a budget of bytes (`--engine-queue-bytes-max`); a
/// connection reads its next frame only once its last fits, and the engine gives the room
/// back as it handles each. With room for a single frame, two phones writing at once must
/// still have every change stored and passed on: a frame whose room was never given back
/// would leave every connection waiting after the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_room_for_one_frame_in_the_engines_queue_every_change_still_syncs()
-> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo", "--engine-queue-bytes-max", "1"])?;
    let director = login_as(&relay, "demo-director")?;
    let village = director.org_unit.clone();
    let first = phone(&relay, "first phone", &director).await?;
    let second = phone(&relay, "second phone", &director).await?;
    let mut children = Vec::new();
    for n in 0..20 {
        children.push(first.create(&child_in(&village, &format!("一号{n}")))?);
        children.push(second.create(&child_in(&village, &format!("二号{n}")))?);
    }
    for device in [&first, &second] {
        device
            .wait_until(WAIT, |d| {
                children
                    .iter()
                    .all(|child| d.record(child).is_some() && d.is_synced(child))
            })
            .await
            .with_context(|| format!("{} did not get every change", device.name()))?;
    }
    Ok(())
}
