//! Design §5: the relay killed with SIGKILL mid-sync, 50 times, restarted each time on the
//! same database while four phones write; no acknowledged change may be lost, the database
//! must pass `PRAGMA integrity_check`, and the phones must converge. The run itself is
//! `caresync_tests::crash`; `crash-restart --cycles N` runs it longer.

use caresync_tests::crash::{run_crash_cycles, seed_from_env};

const CYCLES: u32 = 50;

#[test]
fn fifty_kills_mid_sync_lose_no_acknowledged_change() -> anyhow::Result<()> {
    let report = run_crash_cycles(CYCLES, seed_from_env()?)?;
    assert_eq!(report.cycles, CYCLES);
    // A run in which nothing was acknowledged would check nothing.
    assert!(
        report.changes_acknowledged > u64::from(CYCLES),
        "only {} changes were acknowledged: {report}",
        report.changes_acknowledged
    );
    Ok(())
}
