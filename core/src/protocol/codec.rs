//! The CBOR encoding of [`Message`]: one map with text keys per binary WebSocket frame.
//!
//! # Wire format
//!
//! Every frame is one CBOR map. The key `type` names the message; the other keys are the
//! camelCase names the JS automerge-repo uses (`senderId`, `targetId`, `documentId`, `data`,
//! `supportedProtocolVersions`, `selectedProtocolVersion`, `peerMetadata`, `count`,
//! `sessionId`, `add`, `remove`, `newHeads`, `message`). Document ids are sent as bs58check
//! text, as JS sends them; `data` is a plain CBOR byte string. Counts, timestamps and
//! cursors are unsigned integers, except that values above `u32::MAX` that a JS number
//! holds exactly go out as float64, as JS itself sends them: cbor-x would decode a wider
//! CBOR integer as a `BigInt` (see `write_js_uint`).
//!
//! `peerMetadata` is a map with the optional keys `storageId` (text), `isEphemeral` (bool)
//! and `caresync` (array of text: the caresync extensions the peer speaks). Each value of
//! `newHeads` is a map `{heads: [text], timestamp: uint}`, keyed by storage id; those heads
//! are bs58check text in JS and are passed through as text, unchecked.
//!
//! ## caresync extension messages
//!
//! Meant to be sent only to peers that listed the extension under `peerMetadata.caresync`
//! (the sync engine's duty; the codec does not check), so a plain automerge-repo client
//! never sees them. All carry `senderId` and `targetId` (text).
//!
//! | `type` | other keys |
//! |---|---|
//! | `caresync-scope-request` | `since` (uint, optional: absent asks for the whole scope), `documents` (bool, optional: true asks for the documents too) |
//! | `caresync-scope` | `cursor` (uint), `entries` (array of `[documentId, heads]` or `[documentId, heads, document]`), `removed` (array of document ids), `complete` (bool) |
//! | `caresync-refused` | `documentId`, `code` (text), `message` (text), `heads` (array of 32-byte byte strings) |
//!
//! Each of `entries` is an array: the document id as its 16 bytes, and `heads`, an array
//! of 32-byte change hashes as byte strings; `removed` holds ids as 16 bytes too. When the
//! request said `documents: true`, an entry may have a third item, a byte string holding
//! the document at those heads (automerge chunks, concatenated).
//! A reconnect lists up to every document of the scope, so the listing is kept dense: an
//! entry with one head takes 53 bytes, where the first form of this message (a map with
//! the keys `documentId`, `kind` and `heads` and the id as text) took about 92. The decoder
//! still accepts that map form. A third item that is not a byte string, and any item after
//! the third, is skipped: room for newer relays. `entries`, `removed` and the `heads` of
//! `caresync-refused` are always sent; a decoder treats a missing one as empty.
//!
//! # Decoding
//!
//! Decoding is tolerant where other implementations differ and strict where a mistake could
//! be misread:
//!
//! - Keys may come in any order. Keys the message type does not use are skipped whatever
//!   their value (any shape, up to [`NESTING_DEPTH_MAX`]); non-text keys are skipped too.
//! - `metadata` (the name in the README's CDDL) is read when `peerMetadata` is absent.
//! - `count`, `timestamp`, `since` and `cursor` may be floats (JS numbers) if finite,
//!   non-negative and integral.
//! - A document id may be bs58check text or a 16-byte byte string (samod accepts both). A
//!   change hash may be a 32-byte byte string or bs58check text.
//! - Byte strings may be wrapped in tag 64 (an RFC 8746 `Uint8Array` typed array); byte and
//!   text strings may have definite or indefinite length.
//! - A missing `supportedProtocolVersions` in `join` means `["1"]`, as in the JS server.
//! - An optional field given as `null` or `undefined` counts as absent, because JS encoders
//!   write `undefined` object properties that way.
//!
//! A frame that is not a map, has bytes after the map, lacks a required field, has a field
//! of the wrong type, names an unknown `type`, repeats a known key, or exceeds a limit
//! below is refused with a [`DecodeError`]. Decoding never panics, and it allocates only in
//! proportion to the bytes actually present: every declared length and count is checked
//! against the limits before anything is read or copied.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::convert::Infallible;

use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};

use super::{
    DocumentId, DocumentIdError, Message, PROTOCOL_VERSION, PeerId, PeerMetadata, RemoteHeads,
    ScopeEntry, StorageId,
};

/// The largest frame accepted, in bytes. A first sync of a large document is one sync
/// message with the whole compressed document, so this is generous.
pub const FRAME_BYTES_MAX: usize = 8 * 1024 * 1024;
/// The deepest nesting of arrays, maps and tags accepted, counting the frame's own map as 1.
/// Known messages need 4; the rest is room for unknown keys from newer peers.
pub const NESTING_DEPTH_MAX: usize = 16;
/// The most items in a known array (heads, storage ids, versions, extensions) and the most
/// entries in a map the decoder reads (the frame's own map, `peerMetadata`, `newHeads`, a
/// scope entry). Values under unknown keys are only skipped and have no item limit.
pub const ARRAY_ITEMS_MAX: usize = 1024;
/// The longest text field (ids, messages, kinds) in bytes; also bounds byte-string ids.
pub const STRING_BYTES_MAX: usize = 64 * 1024;
/// The most `entries` and the most `removed` ids in one `caresync-scope` page.
pub const SCOPE_ENTRIES_MAX: usize = 10_000;

