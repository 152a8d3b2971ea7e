//! The relay's rules, as the sync engine's [`Policy`]: the access rules of `access.rs` and
//! the validation of `validation/`, shared with the devices that run the same code to warn
//! their users early (design §3.4).

use std::borrow::Cow;

use automerge::Automerge;

use crate::access::{self, Decision, Mode, Part};
use crate::domain::{Account, DocumentMeta, DomainError, OrgTree, Record, Role, read_meta};
use crate::protocol::DocumentId;
use crate::record_cache::RecordCache;
use crate::sync::{Access, Policy, Refusal, RefusalCode};
use crate::validation::validate_loaded_change;

/// Judges accounts' access and changes against the org tree.
#[derive(Clone, Debug)]
pub struct RelayPolicy {
    pub tree: OrgTree,
    /// The record last read for each document: usually the state after its last change,
    /// which is the next change's state before and the state the report tables want.
    records: RecordCache,
}

impl RelayPolicy {
    pub fn new(tree: OrgTree) -> Self {
        RelayPolicy {
            tree,
            records: RecordCache::default(),
        }
    }

    /// The record `doc` holds, read once per document state: the state this policy read
    /// last for the document is not read again.
    pub fn record_of(&self, document: &DocumentId, doc: &Automerge) -> Result<Record, DomainError> {
        let heads = doc.get_heads();
        if let Some(record) = self.records.get(document, &heads) {
            return Ok(record);
        }
        let record = Record::load(doc)?;
        self.records.put(*document, heads, record.clone());
        Ok(record)
    }

    fn allowed(&self, who: &Account, target: &DocumentMeta, mode: Mode) -> bool {
        access::decide(who, &self.tree, target, mode).is_allowed()
    }
}

impl Policy for RelayPolicy {
    type Principal = Account;
    /// The record before the change; `None` when there was none (a new document).
    type Before = Option<Record>;

    fn read_before(&self, document: &DocumentId, before: &Automerge) -> Option<Record> {
        self.record_of(document, before).ok()
    }

    fn access(
        &self,
        who: &Account,
        document: &DocumentId,
        recorded: Option<&DocumentMeta>,
    ) -> Access {
        if who.disabled {
            return Access::None;
        }
        let Some(recorded) = recorded else {
            // Creating a document is judged change by change in `check_change`.
            return Access::Write;
        };
        // Only a care worker's rules read a subject document's own id (their assigned
        // elders). Writing the id as text (bs58check) was a tenth of the relay's time under
        // load: every commit asks this for every other connection (`announce`).
        let target = if who.role == Role::CareWorker {
            Cow::Owned(recorded.clone().with_document_id(&document.to_string()))
        } else {
            Cow::Borrowed(recorded)
        };
        if !self.allowed(who, &target, Mode::Read) {
            return Access::None;
        }
        let writes_something = [Part::Record, Part::Review, Part::Comments]
            .into_iter()
            .any(|part| self.allowed(who, &target, Mode::Write(part)));
        if writes_something {
            Access::Write
        } else {
            Access::Read
        }
    }

    fn check_change(
        &self,
        who: &Account,
        document: &DocumentId,
        recorded: Option<&DocumentMeta>,
        before_record: Option<Record>,
        after: &Automerge,
    ) -> Result<Option<DocumentMeta>, Refusal> {
        let after_record = self.record_of(document, after);
        let loaded =
            validate_loaded_change(before_record, after_record).map_err(|errors| Refusal {
                code: RefusalCode::Invalid,
                message: errors
                    .iter()
                    .map(|error| format!("{} / {}", error.message_zh(), error.message_en()))
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        let id = document.to_string();
        let target = match recorded {
            Some(recorded) => recorded.clone().with_document_id(&id),
            None => read_meta(after)
                .map_err(|error| Refusal {
                    code: RefusalCode::Invalid,
                    message: format!(
                        "记录缺少基本信息 / the record lacks its root fields: {error}"
                    ),
                })?
                .with_document_id(&id),
        };
        match access::decide_change(
            who,
            &self.tree,
            &target,
            loaded.before.as_ref(),
            &loaded.after,
        ) {
            Decision::Allow => {}
            Decision::Deny(reason) => {
                return Err(Refusal {
                    code: RefusalCode::Forbidden,
                    message: format!("无权修改 / not allowed: {reason:?}"),
                });
            }
        }
        // A permitted transfer moves the recorded owner with the record.
        let mut recorded_next = target;
        recorded_next.owner = loaded.after.org_unit().clone();
        Ok(Some(recorded_next))
    }
}
