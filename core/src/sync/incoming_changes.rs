//! Judging the changes a peer sent before any of them reaches the document.
//!
//! Changes are never handed to the live document through `receive_sync_message`: automerge
//! would apply them (or queue them until their dependencies arrive) without asking anyone.
//! Instead they are sorted out here (new or held already, dependencies present or not, in
//! causal order), and each new one is judged on the state it was made on (its
//! dependencies), as design §3.4 requires.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, Change, ChangeHash};

use super::chunks::{ChunkError, changes_in, inflated_bytes};
use super::held::holds;
use super::limits::{CHANGES_PER_MESSAGE_MAX, INFLATED_BYTES_PER_MESSAGE_MAX};
use super::policy::{Policy, Refusal, RefusalCode};
use crate::domain::DocumentMeta;
use crate::protocol::DocumentId;

/// Changes that passed every check, in causal order, with the metadata to record.
#[derive(Debug)]
pub(crate) struct AcceptedChanges {
    pub changes: Vec<Change>,
    pub meta: Option<DocumentMeta>,
}

/// What a message's changes amount to against the state we hold.
#[derive(Debug)]
pub(crate) struct NewChanges {
    /// The changes `latest` lacks whose dependencies are all present (in `latest` or among
    /// these), in causal order.
    pub applicable: Vec<Change>,
    /// Changes whose dependencies are missing, as they arrived. The peer counts them as
    /// sent and will not send them again, so they are kept and retried with the peer's
    /// next message (automerge itself would queue them inside the document, where nobody
    /// could judge them).
    pub orphans: Vec<Vec<u8>>,
}

/// Reads `chunks` and sorts out which of their changes `latest` lacks and can take.
///
/// Every entry is split into individual changes first (see `chunks.rs`): handing a v2
/// entry to `load_incremental` was seen to apply only part of it, which left the sender
/// believing it had sent everything and the two sides asking each other forever.
pub(crate) fn new_changes(latest: &Automerge, chunks: &[&[u8]]) -> Result<NewChanges, Refusal> {
    let unreadable = |error: ChunkError| Refusal {
        code: match error {
            ChunkError::TooMany(_) | ChunkError::InflatesTooFar => RefusalCode::TooLarge,
            _ => RefusalCode::Malformed,
        },
        message: format!("the changes could not be read: {error}"),
    };
    let mut received: Vec<Change> = Vec::new();
    let mut inflated = 0usize;
    for chunk in chunks {
        // Counted before automerge decodes the chunk, since it inflates without a bound.
        let room = INFLATED_BYTES_PER_MESSAGE_MAX.saturating_sub(inflated);
        inflated = inflated.saturating_add(inflated_bytes(chunk, room).map_err(unreadable)?);
        let room = CHANGES_PER_MESSAGE_MAX.saturating_sub(received.len());
        received.extend(changes_in(chunk, room).map_err(unreadable)?);
    }
    // Each change is counted once: a peer that sends it again (its earlier copy comes back
    // here as an orphan too) must not make the orphans grow with every message.
    let mut seen = BTreeSet::new();
    let mut new: Vec<Change> = Vec::new();
    for change in received {
        let hash = change.hash();
        if seen.insert(hash) && !holds(latest, &hash) {
            new.push(change);
        }
    }
    let (applicable, waiting) = causal_order(new, latest);
    let orphans = waiting
        .iter()
        .map(|change| change.raw_bytes().to_vec())
        .collect();
    Ok(NewChanges {
        applicable,
        orphans,
    })
}

