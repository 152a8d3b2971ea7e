//! One WebSocket connection: a thin pump between the socket and the engine thread.
//!
//! It forwards binary frames to the engine (after the per-connection rate limit), writes
//! what the engine queues for it, pings, enforces the idle timeout, re-checks the session
//! now and then, and says goodbye with a close code that tells the client why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use caresync_core::domain::Account;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, mpsc};

use super::close_codes;
use super::events::{EngineEvent, Outgoing};
use super::limits::{
    CLOSE_HANDSHAKE_MS_MAX, MESSAGES_BURST_MAX, MESSAGES_PER_SECOND_MANY_VILLAGES_MAX,
    MESSAGES_PER_SECOND_MAX, OUTGOING_FRAMES_PER_WRITE_MAX, OUTGOING_FRAMES_QUEUED_MAX,
    PING_INTERVAL_MS, SESSION_RECHECK_MS,
};
use crate::auth::rate_limit::TokenBucket;
use crate::clock::now_ms;
use crate::state::AppState;
use crate::store;

/// Close reasons are limited to 123 bytes by the protocol (RFC 6455 §5.5).
const CLOSE_REASON_BYTES_MAX: usize = 123;

pub async fn run(socket: WebSocket, state: AppState, account: Account, token_hash: [u8; 32]) {
    let _open = state.sockets.opened();
    let messages_per_second = if account.role.follows_many_villages() {
        MESSAGES_PER_SECOND_MANY_VILLAGES_MAX
    } else {
        MESSAGES_PER_SECOND_MAX
    };
    let connection = state.next_connection_id();
    let (outbox, mut outgoing) = mpsc::channel(OUTGOING_FRAMES_QUEUED_MAX);
    if state
        .engine
        .send(EngineEvent::Opened {
            connection,
            account: Box::new(account),
            outbox,
        })
        .is_err()
    {
        return;
    }
    let (mut sink, mut stream) = socket.split();
    let mut bucket = TokenBucket::new(messages_per_second, MESSAGES_BURST_MAX, now_ms());
    let idle_timeout = Duration::from_millis(state.settings.idle_timeout_ms);
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(Duration::from_millis(
        PING_INTERVAL_MS
            .min(state.settings.idle_timeout_ms / 2)
            .max(1),
    ));
    let mut recheck = tokio::time::interval(Duration::from_millis(SESSION_RECHECK_MS));
    let mut shutdown = state.shutdown.clone();
    // A frame read but not yet given to the engine: it waits for room in the engine's queue
    // (`ENGINE_QUEUE_BYTES_MAX`), and the socket is not read meanwhile. Frames to the
    // socket keep flowing, so a waiting connection still hears from the engine.
    let mut waiting: Option<Vec<u8>> = None;

    let close: Option<(u16, String)> = loop {
        tokio::select! {
            room = engine_room(&state, waiting.as_ref().map_or(0, Vec::len)), if waiting.is_some() => {
                let Ok(room) = room else {
                    break Some((close_codes::GOING_AWAY, "the relay is stopping".to_owned()));
                };
                let frame = waiting.take().unwrap_or_default();
                let event = EngineEvent::Frame { connection, frame, room: Some(room) };
                if state.engine.send(event).is_err() {
                    break Some((close_codes::GOING_AWAY, "the relay is stopping".to_owned()));
                }
            },
            incoming = stream.next(), if waiting.is_none() => match incoming {
                None | Some(Ok(Message::Close(_))) => break None,
                Some(Err(error)) => {
                    let text = error.to_string();
                    tracing::debug!(connection = connection.0, %text, "socket error");
                    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
                        state.metrics.add_sync_error();
                        break Some((close_codes::MESSAGE_TOO_BIG, "message too big".to_owned()));
                    }
                    break None;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    last_heard = Instant::now();
                    if !bucket.take(now_ms()) {
                        state.metrics.add_request_limited();
                        break Some((close_codes::RATE_LIMITED, "too many messages".to_owned()));
                    }
                    waiting = Some(bytes.to_vec());
                }
                Some(Ok(Message::Text(_))) => {
                    state.metrics.add_sync_error();
                    break Some((close_codes::UNSUPPORTED_DATA, "binary CBOR frames only".to_owned()));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_heard = Instant::now(),
            },
            queued = outgoing.recv() => match queued {
                Some(Outgoing::Frame(frame)) => {
                    match write_queued(&mut sink, frame, &mut outgoing).await {
                        Ok(None) => {}
                        Ok(Some(close)) => break Some(close),
                        Err(()) => break None,
                    }
                }
                Some(Outgoing::Close { code, reason }) => break Some((code, reason)),
                None => break Some((close_codes::INTERNAL_ERROR, "the relay dropped this connection".to_owned())),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= idle_timeout {
                    break Some((close_codes::IDLE_TIMEOUT, "idle timeout".to_owned()));
                }
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break None;
                }
            }
            _ = recheck.tick() => {
                if !session_still_valid(&state, token_hash).await {
                    break Some((close_codes::SESSION_ENDED, "session ended".to_owned()));
                }
            }
            _ = shutdown.changed() => {
                break Some((close_codes::GOING_AWAY, "the relay is shutting down".to_owned()));
            }
        }
    };
    let _ = state.engine.send(EngineEvent::Closed { connection });
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: truncated(&reason).into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
        // Read on until the peer answers the close (RFC 6455 §7.1.1), for a bounded time.
        // Dropping a socket with unread input (a pong, a frame already on the way) makes the
        // kernel reset the connection and discard output not yet sent: the close frame just
        // written, so the peer would never learn the code.
        let drain = async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(CLOSE_HANDSHAKE_MS_MAX), drain).await;
    }
    let _ = sink.close().await;
}

