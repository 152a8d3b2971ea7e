//! The relay's listening socket.
//!
//! Every accepted connection has Nagle's algorithm turned off (`TCP_NODELAY`). A sync
//! exchange is a few small frames each way; with Nagle on, a frame written while the
//! previous one is still unacknowledged waits for the peer's delayed ACK, which Linux
//! holds for up to 40 ms. A trace of the benchmark's probe showed exactly that: the p99 of
//! a change's way to the reviewer at 1,000 changes/s was 40 ms, nearly all of it between
//! the phone writing the frame and the relay reading it, and 5 ms once both ends set
//! `TCP_NODELAY` (`BENCHMARKS.md`). Browsers already set it on their WebSockets.

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};

/// The listener [`without_nagle`] gives (a named type, so that axum's connection info
/// knows it).
pub type NoDelayListener = TapIo<TcpListener, fn(&mut TcpStream)>;

/// `listener`, setting `TCP_NODELAY` on each connection it accepts.
pub fn without_nagle(listener: TcpListener) -> NoDelayListener {
    listener.tap_io(set_nodelay)
}

fn set_nodelay(stream: &mut TcpStream) {
    // A socket that refuses the option still works, only slower; not a reason to drop the
    // phone.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::serve::Listener;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_frames_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut listener = without_nagle(listener);
        let client = tokio::spawn(tokio::net::TcpStream::connect(address));
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
        client.await.unwrap().unwrap();
    }
}
