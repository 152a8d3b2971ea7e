//! Argon2id password hashes (the `argon2` crate's defaults: Argon2id v19, 19 MiB, 2 passes),
//! stored in the PHC string format so that parameters can be raised later without a
//! migration. Hashing takes tens of milliseconds on purpose: callers run it off the async
//! runtime (`spawn_blocking`).

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is longer than {PASSWORD_BYTES_MAX} bytes")]
    TooLong,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("cannot read random bytes for the salt: {0}")]
    Random(String),
}

/// Longest password accepted, so that a request cannot make the relay hash megabytes.
pub const PASSWORD_BYTES_MAX: usize = 1_024;

pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(PasswordError::TooLong);
    }
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|error| PasswordError::Random(error.to_string()))?;
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|error| PasswordError::Hash(error.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

/// True when `password` matches `stored`. A malformed stored hash never matches.
pub fn verify_password(stored: &str, password: &str) -> bool {
    if password.len() > PASSWORD_BYTES_MAX {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash to verify against when the account does not exist, so that an unknown username
/// costs the same time as a wrong password and the answer's timing does not tell them apart.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never matches").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("demo-password").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "demo-password"));
        assert!(!verify_password(&hash, "demo-passwore"));
        assert!(!verify_password("not a hash", "demo-password"));
        assert!(!verify_password(decoy_hash(), ""));
    }
}
