//! `caresync serve`: bind, announce the address, serve until a shutdown signal.

use std::io::Write;

use anyhow::Context;

use crate::cli::ServeArgs;
use crate::{routes, shutdown};

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing::info!(db = %args.db.display(), "--db is not yet used: SQLite persistence arrives with the relay");
    if args.demo {
        tracing::info!("--demo is not yet used: demo accounts arrive with the relay");
    }
    if !args.web_dir.is_dir() {
        tracing::warn!(dir = %args.web_dir.display(), "web app directory not found; `/` will answer 404");
    }

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;

    // Tests and scripts read this line from stdout to learn the port.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{local}").context("cannot write to stdout")?;
    stdout.flush().context("cannot flush stdout")?;
    drop(stdout);

    axum::serve(listener, routes::app(&args.web_dir))
        .with_graceful_shutdown(shutdown::signal())
        .await
        .context("server error")?;
    tracing::info!("stopped");
    Ok(())
}
