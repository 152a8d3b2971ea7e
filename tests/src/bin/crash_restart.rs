//! `crash-restart`: the crash-restart run of the suite, for longer runs.
//!
//! ```text
//! cargo run -p caresync-tests --bin crash-restart -- --cycles 500 [--seed S]
//! ```
//!
//! Without `--seed` the seed comes from `CARESYNC_CRASH_SEED` or the clock; it is printed
//! first, so a failing run can be repeated.

use anyhow::{Context, bail};
use caresync_tests::crash::{run_crash_cycles, seed_from_env};

const USAGE: &str = "usage: crash-restart [--cycles N] [--seed S]";
const DEFAULT_CYCLES: u32 = 50;

fn main() -> anyhow::Result<()> {
    let mut cycles = DEFAULT_CYCLES;
    let mut seed = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cycles" => {
                let value = args.next().context(USAGE)?;
                cycles = value
                    .parse()
                    .with_context(|| format!("--cycles {value:?} is not a number; {USAGE}"))?;
            }
            "--seed" => {
                let value = args.next().context(USAGE)?;
                seed = Some(
                    value
                        .parse()
                        .with_context(|| format!("--seed {value:?} is not a number; {USAGE}"))?,
                );
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    let seed = match seed {
        Some(seed) => seed,
        None => seed_from_env()?,
    };
    run_crash_cycles(cycles, seed)?;
    Ok(())
}
