//! Histories of the simulation that once failed, each named after what it found and kept
//! so the fix cannot quietly come undone if the default seed range changes. Seeds replay
//! the history of `support::World::play_history`; if the harness changes so that a seed
//! no longer plays the same history, keep the test and note it here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use support::World;

fn converges(seed: u64) {
    let world = World::play_history(seed).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    world
        .check_converged()
        .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
}

/// A v2 sync entry holding a whole document, handed to `load_incremental` on a non-empty
/// document, was only partly applied; the sender counted everything as sent and both sides
/// asked each other forever. Fixed by splitting entries into single changes (`chunks.rs`).
#[test]
fn seed_126_whole_document_entry_was_partly_applied() {
    converges(126);
}

/// A v2 entry of several concatenated changes was taken for a document and refused as
/// malformed, so the device refused its own relay on every reconnect.
#[test]
fn seed_8_concatenated_changes_in_one_entry() {
    converges(8);
}

/// A change whose dependency was hidden by a bloom filter false positive was dropped; the
/// receiver never asked for the dependency, the sender never resent it. Fixed by keeping
/// such changes as orphans and asking for their missing dependencies in `need`.
#[test]
fn seed_322_missing_dependencies_were_never_asked_for() {
    converges(322);
}
