//! WebSocket close codes the relay sends, so that clients and tests can tell why a socket
//! closed. Standard codes from RFC 6455 §7.4.1 where one fits; 4000–4999 is the range the
//! RFC leaves to applications.

/// The relay is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// The peer broke the protocol (undecodable frame, message before `join`).
pub const PROTOCOL_ERROR: u16 = 1002;
/// The peer sent a text message; the protocol is binary CBOR only.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A refusal or a rate limit: the peer's behaviour is not allowed.
pub const POLICY_VIOLATION: u16 = 1008;
/// A message larger than `WEBSOCKET_MESSAGE_BYTES_MAX`.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// Something failed inside the relay while handling this connection.
pub const INTERNAL_ERROR: u16 = 1011;
/// The session ended (logout, expiry or a disabled account).
pub const SESSION_ENDED: u16 = 4001;
/// Nothing arrived for `IDLE_MS_MAX`.
pub const IDLE_TIMEOUT: u16 = 4002;
/// The handshake did not complete in time.
pub const HANDSHAKE_TIMEOUT: u16 = 4003;
/// The peer sent more messages per second than allowed.
pub const RATE_LIMITED: u16 = 4008;