/// CBOR tag 64: a `Uint8Array` typed array (RFC 8746), which some encoders use for bytes.
const TAG_UINT8_ARRAY: u64 = 64;

/// Why a frame is not a valid [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is not a CBOR map.
    #[error("frame is not a CBOR map")]
    NotAMap,
    /// The frame ends in the middle of a value.
    #[error("frame is truncated")]
    Truncated,
    /// There are bytes after the map.
    #[error("trailing bytes after the message map")]
    TrailingBytes,
    /// A field the message type requires is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field holds a value of the wrong CBOR type or out of range.
    #[error("field `{field}` has the wrong type")]
    WrongType {
        /// The key of the field.
        field: &'static str,
    },
    /// A known key appears twice in one map.
    #[error("field `{0}` appears twice")]
    DuplicateField(&'static str),
    /// The `type` field names no message this codec knows.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// A document id is malformed.
    #[error("bad document id: {0}")]
    BadDocumentId(#[source] DocumentIdError),
    /// A change hash is malformed.
    #[error("bad change hash: {0}")]
    BadHead(#[source] DocumentIdError),
    /// Arrays, maps or tags nest deeper than [`NESTING_DEPTH_MAX`].
    #[error("nesting deeper than {NESTING_DEPTH_MAX}")]
    TooDeep,
    /// The frame or one of its fields exceeds a size limit.
    #[error("`{field}` exceeds its size limit")]
    TooLarge {
        /// The key of the field, or `frame` for the whole frame.
        field: &'static str,
    },
    /// Malformed CBOR (bad UTF-8, a reserved initial byte, a stray break, ...).
    #[error("malformed CBOR: {0}")]
    Cbor(String),
}

type DecodeResult<T> = Result<T, DecodeError>;

impl Message {
    /// The wire value of this message's `type` key.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Error { .. } => "error",
            Message::Leave { .. } => "leave",
            Message::Request { .. } => "request",
            Message::Sync { .. } => "sync",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
            Message::ScopeRequest { .. } => "caresync-scope-request",
            Message::Scope { .. } => "caresync-scope",
            Message::Refused { .. } => "caresync-refused",
        }
    }

    /// Encodes the message as one frame.
    ///
    /// The encoder does not enforce the decoding limits: a caller that builds large
    /// messages (scope pages, heads lists) keeps them within [`SCOPE_ENTRIES_MAX`],
    /// [`ARRAY_ITEMS_MAX`] and [`FRAME_BYTES_MAX`], or the peer will refuse the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        match write_message(&mut e, self) {
            Ok(()) => e.into_writer(),
            // Writing into a Vec cannot fail (its error type is `Infallible`) and the
            // primitives used here produce no other error, so this arm is never taken. An
            // empty frame is the safe answer if it ever were: every peer refuses it.
            Err(_) => Vec::new(),
        }
    }

    /// Decodes one frame; see the module documentation for what is accepted.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        decode_frame(bytes)
    }
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

type Enc = Encoder<Vec<u8>>;
type EncResult = Result<(), minicbor::encode::Error<Infallible>>;

/// The number of map entries an optional field adds.
fn present<T>(o: &Option<T>) -> u64 {
    u64::from(o.is_some())
}

/// The largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const JS_SAFE_INTEGER_MAX: u64 = (1 << 53) - 1;

/// Writes a count, timestamp or cursor so that a JS peer reads it as a number.
///
/// cbor-x, the encoder of automerge-repo, decodes a CBOR integer wider than 32 bits as a
/// `BigInt`, which JS code cannot mix with numbers in arithmetic; and it writes such
/// numbers itself as float64 (a `Date.now()` timestamp arrives as `0xfb ...`). So values up
/// to `u32::MAX` go out as unsigned integers, values up to 2^53 - 1 as the float64 JS would
/// send, and larger values, which no JS number holds exactly, as unsigned integers again.
/// The decoder accepts all three forms, so every `u64` round-trips.
fn write_js_uint(e: &mut Enc, n: u64) -> EncResult {
    if n <= u64::from(u32::MAX) || n > JS_SAFE_INTEGER_MAX {
        e.u64(n)?;
    } else {
        // Exact: n is below 2^53, within the 53-bit mantissa of an f64.
        #[allow(clippy::cast_precision_loss)]
        let as_float = n as f64;
        e.f64(as_float)?;
    }
    Ok(())
}

