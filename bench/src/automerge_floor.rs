//! What automerge alone costs per change of workload (a): a lower bound under every
//! relay built on it, and under the load devices that share the machine with it.
//!
//! One thread does both sides of (a)'s exchange for each document, in memory, with no
//! sockets, storage, framing or access rules: the phone puts one field and commits,
//! generates and encodes its sync message; the relay decodes it and applies the change,
//! then generates and encodes its acknowledgement; the phone decodes that and learns
//! that it has nothing more to send. Every relay measured does at least this per change
//! (the JS server runs the same Rust core compiled to wasm), and so do our load devices.
//!
//! The same exchange is measured twice: with the automerge the product uses (0.12), and
//! with automerge 0.6.1, the last release that kept a document's operations in a tree in
//! memory; from 0.7 on they are kept as compressed columns (the `hexane` crate). The
//! difference is what that change of automerge costs this workload, which tells how much
//! of (a)'s cost is ours to remove. Both load the same saved documents (the file format
//! did not change), so they start from the same history.

use std::time::Duration;

use anyhow::Context;
use automerge::Automerge;

use crate::peers;

/// The documents (a)'s load devices create, each saved as a whole document.
fn saved_documents(documents: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..documents)
        .map(|index| {
            let village = index % crate::workloads::VILLAGES;
            let record = peers::child_record(village, &format!("c{index}"))?;
            let mut document = Automerge::new();
            let mut transaction = document.transaction();
            record
                .save(&mut transaction)
                .context("the record could not be saved")?;
            transaction.commit();
            Ok(document.save())
        })
        .collect()
}

