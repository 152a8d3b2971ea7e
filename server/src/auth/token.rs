//! Session tokens: 256 random bits, shown to the client once as 64 hex digits and stored
//! only as their SHA-256, so a copy of the database does not hold usable tokens.

use sha2::{Digest, Sha256};

pub const TOKEN_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("cannot read random bytes for a token: {0}")]
pub struct TokenError(String);

/// A new token and the hash to store.
pub fn new_token() -> Result<(String, [u8; 32]), TokenError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| TokenError(error.to_string()))?;
    let text = hex(&bytes);
    Ok((text, digest(&bytes)))
}

/// The stored hash of a token as the client presents it; `None` if it is not a token at
/// all (wrong length or not hex), which callers treat like an unknown token.
pub fn token_hash(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != TOKEN_BYTES * 2 {
        return None;
    }
    let mut bytes = [0u8; TOKEN_BYTES];
    for (slot, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(digest(&bytes))
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_maps_to_the_hash_stored_for_it_and_garbage_maps_to_nothing() {
        let Ok((text, stored)) = new_token() else {
            unreachable!("the OS has randomness")
        };
        assert_eq!(text.len(), 64);
        assert_eq!(token_hash(&text), Some(stored));
        assert_eq!(token_hash(&text.to_uppercase()), Some(stored));
        assert_eq!(token_hash("abc"), None);
        assert_eq!(token_hash(&"zz".repeat(32)), None);
        let Ok((other, _)) = new_token() else {
            unreachable!("the OS has randomness")
        };
        assert_ne!(text, other);
    }
}
