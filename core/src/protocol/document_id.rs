//! Document ids: 16 bytes (a UUIDv4), written as bs58check text.
//!
//! automerge-repo writes a document id with plain bs58check: base58 of the 16 bytes followed
//! by the first 4 bytes of their double SHA-256, with no version byte in front
//! (`bs58check.encode(binaryDocumentId)` in the JS `AutomergeUrl.ts`; samod decodes with
//! `with_check(None)`). caresync must produce the same text, or JS clients would not find
//! the documents it names.

use std::fmt;
use std::str::FromStr;

use super::bs58check::{decode_check, encode_check};

/// The identifier of one automerge document: the 16 bytes of a UUIDv4.
///
/// [`Display`](fmt::Display) and [`FromStr`] use the bs58check text that automerge-repo puts
/// into URLs and messages, for example `4NMNnkMhL8jXrdJ9jamS58PAVdXu`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Ord, PartialOrd)]
pub struct DocumentId([u8; 16]);

/// Why a text or byte string is not a [`DocumentId`] (or, for URL heads, not a change hash).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentIdError {
    /// The text holds a character outside the bitcoin base58 alphabet.
    #[error("not base58: {0}")]
    BadBase58(String),
    /// The text is base58 but its last 4 bytes are not the checksum of the others.
    #[error("bad bs58check checksum")]
    BadChecksum,
    /// The decoded payload has the wrong number of bytes.
    #[error("expected {expected} bytes, got {actual}")]
    WrongLength {
        /// How many bytes the value must have.
        expected: usize,
        /// How many bytes it had.
        actual: usize,
    },
    /// The text is far longer than any valid value; it is refused before decoding because
    /// base58 decoding takes time quadratic in the length.
    #[error("{chars} characters is too long")]
    TooLong {
        /// The length of the refused text in bytes.
        chars: usize,
    },
}

impl DocumentId {
    /// The number of bytes in a document id.
    pub const LEN_BYTES: usize = 16;

    /// Makes a new random document id from 16 random bytes, setting the UUID version (4) and
    /// variant (RFC 4122) bits the way `uuid.v4()` does in JS.
    ///
    /// The caller supplies the randomness because `core` never reads an RNG itself; this
    /// keeps simulations deterministic.
    pub fn random_from(bytes: [u8; 16]) -> Self {
        let mut bytes = bytes;
        // Byte 6 carries the version in its high nibble and byte 8 the variant in its two
        // high bits (RFC 4122 §4.1.3 and §4.1.1).
        if let Some(b) = bytes.get_mut(6) {
            *b = (*b & 0x0f) | 0x40;
        }
        if let Some(b) = bytes.get_mut(8) {
            *b = (*b & 0x3f) | 0x80;
        }
        Self(bytes)
    }

    /// Wraps 16 bytes as they are. Any 16 bytes are accepted, like the JS library does,
    /// because ids made by other implementations need not be UUIDv4.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes of the id.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The `automerge:<id>` URL of this document, without heads.
    pub fn to_url(&self) -> super::AutomergeUrl {
        super::AutomergeUrl::from(*self)
    }
}

impl TryFrom<&[u8]> for DocumentId {
    type Error = DocumentIdError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        <[u8; 16]>::try_from(bytes)
            .map(Self)
            .map_err(|_| DocumentIdError::WrongLength {
                expected: Self::LEN_BYTES,
                actual: bytes.len(),
            })
    }
}

impl From<[u8; 16]> for DocumentId {
    fn from(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_check(&self.0))
    }
}

impl fmt::Debug for DocumentId {
    // The text form is what appears in logs, URLs and the JS tools, so Debug prints it
    // rather than a list of 16 numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for DocumentId {
    type Err = DocumentIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_check::<16>(s).map(Self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The example id of automerge-repo's `types.ts` doc comments; other implementations test
    /// against the same 16 bytes.
    const JS_ID: &str = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";
    const JS_ID_BYTES: [u8; 16] = [
        0xf1, 0xc2, 0x9c, 0x84, 0x74, 0xc8, 0x4a, 0xde, 0xb8, 0x00, 0xbe, 0x47, 0x62, 0x7d, 0x33,
        0xbf,
    ];

    #[test]
    fn parses_an_id_from_the_js_ecosystem() {
        let id: DocumentId = JS_ID.parse().unwrap();
        assert_eq!(id.as_bytes(), &JS_ID_BYTES);
        // It is a UUIDv4: version nibble 4, RFC 4122 variant.
        assert_eq!(id.as_bytes()[6] >> 4, 4);
        assert_eq!(id.as_bytes()[8] >> 6, 0b10);
        assert_eq!(id.to_string(), JS_ID);
        assert_eq!(format!("{id:?}"), JS_ID);
    }

    #[test]
    fn random_from_sets_version_and_variant() {
        let id = DocumentId::random_from([0xff; 16]);
        assert_eq!(id.as_bytes()[6], 0x4f);
        assert_eq!(id.as_bytes()[8], 0xbf);
        let id = DocumentId::random_from([0x00; 16]);
        assert_eq!(id.as_bytes()[6], 0x40);
        assert_eq!(id.as_bytes()[8], 0x80);
        let back: DocumentId = id.to_string().parse().unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn text_round_trips_for_many_ids() {
        for seed in 0u8..=255 {
            let id = DocumentId::random_from([seed; 16]);
            assert_eq!(id.to_string().parse::<DocumentId>().unwrap(), id);
        }
    }

    #[test]
    fn rejects_bad_text() {
        // '0', 'O', 'I' and 'l' are not in the base58 alphabet.
        assert!(matches!(
            "0NMNnkMhL8jXrdJ9jamS58PAVdXu".parse::<DocumentId>(),
            Err(DocumentIdError::BadBase58(_))
        ));
        // One changed character breaks the checksum.
        assert_eq!(
            "4NMNnkMhL8jXrdJ9jamS58PAVdXv".parse::<DocumentId>(),
            Err(DocumentIdError::BadChecksum)
        );
        assert_eq!("".parse::<DocumentId>(), Err(DocumentIdError::BadChecksum));
        // A valid bs58check string of 20 bytes is not a document id.
        let twenty = encode_check(&[7u8; 20]);
        assert_eq!(
            twenty.parse::<DocumentId>(),
            Err(DocumentIdError::WrongLength {
                expected: 16,
                actual: 20
            })
        );
        let long = "1".repeat(10_000);
        assert_eq!(
            long.parse::<DocumentId>(),
            Err(DocumentIdError::TooLong { chars: 10_000 })
        );
    }

    #[test]
    fn from_byte_slice_checks_length() {
        assert_eq!(
            DocumentId::try_from(&JS_ID_BYTES[..]).unwrap().to_string(),
            JS_ID
        );
        assert_eq!(
            DocumentId::try_from(&JS_ID_BYTES[..15]),
            Err(DocumentIdError::WrongLength {
                expected: 16,
                actual: 15
            })
        );
    }
}
