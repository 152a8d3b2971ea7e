//! The storage thread: the only code that writes the SQLite database while serving.
//!
//! It takes every request queued since its last round, answers reads, and writes all
//! writes in ONE transaction (group commit): the disk's fsync rate (about 3,300 per second
//! here) then bounds transactions, not changes. Completions go back to the engine only
//! after COMMIT returned, which is what lets the engine promise durable acknowledgement.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use caresync_core::domain::{Account, Role};
use caresync_core::protocol::{DocumentId, ScopeEntry};
use caresync_core::relay_policy::RelayPolicy;
use caresync_core::sync::limits::{SCOPE_DOCUMENT_BYTES_MAX, SCOPE_LISTING_DOCUMENT_BYTES_MAX};
use caresync_core::sync::{Access, Policy, StorageCompletion, StorageOpId};
use tokio::sync::mpsc::UnboundedSender;

use super::events::EngineEvent;
use super::limits::STORAGE_BATCH_OPS_MAX;
use crate::store::{DocumentStore, ScopeQuery, StoreError, WriteOp};

/// One request for the storage thread. `id` is `None` for writes nobody waits for (audit).
#[derive(Debug)]
pub struct StorageJob {
    pub id: Option<StorageOpId>,
    pub work: StorageWork,
}

#[derive(Debug)]
pub enum StorageWork {
    Load(DocumentId),
    Write(Box<WriteOp>),
    ListScope {
        account: Box<Account>,
        since: Option<u64>,
        /// Send the listed documents' stored chunks too (a device's first sync).
        documents: bool,
    },
    /// The org tree changed: later scope listings judge with the new one.
    SetPolicy(Box<RelayPolicy>),
}

