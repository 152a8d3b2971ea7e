//! The engine's view of one document: its state in memory, the writes on their way to
//! storage, and one sync state per connection.

use std::collections::{BTreeMap, VecDeque};

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, Change, ChangeHash};

use super::ConnectionId;
use super::held::holds;
use super::no_access::NoAccess;
use super::policy::Access;
use super::storage::StorageOpId;
use crate::domain::DocumentMeta;

#[derive(Debug)]
pub(crate) enum Status {
    /// Waiting for storage to answer a `Load`.
    Loading,
    Ready,
}

/// Work that arrived before the document was loaded.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// The automerge sync message of a `request` (`is_request`) or `sync` from a connection.
    Sync {
        connection: ConnectionId,
        data: Vec<u8>,
        is_request: bool,
    },
    /// Start syncing this document with a connection (device side).
    BeginSync(ConnectionId),
    /// The document as a scope listing carried it, at the relay's durable `heads`
    /// (device side).
    Listed {
        connection: ConnectionId,
        bytes: Vec<u8>,
        heads: Vec<ChangeHash>,
    },
}

/// One step of a document's pipeline. Steps complete in order, and nothing is sent to any
/// peer while a write is pending, so no heads including an uncommitted change are ever
/// advertised (design §3.3).
#[derive(Debug)]
pub(crate) struct Step {
    pub write: Option<PendingWrite>,
    /// A peer's sync message with its changes removed, applied once `write` is durable.
    pub receive: Option<(ConnectionId, sync::Message)>,
}

#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub op: StorageOpId,
    pub changes: Vec<Change>,
    pub meta: Option<DocumentMeta>,
    pub done: bool,
    /// Made on this device (so the user can be told it is saved).
    pub local: bool,
    /// Device: the changes came with a scope listing of this connection, which holds
    /// them durably at these heads. Once they are stored the document needs no exchange
    /// with that relay if nothing else changed meanwhile.
    pub listed: Option<(ConnectionId, Vec<ChangeHash>)>,
}

#[derive(Debug)]
pub(crate) struct PeerDoc {
    sync: sync::State,
    /// Our heads when automerge last had nothing to send this peer, kept only while the
    /// peer's sync state stays as it was then: asking again would give the same nothing,
    /// at the price of a bloom filter over everything the peer has not acknowledged. Under
    /// the benchmark's load every acknowledgement of a reviewer had each other peer of the
    /// document asked again for nothing.
    quiet_at: Option<Vec<ChangeHash>>,
    pub access: Access,
    /// Device side: we asked with `request` and have not heard back yet.
    pub requested: bool,
}

impl PeerDoc {
    pub(crate) fn new(access: Access) -> Self {
        let sync = if access == Access::Read {
            sync::State::new_read_only()
        } else {
            sync::State::new()
        };
        PeerDoc {
            sync,
            quiet_at: None,
            access,
            requested: false,
        }
    }

    pub(crate) fn sync(&self) -> &sync::State {
        &self.sync
    }

    /// The sync state, to change: automerge is asked again afterwards.
    pub(crate) fn sync_mut(&mut self) -> &mut sync::State {
        self.quiet_at = None;
        &mut self.sync
    }

    /// automerge's next message for this peer about `document`, whose heads are `heads`;
    /// not asked again while neither has changed since it had nothing to say.
    pub(crate) fn next_message(
        &mut self,
        document: &Automerge,
        heads: &[ChangeHash],
    ) -> Option<sync::Message> {
        if self.quiet_at.as_deref() == Some(heads) || self.awaits_answer(heads) {
            return None;
        }
        if self.acknowledged_all(document, heads) {
            self.quiet_at = Some(heads.to_vec());
            return None;
        }
        // A hash the peer names in `need` is one it does not have, whatever we think we
        // sent: automerge would not send it twice, and the two sides would ask each other
        // forever (seen in the simulation when a change was dropped for missing
        // dependencies or hidden by a bloom filter false positive).
        if let Some(need) = &self.sync.their_need {
            for hash in need {
                self.sync.sent_hashes.remove(hash);
            }
        }
        let message = self.generate(document, heads);
        self.quiet_at = message.is_none().then(|| heads.to_vec());
        message
    }

    /// automerge's message for this peer now, asked even if it had nothing to say before:
    /// the answer to a peer whose changes were just stored.
    pub(crate) fn answer(&mut self, document: &Automerge) -> Option<sync::Message> {
        self.quiet_at = None;
        self.generate(document, &document.get_heads())
    }

