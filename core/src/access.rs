//! Access rules: who may read and write which documents, and which parts of them.
//!
//! [`decide`] answers one question — may `account` do `mode` on the document described by
//! `target`? — for every message the relay handles (design §3.4). `target` must be the
//! metadata the relay recorded when it first stored the document, not what the document's
//! fields say now. For child and elder documents the caller fills `target.subject` with the
//! document's own id ([`DocumentMeta::with_document_id`]).
//!
//! [`changed_parts`] tells which parts of a record a change touched and [`decide_change`]
//! judges a whole change (parts, authorship of comments, review signature, transfers); the
//! sync policy runs it on each incoming change with the states before and after it.
//!
//! # Parts
//!
//! A record has three parts:
//! - [`Part::Review`]: the `review` field (state, reviewer, comment, time);
//! - [`Part::Comments`]: the `comments` list;
//! - [`Part::Record`]: everything else.
//!
//! Comments are a part of their own, not a piece of the review, so that the worker who
//! made a record can answer a reviewer's comment ("returned: the phone number is missing" →
//! "the guardian has no phone") without being able to approve their own record.
//!
//! # Rules
//!
//! Checks run in this order and the first failure is the answer, so a denial names the most
//! basic reason: disabled account; kind not handled by the role; part not writable by the
//! role; target outside the account's area; record or subject not the account's own.
//!
//! - **Disabled account**: nothing at all ([`DenyReason::AccountDisabled`]).
//! - **Bureau admin**: everything, everywhere.
//! - **Township reviewer**: all four kinds in their area (a village is in the area when
//!   the reviewer's org unit is the village or one of its ancestors): read, write the
//!   Review part and the Comments part. Never the Record part: a reviewer returns a record
//!   with a comment, the worker corrects it.
//! - **Village child director**: children and home visits in their village: read, write
//!   the Record part (including visits made by a predecessor, since directors change), and
//!   write Comments to answer a reviewer. Never the Review part. Elders and service logs
//!   are not theirs at all: elder care is a different service line, and PIPL's minimal
//!   access rule keeps data about elders away from accounts that do not serve them.
//! - **Care worker**: elders assigned to them (`Account::assigned_elders`, matched against
//!   the elder document's id in `target.subject`): read only — elders are registered by the
//!   bureau. Service logs: only their own (`target.worker` is the account). They read their
//!   own logs wherever they are, so a worker can always see the hours they logged; they
//!   write the Record part of their own logs only while the log's village is inside their
//!   area and the elder is assigned to them; they may write Comments on their own logs. Never
//!   the Review part. Children and home visits are not theirs.
//!
//! Assignment, not area, scopes a care worker's view of elders: an assignment is an explicit
//! decision of the bureau, whereas an area would expose every elder of a township.

use std::collections::HashMap;

use crate::domain::{
    Account, AccountId, Comment, DocumentKind, DocumentMeta, OrgTree, Record, Role,
};

/// A part of a record, for write permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Everything except the review and the comments.
    Record,
    /// The `review` field: state, reviewer, comment, time.
    Review,
    /// The `comments` list.
    Comments,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Record, Part::Review, Part::Comments];
}

/// What an account wants to do with a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Read,
    Write(Part),
}

/// Why access is denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The account is disabled.
    AccountDisabled,
    /// The role never handles this kind of document.
    KindNotAllowed,
    /// The role may not write this part (or may only read this kind).
    PartNotAllowed,
    /// The document's org unit is outside the account's areas.
    OutsideArea,
    /// A care worker and a service log of another worker; or a new record that names
    /// another account as its worker.
    NotOwnRecord,
    /// A care worker and an elder not assigned to them.
    SubjectNotAssigned,
    /// A change adds, edits or removes a comment of another account.
    CommentNotOwn,
    /// A change signs a review with another account's id.
    ReviewerMismatch,
    /// A change moves a record to an org unit the account may not write in.
    TransferNotAllowed,
}

/// The answer of the access rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

use Decision::{Allow, Deny};

/// May `account` do `mode` on the document `target` describes?
pub fn decide(account: &Account, tree: &OrgTree, target: &DocumentMeta, mode: Mode) -> Decision {
    if account.disabled {
        return Deny(DenyReason::AccountDisabled);
    }
    let in_area = || tree.is_within_any(&target.owner, &account.org_units);
    match account.role {
        Role::BureauAdmin => Allow,
        Role::TownshipReviewer => {
            if mode == Mode::Write(Part::Record) {
                Deny(DenyReason::PartNotAllowed)
            } else if !in_area() {
                Deny(DenyReason::OutsideArea)
            } else {
                Allow
            }
        }
        Role::VillageChildDirector => {
            if !matches!(target.kind, DocumentKind::Child | DocumentKind::HomeVisit) {
                Deny(DenyReason::KindNotAllowed)
            } else if mode == Mode::Write(Part::Review) {
                Deny(DenyReason::PartNotAllowed)
            } else if !in_area() {
                Deny(DenyReason::OutsideArea)
            } else {
                Allow
            }
        }
        Role::CareWorker => decide_care_worker(account, target, mode, in_area),
    }
}

