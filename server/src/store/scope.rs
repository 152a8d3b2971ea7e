//! Scope listing: which documents an account may see that changed after a cursor, and
//! which left its scope (the `scope` extension, ARCHITECTURE.md).
//!
//! The store finds candidates through indexes — by owner and sequence, by worker, by
//! subject id — and the caller's `visible` function, which runs the access rules, has the
//! last word. The store knows nothing of roles.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use caresync_core::domain::{AccountId, DocumentMeta, OrgUnitCode, SubjectId};
use caresync_core::protocol::{DocumentId, ScopeEntry};
use rusqlite::{Connection, OptionalExtension, ToSql};

use super::StoreError;
use super::documents::{DocumentStore, MetaColumns, decode_heads};

/// Where to look for the documents an account may see. A document is a candidate if any
/// of the three match.
/// No `Default`: a query with `owners: None` sees every owner, which must be asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeQuery {
    /// Owners (org unit codes as recorded on documents, i.e. villages); `None` means every
    /// owner, for a bureau administrator.
    pub owners: Option<Vec<OrgUnitCode>>,
    /// Documents recorded with this worker (a care worker's own service logs).
    pub worker: Option<AccountId>,
    /// Documents with these ids (the elders assigned to a care worker).
    pub subjects: Vec<SubjectId>,
}

/// The answer to a scope request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeListing {
    /// The sequence value at listing time; the device asks with it next time.
    pub cursor: u64,
    /// Visible documents changed after `since`, oldest change first.
    pub entries: Vec<ScopeEntry>,
    /// Documents moved to another owner after `since` that were visible under their old
    /// owner and are not visible now.
    pub removed: Vec<DocumentId>,
}

/// The documents columns a listing reads, in order.
const CANDIDATE_COLUMNS: &str = "id, seq, heads, kind, schema_version, owner, worker, subject";

struct Candidate {
    seq: i64,
    heads: Vec<u8>,
    meta: MetaColumns,
}

impl DocumentStore {
    /// Lists the documents matching `query` whose last write came after `since` (all of
    /// them when `None`), keeping those `visible` accepts, with their durable heads.
    pub fn list_scope(
        &self,
        query: &ScopeQuery,
        since: Option<u64>,
        visible: &dyn Fn(&DocumentId, &DocumentMeta) -> bool,
    ) -> Result<ScopeListing, StoreError> {
        // Sequence values start at 1, so 0 lists everything.
        let since_sql = since.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let mut candidates: HashMap<String, Candidate> = HashMap::new();
        match &query.owners {
            None => collect(
                &self.conn,
                &format!("SELECT {CANDIDATE_COLUMNS} FROM documents WHERE seq > ?1"),
                &[&since_sql],
                &mut candidates,
            )?,
            Some(owners) => {
                // One indexed range per owner on (owner, seq): a village's listing reads
                // only that village's changed rows, whatever the size of the database.
                let sql = format!(
                    "SELECT {CANDIDATE_COLUMNS} FROM documents WHERE owner = ?1 AND seq > ?2"
                );
                for owner in owners {
                    collect(
                        &self.conn,
                        &sql,
                        &[&owner.as_str(), &since_sql],
                        &mut candidates,
                    )?;
                }
                if let Some(worker) = &query.worker {
                    collect(
                        &self.conn,
                        &format!(
                            "SELECT {CANDIDATE_COLUMNS} FROM documents WHERE worker = ?1 AND seq > ?2"
                        ),
                        &[&worker.as_str(), &since_sql],
                        &mut candidates,
                    )?;
                }
                let sql =
                    format!("SELECT {CANDIDATE_COLUMNS} FROM documents WHERE id = ?1 AND seq > ?2");
                for subject in &query.subjects {
                    collect(
                        &self.conn,
                        &sql,
                        &[&subject.as_str(), &since_sql],
                        &mut candidates,
                    )?;
                }
            }
        }

        let mut listed = Vec::with_capacity(candidates.len());
        for (id, candidate) in candidates {
            let document = parse_id(&id)?;
            let meta = candidate.meta.into_meta(&id)?;
            if !visible(&document, &meta) {
                continue;
            }
            let entry = ScopeEntry {
                document_id: document,
                heads: decode_heads(&id, &candidate.heads)?,
                document: None,
            };
            listed.push((candidate.seq, entry));
        }
        listed.sort_by(|(a_seq, a), (b_seq, b)| {
            a_seq
                .cmp(b_seq)
                .then_with(|| a.document_id.cmp(&b.document_id))
        });

        let removed = match since {
            Some(_) => self.removed_since(since_sql, visible)?,
            // A device asking for everything holds nothing it should drop.
            None => Vec::new(),
        };
        Ok(ScopeListing {
            cursor: self.seq,
            entries: listed.into_iter().map(|(_, entry)| entry).collect(),
            removed,
        })
    }