    /// automerge's `generate_sync_message`, which searches the change graph for what the
    /// peer lacks whenever the peer sent a `have`, and then builds those changes even when
    /// there are none: building no changes still walks the document's operations. A peer
    /// whose history is ours (see [`Self::has_our_history`]) lacks nothing, so automerge is
    /// asked with the peer's `have` set aside, which gives the same message without the
    /// search. On the relay that is every acknowledgement of a phone's change: under the
    /// benchmark's load the empty build alone was a fortieth of the engine's time.
    fn generate(&mut self, document: &Automerge, heads: &[ChangeHash]) -> Option<sync::Message> {
        if !self.has_our_history(document, heads) {
            return document.generate_sync_message(&mut self.sync);
        }
        let their_have = self.sync.their_have.take();
        let message = document.generate_sync_message(&mut self.sync);
        self.sync.their_have = their_have;
        message
    }

    /// automerge sends a peer nothing more while its last message is unanswered and the
    /// document is as it was then (`generate_sync_message` returns `None` when `in_flight`,
    /// `have_responded` and `last_sent_heads` is the document's heads; only receiving a
    /// message or `set_read_only` clears the first two). It decides that only after it has
    /// built a bloom filter and looked for changes to send, and the engine asks for every
    /// peer of a document after each commit, the sender too, just after its
    /// acknowledgement: under the benchmark's load that was a third of the engine's calls
    /// to automerge for messages.
    fn awaits_answer(&self, heads: &[ChangeHash]) -> bool {
        self.sync.in_flight && self.told_them(heads)
    }

    /// Our last message went out at `heads` (automerge's `have_responded` and
    /// `heads_unchanged`): the half of automerge's "nothing to say" rule that both
    /// shortcuts share.
    fn told_them(&self, heads: &[ChangeHash]) -> bool {
        self.sync.have_responded && self.sync.last_sent_heads == heads
    }

    /// automerge has nothing to send a peer that answered our last message with exactly
    /// our heads and needs nothing: the peer's history is ours, so its bloom filter holds
    /// every change we could offer, and automerge returns `None` (`heads_unchanged`,
    /// `have_responded`, `heads_equal` and no change to send). It decides that only after
    /// it has built a bloom filter and searched the change graph; on a phone, every
    /// acknowledgement of every change it pushes asks exactly this, and under the
    /// benchmark's load that was an eighth of the load devices' time.
    ///
    /// Left to automerge: empty heads (it may send a peer that has nothing the whole
    /// document), and a peer whose `have` names a last sync we do not hold, which only a
    /// peer contradicting its own heads sends and automerge answers with a reset (the
    /// malformed-input corpus has one, `replay-11-last-sync-unknown-hash`). A peer that
    /// claims our heads with a bloom filter lacking our changes is the one case answered
    /// differently: automerge would send those changes, this says nothing; only a peer
    /// lying about its heads gets there, and it claims to have them.
    fn acknowledged_all(&self, document: &Automerge, heads: &[ChangeHash]) -> bool {
        self.told_them(heads) && self.has_our_history(document, heads)
    }

    /// The peer's last message claimed exactly our `heads` and needed nothing, so its
    /// history is ours and there is no change to offer it; the exceptions are those of
    /// [`Self::acknowledged_all`], left to automerge.
    fn has_our_history(&self, document: &Automerge, heads: &[ChangeHash]) -> bool {
        !heads.is_empty()
            && self.sync.their_heads.as_deref() == Some(heads)
            && self.sync.their_need.as_ref().is_none_or(Vec::is_empty)
            && self.sync.their_have.iter().flatten().all(|have| {
                have.last_sync
                    .iter()
                    .all(|hash| heads.contains(hash) || holds(document, hash))
            })
    }

    /// The peer has told us it holds what we hold: safe to drop the document from memory
    /// and keep only this state. (`in_flight` stays set on whichever side spoke last, so it
    /// says nothing here; a late message simply loads the document again.)
    pub(crate) fn is_quiet(&self, our_heads: &[ChangeHash]) -> bool {
        self.sync.their_heads.as_deref() == Some(our_heads)
    }
}

