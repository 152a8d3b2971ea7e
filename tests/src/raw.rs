//! [`RawPeer`]: one WebSocket to the relay that speaks the automerge-repo protocol a message
//! at a time, with no engine behind it.
//!
//! A [`crate::Device`] runs core's whole engine, which always does the right thing: it joins
//! first, answers every sync message and never sends what it may not. Tests of the relay's
//! defences need the opposite: send exactly the message chosen (out of order, for a document
//! the account may not see, a flood of them) and see exactly what the relay answers, down to
//! the close code. [`upgrade`] also reports the HTTP status of a refused upgrade.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use automerge::ActorId;
use caresync_core::protocol::{Message, PROTOCOL_VERSION, PeerId, PeerMetadata};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long [`upgrade`] waits for the relay to answer the upgrade.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// An open WebSocket to the relay.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What arrived on a socket.
#[derive(Debug)]
pub enum Received {
    Message(Message),
    /// The relay sent a close frame (`code` is `None` for a close frame without one) or the
    /// connection ended without one (`code` `None`, `reason` says how).
    Closed {
        code: Option<u16>,
        reason: String,
    },
    /// Nothing arrived in the time given.
    Nothing,
}

impl Received {
    /// A short description for tables and failure messages: the message type or the close.
    pub fn describe(&self) -> String {
        match self {
            Received::Message(message) => message.type_name().to_owned(),
            Received::Closed {
                code: Some(code),
                reason,
            } => format!("close {code} ({reason})"),
            Received::Closed { code: None, reason } => format!("closed: {reason}"),
            Received::Nothing => "nothing".to_owned(),
        }
    }
}

/// Opens a WebSocket to `url` (which may carry `?token=`), sending `Origin` if given.
/// `Ok(Err(status))` when the relay refused the upgrade with that HTTP status.
pub async fn upgrade(url: &str, origin: Option<&str>) -> anyhow::Result<Result<Socket, u16>> {
    let mut request = url
        .into_client_request()
        .with_context(|| format!("{url} is not a WebSocket URL"))?;
    if let Some(origin) = origin {
        request.headers_mut().insert(
            "Origin",
            HeaderValue::from_str(origin).context("the Origin is not a header value")?,
        );
    }
    // Without Nagle's algorithm, as browsers and `Device` connect.
    let upgrade = tokio_tungstenite::connect_async_with_config(request, None, true);
    match tokio::time::timeout(UPGRADE_TIMEOUT, upgrade).await {
        Ok(Ok((socket, _response))) => Ok(Ok(socket)),
        Ok(Err(WsError::Http(response))) => Ok(Err(response.status().as_u16())),
        Ok(Err(error)) => Err(error).with_context(|| format!("cannot open {url}")),
        Err(_) => bail!("the upgrade of {url} was not answered within {UPGRADE_TIMEOUT:?}"),
    }
}

/// A protocol peer on one socket. Every method sends or reads exactly one thing.
#[derive(Debug)]
pub struct RawPeer {
    socket: Socket,
    peer_id: PeerId,
    relay_id: PeerId,
}

impl RawPeer {
    /// Opens a socket as [`upgrade`] does and fails if the upgrade is refused.
    pub async fn connect(url: &str, name: &str) -> anyhow::Result<RawPeer> {
        match upgrade(url, None).await? {
            Ok(socket) => Ok(RawPeer::new(socket, name)),
            Err(status) => Err(anyhow!("{name}: the upgrade was refused with {status}")),
        }
    }

    /// Wraps an open socket. The peer id is `name` and a random suffix, because the relay
    /// replaces an older connection that joins with the same id.
    pub fn new(socket: Socket, name: &str) -> RawPeer {
        let suffix: String = ActorId::random()
            .to_bytes()
            .iter()
            .take(4)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        RawPeer {
            socket,
            peer_id: PeerId::from(format!("{name}-{suffix}")),
            // Until the relay's `peer` answer names it.
            relay_id: PeerId::from("relay"),
        }
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id.clone()
    }

    /// The relay's peer id once [`RawPeer::join`] got the answer, `relay` before.
    pub fn relay_id(&self) -> PeerId {
        self.relay_id.clone()
    }

    /// Sends `join` offering `extensions` and returns the first answer; a `peer` answer
    /// also records the relay's peer id.
    pub async fn join(
        &mut self,
        extensions: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<Received> {
        let join = Message::Join {
            sender_id: self.peer_id.clone(),
            supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: Some(true),
                caresync_extensions: extensions.iter().map(|e| (*e).to_owned()).collect(),
            }),
        };
        self.send(&join).await?;
        let answer = self.receive(timeout).await?;
        if let Received::Message(Message::Peer { sender_id, .. }) = &answer {
            self.relay_id = sender_id.clone();
        }
        Ok(answer)
    }

    /// Sends one protocol message as one binary frame.
    pub async fn send(&mut self, message: &Message) -> anyhow::Result<()> {
        self.send_frame(message.encode()).await
    }

    /// Sends one binary frame as it is.
    pub async fn send_frame(&mut self, frame: Vec<u8>) -> anyhow::Result<()> {
        self.socket
            .send(WsMessage::Binary(frame.into()))
            .await
            .with_context(|| format!("{}: sending a frame failed", self.peer_id.0))
    }

    /// The next message or close, skipping pings and pongs (tungstenite answers pings
    /// while reading); [`Received::Nothing`] after `timeout`. A frame that does not decode
    /// is an error: the relay only sends valid messages.
    pub async fn receive(&mut self, timeout: Duration) -> anyhow::Result<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.socket.next()).await else {
                return Ok(Received::Nothing);
            };
            match next {
                Some(Ok(WsMessage::Binary(frame))) => {
                    let message = Message::decode(&frame).with_context(|| {
                        format!("{}: the relay sent an undecodable frame", self.peer_id.0)
                    })?;
                    return Ok(Received::Message(message));
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    return Ok(match frame {
                        Some(frame) => Received::Closed {
                            code: Some(u16::from(frame.code)),
                            reason: frame.reason.to_string(),
                        },
                        None => Received::Closed {
                            code: None,
                            reason: "a close frame without a code".to_owned(),
                        },
                    });
                }
                Some(Ok(WsMessage::Text(text))) => {
                    bail!("{}: the relay sent a text frame: {text}", self.peer_id.0)
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    return Ok(Received::Closed {
                        code: None,
                        reason: format!("the socket failed: {error}"),
                    });
                }
                None => {
                    return Ok(Received::Closed {
                        code: None,
                        reason: "the connection ended".to_owned(),
                    });
                }
            }
        }
    }

    /// The socket, for tests that write frames below the protocol (fragments, floods).
    pub fn socket_mut(&mut self) -> &mut Socket {
        &mut self.socket
    }

    /// The socket itself, for tests that read and write it from different tasks.
    pub fn into_socket(self) -> Socket {
        self.socket
    }

    /// Closes the socket with a normal close frame, ignoring a relay that already went.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
