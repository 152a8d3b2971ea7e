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
    #[error("the compressed parts inflate beyond the limit")]
    InflatesTooFar,
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

/// The bytes the deflated parts of `entry` inflate to: compressed changes, and the
/// deflated columns of documents and bundles. Refused beyond `inflated_max`.
///
/// automerge inflates a chunk whole before it checks anything else about it, so a few
/// hundred kilobytes of deflate (a "deflate bomb") would make it allocate gigabytes. Here
/// each deflate stream is only counted, into a sink, and never past the bound. A chunk
/// whose layout cannot be read is passed over: automerge refuses it before it inflates
/// anything, since it reads the same layout first.
pub(crate) fn inflated_bytes(entry: &[u8], inflated_max: usize) -> Result<usize, ChunkError> {
    let mut total = 0usize;
    let mut rest = entry;
    while !rest.is_empty() {
        let (chunk_type, chunk, after) = next_chunk(rest)?;
        let header = header_bytes(chunk).ok_or(ChunkError::Truncated)?;
        let body = chunk.get(header..).unwrap_or_default();
        let deflated: Vec<&[u8]> = match chunk_type {
            CHUNK_COMPRESSED_CHANGE => vec![body],
            CHUNK_DOCUMENT => deflated_columns(body, Layout::Document).unwrap_or_default(),
            CHUNK_BUNDLE => deflated_columns(body, Layout::Bundle).unwrap_or_default(),
            _ => Vec::new(),
        };
        for stream in deflated {
            let left = inflated_max.saturating_sub(total);
            total = total.saturating_add(inflated_len(stream, left)?);
        }
        rest = after;
    }
    Ok(total)
}

/// The length of what `deflated` inflates to, counted without keeping it; refused beyond
/// `max`.
fn inflated_len(deflated: &[u8], max: usize) -> Result<usize, ChunkError> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut inflater = std::io::Read::take(flate2::read::DeflateDecoder::new(deflated), limit);
    let inflated = std::io::copy(&mut inflater, &mut std::io::sink())
        .map_err(|error| ChunkError::Decode(format!("bad deflate stream: {error}")))?;
    usize::try_from(inflated)
        .ok()
        .filter(|inflated| *inflated <= max)
        .ok_or(ChunkError::InflatesTooFar)
}

#[derive(Clone, Copy)]
enum Layout {
    Document,
    Bundle,
}

/// The column specification bit that marks a deflated column.
const COLUMN_DEFLATE_BIT: u64 = 0b1000;

/// The deflated column data of a document or bundle chunk's body, read the way automerge
/// reads it: a document is actors, heads, change-column and op-column metadata, then the
/// change and op column data; a bundle is dependencies, actors, change-column metadata and
/// data, then op-column metadata and data. Each column's metadata is its specification
/// and its length. `None` if the body does not have this layout.
fn deflated_columns(body: &[u8], layout: Layout) -> Option<Vec<&[u8]>> {
    let mut reader = LayoutReader { bytes: body };
    let mut deflated = Vec::new();
    match layout {
        Layout::Document => {
            reader.actors()?;
            reader.hashes()?;
            let changes = reader.column_metadata()?;
            let ops = reader.column_metadata()?;
            for (spec, len) in changes.into_iter().chain(ops) {
                let data = reader.take(len)?;
                if spec & COLUMN_DEFLATE_BIT != 0 {
                    deflated.push(data);
                }
            }
        }
        Layout::Bundle => {
            reader.hashes()?;
            reader.actors()?;
            for _ in 0..2 {
                for (spec, len) in reader.column_metadata()? {
                    let data = reader.take(len)?;
                    if spec & COLUMN_DEFLATE_BIT != 0 {
                        deflated.push(data);
                    }
                }
            }
        }
    }
    Some(deflated)
}

/// Reads the parts of a chunk body that locate its columns. Every count is checked against
/// the bytes left, so nothing is allocated for what is not there.
struct LayoutReader<'a> {
    bytes: &'a [u8],
}

