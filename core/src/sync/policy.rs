//! The hook through which the server (or a test) decides who may see and change what.
//! The engine calls it on every `request` and `sync`; it never decides access itself.

use std::fmt;

use automerge::Automerge;

use crate::domain::DocumentMeta;
use crate::protocol::DocumentId;

/// What a principal may do with one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Not even its existence is revealed: the peer gets `doc-unavailable`.
    None,
    /// Served with automerge's read-only sync state; changes are refused.
    Read,
    /// Changes are accepted when [`Policy::check_change`] accepts each of them.
    Write,
}

/// Why a change was not stored. `code` is stable for machines, `message` is for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalCode {
    /// The account may not write this document, or this part of it.
    Forbidden,
    /// The change breaks a validation rule.
    Invalid,
    /// The account may only read this document.
    ReadOnly,
    /// The change could not be decoded or applied.
    Malformed,
    /// The message carried more changes than the engine accepts.
    TooLarge,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::Forbidden => "forbidden",
            RefusalCode::Invalid => "invalid",
            RefusalCode::ReadOnly => "read-only",
            RefusalCode::Malformed => "malformed",
            RefusalCode::TooLarge => "too-large",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// Access and validation decisions, filled in by the driver. `Principal` is whoever a
/// connection speaks for: an account on the relay, the device itself on a phone.
pub trait Policy {
    type Principal: Clone + fmt::Debug;

    /// May `who` see or change the document? `recorded` is the metadata the relay stored
    /// with the document when it was first stored; `None` for a document that does not
    /// exist yet (creating one is judged by [`Policy::check_change`]).
    fn access(
        &self,
        who: &Self::Principal,
        document: &DocumentId,
        recorded: Option<&DocumentMeta>,
    ) -> Access;

    /// What [`Policy::check_change`] needs to know of the state a change was made on.
    type Before;

    /// Reads [`Policy::Before`] off the document at a change's dependencies. It is read
    /// before the change is applied: the usual change is applied to the document itself,
    /// and the state before it is gone afterwards.
    fn read_before(&self, document: &DocumentId, before: &Automerge) -> Self::Before;

    /// Judge one change by what it does on the state it was made on: `before` was read off
    /// the document at the change's dependencies and `after` is that state plus the
    /// change. Returns the metadata to record for the document (for a new document, read
    /// from `after`; for an existing one, normally `recorded` unchanged).
    fn check_change(
        &self,
        who: &Self::Principal,
        document: &DocumentId,
        recorded: Option<&DocumentMeta>,
        before: Self::Before,
        after: &Automerge,
    ) -> Result<Option<DocumentMeta>, Refusal>;

    /// Whether [`Policy::check_change`] may refuse anything. A policy that never does
    /// answers `false`, and changes then go straight into the document with no copy made
    /// to judge them on; the metadata to record is `recorded`, else read from the document
    /// with the changes applied.
    fn judges_changes(&self) -> bool {
        true
    }
}

/// The policy of a device: it trusts its own user and its relay. The relay is the place
/// where rules are enforced; a device only runs validation to warn its user early.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrustingPolicy;

impl Policy for TrustingPolicy {
    type Principal = ();
    type Before = ();

    fn access(&self, _: &(), _: &DocumentId, _: Option<&DocumentMeta>) -> Access {
        Access::Write
    }

    fn read_before(&self, _: &DocumentId, _: &Automerge) {}

    fn check_change(
        &self,
        _: &(),
        _: &DocumentId,
        recorded: Option<&DocumentMeta>,
        (): (),
        after: &Automerge,
    ) -> Result<Option<DocumentMeta>, Refusal> {
        Ok(recorded
            .cloned()
            .or_else(|| crate::domain::read_meta(after).ok()))
    }

    fn judges_changes(&self) -> bool {
        false
    }
}
