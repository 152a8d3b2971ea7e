//! Whether a document holds a change, without building the change.
//!
//! automerge 0.12 keeps a document's changes as columns of operations, so
//! `get_change_by_hash` and `get_changes_added` rebuild each change they return from those
//! columns. Under load that rebuilding was about a tenth of the relay's engine thread, spent
//! on questions that only needed a yes or a no, or on changes the relay had just decoded
//! from the wire.

use automerge::{Automerge, ChangeHash, ReadDoc};

/// True when `document` holds the change `hash` (applied, not waiting for dependencies).
///
/// automerge answers `get_missing_deps` from its change graph. With nothing queued, a hash
/// the document holds is not missing and any other is. A queued change (one waiting for a
/// dependency) adds its missing dependencies to every answer, so a document with one is
/// asked the slow way; only a scratch copy holding orphans has one.
pub(crate) fn holds(document: &Automerge, hash: &ChangeHash) -> bool {
    if document.get_missing_deps(&[]).is_empty() {
        document
            .get_missing_deps(std::slice::from_ref(hash))
            .is_empty()
    } else {
        document.get_change_by_hash(hash).is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    use super::*;

    #[test]
    fn a_document_holds_the_changes_it_applied_whether_or_not_one_is_queued() {
        let mut writer = AutoCommit::new();
        writer.put(ROOT, "a", 1).unwrap();
        let first = writer.commit().unwrap();
        writer.put(ROOT, "a", 2).unwrap();
        let second = writer.commit().unwrap();
        writer.put(ROOT, "a", 3).unwrap();
        let third = writer.commit().unwrap();
        let changes = writer.document().get_changes(&[]);

        let mut reader = Automerge::new();
        reader.apply_changes([changes[0].clone()]).unwrap();
        // The third waits in the queue for the second.
        reader.apply_changes([changes[2].clone()]).unwrap();
        assert!(holds(&reader, &first));
        assert!(!holds(&reader, &second));
        assert!(!holds(&reader, &third));
        // Nothing is queued any more.
        reader.apply_changes([changes[1].clone()]).unwrap();
        assert!(holds(&reader, &first) && holds(&reader, &second) && holds(&reader, &third));
        let mut other = AutoCommit::new();
        other.put(ROOT, "b", 1).unwrap();
        let elsewhere = other.commit().unwrap();
        assert!(!holds(&reader, &elsewhere));
    }
}
