//! SQLite persistence of the relay.
//!
//! One database file holds everything the relay keeps: the documents' change rows and
//! snapshots (written by one [`DocumentStore`], the only writer of documents), the report
//! tables derived from them, accounts, sessions, org units and the audit log. The HTTP side
//! opens its own connections with [`open_connection`] and uses the free functions of the
//! other modules; WAL lets those readers run while the document writer commits.

mod accounts;
mod audit;
mod documents;
mod migrations;
mod orgs;
mod reports;
mod scope;
mod sessions;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub use accounts::{
    account_by_id, account_by_username, insert_account, list_accounts, set_disabled,
};
pub use audit::{AuditEntry, append_audit, recent_audit};
#[cfg(test)]
pub(crate) use documents::test_data;
pub use documents::{DocumentStore, WriteOp, WriteSummary};
pub use migrations::DATABASE_VERSION;
pub use orgs::{import_org_units_csv, insert_org_unit, load_org_tree};
pub use reports::{
    OverdueChild, RecordFilter, RecordPage, VillageCoverage, WorkerHours, coverage, export_rows,
    hours_per_worker, list_records, overdue_visits, subject_titles,
};
pub use scope::{ScopeListing, ScopeQuery};
pub use sessions::{insert_session, revoke_session, revoke_sessions_of, session_account};

/// How long a connection waits for another connection's write lock before giving up. The
/// document writer commits often but briefly; five seconds covers a slow disk's fsync with
/// a wide margin while still failing a request that is truly stuck.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// The document writer and the report queries use more distinct statements than rusqlite's
/// default cache of 16 holds; a statement evicted from the cache is compiled again on its
/// next use, which is exactly the per-op cost the write path must not pay.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// WAL is what lets readers run during commits and makes `synchronous=FULL` affordable;
    /// running without it would silently change both, so opening fails instead.
    #[error("the database did not switch to WAL journal mode (it reports {0:?})")]
    NotWal(String),
    #[error(
        "the database has schema version {found}, newer than the {known} this program knows; \
         use a newer caresync"
    )]
    NewerSchema { found: i64, known: i64 },
    /// A stored value that this program cannot read back: the database was edited by hand,
    /// damaged, or written by an incompatible version.
    #[error("corrupt stored data in {table} ({key}): {detail}")]
    Corrupt {
        table: &'static str,
        key: String,
        detail: String,
    },
    /// The engine sends metadata with a document's first write; a write without it for a
    /// document never stored is a driver bug, refused rather than stored unowned.
    #[error("document {document} is not stored (its first write must carry its metadata)")]
    UnknownDocument { document: String },
    #[error("the report row names document {found} but the write is for document {document}")]
    ReportMismatch { document: String, found: String },
    #[error("the username {0:?} is already taken")]
    DuplicateUsername(String),
    #[error("an account with id {0:?} already exists")]
    DuplicateAccountId(String),
    #[error("there is no account with id {0:?}")]
    UnknownAccount(String),
    #[error("the org unit {0} already exists")]
    OrgUnitExists(String),
    #[error("the org unit {code} cannot be added: {reason}")]
    InvalidOrgUnit { code: String, reason: String },
    #[error("{0}")]
    BadCsv(String),
    /// An error while importing a file, with the line it happened on (1 is the header).
    #[error("line {line}: {source}")]
    AtLine {
        line: u64,
        #[source]
        source: Box<StoreError>,
    },
}

impl StoreError {
    pub(crate) fn corrupt(
        table: &'static str,
        key: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        StoreError::Corrupt {
            table,
            key: key.into(),
            detail: detail.into(),
        }
    }
}

/// Opens (creating if needed) the database at `path`, sets the pragmas every connection
/// needs and brings the schema up to date.
///
/// - `journal_mode=WAL`: readers do not block the writer, and a commit is one append and
///   one fsync of the log.
/// - `synchronous=FULL`: a commit is on disk when it returns, which is what lets the relay
///   acknowledge changes durably (design §3.3). Group commit, not a weaker setting, is how
///   the write path stays fast.
/// - `foreign_keys=ON`: SQLite leaves foreign keys off unless every connection asks.
/// - `busy_timeout` of 5 s, so that short write locks of other connections are waited for.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    // Set first: switching to WAL itself needs a lock another connection may hold.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal(mode));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    migrations::migrate(&mut conn)?;
    Ok(conn)
}

/// Runs `PRAGMA integrity_check` on the database at `path` and returns the problems it
/// lists, none when the database is sound.
///
/// The file is opened as it is: never created (a mistyped path must fail, not pass as an
/// empty database) and never migrated (a check must not write). It may be checked while a
/// relay serves it: WAL gives the check a consistent snapshot.
pub fn integrity_check(path: &Path) -> Result<Vec<String>, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mut statement = conn.prepare("PRAGMA integrity_check")?;
    let lines = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<String>, _>>()?;
    // A sound database answers with exactly one row, `ok`.
    Ok(lines.into_iter().filter(|line| line != "ok").collect())
}

/// Encodes a list of strings as the JSON array stored in a TEXT column.
pub(crate) fn json_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    // Serialising a list of strings cannot fail; the fallback only satisfies the type.
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
pub(crate) mod test_support {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::PathBuf;

    /// A fresh database path in a directory removed when the guard drops.
    pub(crate) fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("caresync.db");
        (dir, path)
    }

    pub(crate) fn open_temp() -> (tempfile::TempDir, rusqlite::Connection) {
        let (dir, path) = temp_db();
        let conn = super::open_connection(&path).unwrap();
        (dir, conn)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn open_sets_the_pragmas() {
        let (_dir, conn) = test_support::open_temp();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL is 2");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let timeout: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, 5000);
    }

    #[test]
    fn integrity_check_passes_a_sound_database_and_lists_the_problems_of_a_damaged_one() {
        let (_dir, path) = test_support::temp_db();
        assert!(
            integrity_check(&path).is_err(),
            "a missing file must not pass"
        );
        let conn = open_connection(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE filler (value TEXT, other TEXT);
             CREATE INDEX filler_value ON filler (value);
             INSERT INTO filler (value, other)
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99)
             SELECT printf('row %05d', i), printf('other %05d', 99 - i) FROM n;",
        )
        .unwrap();
        drop(conn);
        assert_eq!(integrity_check(&path).unwrap(), Vec::<String>::new());

        // Damage the database without breaking its pages: the index is declared over
        // another column than the one its entries were built from, so they no longer
        // match their rows.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE INDEX filler_value ON filler (other)'
             WHERE name = 'filler_value';",
        )
        .unwrap();
        drop(conn);
        let problems = integrity_check(&path).unwrap();
        assert!(
            problems.iter().any(|line| line.contains("filler_value")),
            "{problems:?}"
        );
    }

    #[test]
    fn json_array_round_trips() {
        let text = json_array(["a", "b\"c"]);
        let back: Vec<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, vec!["a".to_owned(), "b\"c".to_owned()]);
    }
}
