//! [`PhoneCore`]: core's engine in [`Role::Device`] with the record operations a phone
//! needs, in plain Rust types. The `Phone` class of the bindings is this plus JS value
//! conversion; keeping the two apart lets native tests drive the whole phone.
//!
//! It mirrors the native test device (`tests/src/device.rs`): a [`TrustingPolicy`] (the
//! relay enforces the rules; the phone validates only to tell its user early), records saved
//! with `Record::save` inside one `Repo::change`, and every storage request carried out by
//! the driver — here the page's JavaScript — and reported back with its id.

use automerge::{ActorId, AutomergeError};
use caresync_core::domain::{DomainError, Record, ReportRow, report_row};
use caresync_core::protocol::{DocumentId, PeerId};
use caresync_core::sync::{ConnectionId, LoadState, Repo, RepoConfig, Role, TrustingPolicy};
use caresync_core::validation::{self, ValidationError};

use crate::error::PhoneError;
use crate::json::{
    CompletionJson, EffectJson, ErrorJson, IndexEntryJson, completion_from_json, effect_to_json,
    error_to_json, index_entry_from_json,
};

/// The length of the actor id a phone is given: automerge's own random actors are 16-byte
/// UUIDs, and a fixed length catches a caller passing something else by mistake.
pub const ACTOR_LEN_BYTES: usize = 16;

/// A phone's engine and its record operations. See the module documentation.
#[derive(Debug)]
pub struct PhoneCore {
    repo: Repo<TrustingPolicy>,
}

impl PhoneCore {
    /// A device engine that offers the `scope` and `refused` extensions in `join`.
    /// `scope_cursor` is the cursor of the last `save-scope-cursor` op the page stored.
    pub fn new(
        peer_id: &str,
        actor: &[u8],
        scope_cursor: Option<u64>,
    ) -> Result<PhoneCore, PhoneError> {
        if actor.len() != ACTOR_LEN_BYTES {
            return Err(PhoneError::BadInput {
                what: "the actor",
                detail: format!("needs {ACTOR_LEN_BYTES} random bytes, got {}", actor.len()),
            });
        }
        if peer_id.is_empty() {
            return Err(PhoneError::BadInput {
                what: "the peer id",
                detail: "it is empty".to_owned(),
            });
        }
        let mut config = RepoConfig::new(PeerId::from(peer_id), Role::Device, ActorId::from(actor));
        config.scope_cursor = scope_cursor;
        Ok(PhoneCore {
            repo: Repo::new(config, TrustingPolicy),
        })
    }

    /// Tells the engine what the page's storage holds, once at start. All entries are read
    /// before any is used, so a bad entry changes nothing.
    pub fn restore_index(&mut self, entries: &[IndexEntryJson]) -> Result<(), PhoneError> {
        let entries = entries
            .iter()
            .map(index_entry_from_json)
            .collect::<Result<Vec<_>, _>>()?;
        self.repo.restore_index(entries);
        Ok(())
    }

    pub fn connection_opened(&mut self, now_ms: u64, connection: ConnectionId) {
        self.repo.connection_opened(now_ms, connection, ());
    }

    pub fn frame_received(&mut self, now_ms: u64, connection: ConnectionId, frame: &[u8]) {
        self.repo.frame_received(now_ms, connection, frame);
    }

    pub fn connection_closed(&mut self, connection: ConnectionId) {
        self.repo.connection_closed(connection);
    }

    pub fn storage_completed(
        &mut self,
        now_ms: u64,
        completion: CompletionJson,
    ) -> Result<(), PhoneError> {
        let completion = completion_from_json(completion)?;
        self.repo.storage_completed(now_ms, completion);
        Ok(())
    }

    pub fn tick(&mut self, now_ms: u64) {
        self.repo.tick(now_ms);
    }