/// Runs until the job queue closes (the engine dropped its sender), finishing every job
/// it received first.
pub fn run(
    mut store: DocumentStore,
    mut policy: RelayPolicy,
    jobs: Receiver<StorageJob>,
    engine: UnboundedSender<EngineEvent>,
) {
    loop {
        let first = match jobs.recv_timeout(Duration::from_secs(1)) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut round = vec![first];
        while round.len() < STORAGE_BATCH_OPS_MAX {
            match jobs.try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
        let (completions, changes_stored) = run_round(&mut store, &mut policy, round);
        if engine
            .send(EngineEvent::Stored {
                completions,
                changes_stored,
            })
            .is_err()
        {
            // The engine is gone; nobody waits for answers. Writes already committed stay.
            tracing::debug!("engine stopped before a storage round was answered");
        }
    }
    tracing::info!("storage thread stopped");
}

fn run_round(
    store: &mut DocumentStore,
    policy: &mut RelayPolicy,
    round: Vec<StorageJob>,
) -> (Vec<StorageCompletion>, u64) {
    let mut completions = Vec::with_capacity(round.len());
    let mut write_ids = Vec::new();
    let mut writes = Vec::new();
    for job in round {
        match job.work {
            StorageWork::Write(op) => {
                write_ids.push(job.id);
                writes.push(*op);
            }
            StorageWork::Load(document) => {
                let Some(id) = job.id else { continue };
                completions.push(match store.load(&document) {
                    Ok(stored) => StorageCompletion::Loaded {
                        id,
                        document,
                        stored,
                    },
                    Err(error) => {
                        tracing::error!(%document, %error, "loading a document failed");
                        StorageCompletion::Failed {
                            id,
                            reason: error.to_string(),
                        }
                    }
                });
            }
            StorageWork::SetPolicy(next) => *policy = *next,
            StorageWork::ListScope {
                account,
                since,
                documents,
            } => {
                let Some(id) = job.id else { continue };
                completions.push(list_scope(store, policy, id, &account, since, documents));
            }
        }
    }
    let mut changes_stored = 0;
    if writes.is_empty() {
        return (completions, changes_stored);
    }
    match store.write_batch(&writes) {
        Ok(summary) => {
            changes_stored = summary.changes_inserted;
            completions.extend(
                write_ids
                    .into_iter()
                    .flatten()
                    .map(|id| StorageCompletion::Written { id }),
            );
        }
        Err(error) if writes.len() > 1 => {
            // One bad write must not fail every connection's writes of the round: write
            // them one transaction each, so only the culprit fails.
            tracing::warn!(%error, ops = writes.len(), "a group commit failed; writing one by one");
            for (id, op) in write_ids.into_iter().zip(writes) {
                match store.write_batch(std::slice::from_ref(&op)) {
                    Ok(summary) => {
                        changes_stored += summary.changes_inserted;
                        completions.extend(id.map(|id| StorageCompletion::Written { id }));
                    }
                    Err(error) => {
                        tracing::error!(%error, "a storage write failed");
                        completions.extend(id.map(|id| StorageCompletion::Failed {
                            id,
                            reason: error.to_string(),
                        }));
                    }
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, "a storage write failed");
            let reason = error.to_string();
            completions.extend(write_ids.into_iter().flatten().map(|id| {
                StorageCompletion::Failed {
                    id,
                    reason: reason.clone(),
                }
            }));
        }
    }
    (completions, changes_stored)
}

fn list_scope(
    store: &DocumentStore,
    policy: &RelayPolicy,
    id: StorageOpId,
    account: &Account,
    since: Option<u64>,
    documents: bool,
) -> StorageCompletion {
    let query = scope_query(policy, account);
    let visible = |document: &DocumentId, meta: &caresync_core::domain::DocumentMeta| {
        policy.access(account, document, Some(meta)) != Access::None
    };
    let listed = store
        .list_scope(&query, since, &visible)
        .and_then(|mut listing| {
            if documents {
                attach_documents(store, &mut listing.entries)?;
            }
            Ok(listing)
        });
    match listed {
        Ok(listing) => StorageCompletion::ScopeListed {
            id,
            cursor: listing.cursor,
            entries: listing.entries,
            removed: listing.removed,
        },
        Err(error) => {
            tracing::error!(%error, "listing a scope failed");
            StorageCompletion::Failed {
                id,
                reason: error.to_string(),
            }
        }
    }
}

/// Puts each listed document's stored chunks into its entry, read in the same storage
/// round as the listing, so they are exactly the listed heads. Documents larger than
/// `SCOPE_DOCUMENT_BYTES_MAX`, and every one after the listing reached
/// `SCOPE_LISTING_DOCUMENT_BYTES_MAX`, stay without: the device syncs those the usual way.
/// Reading stops there too, so a bureau-wide listing reads only what it carries.
fn attach_documents(store: &DocumentStore, entries: &mut [ScopeEntry]) -> Result<(), StoreError> {
    let mut carried = 0usize;
    for entry in entries {
        let Some(stored) = store.load(&entry.document_id)? else {
            continue;
        };
        let size = stored
            .snapshot
            .as_ref()
            .map_or(0, Vec::len)
            .saturating_add(stored.changes.iter().map(|row| row.bytes.len()).sum());
        if carried.saturating_add(size) > SCOPE_LISTING_DOCUMENT_BYTES_MAX {
            break;
        }
        if size > SCOPE_DOCUMENT_BYTES_MAX {
            continue;
        }
        carried = carried.saturating_add(size);
        let mut bytes = stored.snapshot.unwrap_or_default();
        bytes.reserve(size.saturating_sub(bytes.len()));
        for row in stored.changes {
            bytes.extend_from_slice(&row.bytes);
        }
        entry.document = Some(bytes);
    }
    Ok(())
}

/// The cheap SQL pre-filter of an account's scope; the access rules decide each document.
pub fn scope_query(policy: &RelayPolicy, account: &Account) -> ScopeQuery {
    let owners = match account.role {
        Role::BureauAdmin => None,
        _ => Some(crate::org::units_within(&policy.tree, &account.org_units)),
    };
    ScopeQuery {
        owners,
        worker: (account.role == Role::CareWorker).then(|| account.id.clone()),
        subjects: account.assigned_elders.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use caresync_core::domain::{DocumentKind, OrgTree};

    use super::*;
    use crate::store::test_data::{doc_id, meta, put_more, put_new};

    fn job(id: u64, op: WriteOp) -> StorageJob {
        StorageJob {
            id: Some(StorageOpId(id)),
            work: StorageWork::Write(Box::new(op)),
        }
    }

    #[test]
    fn one_bad_write_fails_alone_and_the_rest_of_the_round_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = DocumentStore::open(&dir.path().join("t.db")).unwrap();
        let mut policy = RelayPolicy::new(OrgTree::new());
        let good = doc_id(1);
        let round = vec![
            job(1, put_new(good, meta(DocumentKind::Child, "v1"), 1)),
            // A later write of a document storage has never seen: refused by the store.
            job(2, put_more(doc_id(2), 2)),
            job(3, put_more(good, 3)),
        ];
        let (completions, stored) = run_round(&mut store, &mut policy, round);
        let written: Vec<u64> = completions
            .iter()
            .filter_map(|c| match c {
                StorageCompletion::Written { id } => Some(id.0),
                _ => None,
            })
            .collect();
        let failed: Vec<u64> = completions
            .iter()
            .filter_map(|c| match c {
                StorageCompletion::Failed { id, .. } => Some(id.0),
                _ => None,
            })
            .collect();
        assert_eq!(written, vec![1, 3]);
        assert_eq!(failed, vec![2]);
        assert_eq!(stored, 2);
        assert_eq!(store.load(&good).unwrap().unwrap().changes.len(), 2);
    }
}
