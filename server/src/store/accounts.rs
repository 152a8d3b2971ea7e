//! Login accounts. Password hashes are stored next to the account but never leave this
//! module's callers on the server: `core` and devices only ever see [`Account`].

use caresync_core::domain::{Account, AccountId, OrgUnitCode, Role, SubjectId};
use rusqlite::{Connection, OptionalExtension, Row, ffi, params};

use super::{StoreError, json_array};

/// The columns [`AccountColumns::read`] expects, in order.
const ACCOUNT_COLUMNS: &str = "id, username, role, org_units, assigned_elders, disabled";

/// An `accounts` row as stored, before its text columns are checked.
pub(super) struct AccountColumns {
    id: String,
    username: String,
    role: String,
    org_units: String,
    assigned_elders: String,
    disabled: bool,
}

impl AccountColumns {
    /// Reads [`ACCOUNT_COLUMNS`] starting at column `start`.
    pub(super) fn read(row: &Row<'_>, start: usize) -> rusqlite::Result<Self> {
        Ok(AccountColumns {
            id: row.get(start)?,
            username: row.get(start + 1)?,
            role: row.get(start + 2)?,
            org_units: row.get(start + 3)?,
            assigned_elders: row.get(start + 4)?,
            disabled: row.get(start + 5)?,
        })
    }

    pub(super) fn into_account(self) -> Result<Account, StoreError> {
        let corrupt = |detail: String| StoreError::corrupt("accounts", &self.id, detail);
        let role = Role::parse(&self.role)
            .ok_or_else(|| corrupt(format!("unknown role {:?}", self.role)))?;
        let org_units: Vec<String> = serde_json::from_str(&self.org_units)
            .map_err(|e| corrupt(format!("org_units is not a JSON list of strings: {e}")))?;
        let assigned_elders: Vec<String> =
            serde_json::from_str(&self.assigned_elders).map_err(|e| {
                corrupt(format!(
                    "assigned_elders is not a JSON list of strings: {e}"
                ))
            })?;
        Ok(Account {
            id: AccountId(self.id),
            username: self.username,
            role,
            org_units: org_units.into_iter().map(OrgUnitCode).collect(),
            assigned_elders: assigned_elders.into_iter().map(SubjectId).collect(),
            disabled: self.disabled,
        })
    }
}

/// Adds an account. A taken username is [`StoreError::DuplicateUsername`], a taken id
/// [`StoreError::DuplicateAccountId`], so that the CLI and the admin API can say which.
pub fn insert_account(
    conn: &Connection,
    account: &Account,
    password_hash: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let result = conn
        .prepare_cached(
            "INSERT INTO accounts
                (id, username, password_hash, role, org_units, assigned_elders, disabled, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            account.id.as_str(),
            account.username,
            password_hash,
            account.role.as_str(),
            json_array(account.org_units.iter().map(OrgUnitCode::as_str)),
            json_array(account.assigned_elders.iter().map(SubjectId::as_str)),
            account.disabled,
            now_ms,
        ]);
    match result {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            // `username` is the table's only UNIQUE column besides the primary key.
            Err(StoreError::DuplicateUsername(account.username.clone()))
        }
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Err(StoreError::DuplicateAccountId(
                account.id.as_str().to_owned(),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

/// The account and its password hash, for login.
pub fn account_by_username(
    conn: &Connection,
    username: &str,
) -> Result<Option<(Account, String)>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE username = ?1"
        ))?
        .query_row([username], |row| {
            Ok((AccountColumns::read(row, 0)?, row.get::<_, String>(6)?))
        })
        .optional()?;
    found
        .map(|(columns, hash)| Ok((columns.into_account()?, hash)))
        .transpose()
}

pub fn account_by_id(conn: &Connection, id: &AccountId) -> Result<Option<Account>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"
        ))?
        .query_row([id.as_str()], |row| AccountColumns::read(row, 0))
        .optional()?;
    found.map(AccountColumns::into_account).transpose()
}

/// Disables or enables an account; answers whether the username exists. Sessions of a
/// disabled account stop working at once (see `session_account`).
pub fn set_disabled(conn: &Connection, username: &str, disabled: bool) -> Result<bool, StoreError> {
    let updated = conn
        .prepare_cached("UPDATE accounts SET disabled = ?2 WHERE username = ?1")?
        .execute(params![username, disabled])?;
    Ok(updated > 0)
}

/// Every account, by username.
pub fn list_accounts(conn: &Connection) -> Result<Vec<Account>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username"
    ))?;
    let rows = statement.query_map([], |row| AccountColumns::read(row, 0))?;
    let mut accounts = Vec::new();
    for row in rows {
        accounts.push(row?.into_account()?);
    }
    Ok(accounts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::test_support::open_temp;

    fn worker() -> Account {
        Account::new("acct-1", "wang", Role::CareWorker)
            .with_org_units([OrgUnitCode::new("370402001001")])
            .with_assigned_elders([SubjectId::new("elder-a"), SubjectId::new("elder-b")])
    }

    #[test]
    fn an_account_reads_back_as_written() {
        let (_dir, conn) = open_temp();
        insert_account(&conn, &worker(), "$argon2id$hash", 1).unwrap();
        let (account, hash) = account_by_username(&conn, "wang").unwrap().unwrap();
        assert_eq!(account, worker());
        assert_eq!(hash, "$argon2id$hash");
        assert_eq!(
            account_by_id(&conn, &AccountId::new("acct-1")).unwrap(),
            Some(worker())
        );
        assert_eq!(account_by_username(&conn, "li").unwrap(), None);
        assert_eq!(
            account_by_id(&conn, &AccountId::new("nobody")).unwrap(),
            None
        );
    }

    #[test]
    fn duplicates_are_told_apart() {
        let (_dir, conn) = open_temp();
        insert_account(&conn, &worker(), "h", 1).unwrap();
        let same_name = Account::new("acct-2", "wang", Role::BureauAdmin);
        match insert_account(&conn, &same_name, "h", 2) {
            Err(StoreError::DuplicateUsername(name)) => assert_eq!(name, "wang"),
            other => panic!("expected DuplicateUsername, got {other:?}"),
        }
        let same_id = Account::new("acct-1", "li", Role::BureauAdmin);
        assert!(matches!(
            insert_account(&conn, &same_id, "h", 2),
            Err(StoreError::DuplicateAccountId(_))
        ));
    }

    #[test]
    fn disabling_and_listing() {
        let (_dir, conn) = open_temp();
        insert_account(&conn, &worker(), "h", 1).unwrap();
        insert_account(
            &conn,
            &Account::new("acct-0", "admin", Role::BureauAdmin),
            "h",
            1,
        )
        .unwrap();
        assert!(set_disabled(&conn, "wang", true).unwrap());
        assert!(!set_disabled(&conn, "nobody", true).unwrap());
        let accounts = list_accounts(&conn).unwrap();
        let names: Vec<&str> = accounts.iter().map(|a| a.username.as_str()).collect();
        assert_eq!(names, ["admin", "wang"]);
        assert!(accounts.iter().any(|a| a.username == "wang" && a.disabled));
        assert!(
            accounts
                .iter()
                .any(|a| a.username == "admin" && !a.disabled)
        );
    }

    #[test]
    fn a_corrupt_role_is_reported() {
        let (_dir, conn) = open_temp();
        insert_account(&conn, &worker(), "h", 1).unwrap();
        conn.execute("UPDATE accounts SET role = 'wizard'", [])
            .unwrap();
        assert!(matches!(
            account_by_username(&conn, "wang"),
            Err(StoreError::Corrupt {
                table: "accounts",
                ..
            })
        ));
    }
}
