//! The audit log: who did what to which document, and when (PIPL asks that access to
//! minors' records be traceable). Rows are only ever appended.

use rusqlite::{Connection, params};

use super::StoreError;

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch, UTC.
    pub at_ms: i64,
    /// The account that acted, when one is known (a refused login may have none).
    pub account: Option<String>,
    /// A short stable name such as `change-refused` or `login-failed`.
    pub event: String,
    /// The document concerned, as its bs58check id.
    pub document: Option<String>,
    /// What happened, readable by a person.
    pub detail: String,
}

pub fn append_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (at_ms, account_id, event, document, detail)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        entry.at_ms,
        entry.account,
        entry.event,
        entry.document,
        entry.detail
    ])?;
    Ok(())
}

/// The latest `limit` entries, newest first. Ordered by insertion rather than by `at_ms`,
/// because clocks of different writers may disagree but the order of commits does not.
pub fn recent_audit(conn: &Connection, limit: u64) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(
        "SELECT at_ms, account_id, event, document, detail FROM audit
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = statement.query_map([limit], |row| {
        Ok(AuditEntry {
            at_ms: row.get(0)?,
            account: row.get(1)?,
            event: row.get(2)?,
            document: row.get(3)?,
            detail: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::test_support::open_temp;

    fn entry(at_ms: i64, event: &str) -> AuditEntry {
        AuditEntry {
            at_ms,
            account: Some("acct-1".to_owned()),
            event: event.to_owned(),
            document: None,
            detail: format!("detail of {event}"),
        }
    }

    #[test]
    fn recent_entries_come_newest_first() {
        let (_dir, conn) = open_temp();
        // The second entry has an older timestamp: insertion order still wins.
        for e in [entry(10, "first"), entry(5, "second"), entry(20, "third")] {
            append_audit(&conn, &e).unwrap();
        }
        let recent = recent_audit(&conn, 2).unwrap();
        assert_eq!(recent, vec![entry(20, "third"), entry(5, "second")]);
        assert_eq!(recent_audit(&conn, 10).unwrap().len(), 3);
    }
}