    /// Documents transferred after `since` that `visible` accepted with the owner they
    /// had at `since` and refuses now. All transfers after `since` are read, not only
    /// those of the query's owners, because visibility may rest on the worker or the
    /// subject rather than the owner; transfers are rare, so this stays small.
    fn removed_since(
        &self,
        since: i64,
        visible: &dyn Fn(&DocumentId, &DocumentMeta) -> bool,
    ) -> Result<Vec<DocumentId>, StoreError> {
        // The first transfer after `since` names the owner the device last saw.
        let mut owner_then: BTreeMap<String, String> = BTreeMap::new();
        {
            let mut statement = self.conn.prepare_cached(
                "SELECT document, from_owner FROM transfers WHERE seq > ?1 ORDER BY seq",
            )?;
            let rows = statement.query_map([since], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (document, from_owner) = row?;
                owner_then.entry(document).or_insert(from_owner);
            }
        }
        let mut removed = Vec::new();
        let mut current = self.conn.prepare_cached(
            "SELECT kind, schema_version, owner, worker, subject FROM documents WHERE id = ?1",
        )?;
        for (id, old_owner) in owner_then {
            let Some(columns) = current
                .query_row([&id], |row| MetaColumns::read(row, 0))
                .optional()?
            else {
                continue;
            };
            let document = parse_id(&id)?;
            let now = columns.into_meta(&id)?;
            let then = DocumentMeta {
                owner: OrgUnitCode(old_owner),
                ..now.clone()
            };
            if visible(&document, &then) && !visible(&document, &now) {
                removed.push(document);
            }
        }
        Ok(removed)
    }
}

fn collect(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    into: &mut HashMap<String, Candidate>,
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, |row| {
        Ok((
            row.get::<_, String>(0)?,
            Candidate {
                seq: row.get(1)?,
                heads: row.get(2)?,
                meta: MetaColumns::read(row, 3)?,
            },
        ))
    })?;
    for row in rows {
        let (id, candidate) = row?;
        into.insert(id, candidate);
    }
    Ok(())
}