fn decide_care_worker(
    account: &Account,
    target: &DocumentMeta,
    mode: Mode,
    in_area: impl Fn() -> bool,
) -> Decision {
    let assigned = || {
        target
            .subject
            .as_ref()
            .is_some_and(|s| account.is_assigned(s))
    };
    match target.kind {
        DocumentKind::Child | DocumentKind::HomeVisit => Deny(DenyReason::KindNotAllowed),
        DocumentKind::Elder => {
            if mode != Mode::Read {
                Deny(DenyReason::PartNotAllowed)
            } else if !assigned() {
                Deny(DenyReason::SubjectNotAssigned)
            } else {
                Allow
            }
        }
        DocumentKind::ServiceLog => {
            if mode == Mode::Write(Part::Review) {
                return Deny(DenyReason::PartNotAllowed);
            }
            if target.worker.as_ref() != Some(&account.id) {
                return Deny(DenyReason::NotOwnRecord);
            }
            match mode {
                Mode::Write(Part::Record) if !in_area() => Deny(DenyReason::OutsideArea),
                Mode::Write(Part::Record) if !assigned() => Deny(DenyReason::SubjectNotAssigned),
                _ => Allow,
            }
        }
    }
}

/// The parts of a record a change from `before` (`None` for a new document) to `after`
/// touched, compared on the hydrated records, in [`Part::ALL`] order.
///
/// A new record touches the Record part; it touches Review only if it arrives with a review
/// that is not the untouched "pending" one, and Comments only if it arrives with comments.
///
/// Keys the schema does not know are invisible here; [`decide_change`] therefore judges a
/// change that touches no known part as a write of the Record part.
pub fn changed_parts(before: Option<&Record>, after: &Record) -> Vec<Part> {
    let mut parts = Vec::new();
    match before {
        None => {
            parts.push(Part::Record);
            if after.review().is_some_and(|r| !r.is_untouched()) {
                parts.push(Part::Review);
            }
            if !after.comments().is_empty() {
                parts.push(Part::Comments);
            }
        }
        Some(before) => {
            if before.record_part() != after.record_part() {
                parts.push(Part::Record);
            }
            if before.review() != after.review() {
                parts.push(Part::Review);
            }
            if before.comments() != after.comments() {
                parts.push(Part::Comments);
            }
        }
    }
    parts
}

/// Judges a whole change by what it does: every part it touches must be writable
/// ([`decide`] with `Mode::Write(part)`), and beyond that, for accounts other than admins:
///
/// - a new record must name the account itself as its `worker` (if the kind has one), so
///   nobody logs hours or visits in someone else's name;
/// - comments: the change may add, edit or remove only comments whose author is the account;
/// - review: a review the change writes must carry the account's own id as `reviewer`;
/// - transfer: if the change moves the record to another org unit, the account must also
///   be allowed to write the Record part there (design §3.4: only an account allowed on
///   both sides may move a record).
///
/// `target` is the recorded metadata (for a new document: the metadata read from `after`,
/// completed with the document id for subject kinds).
pub fn decide_change(
    account: &Account,
    tree: &OrgTree,
    target: &DocumentMeta,
    before: Option<&Record>,
    after: &Record,
) -> Decision {
    let parts = changed_parts(before, after);
    let judged = if parts.is_empty() {
        vec![Part::Record]
    } else {
        parts.clone()
    };
    for part in judged {
        let decision = decide(account, tree, target, Mode::Write(part));
        if !decision.is_allowed() {
            return decision;
        }
    }
    if account.role == Role::BureauAdmin {
        return Allow;
    }
    if before.is_none() && after.worker().is_some_and(|w| *w != account.id) {
        return Deny(DenyReason::NotOwnRecord);
    }
    if parts.contains(&Part::Comments)
        && !comments_changed_only_by(
            before.map(Record::comments).unwrap_or_default(),
            after.comments(),
            &account.id,
        )
    {
        return Deny(DenyReason::CommentNotOwn);
    }
    if parts.contains(&Part::Review)
        && after
            .review()
            .and_then(|r| r.reviewer.as_ref())
            .is_some_and(|reviewer| *reviewer != account.id)
    {
        return Deny(DenyReason::ReviewerMismatch);
    }
    if let Some(before) = before
        && before.org_unit() != after.org_unit()
    {
        let destination = DocumentMeta {
            owner: after.org_unit().clone(),
            ..target.clone()
        };
        if !decide(account, tree, &destination, Mode::Write(Part::Record)).is_allowed() {
            return Deny(DenyReason::TransferNotAllowed);
        }
    }
    Allow
}

/// True when every comment added, edited or removed between `before` and `after` is the
/// account's own (in both versions, for an edit).
fn comments_changed_only_by(before: &[Comment], after: &[Comment], me: &AccountId) -> bool {
    let before_by_id: HashMap<&str, &Comment> = before.iter().map(|c| (c.id.as_str(), c)).collect();
    let after_by_id: HashMap<&str, &Comment> = after.iter().map(|c| (c.id.as_str(), c)).collect();
    let changes_ok = before
        .iter()
        .all(|old| match after_by_id.get(old.id.as_str()) {
            None => old.author == *me,
            Some(new) => *new == old || (old.author == *me && new.author == *me),
        });
    let additions_ok = after
        .iter()
        .filter(|new| !before_by_id.contains_key(new.id.as_str()))
        .all(|new| new.author == *me);
    changes_ok && additions_ok
}
