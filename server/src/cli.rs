//! The command line (clap derive).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// caresync: the relay of the offline-first record and sync system.
#[derive(Debug, Parser)]
#[command(name = "caresync", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app and the health check over HTTP.
    ///
    /// This first version serves the static web app and `/healthz` only; the WebSocket
    /// sync relay with SQLite persistence comes in a later release.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// SQLite database file. Accepted but not yet used: persistence arrives with the relay.
    #[arg(long, default_value = "./caresync.db")]
    pub db: PathBuf,

    /// Address to listen on (use port 0 to let the system pick a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Load demo accounts and data. Accepted but not yet used: demo data arrives with the relay.
    #[arg(long)]
    pub demo: bool,

    /// Directory of the web app served at `/`.
    #[arg(long, default_value = "web-demo")]
    pub web_dir: PathBuf,
}

/// Runs one subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => crate::serve::run(args),
    }
}