#[derive(Debug)]
pub(crate) struct DocState {
    pub status: Status,
    /// Every change accepted so far: the durable ones and those of pending writes. There is
    /// one copy, changed in place: keeping a second, durable-only copy cost a clone of the
    /// whole document per change, the largest avoidable cost of the relay, the reviewer
    /// and the load devices in the benchmark's profiles. Instead nothing is sent to a peer
    /// while a write is pending (see `drive`), and changes from peers wait until no write
    /// is (see `has_pending_write`).
    pub doc: Automerge,
    /// The heads of the durable part of `doc`: all of it when no write is pending.
    pub durable_heads: Vec<ChangeHash>,
    /// Metadata recorded when the document was first stored.
    pub meta: Option<DocumentMeta>,
    /// Whether anything is stored for the document.
    pub exists: bool,
    pub pipeline: VecDeque<Step>,
    pub waiting: VecDeque<Waiting>,
    pub peers: BTreeMap<ConnectionId, PeerDoc>,
    /// Hashes of the change rows in storage since the last snapshot: exactly what the next
    /// compaction may delete.
    pub stored_rows: Vec<ChangeHash>,
    pub compacting: Option<StorageOpId>,
    pub last_used_ms: u64,
    /// Changes a connection sent whose dependencies we lack, retried with its next message.
    pub orphans: BTreeMap<ConnectionId, Vec<Vec<u8>>>,
    /// Device: a refusal that arrived while our own writes were pending.
    pub deferred_refusal: Option<(ConnectionId, String, String, Vec<[u8; 32]>)>,
    /// Relay: connections the policy last said may not see this document.
    pub no_access: NoAccess,
}

impl DocState {
    pub(crate) fn loading(now_ms: u64) -> Self {
        DocState {
            status: Status::Loading,
            doc: Automerge::new(),
            durable_heads: Vec::new(),
            meta: None,
            exists: false,
            pipeline: VecDeque::new(),
            waiting: VecDeque::new(),
            peers: BTreeMap::new(),
            stored_rows: Vec::new(),
            compacting: None,
            last_used_ms: now_ms,
            deferred_refusal: None,
            orphans: BTreeMap::new(),
            no_access: NoAccess::default(),
        }
    }

    /// Whether `doc` holds changes storage has not confirmed yet.
    pub(crate) fn has_pending_write(&self) -> bool {
        self.pipeline.iter().any(|step| step.write.is_some())
    }

    /// Whether the document is there to be shown: stored, or with its first write pending.
    pub(crate) fn is_known(&self) -> bool {
        self.exists || self.has_pending_write()
    }