/// Sorts changes new to `latest` so that each comes after those of its dependencies that
/// are among them; they come in the order the peer sent them, which nothing obliges to be
/// causal. A change can be applied once every dependency is held or can be applied itself;
/// the second list is what is left, waiting for its dependencies as automerge's own queue
/// would, in the order it came. One pass (Kahn's algorithm), so a long history sent in any
/// order costs time in proportion to its length.
fn causal_order(changes: Vec<Change>, latest: &Automerge) -> (Vec<Change>, Vec<Change>) {
    let in_set: BTreeSet<ChangeHash> = changes.iter().map(Change::hash).collect();
    let mut waiting_on: BTreeMap<ChangeHash, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<ChangeHash, Vec<ChangeHash>> = BTreeMap::new();
    let mut ready: Vec<ChangeHash> = Vec::new();
    for change in &changes {
        let hash = change.hash();
        let mut deps_in_set = 0usize;
        let mut lacks_one = false;
        for dep in change.deps() {
            if in_set.contains(dep) {
                deps_in_set += 1;
                dependents.entry(*dep).or_default().push(hash);
            } else if !holds(latest, dep) {
                lacks_one = true;
            }
        }
        if lacks_one {
            // Never ready: it and everything after it wait.
            continue;
        }
        if deps_in_set == 0 {
            ready.push(hash);
        }
        waiting_on.insert(hash, deps_in_set);
    }
    let mut by_hash: BTreeMap<ChangeHash, Change> = BTreeMap::new();
    let mut arrival: Vec<ChangeHash> = Vec::with_capacity(changes.len());
    for change in changes {
        arrival.push(change.hash());
        by_hash.insert(change.hash(), change);
    }
    let mut ordered = Vec::with_capacity(by_hash.len());
    while let Some(hash) = ready.pop() {
        if let Some(change) = by_hash.remove(&hash) {
            ordered.push(change);
        }
        for dependent in dependents.remove(&hash).unwrap_or_default() {
            if let Some(count) = waiting_on.get_mut(&dependent) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.push(dependent);
                }
            }
        }
    }
    let left = arrival
        .iter()
        .filter_map(|hash| by_hash.remove(hash))
        .collect();
    (ordered, left)
}

pub(crate) fn sorted(hashes: &[ChangeHash]) -> Vec<ChangeHash> {
    let mut hashes = hashes.to_vec();
    hashes.sort();
    hashes
}

/// Runs the policy on every change, each judged on the document at its dependencies.
pub(crate) fn judge<P: Policy>(
    policy: &P,
    who: &P::Principal,
    document: &DocumentId,
    recorded: Option<&DocumentMeta>,
    latest: &Automerge,
    scratch: &Automerge,
    changes: Vec<Change>,
) -> Result<AcceptedChanges, Refusal> {
    let mut meta = recorded.cloned();
    // The usual message carries one change made on exactly the state we hold; then the
    // state it was made on is `latest` itself and no fork is needed.
    let latest_heads = latest.get_heads();
    let only_change = changes.len() == 1;
    for change in &changes {
        let made_on_latest = sorted(change.deps()) == latest_heads;
        if only_change && made_on_latest {
            // `scratch` is `latest` with this one change applied: exactly the state after it.
            let before = policy.read_before(document, latest);
            meta = policy.check_change(who, document, meta.as_ref(), before, scratch)?;
            continue;
        }
        let forked;
        let before = if made_on_latest {
            latest
        } else {
            forked = scratch.fork_at(change.deps()).map_err(|error| Refusal {
                code: RefusalCode::Malformed,
                message: format!("the state a change was made on is unknown: {error}"),
            })?;
            &forked
        };
        let mut after = before.clone();
        after
            .apply_changes([change.clone()])
            .map_err(|error| Refusal {
                code: RefusalCode::Malformed,
                message: format!("a change could not be applied: {error}"),
            })?;
        let before = policy.read_before(document, before);
        meta = policy.check_change(who, document, meta.as_ref(), before, &after)?;
    }
    Ok(AcceptedChanges { changes, meta })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use automerge::ROOT;
    use automerge::transaction::Transactable;

    use super::*;

    /// A history of `length` changes, each made on the one before.
    fn history(length: usize) -> Vec<Change> {
        let mut doc = Automerge::new();
        for round in 0..length {
            let mut transaction = doc.transaction();
            transaction.put(ROOT, "round", round as u64).unwrap();
            transaction.commit();
        }
        doc.get_changes(&[])
    }

    #[test]
    fn a_long_history_sent_backwards_is_taken_whole_and_in_order() {
        let mut changes = history(2_000);
        let last = changes.last().unwrap().hash();
        changes.reverse();
        let bytes: Vec<Vec<u8>> = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
        let chunks: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();

        let found = new_changes(&Automerge::new(), &chunks).unwrap();
        assert!(found.orphans.is_empty());
        let mut doc = Automerge::new();
        for change in found.applicable {
            // Applied one at a time, each must find its dependency there and become the
            // head, not wait in automerge's queue.
            let hash = change.hash();
            doc.apply_changes([change]).unwrap();
            assert_eq!(doc.get_heads(), vec![hash]);
        }
        assert_eq!(doc.get_heads(), vec![last]);
    }

    #[test]
    fn a_change_without_its_dependency_waits_with_everything_after_it() {
        let changes = history(3);
        let bytes: Vec<Vec<u8>> = changes
            .iter()
            .skip(1)
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let chunks: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();

        let found = new_changes(&Automerge::new(), &chunks).unwrap();
        assert!(found.applicable.is_empty());
        assert_eq!(found.orphans, bytes);
    }
}
