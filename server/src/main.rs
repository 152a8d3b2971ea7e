//! `caresync`: the relay binary. It parses the command line, sets up logging and hands over
//! to the library.

use clap::Parser;

use caresync_server::cli;

/// The relay allocates and frees many small buffers per change (automerge's columns, sync
/// messages, frames); glibc's allocator was about a fifth of the engine thread's time
/// under load. mimalloc keeps per-thread free lists for small sizes.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    init_tracing();
    cli::run(cli)
}

fn init_tracing() {
    // automerge opens an info-level span each time it parses a column of a change; formatting
    // them was 2% of the relay's time under load, and they say nothing an operator needs.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,automerge=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