/// Writes `first` and the frames queued behind it (up to `OUTGOING_FRAMES_PER_WRITE_MAX`)
/// with one flush. Gives back the close the engine queued among them, if any, which ends
/// the connection once the frames before it are out; `Err` when the socket failed.
async fn write_queued(
    sink: &mut SplitSink<WebSocket, Message>,
    first: Vec<u8>,
    outgoing: &mut mpsc::Receiver<Outgoing>,
) -> Result<Option<(u16, String)>, ()> {
    let mut next = Some(first);
    let mut written = 0;
    let mut close = None;
    while let Some(frame) = next.take() {
        sink.feed(Message::Binary(frame.into()))
            .await
            .map_err(|_| ())?;
        written += 1;
        if written >= OUTGOING_FRAMES_PER_WRITE_MAX {
            break;
        }
        match outgoing.try_recv() {
            Ok(Outgoing::Frame(frame)) => next = Some(frame),
            Ok(Outgoing::Close { code, reason }) => close = Some((code, reason)),
            Err(_) => {}
        }
    }
    sink.flush().await.map_err(|_| ())?;
    Ok(close)
}

/// Waits until the engine's queue has room for a frame of `bytes` (a frame bigger than the
/// whole budget waits for all of it); the room is held until the engine has handled it.
async fn engine_room(state: &AppState, bytes: usize) -> Result<OwnedSemaphorePermit, AcquireError> {
    let budget = state.settings.engine_queue_bytes_max.max(1);
    let permits = u32::try_from(bytes.clamp(1, budget)).unwrap_or(u32::MAX);
    Arc::clone(&state.engine_room)
        .acquire_many_owned(permits)
        .await
}

async fn session_still_valid(state: &AppState, token_hash: [u8; 32]) -> bool {
    let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    match state
        .db
        .run(move |conn| store::session_account(conn, &token_hash, now))
        .await
    {
        Ok(found) => found.is_some(),
        // A database hiccup is not a reason to cut every phone off; the next check decides.
        Err(error) => {
            tracing::warn!(%error, "cannot re-check a session");
            true
        }
    }
}

fn truncated(reason: &str) -> String {
    let mut end = reason.len().min(CLOSE_REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or_default().to_owned()
}
