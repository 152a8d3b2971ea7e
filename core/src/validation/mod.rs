//! Validation rules, shared by devices (to warn the worker early) and the relay (to refuse
//! invalid changes).
//!
//! Three entry points, for three questions:
//!
//! - [`validate`]: is this record valid? (a form before saving; a report of a document)
//! - [`validate_transition`]: may this change be accepted? It refuses only the errors a
//!   change introduces. Design §3.4: a change is judged by what it does on the state it was
//!   made on; an error that was already there (a record made by an older app, or a merged
//!   state) must not block a change that fixes something else, or nobody could ever edit
//!   that record again.
//! - [`merged_state_flags`]: what should a reviewer look at after concurrent edits merged?
//!   Two valid edits can merge into an invalid state (one phone moves the check-in later,
//!   another the check-out earlier); such states are flagged, never refused, because every
//!   replica must be able to converge.

mod error;
pub mod limits;
mod rules;

use std::collections::HashMap;

pub use error::{ErrorCode, ValidationError};

use crate::domain::{DomainError, Record};

/// Every error of `record`, in field order; empty when the record is valid.
pub fn errors(record: &Record) -> Vec<ValidationError> {
    rules::check_record(record)
}

/// `Ok` when `record` breaks no rule; otherwise all the errors found.
pub fn validate(record: &Record) -> Result<(), Vec<ValidationError>> {
    let found = errors(record);
    if found.is_empty() { Ok(()) } else { Err(found) }
}

/// Judges a change from `before` (`None` for a new document) to `after`: refuses only the
/// errors present in `after` and not already in `before`.
///
/// Errors are matched by code and by field path without list indices, counted as a
/// multiset: if `before` had one guardian without a name and `after` has two, one of
/// them is new. Matching without indices keeps an old error from looking new when a list
/// item is inserted or removed in front of it.
pub fn validate_transition(
    before: Option<&Record>,
    after: &Record,
) -> Result<(), Vec<ValidationError>> {
    let mut allowance: HashMap<(String, ErrorCode), usize> = HashMap::new();
    if let Some(before) = before {
        for error in errors(before) {
            *allowance
                .entry((error.field_without_indices(), error.code))
                .or_insert(0) += 1;
        }
    }
    let mut introduced = Vec::new();
    for error in errors(after) {
        let key = (error.field_without_indices(), error.code.clone());
        match allowance.get_mut(&key) {
            Some(left) if *left > 0 => *left -= 1,
            _ => introduced.push(error),
        }
    }
    if introduced.is_empty() {
        Ok(())
    } else {
        Err(introduced)
    }
}

/// What a reviewer should look at in a (possibly merged) state. For now the same as the
/// errors [`validate`] reports; rules that only make sense on merged states (e.g. two
/// phones recording the same visit) will be added here.
pub fn merged_state_flags(record: &Record) -> Vec<ValidationError> {
    errors(record)
}

/// The records before and after a change, as [`validate_document_change`] loads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedChange {
    /// `None` when the change creates the document.
    pub before: Option<Record>,
    pub after: Record,
}

/// Loads both states of a change and judges it with [`validate_transition`]: the entry point
/// for a policy that holds documents rather than records. A `before` without a `kind` is
/// an empty, new document. An `after` that does not load is refused with one error saying
/// why ([`ValidationError::from_domain_error`]). A `before` that does not load (which the
/// relay never stores, but a device might hold) counts as new, so the change is judged whole.
/// On success the loaded records are returned for the access check
/// (`crate::access::decide_change`).
pub fn validate_document_change<D: autosurgeon::ReadDoc>(
    before: &D,
    after: &D,
) -> Result<LoadedChange, Vec<ValidationError>> {
    validate_loaded_change(Record::load(before).ok(), Record::load(after))
}

/// [`validate_document_change`] for a caller that has read the records already (or kept
/// them from an earlier read): `after` is the outcome of reading the state after the change.
pub fn validate_loaded_change(
    before: Option<Record>,
    after: Result<Record, DomainError>,
) -> Result<LoadedChange, Vec<ValidationError>> {
    let after = after.map_err(|e| vec![ValidationError::from_domain_error(&e)])?;
    validate_transition(before.as_ref(), &after)?;
    Ok(LoadedChange { before, after })
}
