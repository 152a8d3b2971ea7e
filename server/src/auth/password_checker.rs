//! Password checks on one thread of their own, one at a time.
//!
//! Argon2 allocates and touches 19 MiB of memory blocks for every check, and the process
//! kept much of it: the relay grew by about 19 MB with each of its first logins (from
//! 10 MB to 194 MB after the benchmark's eleven logins, before any device connected). The
//! checking thread keeps one set of blocks and reuses it, so the cost is paid once. One
//! thread also bounds the CPU a flood of logins can take: checks queue up to
//! [`PASSWORD_CHECKS_QUEUED_MAX`] and the rest are told to retry.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;

use super::password::{Argon2Memory, verify_password_reusing};

/// Password checks waiting for the checking thread; more are refused as busy. At tens of
/// milliseconds a check, a full queue is about a second of work.
pub const PASSWORD_CHECKS_QUEUED_MAX: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum PasswordCheckError {
    #[error("too many password checks are waiting")]
    Busy,
    #[error("the password checking thread is not running: {0}")]
    Stopped(String),
}

struct Check {
    stored: String,
    password: String,
    answer: oneshot::Sender<bool>,
}

/// Hands password checks to the checking thread, which starts with the first check and
/// ends when every handle is dropped.
#[derive(Debug, Default)]
pub struct PasswordChecker {
    checks: OnceLock<Result<SyncSender<Check>, String>>,
}

impl PasswordChecker {
    /// True when `password` matches the stored hash (see [`verify_password_reusing`]).
    pub async fn verify(
        &self,
        stored: String,
        password: String,
    ) -> Result<bool, PasswordCheckError> {
        let checks = self
            .checks
            .get_or_init(start_thread)
            .as_ref()
            .map_err(|error| PasswordCheckError::Stopped(error.clone()))?;
        let (answer, answered) = oneshot::channel();
        let check = Check {
            stored,
            password,
            answer,
        };
        match checks.try_send(check) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PasswordCheckError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(PasswordCheckError::Stopped("it ended".to_owned()));
            }
        }
        answered
            .await
            .map_err(|_| PasswordCheckError::Stopped("it dropped the check".to_owned()))
    }
}

fn start_thread() -> Result<SyncSender<Check>, String> {
    let (checks, queued) = sync_channel(PASSWORD_CHECKS_QUEUED_MAX);
    std::thread::Builder::new()
        .name("caresync-passwords".to_owned())
        .spawn(move || check_until_closed(&queued))
        .map_err(|error| error.to_string())?;
    Ok(checks)
}

fn check_until_closed(queued: &Receiver<Check>) {
    let mut memory = Argon2Memory::new();
    while let Ok(check) = queued.recv() {
        let matches = verify_password_reusing(&mut memory, &check.stored, &check.password);
        // The login may have given up waiting; nobody else wants the answer.
        let _ = check.answer.send(matches);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::hash_password;

    #[tokio::test]
    async fn checks_answer_like_verify_password() {
        let checker = PasswordChecker::default();
        let stored = hash_password("demo-password").unwrap_or_default();
        assert!(matches!(
            checker
                .verify(stored.clone(), "demo-password".to_owned())
                .await,
            Ok(true)
        ));
        assert!(matches!(
            checker.verify(stored, "wrong".to_owned()).await,
            Ok(false)
        ));
    }
}
