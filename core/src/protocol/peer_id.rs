//! Peer and storage identifiers: plain strings on the wire.
//!
//! The protocol does not authenticate either: a peer id is whatever the peer says in `join`
//! (JS makes `peer-` plus random base36), and a storage id is a UUID string that a peer with
//! persistent storage advertises in `peerMetadata`. They are newtypes only so that the two
//! cannot be mixed up with each other or with other strings.

use std::fmt;

/// The id a peer gives itself in `senderId`; messages name their receiver with `targetId`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Ord, PartialOrd)]
pub struct PeerId(pub String);

/// The id of a peer's persistent storage (`peerMetadata.storageId`), stable across
/// reconnections, under which the other side may keep sync state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Ord, PartialOrd)]
pub struct StorageId(pub String);

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(PeerId);
string_newtype!(StorageId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_conversions_keep_the_text() {
        let p = PeerId::from("peer-abc123");
        assert_eq!(p.to_string(), "peer-abc123");
        assert_eq!(p, PeerId::from(String::from("peer-abc123")));
        assert_eq!(p.as_str(), "peer-abc123");
        let s = StorageId::from("0b7c7d3e-1f2a-4c55-9c1e-2f1d3b4a5c6d");
        assert_eq!(s.to_string(), "0b7c7d3e-1f2a-4c55-9c1e-2f1d3b4a5c6d");
        assert!(StorageId::from("a") < StorageId::from("b"));
    }
}
