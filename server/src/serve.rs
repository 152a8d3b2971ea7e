//! `caresync serve`: open the database, start the relay's threads, serve HTTP until a
//! shutdown signal, then stop in order — stop accepting, close sockets, let storage commit
//! what is in flight — so that nothing a device was told is stored gets lost.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::clock::now_ms;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::relay::{EngineEvent, Relay, limits::SHUTDOWN_GRACE_MS};
use crate::state::{AppState, Settings};
use crate::{demo_install, listener, routes, shutdown, store};

/// Interval of the engine's clock ticks (handshake timeouts, eviction).
pub const TICK_INTERVAL_MS: u64 = 1_000;

/// How often the relay looks for org units added to the database while it serves.
pub const ORG_TREE_RELOAD_MS: u64 = 5_000;

/// Org units are added with `caresync org add` against the database of a running relay;
/// this picks them up so that a new village's director can sync without a restart.
async fn watch_org_tree(state: AppState) {
    let mut known = sorted_units(&state.tree());
    let mut interval = tokio::time::interval(Duration::from_millis(ORG_TREE_RELOAD_MS));
    loop {
        interval.tick().await;
        let tree = match state.db.run(store::load_org_tree).await {
            Ok(tree) => tree,
            Err(error) => {
                tracing::warn!(%error, "cannot re-read the org units");
                continue;
            }
        };
        let units = sorted_units(&tree);
        if units == known {
            continue;
        }
        tracing::info!(units = units.len(), "org units changed; using the new tree");
        known = units;
        state.set_tree(tree.clone());
        if state
            .engine
            .send(EngineEvent::OrgTree(Box::new(tree)))
            .is_err()
        {
            break;
        }
    }
}

fn sorted_units(tree: &caresync_core::domain::OrgTree) -> Vec<caresync_core::domain::OrgUnit> {
    let mut units: Vec<_> = tree.units().cloned().collect();
    units.sort_by(|a, b| a.code.cmp(&b.code));
    units
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let connection = store::open_connection(&args.db)
        .with_context(|| format!("cannot open the database {}", args.db.display()))?;
    if args.demo {
        let today = crate::clock::today().context("the clock is out of range")?;
        match demo_install::install_if_empty(&args.db, today)? {
            Some(accounts) => {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "demo data installed; accounts (password demo-password):"
                )?;
                for account in accounts {
                    writeln!(out, "  {account}")?;
                }
            }
            None => tracing::info!("the database already has accounts; demo data not added"),
        }
    }
    let tree = store::load_org_tree(&connection).context("cannot read the org units")?;
    drop(connection);
    if !args.web_dir.is_dir() {
        tracing::warn!(dir = %args.web_dir.display(), "web app directory not found; `/` will answer 404");
    }

    let metrics = Arc::new(Metrics::default());
    let relay = Relay::start(&args.db, tree.clone(), Arc::clone(&metrics))
        .context("cannot start the relay")?;
    let (stop_sockets, stopping) = watch::channel(false);
    let settings = Settings {
        session_ttl_ms: args.session_ttl_secs.saturating_mul(1_000),
        allowed_origins: args.allow_origin.clone(),
        idle_timeout_ms: args.idle_timeout_secs.saturating_mul(1_000),
        engine_queue_bytes_max: args.engine_queue_bytes_max,
    };
    let state = AppState::new(
        Db::new(&args.db),
        relay.events.clone(),
        metrics,
        settings,
        tree,
        stopping,
    );

    let ticks = state.engine.clone();
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(TICK_INTERVAL_MS));
        loop {
            interval.tick().await;
            if ticks.send(EngineEvent::Tick).is_err() {
                break;
            }
        }
    });

    let watcher = tokio::spawn(watch_org_tree(state.clone()));

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(
        db = %args.db.display(),
        started_ms = started.elapsed().as_millis(),
        "relay ready"
    );
    // Tests and scripts read this line from stdout to learn the port.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{local}").context("cannot write to stdout")?;
    stdout.flush().context("cannot flush stdout")?;
    drop(stdout);

    let sockets = Arc::clone(&state.sockets);
    let app = routes::app(&args.web_dir, state);
    axum::serve(
        listener::without_nagle(listener),
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown::signal().await;
        let _ = stop_sockets.send(true);
    })
    .await
    .context("server error")?;

    // Sockets were told to close; give them a moment to send their close frames.
    let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_GRACE_MS);
    while sockets.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ticker.abort();
    watcher.abort();
    let stopped_at = now_ms();
    tokio::task::spawn_blocking(move || relay.stop())
        .await
        .context("the relay did not stop cleanly")?;
    tracing::info!(took_ms = now_ms().saturating_sub(stopped_at), "stopped");
    Ok(())
}
