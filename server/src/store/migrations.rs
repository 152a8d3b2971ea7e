//! Versioned schema migrations.
//!
//! `PRAGMA user_version` holds how many of [`MIGRATIONS`] a database has applied. Each
//! script runs in its own transaction together with the update of `user_version`, so a
//! crash leaves the database at the previous version, never half-migrated. Scripts are only
//! ever appended: once released, a script is never edited, because databases in the field
//! have already run it.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Migration 1: the whole first schema.
///
/// Ids of documents and subjects are the bs58check text of `automerge:` URLs, the form the
/// report rows, access rules and logs already use, so no table needs to translate.
const MIGRATION_1: &str = r#"
-- The administrative hierarchy (prefecture > district > township > village). `parent` is
-- NULL only for the prefecture at the top.
CREATE TABLE org_units (
    code   TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    level  TEXT NOT NULL,
    parent TEXT NULL REFERENCES org_units(code)
);
CREATE INDEX org_units_parent ON org_units(parent);

-- Login accounts. `org_units` and `assigned_elders` are JSON arrays of codes and elder
-- document ids: they are always read and written with the whole account, never queried.
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    username        TEXT UNIQUE NOT NULL,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    org_units       TEXT NOT NULL DEFAULT '[]',
    assigned_elders TEXT NOT NULL DEFAULT '[]',
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL
);

-- Login sessions, keyed by the SHA-256 of the bearer token so that a copy of the
-- database does not hand out working tokens.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_account ON sessions(account_id);

-- One row per stored document: the metadata recorded when it was first stored (access
-- is judged by this copy, design §3.4), its durable heads (concatenated 32-byte hashes)
-- and the global change sequence of its last write (the scope listing's cursor).
-- WITHOUT ROWID, keyed by the id itself: every write updates this row, and a rowid table
-- would also keep a separate index of the id; dropping it doubled the measured write
-- throughput (batches of 200 writes, each with a report row). WITHOUT ROWID only pays
-- while rows stay small, so the snapshot, which can be large, has its own table.
CREATE TABLE documents (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    owner          TEXT NOT NULL,
    worker         TEXT NULL,
    subject        TEXT NULL,
    heads          BLOB NOT NULL,
    seq            INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX documents_seq ON documents(seq);
CREATE INDEX documents_owner_seq ON documents(owner, seq);
CREATE INDEX documents_worker_seq ON documents(worker, seq);
CREATE INDEX documents_subject ON documents(subject);

-- Change rows not yet folded into a snapshot. Keyed by (document, hash), not hash alone:
-- two documents created from the same initial change share its hash.
CREATE TABLE changes (
    document TEXT NOT NULL,
    hash     BLOB NOT NULL,
    bytes    BLOB NOT NULL,
    PRIMARY KEY (document, hash)
) WITHOUT ROWID;

-- The snapshot compaction wrote for a document (at most one): what `changes` rows add to.
CREATE TABLE snapshots (
    document TEXT PRIMARY KEY REFERENCES documents(id),
    bytes    BLOB NOT NULL
);

-- Every change of a document's recorded owner, at the sequence of the write that made
-- it, so that a scope listing can tell a device which documents left its area.
CREATE TABLE transfers (
    seq        INTEGER PRIMARY KEY,
    document   TEXT NOT NULL,
    from_owner TEXT NOT NULL,
    to_owner   TEXT NOT NULL
);

-- The report projection (design §3.6): one row per document, written in the same
-- transaction as its changes. Reports query only this table. `day` is YYYY-MM-DD and
-- `month` YYYY-MM, both China time, so that text order is date order.
CREATE TABLE records (
    document          TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    org_unit          TEXT NOT NULL,
    subject           TEXT NULL,
    worker            TEXT NULL,
    title             TEXT NOT NULL,
    day               TEXT NULL,
    month             TEXT NULL,
    started_at        INTEGER NULL,
    ended_at          INTEGER NULL,
    minutes           INTEGER NULL,
    record_status     TEXT NULL,
    review_state      TEXT NULL,
    review_comment    TEXT NULL,
    next_visit        TEXT NULL,
    risk              TEXT NULL,
    active            INTEGER NOT NULL,
    needs_or_services TEXT NOT NULL,
    actions           TEXT NOT NULL,
    concerns          TEXT NOT NULL,
    seq               INTEGER NOT NULL
);
CREATE INDEX records_unit_kind_day ON records(org_unit, kind, day);
CREATE INDEX records_worker_month ON records(worker, month);
CREATE INDEX records_subject_day ON records(subject, day);

-- Who did what and when: refused changes, denied reads, logins, account changes.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    account_id TEXT NULL,
    event      TEXT NOT NULL,
    document   TEXT NULL,
    detail     TEXT NOT NULL
);
"#;

/// Every migration, in order; migration `n` (1-based) brings a database to version `n`.
const MIGRATIONS: &[&str] = &[MIGRATION_1];

/// The database schema version this build writes (not the documents' `SCHEMA_VERSION`).
pub const DATABASE_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`DATABASE_VERSION`]; refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    apply(conn, MIGRATIONS)
}

