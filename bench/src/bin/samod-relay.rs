//! `samod-relay`: the smallest sync server the `samod` crate makes, as a peer for the
//! benchmark. A WebSocket listener on loopback hands every accepted socket to one samod
//! `Repo` with samod's filesystem storage. It runs as its own process so that its memory is
//! measured on its own.
//!
//! `samod-relay --data-dir DIR [--addr 127.0.0.1:0]`; prints `listening on ws://ADDR`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use samod::storage::TokioFilesystemStorage;
use samod::{Repo, ShareConfig, Transport, Url};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The same allocator as caresync's relay, so that the ratio against this peer is not
/// about allocators.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let mut data_dir = None;
    let mut addr = "127.0.0.1:0".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(args.next().context("--data-dir DIR")?)),
            "--addr" => addr = args.next().context("--addr HOST:PORT")?,
            other => bail!("unknown argument {other}"),
        }
    }
    let data_dir = data_dir.context("--data-dir is required")?;
    // Two worker threads, like the machine: the other relays get no more.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    runtime.block_on(serve(data_dir, addr))
}

async fn serve(data_dir: PathBuf, addr: String) -> anyhow::Result<()> {
    // Like the JS sync server (`sharePolicy: false`): serve every document a peer asks
    // for or syncs, but do not push documents to peers that never asked for them.
    let repo = Repo::build_tokio()
        .with_storage(TokioFilesystemStorage::new(&data_dir))
        .with_share_policy(ShareConfig::read_write().with_announce(false))
        .load()
        .await;
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("no local address")?;
    let url = Url::parse(&format!("ws://{local}")).context("a bad listening URL")?;
    let acceptor = repo
        .make_acceptor(url)
        .map_err(|_| anyhow::anyhow!("the samod repo stopped"))?;
    println!("listening on ws://{local}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: keep serving the sockets already open.
            Err(error) => {
                eprintln!("accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(socket) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (sink, stream) = socket.split();
            // samod speaks bytes: binary frames in, binary frames out; pings are answered
            // by tungstenite while the stream is read, and a close ends the stream.
            let incoming = stream
                .try_filter_map(|message| async move {
                    Ok::<_, WsError>(match message {
                        Message::Binary(bytes) => Some(bytes.to_vec()),
                        _ => None,
                    })
                })
                .take_while(|item| {
                    futures_util::future::ready(!matches!(
                        item,
                        Err(WsError::ConnectionClosed | WsError::AlreadyClosed)
                    ))
                });
            let outgoing = sink.with(|bytes: Vec<u8>| async move {
                Ok::<_, WsError>(Message::Binary(bytes.into()))
            });
            if acceptor
                .accept(Transport::new(Box::pin(incoming), Box::pin(outgoing)))
                .is_err()
            {
                eprintln!("the samod repo stopped");
            }
        });
    }
}
