//! The engine thread: the driver of core's sans-IO `Repo` for the relay.
//!
//! One thread owns the `Repo`. It takes events from one queue (frames from connections,
//! storage completions, ticks, review actions), feeds them to the engine with the current
//! time, and carries out the effects: frames to the connections' outboxes, storage requests
//! to the storage thread, audit events to the audit table. Handling events in batches lets
//! many connections' writes reach storage together, which is what group commit needs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use caresync_core::domain::{Account, report_row};
use caresync_core::protocol::DocumentId;
use caresync_core::relay_policy::RelayPolicy;
use caresync_core::sync::{
    AuditEvent, CloseReason, ConnectionId, Effect, Notification, Repo, StorageCompletion,
    StorageOp, StorageOpId,
};
use tokio::sync::mpsc::{self, UnboundedReceiver, error::TrySendError};

use super::close_codes;
use super::events::{EngineEvent, Outgoing};
use super::limits::{
    ENGINE_BATCH_EVENTS_MAX, ENGINE_BATCH_MS_MAX, ENGINE_TURN_FRAMES, SHUTDOWN_GRACE_MS,
};
use super::review::Reviews;
use super::storage_worker::{StorageJob, StorageWork};
use super::turns::{Turns, share_of};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::store::{AuditEntry, WriteOp};

struct Peer {
    outbox: mpsc::Sender<Outgoing>,
    account: Account,
}

pub struct Engine {
    repo: Repo<RelayPolicy>,
    peers: HashMap<ConnectionId, Peer>,
    storage: Option<Sender<StorageJob>>,
    metrics: Arc<Metrics>,
    reviews: Reviews,
    stopping: Option<Instant>,
    /// Storage requests held back by [`Engine::send_replies`] until the batch's flush, in
    /// the order the engine queued them.
    held_back: Vec<(StorageOpId, StorageOp)>,
}

impl Engine {
    pub fn new(
        repo: Repo<RelayPolicy>,
        storage: Sender<StorageJob>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Engine {
            repo,
            peers: HashMap::new(),
            storage: Some(storage),
            metrics,
            reviews: Reviews::default(),
            stopping: None,
            held_back: Vec::new(),
        }
    }

    /// Runs until shutdown has finished (every storage request answered, or the grace
    /// period over) or every sender is gone.
    pub fn run(mut self, mut events: UnboundedReceiver<EngineEvent>) {
        let mut turns = Turns::default();
        loop {
            if turns.is_empty() {
                let first = if self.stopping.is_some() {
                    match events.try_recv() {
                        Ok(event) => Some(event),
                        Err(mpsc::error::TryRecvError::Empty) => {
                            if self.shutdown_finished() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(5));
                            None
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                    }
                } else {
                    match events.blocking_recv() {
                        Some(event) => Some(event),
                        None => break,
                    }
                };
                let Some(first) = first else { continue };
                turns.push(first);
            }
            // Everything that has arrived is sorted into turns before the batch starts; the
            // frames keep their room in the engine's byte budget until they are handled.
            while let Ok(event) = events.try_recv() {
                turns.push(event);
            }
            let started = Instant::now();
            let batch_time = Duration::from_millis(ENGINE_BATCH_MS_MAX);
            for _ in 0..ENGINE_BATCH_EVENTS_MAX {
                let peers = &self.peers;
                let share = |connection| {
                    peers
                        .get(&connection)
                        .map_or(ENGINE_TURN_FRAMES, |peer| share_of(peer.account.role))
                };
                let Some(event) = turns.pop(share) else { break };
                let answers_storage = matches!(event, EngineEvent::Stored { .. });
                self.handle_guarded(event);
                // A commit's acknowledgements and announcements leave at once rather than at
                // the end of the batch: they are what phones and reviewers wait for.
                if answers_storage {
                    self.send_replies();
                }
                // A storage answer that arrives meanwhile goes before the frames waiting.
                while let Ok(event) = events.try_recv() {
                    turns.push(event);
                }
                if started.elapsed() >= batch_time {
                    break;
                }
            }
            self.flush();
        }
        // Dropping the sender lets the storage thread finish its queue and stop.
        self.storage = None;
        tracing::info!("engine stopped");
    }

    fn shutdown_finished(&self) -> bool {
        let Some(since) = self.stopping else {
            return false;
        };
        let quiet = self.repo.pending_storage_ops() == 0;
        let late = since.elapsed() > Duration::from_millis(SHUTDOWN_GRACE_MS);
        if late && !quiet {
            tracing::warn!(
                pending = self.repo.pending_storage_ops(),
                "shutdown grace period over with storage requests unanswered"
            );
        }
        quiet || late
    }

