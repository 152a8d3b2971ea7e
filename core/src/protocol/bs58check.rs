//! bs58check text without a version byte: base58 of the payload followed by the first 4
//! bytes of the payload's double SHA-256.
//!
//! The `bs58` crate can add and check that sum itself (its `check` feature), but it hashes
//! with `sha2` 0.10 while automerge hashes changes with `sha2` 0.11. Both would then be in
//! the phone's wasm download, which design §4 caps at 600 KB gzipped. Summing here with the
//! `sha2` automerge already brings keeps one SHA-256 in the build; `bs58` still does the
//! base58 itself. A test checks the text against `bs58`'s own `with_check`.

use sha2::{Digest, Sha256};

use super::document_id::DocumentIdError;

/// The number of checksum bytes after the payload.
const CHECKSUM_LEN_BYTES: usize = 4;

/// The first 4 bytes of SHA-256(SHA-256(`payload`)).
fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN_BYTES] {
    let twice = Sha256::digest(Sha256::digest(payload));
    // A SHA-256 digest has 32 bytes, so the first 4 are always there.
    twice.first_chunk().copied().unwrap_or_default()
}

/// Writes `bytes` as bs58check without a version byte, as the JS `bs58check.encode` does.
pub(crate) fn encode_check(bytes: &[u8]) -> String {
    let mut with_sum = Vec::with_capacity(bytes.len() + CHECKSUM_LEN_BYTES);
    with_sum.extend_from_slice(bytes);
    with_sum.extend_from_slice(&checksum(bytes));
    bs58::encode(with_sum).into_string()
}

/// Reads bs58check text (no version byte) holding exactly `N` bytes.
pub(crate) fn decode_check<const N: usize>(s: &str) -> Result<[u8; N], DocumentIdError> {
    // N payload bytes plus a 4-byte checksum never need more than 1.37 base58 digits per
    // byte; twice the byte count is a generous bound that still stops absurd inputs before
    // the quadratic decoder sees them.
    let chars_max = 2 * (N + CHECKSUM_LEN_BYTES);
    if s.len() > chars_max {
        return Err(DocumentIdError::TooLong { chars: s.len() });
    }
    let decoded = bs58::decode(s)
        .into_vec()
        .map_err(|e| DocumentIdError::BadBase58(e.to_string()))?;
    // Text too short to hold a checksum cannot carry a valid one.
    let payload_len = decoded
        .len()
        .checked_sub(CHECKSUM_LEN_BYTES)
        .ok_or(DocumentIdError::BadChecksum)?;
    let (payload, sum) = decoded.split_at(payload_len);
    if sum != checksum(payload) {
        return Err(DocumentIdError::BadChecksum);
    }
    <[u8; N]>::try_from(payload).map_err(|_| DocumentIdError::WrongLength {
        expected: N,
        actual: payload.len(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BITCOIN_ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    proptest! {
        /// The text is the `bs58` crate's own bs58check text, which samod decodes with
        /// `with_check(None)`, and reads back to the same bytes.
        #[test]
        fn writes_what_the_bs58_crate_writes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let ours = encode_check(&bytes);
            prop_assert_eq!(&ours, &bs58::encode(&bytes).with_check().into_string());
            let back = bs58::decode(&ours).with_check(None).into_vec().unwrap();
            prop_assert_eq!(back, bytes);
        }

        /// Changing any one character of valid text is refused, never read as other bytes.
        #[test]
        fn refuses_text_with_one_character_changed(bytes in any::<[u8; 16]>(), at in 0usize..22, to in 0usize..58) {
            let text = encode_check(&bytes);
            let mut chars: Vec<char> = text.chars().collect();
            let at = at % chars.len();
            let replacement = BITCOIN_ALPHABET.chars().nth(to).unwrap();
            let changed_char = chars.get_mut(at).unwrap();
            prop_assume!(*changed_char != replacement);
            *changed_char = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(decode_check::<16>(&changed).is_err());
        }
    }

    #[test]
    fn text_shorter_than_a_checksum_is_a_bad_checksum() {
        assert_eq!(decode_check::<16>(""), Err(DocumentIdError::BadChecksum));
        let three_bytes = bs58::encode([1u8, 2, 3]).into_string();
        assert_eq!(
            decode_check::<16>(&three_bytes),
            Err(DocumentIdError::BadChecksum)
        );
    }
}