/// Lengths become CBOR headers; a `usize` always fits in a `u64` on supported targets.
fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn write_message(e: &mut Enc, m: &Message) -> EncResult {
    let ty = m.type_name();
    match m {
        Message::Join {
            sender_id,
            supported_protocol_versions,
            peer_metadata,
        } => {
            e.map(3 + present(peer_metadata))?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("supportedProtocolVersions")?;
            write_str_array(e, supported_protocol_versions.iter().map(String::as_str))?;
            if let Some(md) = peer_metadata {
                e.str("peerMetadata")?;
                write_peer_metadata(e, md)?;
            }
        }
        Message::Peer {
            sender_id,
            target_id,
            selected_protocol_version,
            peer_metadata,
        } => {
            e.map(4 + present(peer_metadata))?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
            e.str("selectedProtocolVersion")?
                .str(selected_protocol_version)?;
            if let Some(md) = peer_metadata {
                e.str("peerMetadata")?;
                write_peer_metadata(e, md)?;
            }
        }
        Message::Error {
            message,
            sender_id,
            target_id,
        } => {
            e.map(2 + present(sender_id) + present(target_id))?;
            e.str("type")?.str(ty)?;
            e.str("message")?.str(message)?;
            if let Some(id) = sender_id {
                e.str("senderId")?.str(id.as_str())?;
            }
            if let Some(id) = target_id {
                e.str("targetId")?.str(id.as_str())?;
            }
        }
        Message::Leave { sender_id } => {
            e.map(2)?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
        }
        Message::Request {
            document_id,
            sender_id,
            target_id,
            data,
        }
        | Message::Sync {
            document_id,
            sender_id,
            target_id,
            data,
        } => {
            e.map(5)?;
            e.str("type")?.str(ty)?;
            e.str("documentId")?.str(&document_id.to_string())?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
            e.str("data")?.bytes(data)?;
        }
        Message::DocUnavailable {
            document_id,
            sender_id,
            target_id,
        } => {
            e.map(4)?;
            e.str("type")?.str(ty)?;
            e.str("documentId")?.str(&document_id.to_string())?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
        }
        Message::Ephemeral {
            sender_id,
            target_id,
            count,
            session_id,
            document_id,
            data,
        } => {
            e.map(7)?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
            e.str("count")?;
            write_js_uint(e, *count)?;
            e.str("sessionId")?.str(session_id)?;
            e.str("documentId")?.str(&document_id.to_string())?;
            e.str("data")?.bytes(data)?;
        }
        Message::RemoteSubscriptionChange {
            sender_id,
            target_id,
            add,
            remove,
        } => {
            e.map(3 + present(add) + present(remove))?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
            if let Some(ids) = add {
                e.str("add")?;
                write_str_array(e, ids.iter().map(StorageId::as_str))?;
            }
            if let Some(ids) = remove {
                e.str("remove")?;
                write_str_array(e, ids.iter().map(StorageId::as_str))?;
            }
        }
        Message::RemoteHeadsChanged {
            sender_id,
            target_id,
            document_id,
            new_heads,
        } => {
            e.map(5)?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
            e.str("documentId")?.str(&document_id.to_string())?;
            e.str("newHeads")?.map(len_u64(new_heads.len()))?;
            for (storage_id, remote) in new_heads {
                e.str(storage_id.as_str())?.map(2)?;
                e.str("heads")?;
                write_str_array(e, remote.heads.iter().map(String::as_str))?;
                e.str("timestamp")?;
                write_js_uint(e, remote.timestamp)?;
            }
        }
        Message::ScopeRequest {
            sender_id,
            target_id,
            since,
            documents,
        } => {
            e.map(3 + present(since) + u64::from(*documents))?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
            if let Some(since) = since {
                e.str("since")?;
                write_js_uint(e, *since)?;
            }
            if *documents {
                e.str("documents")?.bool(true)?;
            }
        }
        Message::Scope {
            sender_id,
            target_id,
            cursor,
            entries,
            removed,
            complete,
        } => {
            e.map(7)?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
            e.str("cursor")?;
            write_js_uint(e, *cursor)?;
            e.str("entries")?.array(len_u64(entries.len()))?;
            for entry in entries {
                let items = if entry.document.is_some() { 3 } else { 2 };
                e.array(items)?.bytes(entry.document_id.as_bytes())?;
                write_heads(e, &entry.heads)?;
                if let Some(document) = &entry.document {
                    e.bytes(document)?;
                }
            }
            e.str("removed")?.array(len_u64(removed.len()))?;
            for id in removed {
                e.bytes(id.as_bytes())?;
            }
            e.str("complete")?.bool(*complete)?;
        }
        Message::Refused {
            sender_id,
            target_id,
            document_id,
            code,
            message,
            heads,
        } => {
            e.map(7)?;
            e.str("type")?.str(ty)?;
            e.str("senderId")?.str(sender_id.as_str())?;
            e.str("targetId")?.str(target_id.as_str())?;
            e.str("documentId")?.str(&document_id.to_string())?;
            e.str("code")?.str(code)?;
            e.str("message")?.str(message)?;
            e.str("heads")?;
            write_heads(e, heads)?;
        }
    }
    Ok(())
}

fn write_str_array<'a>(e: &mut Enc, items: impl ExactSizeIterator<Item = &'a str>) -> EncResult {
    e.array(len_u64(items.len()))?;
    for s in items {
        e.str(s)?;
    }
    Ok(())
}

fn write_heads(e: &mut Enc, heads: &[[u8; 32]]) -> EncResult {
    e.array(len_u64(heads.len()))?;
    for h in heads {
        e.bytes(h)?;
    }
    Ok(())
}