fn parse_id(id: &str) -> Result<DocumentId, StoreError> {
    DocumentId::from_str(id)
        .map_err(|error| StoreError::corrupt("documents", id, format!("bad document id: {error}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use std::collections::HashSet;

    use caresync_core::domain::DocumentKind;

    use super::*;
    use crate::store::WriteOp;
    use crate::store::documents::test_data::*;
    use crate::store::test_support::temp_db;

    const VILLAGE_A: &str = "370402001001";
    const VILLAGE_B: &str = "370402001002";

    fn village(code: &str) -> ScopeQuery {
        ScopeQuery {
            owners: Some(vec![OrgUnitCode::new(code)]),
            worker: None,
            subjects: Vec::new(),
        }
    }

    fn ids(listing: &ScopeListing) -> HashSet<DocumentId> {
        listing.entries.iter().map(|e| e.document_id).collect()
    }

    fn everyone(_: &DocumentId, _: &DocumentMeta) -> bool {
        true
    }

    #[test]
    fn listing_since_a_cursor_returns_only_later_changes() {
        let (_dir, path) = temp_db();
        let mut store = DocumentStore::open(&path).unwrap();
        // 3,000 documents in two villages, written in batches like the relay does.
        let ops: Vec<WriteOp> = (0..3000)
            .map(|n| {
                let owner = if n % 2 == 0 { VILLAGE_A } else { VILLAGE_B };
                put_new(doc_id(n), meta(DocumentKind::Child, owner), n)
            })
            .collect();
        for batch in ops.chunks(200) {
            store.write_batch(batch).unwrap();
        }
        let first = store
            .list_scope(&village(VILLAGE_A), None, &everyone)
            .unwrap();
        assert_eq!(first.entries.len(), 1500);
        assert_eq!(first.cursor, 3000);
        assert!(first.removed.is_empty());
        let entry = first
            .entries
            .iter()
            .find(|e| e.document_id == doc_id(4))
            .unwrap();
        assert_eq!(entry.heads, vec![hash(4).0]);

        // Two documents of village A and one of B change after the cursor.
        store
            .write_batch(&[put_more(doc_id(10), 10_000), put_more(doc_id(11), 10_001)])
            .unwrap();
        store.write_batch(&[put_more(doc_id(20), 10_002)]).unwrap();
        let next = store
            .list_scope(&village(VILLAGE_A), Some(first.cursor), &everyone)
            .unwrap();
        assert_eq!(next.cursor, 3003);
        let listed: Vec<DocumentId> = next.entries.iter().map(|e| e.document_id).collect();
        assert_eq!(listed, vec![doc_id(10), doc_id(20)], "oldest change first");
        assert_eq!(next.entries[1].heads, vec![hash(10_002).0]);

        let nothing = store
            .list_scope(&village(VILLAGE_A), Some(next.cursor), &everyone)
            .unwrap();
        assert!(nothing.entries.is_empty());
        assert_eq!(nothing.cursor, next.cursor);

        let all = store
            .list_scope(&admin(), Some(first.cursor), &everyone)
            .unwrap();
        assert_eq!(
            ids(&all),
            HashSet::from([doc_id(10), doc_id(11), doc_id(20)])
        );
    }

    fn admin() -> ScopeQuery {
        ScopeQuery {
            owners: None,
            worker: None,
            subjects: Vec::new(),
        }
    }

    #[test]
    fn worker_and_subjects_add_candidates_and_visible_decides() {
        let (_dir, path) = temp_db();
        let mut store = DocumentStore::open(&path).unwrap();
        let elder = doc_id(1);
        let elder_meta = meta(DocumentKind::Elder, VILLAGE_B).with_document_id(&elder.to_string());
        let mut log_meta = meta(DocumentKind::ServiceLog, VILLAGE_B);
        log_meta.worker = Some(AccountId::new("worker-1"));
        log_meta.subject = Some(SubjectId::new(elder.to_string()));
        let mut other_log = log_meta.clone();
        other_log.worker = Some(AccountId::new("worker-2"));
        store
            .write_batch(&[
                put_new(elder, elder_meta, 1),
                put_new(doc_id(2), log_meta, 2),
                put_new(doc_id(3), other_log, 3),
                put_new(doc_id(4), meta(DocumentKind::Elder, VILLAGE_B), 4),
                put_new(doc_id(5), meta(DocumentKind::Child, VILLAGE_A), 5),
            ])
            .unwrap();
        let query = ScopeQuery {
            owners: Some(vec![OrgUnitCode::new(VILLAGE_A)]),
            worker: Some(AccountId::new("worker-1")),
            subjects: vec![SubjectId::new(elder.to_string())],
        };
        let listing = store.list_scope(&query, None, &everyone).unwrap();
        assert_eq!(ids(&listing), HashSet::from([elder, doc_id(2), doc_id(5)]));

        let no_children = |_: &DocumentId, meta: &DocumentMeta| meta.kind != DocumentKind::Child;
        let listing = store.list_scope(&query, None, &no_children).unwrap();
        assert_eq!(ids(&listing), HashSet::from([elder, doc_id(2)]));
    }

    #[test]
    fn a_document_moved_out_of_scope_is_removed() {
        let (_dir, path) = temp_db();
        let mut store = DocumentStore::open(&path).unwrap();
        let doc = doc_id(1);
        store
            .write_batch(&[
                put_new(doc, meta(DocumentKind::Child, VILLAGE_A), 1),
                put_new(doc_id(2), meta(DocumentKind::Child, VILLAGE_A), 2),
            ])
            .unwrap();
        let cursor = store.current_seq();
        store
            .write_batch(&[put_new(doc, meta(DocumentKind::Child, VILLAGE_B), 3)])
            .unwrap();
        let within = |allowed: &'static [&'static str]| {
            move |_: &DocumentId, meta: &DocumentMeta| allowed.contains(&meta.owner.as_str())
        };

        let a = store
            .list_scope(&village(VILLAGE_A), Some(cursor), &within(&[VILLAGE_A]))
            .unwrap();
        assert!(a.entries.is_empty());
        assert_eq!(a.removed, vec![doc]);

        let b = store
            .list_scope(&village(VILLAGE_B), Some(cursor), &within(&[VILLAGE_B]))
            .unwrap();
        assert_eq!(ids(&b), HashSet::from([doc]));
        assert!(b.removed.is_empty(), "it was never visible to B before");

        let township = ScopeQuery {
            owners: Some(vec![
                OrgUnitCode::new(VILLAGE_A),
                OrgUnitCode::new(VILLAGE_B),
            ]),
            worker: None,
            subjects: Vec::new(),
        };
        let both = store
            .list_scope(&township, Some(cursor), &within(&[VILLAGE_A, VILLAGE_B]))
            .unwrap();
        assert_eq!(ids(&both), HashSet::from([doc]));
        assert!(both.removed.is_empty(), "still visible after the move");

        // A listing from before the move: the device never had a cursor, nothing to remove.
        let fresh = store
            .list_scope(&village(VILLAGE_A), None, &within(&[VILLAGE_A]))
            .unwrap();
        assert_eq!(ids(&fresh), HashSet::from([doc_id(2)]));
        assert!(fresh.removed.is_empty());
    }
}
