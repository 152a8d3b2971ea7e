//! `caresync`: the relay binary. The subcommands live in their own modules; this file only
//! parses the command line, sets up logging and dispatches.

mod cli;
mod routes;
mod serve;
mod shutdown;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    init_tracing();
    match cli.command {
        cli::Command::Serve(args) => serve::run(args),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