impl<'a> LayoutReader<'a> {
    fn leb128(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for (index, byte) in self.bytes.iter().enumerate().take(LENGTH_PREFIX_BYTES_MAX) {
            value |= u64::from(byte & 0x7f).checked_shl(7 * u32::try_from(index).ok()?)?;
            if byte & 0x80 == 0 {
                self.bytes = self.bytes.get(index + 1..)?;
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok()?;
        let (taken, rest) = (self.bytes.get(..len)?, self.bytes.get(len..)?);
        self.bytes = rest;
        Some(taken)
    }

    /// A count followed by that many length-prefixed actor ids.
    fn actors(&mut self) -> Option<()> {
        for _ in 0..self.leb128()? {
            let len = self.leb128()?;
            self.take(len)?;
        }
        Some(())
    }

    /// A count followed by that many 32-byte change hashes.
    fn hashes(&mut self) -> Option<()> {
        let count = self.leb128()?;
        self.take(count.checked_mul(32)?)?;
        Some(())
    }

    /// A count followed by that many (specification, length) pairs.
    fn column_metadata(&mut self) -> Option<Vec<(u64, u64)>> {
        let count = self.leb128()?;
        // Each pair takes at least two bytes, so a larger count cannot be genuine.
        if count > u64::try_from(self.bytes.len()).ok()? {
            return None;
        }
        (0..count)
            .map(|_| Some((self.leb128()?, self.leb128()?)))
            .collect()
    }
}

/// The length of a chunk's header: magic bytes, checksum, type and the LEB128 length.
fn header_bytes(chunk: &[u8]) -> Option<usize> {
    let length_prefix = chunk.get(FIXED_HEADER_BYTES..)?;
    let prefix_bytes = length_prefix
        .iter()
        .take(LENGTH_PREFIX_BYTES_MAX)
        .position(|byte| byte & 0x80 == 0)?;
    Some(FIXED_HEADER_BYTES + prefix_bytes + 1)
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

    /// A document and a bundle with columns big enough for automerge to deflate them.
    fn compressible() -> (Vec<u8>, Vec<u8>) {
        let mut doc = AutoCommit::new();
        for value in 0..200_i64 {
            doc.put(ROOT, format!("field {value}"), "一样的文字 ".repeat(20))
                .unwrap();
            doc.commit();
        }
        let hashes: Vec<_> = doc.get_changes(&[]).iter().map(Change::hash).collect();
        let bundle = doc.bundle(hashes).unwrap().bytes().to_vec();
        (doc.save(), bundle)
    }

    #[test]
    fn deflated_columns_of_real_documents_and_bundles_are_counted() {
        let (saved, bundle) = compressible();
        for bytes in [&saved, &bundle] {
            let inflated = inflated_bytes(bytes, usize::MAX).unwrap();
            // The layout was read and the deflated columns found: more comes out than went in.
            assert!(
                inflated > bytes.len(),
                "{inflated} from {} bytes",
                bytes.len()
            );
            assert_eq!(inflated_bytes(bytes, inflated), Ok(inflated));
            assert_eq!(
                inflated_bytes(bytes, inflated - 1),
                Err(ChunkError::InflatesTooFar)
            );
        }
        // And they still decode as before.
        assert_eq!(changes_in(&saved, 1_000).unwrap().len(), 200);
        assert_eq!(changes_in(&bundle, 1_000).unwrap().len(), 200);
    }

    #[test]
    fn a_deflate_bomb_is_refused_without_inflating_it() {
        use std::io::Write;
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0; 64 * 1024 * 1024]).unwrap();
        let bomb = encoder.finish().unwrap();
        let mut chunk = MAGIC_BYTES.to_vec();
        chunk.extend([0, 0, 0, 0, CHUNK_COMPRESSED_CHANGE]);
        let mut length = bomb.len();
        while length >= 0x80 {
            chunk.push(u8::try_from(length & 0x7f).unwrap() | 0x80);
            length >>= 7;
        }
        chunk.push(u8::try_from(length).unwrap());
        chunk.extend(&bomb);
        assert_eq!(
            inflated_bytes(&chunk, 1024 * 1024),
            Err(ChunkError::InflatesTooFar)
        );
        // Plain changes inflate to nothing.
        let (_, changes) = three_changes();
        assert_eq!(inflated_bytes(changes[0].raw_bytes(), 0), Ok(0));
    }

    #[test]
    fn the_change_limit_holds() {
        let (mut doc, _) = three_changes();
        assert_eq!(changes_in(&doc.save(), 2), Err(ChunkError::TooMany(2)));
    }
}
