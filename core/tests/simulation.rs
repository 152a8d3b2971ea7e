//! Seeded simulation of several devices and a relay, all built from the same sans-IO engine.
//!
//! Every seed plays a random history: devices create and edit documents of their village
//! while the network delivers frames in a random interleaving, connections drop and come
//! back, storage answers late, and the relay reboots from what its storage holds (losing
//! writes that were not yet confirmed). Then the network heals and every replica must hold
//! exactly the relay's durable state of every document its village may see.
//!
//! A failing seed is printed; replay it alone with `CARESYNC_SEED=<seed> cargo test -p
//! caresync-core --test simulation`, adding `CARESYNC_SIM_TRACE=1` to see what happened.
//! `CARESYNC_SEEDS=<n>` changes how many seeds run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use caresync_core::sync::{AuditEvent, ConnectionId, StorageCompletion, StorageOp};
use support::World;

const DEFAULT_SEEDS: u64 = 10_000;

/// What one seed exercised, so the suite can show the histories were not trivial.
#[derive(Default)]
struct Exercised {
    reboots: usize,
    evictions: usize,
    refusals: usize,
    shared_documents: usize,
}

fn run_seed(seed: u64) -> Result<Exercised, String> {
    let world = World::play_history(seed)?;
    let shared_documents = world.check_converged()?;
    let refusals = world
        .relay_audit
        .iter()
        .filter(|event| matches!(event, AuditEvent::ChangeRefused { .. }))
        .count();
    Ok(Exercised {
        reboots: world.reboots,
        evictions: world.evictions,
        refusals,
        shared_documents,
    })
}

#[test]
fn all_replicas_converge_for_every_seed() {
    let seeds: Vec<u64> = match std::env::var("CARESYNC_SEED") {
        Ok(seed) => vec![seed.parse().expect("CARESYNC_SEED must be a number")],
        Err(_) => {
            let count = std::env::var("CARESYNC_SEEDS")
                .ok()
                .and_then(|count| count.parse().ok())
                .unwrap_or(DEFAULT_SEEDS);
            (0..count).collect()
        }
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let chunks: Vec<Vec<u64>> = (0..threads)
        .map(|t| seeds.iter().copied().skip(t).step_by(threads).collect())
        .collect();
    let results: Vec<(u64, Result<Exercised, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|seed| (seed, run_seed(seed)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a simulation thread panicked"))
            .collect()
    });
    let failures: Vec<(u64, &String)> = results
        .iter()
        .filter_map(|(seed, result)| result.as_ref().err().map(|error| (*seed, error)))
        .collect();
    if let Some((seed, error)) = failures.first() {
        panic!(
            "{} of {} seeds failed; first: seed {seed}: {error}\nreplay with CARESYNC_SEED={seed} cargo test -p caresync-core --test simulation",
            failures.len(),
            seeds.len()
        );
    }
    let total = results
        .iter()
        .filter_map(|(_, result)| result.as_ref().ok())
        .fold(Exercised::default(), |sum, one| Exercised {
            reboots: sum.reboots + one.reboots,
            evictions: sum.evictions + one.evictions,
            refusals: sum.refusals + one.refusals,
            shared_documents: sum.shared_documents + one.shared_documents,
        });
    println!(
        "{} seeds converged; they rebooted the relay {} times, evicted {} idle documents, refused {} changes and merged {} documents edited on several devices",
        seeds.len(),
        total.reboots,
        total.evictions,
        total.refusals,
        total.shared_documents
    );
}

/// The simulation is only worth something if it can fail: a relay that forgets to store
/// accepted changes must be caught.
#[test]
fn a_relay_that_loses_writes_is_caught() {
    let mut world = World::new(7);
    world.connect(0);
    world.edit(0);
    for _ in 0..200 {
        world.complete_device_storage(0);
        let connections: Vec<ConnectionId> = world.links.keys().copied().collect();
        for connection in connections {
            world.deliver(connection, true);
            world.deliver(connection, false);
        }
        // Confirm writes without storing them.
        if let Some((id, op)) = world.relay.pending.pop_front() {
            let completion = match op {
                StorageOp::Load { document } => StorageCompletion::Loaded {
                    id,
                    document,
                    stored: None,
                },
                _ => StorageCompletion::Written { id },
            };
            world.relay.repo.storage_completed(world.now_ms, completion);
            world.pump();
        }
    }
    assert!(world.check_converged().is_err());
}