    /// Handles one event; a panic while handling a connection's frame closes that
    /// connection only, so one bad peer cannot take the relay down for everyone.
    fn handle_guarded(&mut self, event: EngineEvent) {
        let culprit = match &event {
            EngineEvent::Frame { connection, .. } => Some(*connection),
            _ => None,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(event)));
        if outcome.is_err() {
            self.metrics.add_sync_error();
            tracing::error!(
                connection = culprit.map(|c| c.0),
                "panic while handling an event"
            );
            if let Some(connection) = culprit {
                self.send(
                    connection,
                    Outgoing::Close {
                        code: close_codes::INTERNAL_ERROR,
                        reason: "internal error".to_owned(),
                    },
                );
                self.peers.remove(&connection);
                self.repo.connection_closed(connection);
            }
        }
    }

    fn handle(&mut self, event: EngineEvent) {
        let now = now_ms();
        match event {
            EngineEvent::Opened {
                connection,
                account,
                outbox,
            } => {
                if self.stopping.is_some() {
                    let _ = outbox.try_send(Outgoing::Close {
                        code: close_codes::GOING_AWAY,
                        reason: "the relay is shutting down".to_owned(),
                    });
                    return;
                }
                self.repo
                    .connection_opened(now, connection, (*account).clone());
                self.peers.insert(
                    connection,
                    Peer {
                        outbox,
                        account: *account,
                    },
                );
            }
            EngineEvent::Frame {
                connection,
                frame,
                room: _room,
            } => {
                #[cfg(test)]
                tests::panic_if_asked(&frame);
                if self.peers.contains_key(&connection) {
                    self.repo.frame_received(now, connection, &frame);
                }
            }
            EngineEvent::Closed { connection } => {
                self.peers.remove(&connection);
                self.repo.connection_closed(connection);
            }
            EngineEvent::Stored {
                completions,
                changes_stored,
            } => {
                self.metrics.add_changes_stored(changes_stored);
                for completion in completions {
                    self.repo.storage_completed(now, completion);
                }
            }
            EngineEvent::Tick => self.repo.tick(now),
            EngineEvent::OrgTree(tree) => {
                self.repo.policy_mut().tree = (*tree).clone();
                let _ = self.submit(StorageJob {
                    id: None,
                    work: StorageWork::SetPolicy(Box::new(RelayPolicy::new(*tree))),
                });
                // Listed after the storage thread has the new rules (its queue is in order).
                self.repo.relist_scopes();
            }
            EngineEvent::Review(request) => {
                if self.stopping.is_some() {
                    request.refuse_shutting_down();
                } else {
                    self.reviews.requested(&mut self.repo, now, *request);
                }
            }
            EngineEvent::Shutdown => {
                self.stopping = Some(Instant::now());
                for peer in self.peers.values() {
                    let _ = peer.outbox.try_send(Outgoing::Close {
                        code: close_codes::GOING_AWAY,
                        reason: "the relay is shutting down".to_owned(),
                    });
                }
            }
        }
    }

    /// Sends the frames the engine has queued so far and holds back its storage requests
    /// for the batch's [`Engine::flush`], so that storage still gets the batch's writes
    /// together (group commit works best with few, large rounds).
    fn send_replies(&mut self) {
        for effect in self.repo.take_effects() {
            if let Some(held) = self.reply(effect) {
                self.held_back.push(held);
            }
        }
    }

    /// Carries out every effect but a storage request, which it gives back. An audit event
    /// is recorded here, in its place among the others: the `Close` that usually follows
    /// it forgets the connection's account, which the record names.
    fn reply(&mut self, effect: Effect) -> Option<(StorageOpId, StorageOp)> {
        match effect {
            Effect::Send { connection, frame } => self.send(connection, Outgoing::Frame(frame)),
            Effect::Close { connection, reason } => {
                let (code, text) = close_code(&reason);
                self.send(connection, Outgoing::Close { code, reason: text });
                self.peers.remove(&connection);
            }
            Effect::Notify(notification) => self.notified(notification),
            Effect::Audit(event) => self.audit(now_ms(), event),
            Effect::Storage { id, op } => return Some((id, op)),
        }
        None
    }

    /// Carries out everything the events of this batch asked for.
    fn flush(&mut self) {
        let now = now_ms();
        self.reviews.progress(&mut self.repo, now);
        // Replies leave first, as `send_replies` sends them during the batch; the storage
        // requests follow in the order the engine queued them.
        self.send_replies();
        let requests = std::mem::take(&mut self.held_back);
        // The report row of a document is computed once per batch, for its last write.
        let mut last_write: HashMap<DocumentId, usize> = HashMap::new();
        for (index, (_, op)) in requests.iter().enumerate() {
            if let StorageOp::PutChanges { document, .. } = op {
                last_write.insert(*document, index);
            }
        }
        let mut answered_here = Vec::new();
        for (index, (id, op)) in requests.into_iter().enumerate() {
            let with_report = match &op {
                StorageOp::PutChanges { document, .. } => last_write.get(document) == Some(&index),
                _ => false,
            };
            if let Some(done) = self.storage_request(id, op, with_report) {
                answered_here.push(done);
            }
        }
        for completion in answered_here {
            self.repo.storage_completed(now, completion);
        }
        self.metrics
            .set_documents_loaded(self.repo.loaded_documents());
        self.metrics.set_connections(self.peers.len());
        // Completions answered here and review replies may have queued more effects.
        if self.repo.has_effects() {
            self.flush();
        }
    }

    fn send(&mut self, connection: ConnectionId, outgoing: Outgoing) {
        let Some(peer) = self.peers.get(&connection) else {
            return;
        };
        match peer.outbox.try_send(outgoing) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // A reader that does not read cannot hold the relay's memory: drop it. Its
                // task sees the closed outbox and closes the socket.
                tracing::warn!(connection = connection.0, "outgoing queue full; closing");
                self.metrics.add_sync_error();
                self.peers.remove(&connection);
                self.repo.connection_closed(connection);
            }
            Err(TrySendError::Closed(_)) => {
                self.peers.remove(&connection);
                self.repo.connection_closed(connection);
            }
        }
    }

    /// Hands a storage request to the storage thread, or answers it here when the relay
    /// has nothing to store for it (device bookkeeping never happens on a relay).
    fn storage_request(
        &mut self,
        id: StorageOpId,
        op: StorageOp,
        with_report: bool,
    ) -> Option<StorageCompletion> {
        let work = match op {
            StorageOp::Load { document } => StorageWork::Load(document),
            StorageOp::PutChanges {
                document,
                meta,
                changes,
                heads,
            } => {
                let report = if with_report {
                    self.report_of(&document)
                } else {
                    None
                };
                StorageWork::Write(Box::new(WriteOp::PutChanges {
                    document,
                    meta,
                    changes,
                    heads,
                    report,
                }))
            }
            StorageOp::Compact {
                document,
                snapshot,
                covered,
            } => StorageWork::Write(Box::new(WriteOp::Compact {
                document,
                snapshot,
                covered,
            })),
            StorageOp::Replace { document, snapshot } => {
                let heads = self
                    .repo
                    .latest(&document)
                    .map(automerge::Automerge::get_heads)
                    .unwrap_or_default();
                let report = self.report_of(&document);
                StorageWork::Write(Box::new(WriteOp::Replace {
                    document,
                    snapshot,
                    heads,
                    report,
                }))
            }
            StorageOp::ListScope {
                connection,
                since,
                documents,
            } => {
                let Some(peer) = self.peers.get(&connection) else {
                    return Some(StorageCompletion::Failed {
                        id,
                        reason: "connection closed".to_owned(),
                    });
                };
                StorageWork::ListScope {
                    account: Box::new(peer.account.clone()),
                    since,
                    documents,
                }
            }
            StorageOp::SaveScopeCursor { .. } | StorageOp::PutRelayHeads { .. } => {
                return Some(StorageCompletion::Written { id });
            }
        };
        self.submit(StorageJob { id: Some(id), work })
            .then_some(StorageCompletion::Failed {
                id,
                reason: "the storage thread stopped".to_owned(),
            })
    }

    /// Queues a job; true when the storage thread is gone.
    fn submit(&mut self, job: StorageJob) -> bool {
        match &self.storage {
            Some(storage) => storage.send(job).is_err(),
            None => true,
        }
    }

    /// The query-table row of a document as it will be once its pending writes commit.
    fn report_of(&self, document: &DocumentId) -> Option<caresync_core::domain::ReportRow> {
        let latest = self.repo.latest(document)?;
        // Usually the record the policy read when it judged the last change.
        match self.repo.policy().record_of(document, latest) {
            Ok(record) => Some(report_row(&document.to_string(), &record)),
            Err(error) => {
                // The change was accepted by validation, so this is a record the report
                // tables cannot show (an unknown future kind); the document is still stored.
                tracing::warn!(%document, %error, "no report row for a stored document");
                None
            }
        }
    }

    fn notified(&mut self, notification: Notification) {
        match notification {
            Notification::LocalChangeSaved { document, heads } => {
                self.reviews.saved(&document, &heads);
            }
            Notification::StorageFailed { document, reason } => {
                self.metrics.add_sync_error();
                if let Some(document) = document {
                    self.reviews.failed(&document, &reason);
                }
            }
            Notification::DocumentError { document, detail } => {
                tracing::error!(%document, %detail, "a stored document could not be applied");
            }
            _ => {}
        }
    }

    fn audit(&mut self, now: u64, event: AuditEvent) {
        self.metrics.add_sync_error();
        let (connection, entry_event, document, detail) = match event {
            AuditEvent::ChangeRefused {
                connection,
                document,
                refusal,
            } => (
                connection,
                "change-refused",
                Some(document.to_string()),
                refusal.to_string(),
            ),
            AuditEvent::ReadDenied {
                connection,
                document,
            } => (
                connection,
                "read-denied",
                Some(document.to_string()),
                String::new(),
            ),
            AuditEvent::ProtocolViolation { connection, detail } => {
                (connection, "protocol-violation", None, detail)
            }
        };
        let account = self
            .peers
            .get(&connection)
            .map(|peer| peer.account.id.as_str().to_owned());
        tracing::info!(
            event = entry_event,
            account = account.as_deref().unwrap_or("-"),
            document = document.as_deref().unwrap_or("-"),
            %detail,
            "audit"
        );
        let entry = AuditEntry {
            at_ms: i64::try_from(now).unwrap_or(i64::MAX),
            account,
            event: entry_event.to_owned(),
            document,
            detail,
        };
        let _ = self.submit(StorageJob {
            id: None,
            work: StorageWork::Write(Box::new(WriteOp::Audit(entry))),
        });
    }
}