    /// The effects queued since the last call, in the order they must be carried out.
    pub fn take_effects(&mut self) -> Vec<EffectJson> {
        self.repo
            .take_effects()
            .into_iter()
            .map(effect_to_json)
            .collect()
    }

    /// Creates a document holding `record` after checking every rule; `random` becomes the
    /// document id. The write shows as a `put-changes` storage op.
    pub fn create_record(
        &mut self,
        now_ms: u64,
        record: &Record,
        random: [u8; DocumentId::LEN_BYTES],
    ) -> Result<DocumentId, PhoneError> {
        validation::validate(record).map_err(PhoneError::Invalid)?;
        let document = DocumentId::random_from(random);
        self.repo.create(now_ms, document)?;
        self.save(now_ms, document, record)?;
        Ok(document)
    }

    /// Replaces the record in an open document by `record`, refusing only the errors the
    /// edit introduces (an old error must not block fixing something else). Only the values
    /// that differ from the phone's current state are written.
    pub fn update_record(
        &mut self,
        now_ms: u64,
        document: DocumentId,
        record: &Record,
    ) -> Result<(), PhoneError> {
        let latest = self
            .repo
            .latest(&document)
            .ok_or(PhoneError::NotOpen(document))?;
        let before = Record::load(latest).ok();
        validation::validate_transition(before.as_ref(), record).map_err(PhoneError::Invalid)?;
        self.save(now_ms, document, record)
    }

    /// Loads a document (asking connected relays for it if it is not stored here).
    pub fn open(&mut self, now_ms: u64, document: DocumentId) {
        self.repo.open(now_ms, document);
    }

    /// The record as the user should see it (durable plus changes still being written);
    /// `None` while the document is not in memory or does not exist.
    pub fn record(&self, document: &DocumentId) -> Result<Option<Record>, PhoneError> {
        self.repo
            .latest(document)
            .map(|doc| {
                Record::load(doc)
                    .map_err(|error| PhoneError::Unreadable(*document, Box::new(error)))
            })
            .transpose()
    }

    /// The list-screen row of a record (see [`report_row`]).
    pub fn summary(&self, document: &DocumentId) -> Result<Option<ReportRow>, PhoneError> {
        Ok(self
            .record(document)?
            .map(|record| report_row(&document.to_string(), &record)))
    }

    pub fn load_state(&self, document: &DocumentId) -> &'static str {
        match self.repo.load_state(document) {
            LoadState::NotLoaded => "not-loaded",
            LoadState::Loading => "loading",
            LoadState::Missing => "missing",
            LoadState::Ready => "ready",
        }
    }

    /// Documents holding changes the relay has not acknowledged.
    pub fn unsynced_documents(&self) -> Vec<String> {
        self.repo
            .unsynced_documents()
            .iter()
            .map(DocumentId::to_string)
            .collect()
    }

    /// Saves `record` into a loaded document as one local change.
    fn save(
        &mut self,
        now_ms: u64,
        document: DocumentId,
        record: &Record,
    ) -> Result<(), PhoneError> {
        let mut failure = None;
        let result = self.repo.change(now_ms, document, |transaction| {
            record.save(transaction).map_err(|error| {
                failure = Some(error);
                AutomergeError::Fail
            })
        });
        match (result, failure) {
            (Ok(()), _) => Ok(()),
            // A record of another kind than the document's is a user error a form can show.
            (Err(_), Some(error @ DomainError::WrongKind { .. })) => {
                Err(PhoneError::Invalid(vec![
                    ValidationError::from_domain_error(&error),
                ]))
            }
            (Err(_), Some(error)) => Err(PhoneError::Save(Box::new(error))),
            (Err(error), None) => Err(PhoneError::Repo(error)),
        }
    }
}

/// Every rule `record` breaks, as forms show them; empty when it is valid.
pub fn validation_errors(record: &Record) -> Vec<ErrorJson> {
    validation::errors(record)
        .iter()
        .map(error_to_json)
        .collect()
}
