//! Splitting the `changes` of an automerge sync message into individual changes.
//!
//! One entry of a sync message's change list holds one change (v1), several changes
//! concatenated, or a whole saved document (v2), and automerge's storage format also has
//! compressed changes and bundles. The engine must see every change separately to judge
//! it, so each entry is split into storage chunks by their header (magic bytes, checksum,
//! type byte, LEB128 length) and every chunk is decoded by automerge itself.

use automerge::{Automerge, Bundle, Change};

/// The four bytes every automerge storage chunk starts with.
const MAGIC_BYTES: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Magic bytes, checksum, chunk type.
const FIXED_HEADER_BYTES: usize = 9;
/// A LEB128-encoded `u64` is at most this long.
const LENGTH_PREFIX_BYTES_MAX: usize = 10;

const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED_CHANGE: u8 = 2;
const CHUNK_BUNDLE: u8 = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ChunkError {
    #[error("a chunk does not start with automerge's magic bytes")]
    BadMagic,
    #[error("a chunk ends before its declared length")]
    Truncated,
    #[error("unknown chunk type {0}")]
    UnknownType(u8),
    #[error("a chunk could not be decoded: {0}")]
    Decode(String),
    #[error("more than {0} changes")]
    TooMany(usize),
}

/// Every change held by `entry`, in the order they appear.
pub(crate) fn changes_in(entry: &[u8], changes_max: usize) -> Result<Vec<Change>, ChunkError> {
    let mut changes = Vec::new();
    let mut rest = entry;
    while !rest.is_empty() {
        let (chunk_type, chunk, after) = next_chunk(rest)?;
        match chunk_type {
            CHUNK_CHANGE | CHUNK_COMPRESSED_CHANGE => changes.push(
                Change::from_bytes(chunk.to_vec())
                    .map_err(|error| ChunkError::Decode(error.to_string()))?,
            ),
            CHUNK_DOCUMENT => {
                let document = Automerge::load(chunk)
                    .map_err(|error| ChunkError::Decode(error.to_string()))?;
                changes.extend(document.get_changes(&[]));
            }
            CHUNK_BUNDLE => {
                let bundle = Bundle::try_from(chunk)
                    .map_err(|error| ChunkError::Decode(error.to_string()))?;
                changes.extend(
                    bundle
                        .to_changes()
                        .map_err(|error| ChunkError::Decode(error.to_string()))?,
                );
            }
            other => return Err(ChunkError::UnknownType(other)),
        }
        if changes.len() > changes_max {
            return Err(ChunkError::TooMany(changes_max));
        }
        rest = after;
    }
    Ok(changes)
}

/// Splits off the first chunk: its type, its whole bytes (header included, as automerge's
/// decoders expect) and what follows it.
fn next_chunk(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), ChunkError> {
    if bytes.get(..MAGIC_BYTES.len()) != Some(&MAGIC_BYTES[..]) {
        return Err(ChunkError::BadMagic);
    }
    let chunk_type = *bytes
        .get(FIXED_HEADER_BYTES - 1)
        .ok_or(ChunkError::Truncated)?;
    let mut length: u64 = 0;
    let mut prefix_bytes = 0;
    loop {
        let byte = *bytes
            .get(FIXED_HEADER_BYTES + prefix_bytes)
            .ok_or(ChunkError::Truncated)?;
        length |= u64::from(byte & 0x7f) << (7 * prefix_bytes);
        prefix_bytes += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if prefix_bytes >= LENGTH_PREFIX_BYTES_MAX {
            return Err(ChunkError::Truncated);
        }
    }
    let header = FIXED_HEADER_BYTES + prefix_bytes;
    let total = usize::try_from(length)
        .ok()
        .and_then(|length| length.checked_add(header))
        .ok_or(ChunkError::Truncated)?;
    let chunk = bytes.get(..total).ok_or(ChunkError::Truncated)?;
    let after = bytes.get(total..).ok_or(ChunkError::Truncated)?;
    Ok((chunk_type, chunk, after))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    fn three_changes() -> (AutoCommit, Vec<Change>) {
        let mut doc = AutoCommit::new();
        for value in 0..3_i64 {
            doc.put(ROOT, "n", value).unwrap();
            doc.commit();
        }
        let changes = doc.get_changes(&[]).into_iter().collect();
        (doc, changes)
    }

    #[test]
    fn concatenated_changes_are_split() {
        let (_, changes) = three_changes();
        let mut entry = Vec::new();
        for change in &changes {
            entry.extend_from_slice(change.raw_bytes());
        }
        let found = changes_in(&entry, 10).unwrap();
        let hashes: Vec<_> = found.iter().map(Change::hash).collect();
        let expected: Vec<_> = changes.iter().map(Change::hash).collect();
        assert_eq!(hashes, expected);
    }

    #[test]
    fn a_whole_document_yields_its_history() {
        let (mut doc, changes) = three_changes();
        let found = changes_in(&doc.save(), 10).unwrap();
        assert_eq!(found.len(), changes.len());
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors_not_panics() {
        let (mut doc, _) = three_changes();
        let saved = doc.save();
        for cut in 0..saved.len() {
            assert!(changes_in(&saved[..cut], 10).is_err() || cut == 0);
        }
        assert_eq!(changes_in(b"not automerge", 10), Err(ChunkError::BadMagic));
    }

    #[test]
    fn the_change_limit_holds() {
        let (mut doc, _) = three_changes();
        assert_eq!(changes_in(&doc.save(), 2), Err(ChunkError::TooMany(2)));
    }
}
