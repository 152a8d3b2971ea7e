//! Argon2id password hashes (the `argon2` crate's defaults: Argon2id v19, 19 MiB, 2 passes),
//! stored in the PHC string format so that parameters can be raised later without a
//! migration. Hashing takes tens of milliseconds on purpose: the relay checks passwords on
//! a thread of its own (`password_checker.rs`), the CLI and the demo set-up where they are.

use std::sync::OnceLock;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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

/// Argon2 memory blocks kept between checks by [`verify_password_reusing`].
pub type Argon2Memory = Vec<Block>;

/// Largest Argon2 memory a stored hash may ask for (in 1 KiB blocks): four times today's
/// 19 MiB, so that parameters can be raised, but a damaged row cannot make the relay
/// allocate gigabytes.
pub const ARGON2_MEMORY_BLOCKS_MAX: usize = 4 * 19 * 1024;

/// [`verify_password`] with the memory blocks kept in `memory` between calls. Argon2
/// allocates (and touches) 19 MiB per check otherwise, and the allocator kept each of those
/// in the process's memory: the relay grew by about 19 MB with each of its first logins.
pub fn verify_password_reusing(memory: &mut Argon2Memory, stored: &str, password: &str) -> bool {
    if password.len() > PASSWORD_BYTES_MAX {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > ARGON2_MEMORY_BLOCKS_MAX {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let Some(memory) = memory.get_mut(..blocks) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut computed = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, memory)
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&computed).is_ok_and(|computed| computed == expected)
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

    #[test]
    fn reusing_memory_answers_like_verify_password() {
        let mut memory = Argon2Memory::new();
        let hash = hash_password("demo-password").unwrap_or_default();
        for _ in 0..2 {
            assert!(verify_password_reusing(&mut memory, &hash, "demo-password"));
            assert!(!verify_password_reusing(
                &mut memory,
                &hash,
                "demo-passwore"
            ));
        }
        assert!(!verify_password_reusing(
            &mut memory,
            "not a hash",
            "demo-password"
        ));
        assert!(!verify_password_reusing(&mut memory, decoy_hash(), ""));
        // A hash made elsewhere with other parameters (argon2's own test vector style).
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap_or_default(),
        )
        .hash_password(
            b"x",
            &SaltString::encode_b64(&[7; 16]).unwrap_or_else(|_| unreachable!()),
        )
        .map(|hash| hash.to_string())
        .unwrap_or_default();
        assert!(verify_password_reusing(&mut memory, &other, "x"));
        assert!(!verify_password_reusing(&mut memory, &other, "y"));
        // A stored hash asking for absurd memory is refused, not computed.
        let greedy = other.replace("m=8", "m=4194304");
        assert!(!verify_password_reusing(&mut memory, &greedy, "x"));
    }
}