fn close_code(reason: &CloseReason) -> (u16, String) {
    match reason {
        CloseReason::Protocol(detail) => (close_codes::PROTOCOL_ERROR, detail.clone()),
        CloseReason::UnsupportedVersion => (
            close_codes::PROTOCOL_ERROR,
            "no common protocol version".to_owned(),
        ),
        CloseReason::LimitExceeded(limit) => (
            close_codes::POLICY_VIOLATION,
            format!("limit exceeded: {limit}"),
        ),
        CloseReason::Refused(detail) => (close_codes::POLICY_VIOLATION, detail.clone()),
        CloseReason::HandshakeTimeout => (
            close_codes::HANDSHAKE_TIMEOUT,
            "handshake timeout".to_owned(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use caresync_core::domain::{AccountId, OrgTree, OrgUnitCode, Role as AccountRole};
    use caresync_core::protocol::PeerId;
    use caresync_core::sync::{RepoConfig, Role, TrustingPolicy};

    use super::*;

    /// A frame no client sends: the engine panics on it, standing in for a bug that a
    /// peer's input triggers deep inside the handling of its frame.
    const PANIC_FRAME: &[u8] = b"caresync test: panic while handling this frame";

    pub(super) fn panic_if_asked(frame: &[u8]) {
        if frame == PANIC_FRAME {
            panic!("the test asked for a panic");
        }
    }

    fn director() -> Account {
        Account {
            id: AccountId::new("director-1"),
            username: "director-1".to_owned(),
            role: AccountRole::VillageChildDirector,
            org_units: vec![OrgUnitCode::new("370402001001")],
            assigned_elders: Vec::new(),
            disabled: false,
        }
    }

    /// A relay's engine with an empty org tree. The storage thread is not needed: its jobs
    /// wait in the returned channel.
    fn relay_engine() -> (Engine, std::sync::mpsc::Receiver<StorageJob>, Arc<Metrics>) {
        let config = RepoConfig::new(
            PeerId::from("relay"),
            Role::Relay,
            automerge::ActorId::from(vec![9; 16]),
        );
        let repo = Repo::new(config, RelayPolicy::new(OrgTree::new()));
        let (jobs, jobs_rx) = std::sync::mpsc::channel();
        let metrics = Arc::new(Metrics::default());
        let engine = Engine::new(repo, jobs, Arc::clone(&metrics));
        (engine, jobs_rx, metrics)
    }

    fn open(engine: &mut Engine, connection: ConnectionId) -> mpsc::Receiver<Outgoing> {
        let (outbox, inbox) = mpsc::channel(64);
        engine.handle_guarded(EngineEvent::Opened {
            connection,
            account: Box::new(director()),
            outbox,
        });
        inbox
    }

    /// The join frame a phone sends first.
    fn join_frame() -> Vec<u8> {
        let config = RepoConfig::new(
            PeerId::from("phone"),
            Role::Device,
            automerge::ActorId::from(vec![7; 16]),
        );
        let mut phone = Repo::new(config, TrustingPolicy);
        phone.connection_opened(0, ConnectionId(1), ());
        phone
            .take_effects()
            .into_iter()
            .find_map(|effect| match effect {
                Effect::Send { frame, .. } => Some(frame),
                _ => None,
            })
            .expect("a phone sends a join when its connection opens")
    }

    #[test]
    fn a_panic_in_one_connections_frame_closes_that_connection_only() {
        let (mut engine, _jobs, metrics) = relay_engine();
        let (bad, good) = (ConnectionId(1), ConnectionId(2));
        let mut bad_inbox = open(&mut engine, bad);
        let mut good_inbox = open(&mut engine, good);

        engine.handle_guarded(EngineEvent::Frame {
            connection: bad,
            frame: PANIC_FRAME.to_vec(),
            room: None,
        });
        engine.flush();
        match bad_inbox.try_recv() {
            Ok(Outgoing::Close { code, .. }) => assert_eq!(code, close_codes::INTERNAL_ERROR),
            other => panic!("the panicking connection was not closed: {other:?}"),
        }
        assert!(
            metrics
                .render()
                .lines()
                .any(|line| line == "caresync_sync_errors_total 1"),
            "the panic is not counted as a sync error"
        );

        // The other connection is still served: its join gets the relay's answer.
        engine.handle_guarded(EngineEvent::Frame {
            connection: good,
            frame: join_frame(),
            room: None,
        });
        engine.flush();
        match good_inbox.try_recv() {
            Ok(Outgoing::Frame(frame)) => assert!(!frame.is_empty()),
            other => panic!("the other connection got no answer to its join: {other:?}"),
        }
        // Later frames of the closed connection are ignored rather than handled.
        engine.handle_guarded(EngineEvent::Frame {
            connection: bad,
            frame: join_frame(),
            room: None,
        });
        engine.flush();
        assert!(bad_inbox.try_recv().is_err());
    }

    #[test]
    fn the_audit_entry_of_a_connection_closed_for_a_bad_frame_names_its_account() {
        let (mut engine, jobs_rx, _metrics) = relay_engine();
        let connection = ConnectionId(1);
        let mut inbox = open(&mut engine, connection);

        // Not CBOR: the relay records a protocol violation and closes the connection, in
        // the same batch; the record must still say whose connection it was. A storage
        // answer later in the batch sends the replies queued so far at once (as `run`
        // does), the close among them, before the batch's flush.
        engine.handle_guarded(EngineEvent::Frame {
            connection,
            frame: vec![0xff, 0x00, 0x13],
            room: None,
        });
        engine.send_replies();
        engine.flush();
        let closed = std::iter::from_fn(|| inbox.try_recv().ok())
            .any(|outgoing| matches!(outgoing, Outgoing::Close { .. }));
        assert!(closed, "the connection was not closed");
        let audited: Vec<AuditEntry> = jobs_rx
            .try_iter()
            .filter_map(|job| match job.work {
                StorageWork::Write(op) => match *op {
                    WriteOp::Audit(entry) => Some(entry),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert!(
            matches!(
                audited.as_slice(),
                [entry] if entry.event == "protocol-violation"
                    && entry.account.as_deref() == Some(director().id.as_str())
            ),
            "{audited:?}"
        );
    }

    #[test]
    fn new_org_units_make_the_relay_list_every_scope_again() {
        let (mut engine, jobs_rx, _metrics) = relay_engine();
        let connection = ConnectionId(1);
        let _inbox = open(&mut engine, connection);
        engine.handle_guarded(EngineEvent::Frame {
            connection,
            frame: join_frame(),
            room: None,
        });
        engine.flush();
        while jobs_rx.try_recv().is_ok() {}

        // A reviewer connected before a village was added must learn of its records
        // without reconnecting: the relay lists its scope again, after the new rules.
        engine.handle_guarded(EngineEvent::OrgTree(Box::new(OrgTree::new())));
        engine.flush();
        let work: Vec<StorageWork> = jobs_rx.try_iter().map(|job| job.work).collect();
        assert!(
            matches!(
                work.as_slice(),
                [
                    StorageWork::SetPolicy(_),
                    StorageWork::ListScope { account, since: None, documents: false }
                ] if account.id == director().id
            ),
            "{work:?}"
        );
    }
}
