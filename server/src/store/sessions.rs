//! Login sessions. The bearer token itself is never stored, only its SHA-256: a leaked
//! database or backup then holds nothing a client could log in with.

use caresync_core::domain::{Account, AccountId};
use rusqlite::{Connection, OptionalExtension, ffi, params};

use super::StoreError;
use super::accounts::AccountColumns;

/// Records a new session of `account_id`; an unknown account is
/// [`StoreError::UnknownAccount`].
pub fn insert_session(
    conn: &Connection,
    token_hash: &[u8; 32],
    account_id: &AccountId,
    created_ms: i64,
    expires_ms: i64,
) -> Result<(), StoreError> {
    let result = conn
        .prepare_cached(
            "INSERT INTO sessions (token_hash, account_id, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            token_hash.as_slice(),
            account_id.as_str(),
            created_ms,
            expires_ms
        ]);
    match result {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.extended_code == ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            Err(StoreError::UnknownAccount(account_id.as_str().to_owned()))
        }
        Err(error) => Err(error.into()),
    }
}

/// The account a session token stands for at `now_ms`: `None` if the session is unknown,
/// revoked or expired, or its account is disabled. Checked on every request, so disabling
/// an account ends its sessions without touching them.
pub fn session_account(
    conn: &Connection,
    token_hash: &[u8; 32],
    now_ms: i64,
) -> Result<Option<Account>, StoreError> {
    let found = conn
        .prepare_cached(
            // The columns of `ACCOUNT_COLUMNS`, in its order, for `AccountColumns::read`.
            "SELECT a.id, a.username, a.role, a.org_units, a.assigned_elders, a.disabled
             FROM sessions s JOIN accounts a ON a.id = s.account_id
             WHERE s.token_hash = ?1 AND s.revoked = 0 AND s.expires_ms > ?2
               AND a.disabled = 0",
        )?
        .query_row(params![token_hash.as_slice(), now_ms], |row| {
            AccountColumns::read(row, 0)
        })
        .optional()?;
    found.map(AccountColumns::into_account).transpose()
}

/// Ends one session (logout); answers whether it existed.
pub fn revoke_session(conn: &Connection, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
    let updated = conn
        .prepare_cached("UPDATE sessions SET revoked = 1 WHERE token_hash = ?1")?
        .execute([token_hash.as_slice()])?;
    Ok(updated > 0)
}

/// Ends every session of an account (password change, lost phone); answers how many
/// were still open.
pub fn revoke_sessions_of(conn: &Connection, account_id: &AccountId) -> Result<u64, StoreError> {
    let updated = conn
        .prepare_cached("UPDATE sessions SET revoked = 1 WHERE account_id = ?1 AND revoked = 0")?
        .execute([account_id.as_str()])?;
    Ok(u64::try_from(updated).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use caresync_core::domain::Role;

    use super::*;
    use crate::store::test_support::open_temp;
    use crate::store::{insert_account, set_disabled};

    const TOKEN: [u8; 32] = [7; 32];
    const OTHER: [u8; 32] = [8; 32];

    fn setup() -> (tempfile::TempDir, Connection, Account) {
        let (dir, conn) = open_temp();
        let account = Account::new("acct-1", "wang", Role::VillageChildDirector);
        insert_account(&conn, &account, "h", 0).unwrap();
        (dir, conn, account)
    }

    #[test]
    fn a_live_session_names_its_account_until_it_expires() {
        let (_dir, conn, account) = setup();
        insert_session(&conn, &TOKEN, &account.id, 100, 200).unwrap();
        assert_eq!(session_account(&conn, &TOKEN, 150).unwrap(), Some(account));
        assert_eq!(session_account(&conn, &TOKEN, 200).unwrap(), None);
        assert_eq!(session_account(&conn, &OTHER, 150).unwrap(), None);
    }

    #[test]
    fn revoked_sessions_and_disabled_accounts_end_access() {
        let (_dir, conn, account) = setup();
        insert_session(&conn, &TOKEN, &account.id, 0, 1000).unwrap();
        insert_session(&conn, &OTHER, &account.id, 0, 1000).unwrap();
        assert!(revoke_session(&conn, &TOKEN).unwrap());
        assert_eq!(session_account(&conn, &TOKEN, 1).unwrap(), None);
        assert!(session_account(&conn, &OTHER, 1).unwrap().is_some());

        set_disabled(&conn, "wang", true).unwrap();
        assert_eq!(session_account(&conn, &OTHER, 1).unwrap(), None);
        set_disabled(&conn, "wang", false).unwrap();
        assert!(session_account(&conn, &OTHER, 1).unwrap().is_some());

        assert_eq!(revoke_sessions_of(&conn, &account.id).unwrap(), 1);
        assert_eq!(session_account(&conn, &OTHER, 1).unwrap(), None);
    }

    #[test]
    fn a_session_needs_an_existing_account() {
        let (_dir, conn, _account) = setup();
        assert!(matches!(
            insert_session(&conn, &TOKEN, &AccountId::new("ghost"), 0, 1),
            Err(StoreError::UnknownAccount(id)) if id == "ghost"
        ));
    }
}