fn write_peer_metadata(e: &mut Enc, md: &PeerMetadata) -> EncResult {
    let extensions = !md.caresync_extensions.is_empty();
    e.map(present(&md.storage_id) + present(&md.is_ephemeral) + u64::from(extensions))?;
    if let Some(id) = &md.storage_id {
        e.str("storageId")?.str(id.as_str())?;
    }
    if let Some(flag) = md.is_ephemeral {
        e.str("isEphemeral")?.bool(flag)?;
    }
    if extensions {
        e.str("caresync")?;
        write_str_array(e, md.caresync_extensions.iter().map(String::as_str))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Decoding: the frame
// ---------------------------------------------------------------------------------------

/// Every key a top-level map may carry that some message type reads.
const MESSAGE_KEYS: &[&str] = &[
    "type",
    "senderId",
    "targetId",
    "documentId",
    "data",
    "supportedProtocolVersions",
    "selectedProtocolVersion",
    "peerMetadata",
    "metadata",
    "message",
    "count",
    "sessionId",
    "add",
    "remove",
    "newHeads",
    "since",
    "documents",
    "cursor",
    "entries",
    "removed",
    "complete",
    "code",
    "heads",
];
const PEER_METADATA_KEYS: &[&str] = &["storageId", "isEphemeral", "caresync"];
const REMOTE_HEADS_KEYS: &[&str] = &["heads", "timestamp"];
const SCOPE_ENTRY_KEYS: &[&str] = &["documentId", "kind", "heads"];

/// Nesting levels of the known structures (the frame's map is level 1). The first pass
/// has already checked the depth of everything, but the nested readers still pass their
/// true level so that the check stays correct if the passes ever change.
const LEVEL_TOP_VALUES: usize = 2;
const LEVEL_NESTED_VALUES: usize = 3;
const LEVEL_DOUBLY_NESTED_VALUES: usize = 4;

fn decode_frame(bytes: &[u8]) -> DecodeResult<Message> {
    if bytes.len() > FRAME_BYTES_MAX {
        return Err(DecodeError::TooLarge { field: "frame" });
    }
    let mut d = Decoder::new(bytes);
    match peek(&d)? {
        Type::Map | Type::MapIndef => {}
        _ => return Err(DecodeError::NotAMap),
    }
    // First pass: walk the whole map once, checking its structure and depth and noting
    // where each known key's value starts. Keys come in any order and `type` may be last,
    // so the message can only be built once the whole map is known.
    let fields = Fields::scan(&mut d, "frame", MESSAGE_KEYS, LEVEL_TOP_VALUES)?;
    if d.position() != bytes.len() {
        return Err(DecodeError::TrailingBytes);
    }
    // Second pass: read the fields this message type uses. Keys it does not use are never
    // interpreted, so their values may have any shape.
    let ty = fields.required("type", read_text)?;
    build_message(&ty, &fields)
}

fn build_message(ty: &str, f: &Fields<'_>) -> DecodeResult<Message> {
    Ok(match ty {
        "join" => Message::Join {
            sender_id: f.required("senderId", read_peer_id)?,
            supported_protocol_versions: f
                .optional("supportedProtocolVersions", read_string_array)?
                .unwrap_or_else(|| vec![PROTOCOL_VERSION.to_owned()]),
            peer_metadata: read_peer_metadata_field(f)?,
        },
        "peer" => Message::Peer {
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            selected_protocol_version: f.required("selectedProtocolVersion", read_string)?,
            peer_metadata: read_peer_metadata_field(f)?,
        },
        "error" => Message::Error {
            message: f.required("message", read_string)?,
            sender_id: f.optional("senderId", read_peer_id)?,
            target_id: f.optional("targetId", read_peer_id)?,
        },
        "leave" => Message::Leave {
            sender_id: f.required("senderId", read_peer_id)?,
        },
        "request" => Message::Request {
            document_id: f.required("documentId", read_document_id)?,
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            data: f.required("data", read_data)?,
        },
        "sync" => Message::Sync {
            document_id: f.required("documentId", read_document_id)?,
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            data: f.required("data", read_data)?,
        },
        "doc-unavailable" => Message::DocUnavailable {
            document_id: f.required("documentId", read_document_id)?,
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
        },
        "ephemeral" => Message::Ephemeral {
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            count: f.required("count", read_uint)?,
            session_id: f.required("sessionId", read_string)?,
            document_id: f.required("documentId", read_document_id)?,
            data: f.required("data", read_data)?,
        },
        "remote-subscription-change" => Message::RemoteSubscriptionChange {
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            add: f.optional("add", read_storage_ids)?,
            remove: f.optional("remove", read_storage_ids)?,
        },
        "remote-heads-changed" => Message::RemoteHeadsChanged {
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            document_id: f.required("documentId", read_document_id)?,
            new_heads: f.required("newHeads", read_new_heads)?,
        },
        "caresync-scope-request" => Message::ScopeRequest {
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            since: f.optional("since", read_uint)?,
            documents: f.optional("documents", read_bool)?.unwrap_or(false),
        },
        "caresync-scope" => Message::Scope {
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            cursor: f.required("cursor", read_uint)?,
            entries: f
                .optional("entries", read_scope_entries)?
                .unwrap_or_default(),
            removed: f.optional("removed", read_removed)?.unwrap_or_default(),
            complete: f.required("complete", read_bool)?,
        },
        "caresync-refused" => Message::Refused {
            sender_id: f.required("senderId", read_peer_id)?,
            target_id: f.required("targetId", read_peer_id)?,
            document_id: f.required("documentId", read_document_id)?,
            code: f.required("code", read_string)?,
            message: f.required("message", read_string)?,
            heads: f.optional("heads", read_heads)?.unwrap_or_default(),
        },
        other => return Err(DecodeError::UnknownType(other.to_owned())),
    })
}

/// The positions of the known keys' values in one CBOR map.
struct Fields<'b> {
    input: &'b [u8],
    /// (key, position of its value). A handful of entries, so a Vec beats a map.
    found: Vec<(&'static str, usize)>,
}

/// How a field's value is read: from a decoder placed at the value, given the key for
/// error messages.
type Reader<'b, T> = fn(&mut Decoder<'b>, &'static str) -> DecodeResult<T>;

impl<'b> Fields<'b> {
    /// Walks the map at `d` (which must be at a map header), skipping every value but noting
    /// where the values of `keys` start. `level` is the nesting level of the map's values;
    /// `field` names the map in errors. The map may have at most [`ARRAY_ITEMS_MAX`]
    /// entries, unknown ones included.
    fn scan(
        d: &mut Decoder<'b>,
        field: &'static str,
        keys: &'static [&'static str],
        level: usize,
    ) -> DecodeResult<Self> {
        let mut fields = Fields {
            input: d.input(),
            found: Vec::new(),
        };
        let len = d.map().map_err(|e| cbor_error(e, field))?;
        if len.is_some_and(|n| n > len_u64(ARRAY_ITEMS_MAX)) {
            return Err(DecodeError::TooLarge { field });
        }
        let mut seen: u64 = 0;
        loop {
            match len {
                Some(n) if seen == n => break,
                Some(_) => {}
                None => {
                    if take_break(d)? {
                        break;
                    }
                    if seen >= len_u64(ARRAY_ITEMS_MAX) {
                        return Err(DecodeError::TooLarge { field });
                    }
                }
            }
            seen = seen.saturating_add(1);
            let known = match peek(d)? {
                Type::String | Type::StringIndef => {
                    let key = read_text(d, "key")?;
                    keys.iter().copied().find(|k| *k == key)
                }
                // Keys that are not text are foreign to this protocol; skip them like any
                // other unknown key.
                _ => {
                    skip_value(d, level, UNKNOWN_FIELD)?;
                    None
                }
            };
            if let Some(key) = known {
                if fields.found.iter().any(|(k, _)| *k == key) {
                    return Err(DecodeError::DuplicateField(key));
                }
                fields.found.push((key, d.position()));
            }
            skip_value(d, level, known.unwrap_or(UNKNOWN_FIELD))?;
        }
        Ok(fields)
    }

    /// A decoder placed at the value of `key`, or `None` if the key is absent or its value
    /// is `null` or `undefined`.
    fn value(&self, key: &'static str) -> DecodeResult<Option<Decoder<'b>>> {
        let Some(pos) = self.found.iter().find(|(k, _)| *k == key).map(|(_, p)| *p) else {
            return Ok(None);
        };
        let mut d = Decoder::new(self.input);
        d.set_position(pos);
        match peek(&d)? {
            Type::Null | Type::Undefined => Ok(None),
            _ => Ok(Some(d)),
        }
    }

    fn optional<T>(&self, key: &'static str, read: Reader<'b, T>) -> DecodeResult<Option<T>> {
        match self.value(key)? {
            Some(mut d) => read(&mut d, key).map(Some),
            None => Ok(None),
        }
    }

    fn required<T>(&self, key: &'static str, read: Reader<'b, T>) -> DecodeResult<T> {
        // A required field given as null is present but of the wrong type.
        if !self.found.iter().any(|(k, _)| *k == key) {
            return Err(DecodeError::MissingField(key));
        }
        self.optional(key, read)?
            .ok_or(DecodeError::WrongType { field: key })
    }
}

// ---------------------------------------------------------------------------------------
// Decoding: low-level helpers
// ---------------------------------------------------------------------------------------

/// Maps a minicbor error to ours; `field` names what was being read.
fn cbor_error(e: minicbor::decode::Error, field: &'static str) -> DecodeError {
    if e.is_end_of_input() {
        DecodeError::Truncated
    } else if e.is_type_mismatch() {
        DecodeError::WrongType { field }
    } else {
        DecodeError::Cbor(e.to_string())
    }
}

/// The type of the next item, without consuming it.
fn peek(d: &Decoder<'_>) -> DecodeResult<Type> {
    d.datatype().map_err(|e| cbor_error(e, "item"))
}

/// Consumes a break byte if one is next; used to end indefinite arrays and maps.
fn take_break(d: &mut Decoder<'_>) -> DecodeResult<bool> {
    if matches!(peek(d)?, Type::Break) {
        d.set_position(d.position().saturating_add(1));
        Ok(true)
    } else {
        Ok(false)
    }
}

/// The length a definite string header at the current position declares, read without
/// consuming anything, so that a header claiming 2^60 bytes is refused as too large
/// before any read is attempted. `None` for indefinite lengths or a truncated header.
fn declared_len(d: &Decoder<'_>) -> Option<u64> {
    let input = d.input();
    let pos = d.position();
    let initial = *input.get(pos)?;
    let start = pos.checked_add(1)?;
    let argument = |n: usize| -> Option<u64> {
        let bytes = input.get(start..start.checked_add(n)?)?;
        Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    match initial & 0x1f {
        info @ 0..=23 => Some(u64::from(info)),
        24 => argument(1),
        25 => argument(2),
        26 => argument(4),
        27 => argument(8),
        _ => None,
    }
}

fn check_declared_len(d: &Decoder<'_>, max: usize, field: &'static str) -> DecodeResult<()> {
    match declared_len(d) {
        Some(n) if n > len_u64(max) => Err(DecodeError::TooLarge { field }),
        _ => Ok(()),
    }
}

/// Reads a text string of definite or indefinite length, at most [`STRING_BYTES_MAX`].
fn read_text<'b>(d: &mut Decoder<'b>, field: &'static str) -> DecodeResult<Cow<'b, str>> {
    match peek(d)? {
        Type::String => {
            check_declared_len(d, STRING_BYTES_MAX, field)?;
            d.str().map(Cow::Borrowed).map_err(|e| cbor_error(e, field))
        }
        Type::StringIndef => {
            let mut out = String::new();
            let chunks = d.str_iter().map_err(|e| cbor_error(e, field))?;
            for chunk in chunks {
                let chunk = chunk.map_err(|e| cbor_error(e, field))?;
                if out.len().saturating_add(chunk.len()) > STRING_BYTES_MAX {
                    return Err(DecodeError::TooLarge { field });
                }
                out.push_str(chunk);
            }
            Ok(Cow::Owned(out))
        }
        _ => Err(DecodeError::WrongType { field }),
    }
}

/// Reads a byte string of definite or indefinite length, optionally wrapped in tag 64,
/// at most `max` bytes.
fn read_byte_string<'b>(
    d: &mut Decoder<'b>,
    field: &'static str,
    max: usize,
) -> DecodeResult<Cow<'b, [u8]>> {
    if matches!(peek(d)?, Type::Tag) {
        let tag = d.tag().map_err(|e| cbor_error(e, field))?;
        if tag != Tag::new(TAG_UINT8_ARRAY) {
            return Err(DecodeError::WrongType { field });
        }
    }
    match peek(d)? {
        Type::Bytes => {
            check_declared_len(d, max, field)?;
            d.bytes()
                .map(Cow::Borrowed)
                .map_err(|e| cbor_error(e, field))
        }
        Type::BytesIndef => {
            let mut out = Vec::new();
            let chunks = d.bytes_iter().map_err(|e| cbor_error(e, field))?;
            for chunk in chunks {
                let chunk = chunk.map_err(|e| cbor_error(e, field))?;
                if out.len().saturating_add(chunk.len()) > max {
                    return Err(DecodeError::TooLarge { field });
                }
                out.extend_from_slice(chunk);
            }
            Ok(Cow::Owned(out))
        }
        _ => Err(DecodeError::WrongType { field }),
    }
}

/// 2^64 as a float: the first value too large for a `u64`.
const U64_LIMIT_F64: f64 = 18_446_744_073_709_551_616.0;

/// Reads a non-negative integer given as a CBOR unsigned integer or as an integral float.
fn read_uint(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<u64> {
    let value = match peek(d)? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
            return d.u64().map_err(|e| cbor_error(e, field));
        }
        Type::F16 => read_f16(d)?,
        Type::F32 | Type::F64 => d.f64().map_err(|e| cbor_error(e, field))?,
        _ => return Err(DecodeError::WrongType { field }),
    };
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < U64_LIMIT_F64 {
        // The checks above make the conversion exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(value as u64)
    } else {
        Err(DecodeError::WrongType { field })
    }
}