    /// Moves the durable heads past `changes`, which storage just confirmed. They were
    /// applied in this order and each one's dependencies came before it.
    pub(crate) fn made_durable(&mut self, changes: &[Change]) {
        for change in changes {
            self.durable_heads
                .retain(|head| !change.deps().contains(head));
            self.durable_heads.push(change.hash());
        }
        self.durable_heads.sort();
        self.durable_heads.dedup();
    }

    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.status, Status::Ready)
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.is_ready()
            && self.pipeline.is_empty()
            && self.waiting.is_empty()
            && self.compacting.is_none()
            && self.orphans.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ROOT, ReadDoc};

    use super::*;

    fn edit(document: &mut Automerge, value: &str) {
        let mut tx = document.transaction();
        tx.put(ROOT, "name", value).unwrap();
        tx.commit();
    }

    /// Exchanges messages between our `document` (served through `peer`) and the peer's own
    /// copy until neither has anything to say.
    fn sync_until_quiet(document: &Automerge, peer: &mut PeerDoc, theirs: &mut Automerge) {
        let mut their_state = sync::State::new();
        for _ in 0..10 {
            let ours = peer.next_message(document, &document.get_heads());
            if let Some(message) = &ours {
                theirs
                    .receive_sync_message(&mut their_state, message.clone())
                    .unwrap();
            }
            let reply = theirs.generate_sync_message(&mut their_state);
            if let Some(reply) = &reply {
                let mut scratch = document.clone();
                scratch
                    .receive_sync_message(peer.sync_mut(), reply.clone())
                    .unwrap();
            }
            if ours.is_none() && reply.is_none() {
                return;
            }
        }
        panic!("the two sides never went quiet");
    }

    /// A document with one change, and a peer that has synced it until neither side had
    /// anything to say.
    fn quiet_peer() -> (Automerge, PeerDoc, Automerge) {
        let mut document = Automerge::new();
        edit(&mut document, "first");
        let mut peer = PeerDoc::new(Access::Write);
        let mut theirs = Automerge::new();
        sync_until_quiet(&document, &mut peer, &mut theirs);
        assert_eq!(theirs.get_heads(), document.get_heads());
        assert!(
            peer.next_message(&document, &document.get_heads())
                .is_none()
        );
        (document, peer, theirs)
    }

    #[test]
    fn a_quiet_peer_still_gets_a_change_made_after_it_went_quiet() {
        let (mut document, mut peer, mut theirs) = quiet_peer();
        edit(&mut document, "second");
        let message = peer.next_message(&document, &document.get_heads());
        assert!(message.is_some(), "the new change was never offered");
        let mut their_state = sync::State::new();
        theirs
            .receive_sync_message(&mut their_state, message.unwrap())
            .unwrap();
        let name = theirs.get(ROOT, "name").unwrap().unwrap().0;
        assert_eq!(name.into_string().unwrap(), "second");
    }

    #[test]
    fn a_peer_that_claims_our_heads_but_syncs_from_an_unknown_state_is_answered() {
        let (document, mut peer, _theirs) = quiet_peer();
        let heads = document.get_heads();
        let unknown = ChangeHash([7; 32]);
        // The peer's last message carried our heads, but a `have` whose last sync we never
        // saw: automerge answers with a reset, and so must the shortcut's caller.
        let state = peer.sync_mut();
        state.their_heads = Some(heads.clone());
        state.their_need = Some(Vec::new());
        state.their_have = Some(vec![sync::Have {
            last_sync: vec![unknown],
            bloom: sync::BloomFilter::default(),
        }]);
        let mut expected_state = peer.sync().clone();
        let expected = document
            .generate_sync_message(&mut expected_state)
            .map(sync::Message::encode);
        assert!(
            expected.is_some(),
            "automerge answers a peer it cannot place"
        );
        let answered = peer
            .next_message(&document, &heads)
            .map(sync::Message::encode);
        assert_eq!(answered, expected);
    }

    /// What one side does in [`next_message_answers_as_automerge_would`].
    #[derive(Debug, Clone)]
    enum Step {
        EditOurs,
        EditTheirs,
        /// We ask for our next message; it reaches them when `delivered`.
        OursToThem {
            delivered: bool,
        },
        TheirsToUs {
            delivered: bool,
        },
        /// We answer them as the engine does once their changes are stored; the answer
        /// reaches them when `delivered`.
        AnswerThem {
            delivered: bool,
        },
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Step::EditOurs),
            Just(Step::EditTheirs),
            any::<bool>().prop_map(|delivered| Step::OursToThem { delivered }),
            any::<bool>().prop_map(|delivered| Step::TheirsToUs { delivered }),
            any::<bool>().prop_map(|delivered| Step::AnswerThem { delivered }),
        ]
    }

    proptest::proptest! {
        /// Whatever the order of edits, messages and lost messages, `next_message` and
        /// `answer` give exactly what automerge itself would at that moment: their shortcuts
        /// (remembered quiet, an unanswered message, a peer holding our history) never hide
        /// a message nor invent one.
        #[test]
        fn next_message_answers_as_automerge_would(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            let mut document = Automerge::new();
            edit(&mut document, "ours");
            let mut peer = PeerDoc::new(Access::Write);
            let mut theirs = Automerge::new();
            let mut their_state = sync::State::new();
            for (index, step) in steps.into_iter().enumerate() {
                match step {
                    Step::EditOurs => edit(&mut document, &format!("ours {index}")),
                    Step::EditTheirs => edit(&mut theirs, &format!("theirs {index}")),
                    Step::OursToThem { delivered } => {
                        let mut expected_state = peer.sync().clone();
                        for hash in expected_state.their_need.clone().unwrap_or_default() {
                            expected_state.sent_hashes.remove(&hash);
                        }
                        let expected = document
                            .generate_sync_message(&mut expected_state)
                            .map(sync::Message::encode);
                        let message = peer.next_message(&document, &document.get_heads());
                        proptest::prop_assert_eq!(
                            message.clone().map(sync::Message::encode),
                            expected
                        );
                        if let (Some(message), true) = (message, delivered) {
                            theirs.receive_sync_message(&mut their_state, message).unwrap();
                        }
                    }
                    Step::AnswerThem { delivered } => {
                        let mut expected_state = peer.sync().clone();
                        let expected = document
                            .generate_sync_message(&mut expected_state)
                            .map(sync::Message::encode);
                        let message = peer.answer(&document);
                        proptest::prop_assert_eq!(
                            message.clone().map(sync::Message::encode),
                            expected
                        );
                        // The peer's `have` set aside for the shortcut is put back.
                        proptest::prop_assert_eq!(peer.sync(), &expected_state);
                        if let (Some(message), true) = (message, delivered) {
                            theirs.receive_sync_message(&mut their_state, message).unwrap();
                        }
                    }
                    Step::TheirsToUs { delivered } => {
                        if let (Some(reply), true) =
                            (theirs.generate_sync_message(&mut their_state), delivered)
                        {
                            document.receive_sync_message(peer.sync_mut(), reply).unwrap();
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_quiet_peer_is_asked_again_once_its_sync_state_changes() {
        let (document, mut peer, _theirs) = quiet_peer();
        // The peer's state starts again (as after a storage failure): automerge answers it
        // with a fresh message, which the remembered silence must not hide.
        *peer.sync_mut() = sync::State::new();
        assert!(
            peer.next_message(&document, &document.get_heads())
                .is_some()
        );
    }
}