/// The exchange, written once against the API both automerge versions share (their types
/// are distinct, so each gets its own copy of the code).
macro_rules! exchange_with {
    ($module:ident, $automerge:ident) => {
        pub mod $module {
            use std::time::{Duration, Instant};

            use anyhow::bail;
            use $automerge::sync::{self, SyncDoc};
            use $automerge::transaction::Transactable;
            use $automerge::{Automerge, ROOT};

            /// One document as the phone and the relay each hold it, with their sync states.
            struct Pair {
                phone: Automerge,
                relay: Automerge,
                phone_sync: sync::State,
                relay_sync: sync::State,
            }

            /// Sends `from`'s next message, if it has one, encoded and decoded as on the
            /// wire, to `to`; answers whether there was one.
            fn deliver(
                from: &Automerge,
                from_sync: &mut sync::State,
                to: &mut Automerge,
                to_sync: &mut sync::State,
            ) -> anyhow::Result<bool> {
                let Some(message) = from.generate_sync_message(from_sync) else {
                    return Ok(false);
                };
                to.receive_sync_message(to_sync, sync::Message::decode(&message.encode())?)?;
                Ok(true)
            }

            impl Pair {
                fn phone_to_relay(&mut self) -> anyhow::Result<bool> {
                    deliver(
                        &self.phone,
                        &mut self.phone_sync,
                        &mut self.relay,
                        &mut self.relay_sync,
                    )
                }

                fn relay_to_phone(&mut self) -> anyhow::Result<bool> {
                    deliver(
                        &self.relay,
                        &mut self.relay_sync,
                        &mut self.phone,
                        &mut self.phone_sync,
                    )
                }
            }

            /// Sends every message either side has until neither has one (the first sync).
            fn settle(pair: &mut Pair) -> anyhow::Result<()> {
                // A first sync of one small document takes a few messages; more means a
                // bug here.
                for _ in 0..16 {
                    let sent = pair.phone_to_relay()?;
                    let answered = pair.relay_to_phone()?;
                    if !sent && !answered {
                        return Ok(());
                    }
                }
                bail!("the first sync did not settle")
            }

            /// The `saved` documents on the phone, each with `history` changes to its
            /// name made there first, then synced to an empty relay.
            fn synced_pairs(saved: &[Vec<u8>], history: usize) -> anyhow::Result<Vec<Pair>> {
                let mut pairs = Vec::with_capacity(saved.len());
                for bytes in saved {
                    let mut phone = Automerge::load(bytes)?;
                    for earlier in 0..history {
                        rename(&mut phone, &format!("h{earlier}"))?;
                    }
                    let mut pair = Pair {
                        phone,
                        relay: Automerge::new(),
                        phone_sync: sync::State::new(),
                        relay_sync: sync::State::new(),
                    };
                    settle(&mut pair)?;
                    pairs.push(pair);
                }
                Ok(pairs)
            }

            /// The phone's edit in (a): the name put and committed.
            fn rename(phone: &mut Automerge, value: &str) -> anyhow::Result<()> {
                let mut transaction = phone.transaction();
                transaction.put(ROOT, "name", value)?;
                transaction.commit();
                Ok(())
            }

            /// One change of (a), both sides, as automerge does it.
            fn round(pair: &mut Pair, value: &str) -> anyhow::Result<()> {
                rename(&mut pair.phone, value)?;
                if !pair.phone_to_relay()? {
                    bail!("the phone had no message for its change");
                }
                if !pair.relay_to_phone()? {
                    bail!("the relay had no acknowledgement");
                }
                if pair
                    .phone
                    .generate_sync_message(&mut pair.phone_sync)
                    .is_some()
                {
                    bail!("the phone still had something to send after the acknowledgement");
                }
                Ok(())
            }

            /// Microseconds of one thread per change, over the `saved` documents changed
            /// in rounds until `time` has passed. The documents' histories grow as in
            /// (a), where each gets a change about every 0.1 s for 10 s.
            pub fn microseconds_per_change(
                saved: &[Vec<u8>],
                time: Duration,
            ) -> anyhow::Result<f64> {
                let mut pairs = synced_pairs(saved, 0)?;
                let started = Instant::now();
                let mut changes = 0u64;
                let mut rounds = 0u64;
                while started.elapsed() < time {
                    rounds += 1;
                    let value = format!("r{rounds}");
                    for pair in &mut pairs {
                        round(pair, &value)?;
                        changes += 1;
                    }
                }
                Ok(started.elapsed().as_secs_f64() * 1e6 / changes.max(1) as f64)
            }

            /// Microseconds the relay takes to decode and take in the sync message of one
            /// change, on the `saved` documents after `history` earlier changes to the
            /// same field, over `rounds` changes to each. Only the relay's side is timed:
            /// it is what grows with a record's history on the relay.
            pub fn receive_microseconds(
                saved: &[Vec<u8>],
                history: usize,
                rounds: usize,
            ) -> anyhow::Result<f64> {
                let mut pairs = synced_pairs(saved, history)?;
                let mut receiving = Duration::ZERO;
                let mut changes = 0u64;
                for round in 0..rounds {
                    let value = format!("r{round}");
                    for pair in &mut pairs {
                        rename(&mut pair.phone, &value)?;
                        let Some(message) = pair.phone.generate_sync_message(&mut pair.phone_sync)
                        else {
                            bail!("the phone had no message for its change");
                        };
                        let encoded = message.encode();
                        let started = Instant::now();
                        pair.relay.receive_sync_message(
                            &mut pair.relay_sync,
                            sync::Message::decode(&encoded)?,
                        )?;
                        receiving += started.elapsed();
                        changes += 1;
                        if !pair.relay_to_phone()? {
                            bail!("the relay had no acknowledgement");
                        }
                    }
                }
                Ok(receiving.as_secs_f64() * 1e6 / changes.max(1) as f64)
            }
        }
    };
}

exchange_with!(current, automerge);
exchange_with!(op_tree, automerge_op_tree);

/// Microseconds per change with the automerge the product uses, then with automerge
/// 0.6.1, each over `documents` documents for `time`.
pub fn microseconds_per_change(documents: usize, time: Duration) -> anyhow::Result<(f64, f64)> {
    let saved = saved_documents(documents)?;
    let current = current::microseconds_per_change(&saved, time)?;
    let op_tree = op_tree::microseconds_per_change(&saved, time)?;
    Ok((current, op_tree))
}

/// The relay's receive of one change after `history` earlier changes to the same field,
/// in microseconds: with the automerge the product uses, then with automerge 0.6.1.
///
/// A field's overwritten values stay operations of its record, and with either version
/// the apply of a change takes longer the more operations the changed object holds (0.12
/// walks all of them), so a record edited often costs the relay more for each new edit.
/// (a)'s load devices edit each of their records about a hundred times in a ten-second
/// run.
pub fn receive_microseconds(
    documents: usize,
    history: usize,
    rounds: usize,
) -> anyhow::Result<(f64, f64)> {
    let saved = saved_documents(documents)?;
    let current = current::receive_microseconds(&saved, history, rounds)?;
    let op_tree = op_tree::receive_microseconds(&saved, history, rounds)?;
    Ok((current, op_tree))
}
