//! Bounds the relay's driver puts on each WebSocket connection, on top of the engine's own
//! (`caresync_core::sync::limits`) and the codec's (`caresync_core::protocol`). Each is a
//! named constant with its unit last so the whole budget can be read in one place.

/// Largest WebSocket message accepted. The codec refuses bigger frames anyway; the socket
/// stops reading a bigger one before it is buffered whole.
pub const WEBSOCKET_MESSAGE_BYTES_MAX: usize = caresync_core::protocol::FRAME_BYTES_MAX;

/// Largest single WebSocket frame (a message may be split into frames).
pub const WEBSOCKET_FRAME_BYTES_MAX: usize = caresync_core::protocol::FRAME_BYTES_MAX;

/// What each socket's read buffer starts at (the WebSocket library's default is 128 KiB).
/// Most sync messages are a few hundred bytes, and a bigger one grows the buffer as it
/// arrives; idle phones are the relay's many connections, and their buffers were most of
/// the relay's memory (143 KB per joined socket with the default).
pub const WEBSOCKET_READ_BUFFER_BYTES: usize = 8 * 1024;

/// Messages per second one connection may send, sustained. A first sync of a village sends
/// one message per document, so the bucket also allows a burst.
pub const MESSAGES_PER_SECOND_MAX: u32 = 500;

/// The same for an account that follows many villages (township reviewers, the bureau):
/// its phone answers every change any of them makes, so its rate is the rate at which the
/// relay stores changes in its scope, and a limit below what the relay can store closes a
/// reviewer that is only keeping up. The benchmark's reviewer, following 200 busy devices,
/// was closed at 500 a second when the relay stored 1,000, and at 5,000 when the relay
/// stored about 5,000 in (b)'s phase (30 Nov); the relay stores about 8,000 a second on
/// this machine with nobody following, so the limit is well above that.
pub const MESSAGES_PER_SECOND_MANY_VILLAGES_MAX: u32 = 20_000;

/// Messages one connection may send at once before the sustained rate applies.
pub const MESSAGES_BURST_MAX: u32 = 5_000;

/// A connection that sends nothing (not even a pong) for this long is closed.
pub const IDLE_MS_MAX: u64 = 60_000;

/// Interval of the pings that keep NAT mappings open and detect dead phones.
pub const PING_INTERVAL_MS: u64 = 20_000;

/// How often an open connection re-checks its session (logout, expiry, disabled account).
pub const SESSION_RECHECK_MS: u64 = 30_000;

/// How long a connection the relay closes waits for the peer's close frame, reading (and
/// dropping) what the peer still sends, before the socket is dropped.
pub const CLOSE_HANDSHAKE_MS_MAX: u64 = 1_000;

/// Frames queued for one connection's socket before the relay gives up on a reader that
/// does not read.
pub const OUTGOING_FRAMES_QUEUED_MAX: usize = 65_536;

/// Frames already queued for a connection that its task writes to the socket together,
/// with one flush (one `sendmsg`, a few TCP segments) instead of one each. A township
/// reviewer is sent every change of its villages, thousands a second under load, and
/// each write was a system call on both sides. Bounded so that one write stays a
/// moment's work (frames are a few hundred bytes; tungstenite writes out its buffer on
/// its own past 128 KiB).
pub const OUTGOING_FRAMES_PER_WRITE_MAX: usize = 64;

/// Bytes of frames, from all connections together, that may wait for the engine thread.
/// A connection reads its next frame only once its last fits (TCP flow control then holds
/// the sender back), so a client sending large frames faster than the engine handles them
/// cannot grow the relay's memory; the rate limit alone allowed 500 frames of up to 8 MiB
/// a second per connection. Ordinary sync frames are a few hundred bytes and never wait.
pub const ENGINE_QUEUE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Storage requests the storage thread takes into one transaction (group commit).
pub const STORAGE_BATCH_OPS_MAX: usize = 2_048;

/// Events the engine thread handles before it flushes effects to sockets and storage.
pub const ENGINE_BATCH_EVENTS_MAX: usize = 1_024;
/// Time the engine thread spends handling events before it flushes their effects, so that
/// storage requests and replies leave within this however busy the relay is. A batch of
/// 1,024 events took about 110 ms under the benchmark's load. A change waits for the end
/// of the batch it arrived in before its write reaches storage, so this is part of every
/// durable acknowledgement's time. Against 20 ms, 10 ms took the reviewer's p99 under (a)
/// from 103 to 77 ms at the same rate (three interleaved runs each, 30 Nov). Shorter costs
/// throughput: at 5 ms the p99 was 47 ms but the relay stored 7% fewer changes a second
/// with 8% more CPU per change, and at 2 ms (29 Nov) storage committed twice as often in
/// smaller transactions and each change cost it about 40% more time.
pub const ENGINE_BATCH_MS_MAX: u64 = 10;
/// Frames a phone's connection has handled per turn when several connections have frames
/// waiting for the engine thread (`turns.rs`).
pub const ENGINE_TURN_FRAMES: usize = 1;
/// The same for an account that follows many villages: it answers every change of each of
/// them, so it needs about as many frames per turn as the phones it follows together have.
/// 256 covers the benchmark's 200 busy villages and a township's 40 many times over.
pub const ENGINE_TURN_FRAMES_MANY_VILLAGES: usize = 256;

/// Time given to in-flight work at shutdown before the relay stops anyway.
pub const SHUTDOWN_GRACE_MS: u64 = 10_000;