/// Reads a half-precision float. minicbor decodes those only with its `half` feature;
/// converting the 16 bits by hand avoids the extra dependency.
fn read_f16(d: &mut Decoder<'_>) -> DecodeResult<f64> {
    let pos = d.position();
    let start = pos.checked_add(1).ok_or(DecodeError::Truncated)?;
    let end = pos.checked_add(3).ok_or(DecodeError::Truncated)?;
    let raw = d.input().get(start..end).ok_or(DecodeError::Truncated)?;
    let bits = raw.iter().fold(0u16, |acc, b| (acc << 8) | u16::from(*b));
    d.set_position(end);
    Ok(f16_to_f64(bits))
}

/// IEEE 754 binary16 to binary64.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x03ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mantissa / 1024.0) * 2f64.powi(e - 15),
    };
    sign * magnitude
}

fn read_bool(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<bool> {
    match peek(d)? {
        Type::Bool => d.bool().map_err(|e| cbor_error(e, field)),
        _ => Err(DecodeError::WrongType { field }),
    }
}

/// Reads an array whose items `read_item` reads, refusing more than `max` items.
fn read_array<'b, T>(
    d: &mut Decoder<'b>,
    field: &'static str,
    max: usize,
    mut read_item: impl FnMut(&mut Decoder<'b>) -> DecodeResult<T>,
) -> DecodeResult<Vec<T>> {
    if !matches!(peek(d)?, Type::Array | Type::ArrayIndef) {
        return Err(DecodeError::WrongType { field });
    }
    let len = d.array().map_err(|e| cbor_error(e, field))?;
    let mut items = Vec::new();
    match len {
        Some(n) => {
            // The count is checked before the loop, and the Vec grows only as items
            // actually arrive, so a header claiming billions of items allocates nothing.
            if n > len_u64(max) {
                return Err(DecodeError::TooLarge { field });
            }
            for _ in 0..n {
                items.push(read_item(d)?);
            }
        }
        None => {
            while !take_break(d)? {
                if items.len() >= max {
                    return Err(DecodeError::TooLarge { field });
                }
                items.push(read_item(d)?);
            }
        }
    }
    Ok(items)
}

/// How errors name values under keys that no message uses.
const UNKNOWN_FIELD: &str = "unknown key";

/// Skips one value of any shape; `field` names it in errors. `level` is the nesting level
/// of the value itself; a container or tag deeper than [`NESTING_DEPTH_MAX`] is refused,
/// which also bounds the recursion. Item counts are not limited here, since skipping
/// allocates nothing and every item takes at least one byte of the frame; but a header
/// declaring more bytes or items than any frame may hold is refused as too large at once.
fn skip_value(d: &mut Decoder<'_>, level: usize, field: &'static str) -> DecodeResult<()> {
    let ty = peek(d)?;
    let nests = matches!(
        ty,
        Type::Array | Type::ArrayIndef | Type::Map | Type::MapIndef | Type::Tag
    );
    if nests && level > NESTING_DEPTH_MAX {
        return Err(DecodeError::TooDeep);
    }
    if matches!(ty, Type::Bytes | Type::String | Type::Array | Type::Map) {
        check_declared_len(d, FRAME_BYTES_MAX, field)?;
    }
    let err = |e| cbor_error(e, field);
    match ty {
        Type::Bool => d.bool().map(drop).map_err(err),
        Type::Null => d.null().map_err(err),
        Type::Undefined => d.undefined().map_err(err),
        Type::Simple => d.simple().map(drop).map_err(err),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => d.u64().map(drop).map_err(err),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => d.int().map(drop).map_err(err),
        Type::F16 => read_f16(d).map(drop),
        Type::F32 | Type::F64 => d.f64().map(drop).map_err(err),
        Type::Bytes | Type::BytesIndef => {
            for chunk in d.bytes_iter().map_err(err)? {
                chunk.map_err(err)?;
            }
            Ok(())
        }
        Type::String | Type::StringIndef => {
            for chunk in d.str_iter().map_err(err)? {
                chunk.map_err(err)?;
            }
            Ok(())
        }
        Type::Array | Type::ArrayIndef => {
            let len = d.array().map_err(err)?;
            skip_items(d, len, 1, level, field)
        }
        Type::Map | Type::MapIndef => {
            let len = d.map().map_err(err)?;
            skip_items(d, len, 2, level, field)
        }
        Type::Tag => {
            d.tag().map_err(err)?;
            skip_value(d, level.saturating_add(1), field)
        }
        Type::Break => Err(DecodeError::Cbor("unexpected break".to_owned())),
        Type::Unknown(b) => Err(DecodeError::Cbor(format!(
            "reserved initial byte 0x{b:02x}"
        ))),
    }
}

/// Skips the items of an array (`per_entry` 1) or map (`per_entry` 2) whose header has been
/// read. Each item takes at least one byte, so a huge declared count ends at the end of the
/// input instead of looping on.
fn skip_items(
    d: &mut Decoder<'_>,
    len: Option<u64>,
    per_entry: u64,
    level: usize,
    field: &'static str,
) -> DecodeResult<()> {
    let inner = level.saturating_add(1);
    match len {
        Some(n) => {
            for _ in 0..n {
                for _ in 0..per_entry {
                    skip_value(d, inner, field)?;
                }
            }
        }
        None => {
            while !take_break(d)? {
                for _ in 0..per_entry {
                    skip_value(d, inner, field)?;
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Decoding: field readers
// ---------------------------------------------------------------------------------------

fn read_string(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<String> {
    read_text(d, field).map(Cow::into_owned)
}

fn read_peer_id(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<PeerId> {
    read_string(d, field).map(PeerId)
}

fn read_string_array(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<Vec<String>> {
    read_array(d, field, ARRAY_ITEMS_MAX, |d| read_string(d, field))
}

fn read_storage_ids(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<Vec<StorageId>> {
    read_array(d, field, ARRAY_ITEMS_MAX, |d| {
        read_string(d, field).map(StorageId)
    })
}

fn read_data(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<Vec<u8>> {
    read_byte_string(d, field, FRAME_BYTES_MAX).map(Cow::into_owned)
}

/// A document id as bs58check text or as 16 raw bytes.
fn read_document_id(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<DocumentId> {
    match peek(d)? {
        Type::String | Type::StringIndef => read_text(d, field)?
            .parse()
            .map_err(DecodeError::BadDocumentId),
        Type::Bytes | Type::BytesIndef | Type::Tag => {
            let bytes = read_byte_string(d, field, STRING_BYTES_MAX)?;
            DocumentId::try_from(bytes.as_ref()).map_err(DecodeError::BadDocumentId)
        }
        _ => Err(DecodeError::WrongType { field }),
    }
}

/// A change hash as 32 raw bytes or as bs58check text.
fn read_head(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<[u8; 32]> {
    match peek(d)? {
        Type::String | Type::StringIndef => {
            super::bs58check::decode_check::<32>(&read_text(d, field)?)
                .map_err(DecodeError::BadHead)
        }
        Type::Bytes | Type::BytesIndef | Type::Tag => {
            let bytes = read_byte_string(d, field, STRING_BYTES_MAX)?;
            <[u8; 32]>::try_from(bytes.as_ref()).map_err(|_| {
                DecodeError::BadHead(DocumentIdError::WrongLength {
                    expected: 32,
                    actual: bytes.len(),
                })
            })
        }
        _ => Err(DecodeError::WrongType { field }),
    }
}

fn read_heads(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<Vec<[u8; 32]>> {
    read_array(d, field, ARRAY_ITEMS_MAX, |d| read_head(d, field))
}

/// Reads a map with fixed keys, as [`Fields`], from a decoder at the map's header.
fn scan_nested<'b>(
    d: &mut Decoder<'b>,
    field: &'static str,
    keys: &'static [&'static str],
    level: usize,
) -> DecodeResult<Fields<'b>> {
    if !matches!(peek(d)?, Type::Map | Type::MapIndef) {
        return Err(DecodeError::WrongType { field });
    }
    Fields::scan(d, field, keys, level)
}

/// `peerMetadata`, or its older name `metadata` when `peerMetadata` is absent.
fn read_peer_metadata_field(f: &Fields<'_>) -> DecodeResult<Option<PeerMetadata>> {
    match f.optional("peerMetadata", read_peer_metadata)? {
        Some(md) => Ok(Some(md)),
        None => f.optional("metadata", read_peer_metadata),
    }
}

fn read_peer_metadata(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<PeerMetadata> {
    let f = scan_nested(d, field, PEER_METADATA_KEYS, LEVEL_NESTED_VALUES)?;
    Ok(PeerMetadata {
        storage_id: f.optional("storageId", read_string)?.map(StorageId),
        is_ephemeral: f.optional("isEphemeral", read_bool)?,
        caresync_extensions: f
            .optional("caresync", read_string_array)?
            .unwrap_or_default(),
    })
}

fn read_new_heads(
    d: &mut Decoder<'_>,
    field: &'static str,
) -> DecodeResult<BTreeMap<StorageId, RemoteHeads>> {
    if !matches!(peek(d)?, Type::Map | Type::MapIndef) {
        return Err(DecodeError::WrongType { field });
    }
    let len = d.map().map_err(|e| cbor_error(e, field))?;
    if len.is_some_and(|n| n > len_u64(ARRAY_ITEMS_MAX)) {
        return Err(DecodeError::TooLarge { field });
    }
    let mut out = BTreeMap::new();
    let mut seen: u64 = 0;
    loop {
        match len {
            Some(n) if seen == n => break,
            Some(_) => {}
            None => {
                if take_break(d)? {
                    break;
                }
                if out.len() >= ARRAY_ITEMS_MAX {
                    return Err(DecodeError::TooLarge { field });
                }
            }
        }
        seen = seen.saturating_add(1);
        let storage_id = StorageId(read_string(d, field)?);
        let f = scan_nested(d, field, REMOTE_HEADS_KEYS, LEVEL_DOUBLY_NESTED_VALUES)?;
        let heads = RemoteHeads {
            heads: f.required("heads", read_string_array)?,
            timestamp: f.required("timestamp", read_uint)?,
        };
        if out.insert(storage_id, heads).is_some() {
            return Err(DecodeError::DuplicateField(field));
        }
    }
    Ok(out)
}

fn read_scope_entries(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<Vec<ScopeEntry>> {
    read_array(d, field, SCOPE_ENTRIES_MAX, |d| match peek(d)? {
        Type::Array | Type::ArrayIndef => read_scope_entry_array(d, field),
        _ => {
            // The first form of the message; `kind` was never used by a device.
            let f = scan_nested(d, field, SCOPE_ENTRY_KEYS, LEVEL_DOUBLY_NESTED_VALUES)?;
            Ok(ScopeEntry {
                document_id: f.required("documentId", read_document_id)?,
                heads: f.optional("heads", read_heads)?.unwrap_or_default(),
                document: None,
            })
        }
    })
}

/// `[documentId, heads, document?, ...]`: a third item that is not a byte string, and
/// items after the third, are skipped.
fn read_scope_entry_array(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<ScopeEntry> {
    let len = d.array().map_err(|e| cbor_error(e, field))?;
    if len.is_some_and(|n| n < 2) {
        return Err(DecodeError::MissingField(field));
    }
    let document_id = read_document_id(d, field)?;
    let heads = read_heads(d, field)?;
    let mut read = 2u64;
    let mut document = None;
    let third_present = match len {
        Some(n) => n > 2,
        None => !matches!(peek(d)?, Type::Break),
    };
    if third_present {
        read = 3;
        if matches!(peek(d)?, Type::Bytes | Type::BytesIndef | Type::Tag) {
            document = Some(read_data(d, field)?);
        } else {
            skip_value(d, LEVEL_DOUBLY_NESTED_VALUES, field)?;
        }
    }
    skip_items(
        d,
        len.map(|n| n.saturating_sub(read)),
        1,
        LEVEL_NESTED_VALUES,
        field,
    )?;
    Ok(ScopeEntry {
        document_id,
        heads,
        document,
    })
}

fn read_removed(d: &mut Decoder<'_>, field: &'static str) -> DecodeResult<Vec<DocumentId>> {
    read_array(d, field, SCOPE_ENTRIES_MAX, |d| read_document_id(d, field))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_convert() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0x4500), 5.0);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert!(f16_to_f64(0x7c00).is_infinite());
        assert!(f16_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn declared_len_reads_every_header_width() {
        for (bytes, want) in [
            (&[0x45u8][..], Some(5)),
            (&[0x58, 0xff][..], Some(255)),
            (&[0x59, 0x01, 0x00][..], Some(256)),
            (&[0x5a, 0x00, 0x01, 0x00, 0x00][..], Some(65536)),
            (
                &[0x5b, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00][..],
                Some(1 << 60),
            ),
            (&[0x5f][..], None),
            (&[0x5b, 0x00][..], None),
        ] {
            assert_eq!(declared_len(&Decoder::new(bytes)), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn encode_uses_js_key_names() {
        let m = Message::Join {
            sender_id: PeerId::from("peer-1"),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: Some(PeerMetadata::default()),
        };
        let bytes = m.encode();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("senderId"));
        assert!(text.contains("supportedProtocolVersions"));
        assert!(text.contains("peerMetadata"));
        assert_eq!(Message::decode(&bytes).unwrap(), m);
    }
}