/// Applies the scripts a database has not run yet and answers how many ran.
fn apply(conn: &mut Connection, scripts: &[&str]) -> Result<usize, StoreError> {
    let known = i64::try_from(scripts.len()).unwrap_or(i64::MAX);
    let mut applied = 0;
    for (index, script) in scripts.iter().enumerate() {
        let target = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1);
        // IMMEDIATE takes the write lock before reading the version: two processes opening
        // a new database at once then migrate one after the other instead of both running
        // the same script.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = user_version(&tx)?;
        if version > known {
            return Err(StoreError::NewerSchema {
                found: version,
                known,
            });
        }
        if version >= target {
            continue;
        }
        tx.execute_batch(script)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        applied += 1;
    }
    // Checked again for a database that is already current, which the loop never refuses
    // when the list is empty.
    let version = user_version(conn)?;
    if version > known {
        return Err(StoreError::NewerSchema {
            found: version,
            known,
        });
    }
    Ok(applied)
}

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::{open_connection, test_support::temp_db};

    #[test]
    fn reopening_runs_nothing_twice() {
        let (_dir, path) = temp_db();
        let mut conn = Connection::open(&path).unwrap();
        let first = ["CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);"];
        assert_eq!(apply(&mut conn, &first).unwrap(), 1);
        assert_eq!(apply(&mut conn, &first).unwrap(), 0);
        let second = [first[0], "INSERT INTO t VALUES (2);"];
        assert_eq!(apply(&mut conn, &second).unwrap(), 1);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2, "the first script ran once, the second once");
        assert_eq!(user_version(&conn).unwrap(), 2);
    }

    #[test]
    fn reopening_the_real_schema_is_a_no_op() {
        let (_dir, path) = temp_db();
        drop(open_connection(&path).unwrap());
        let mut conn = open_connection(&path).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(user_version(&conn).unwrap(), DATABASE_VERSION);
    }

    #[test]
    fn a_failing_script_leaves_the_version_unchanged() {
        let (_dir, path) = temp_db();
        let mut conn = Connection::open(&path).unwrap();
        let scripts = [
            "CREATE TABLE t(x INTEGER);",
            "INSERT INTO missing VALUES (1);",
        ];
        assert!(apply(&mut conn, &scripts).is_err());
        assert_eq!(user_version(&conn).unwrap(), 1);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let (_dir, path) = temp_db();
        drop(open_connection(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", DATABASE_VERSION + 1)
            .unwrap();
        drop(conn);
        match open_connection(&path) {
            Err(StoreError::NewerSchema { found, known }) => {
                assert_eq!(found, DATABASE_VERSION + 1);
                assert_eq!(known, DATABASE_VERSION);
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
    }
}
