//! The messages of the automerge-repo WebSocket protocol v1, plus caresync's own
//! extensions. One value of [`Message`] is one binary WebSocket frame (a CBOR map).

use std::collections::BTreeMap;

use super::{DocumentId, PeerId, StorageId};

/// The only protocol version caresync speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// The `peerMetadata` map of `join` and `peer`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    /// A peer with persistent storage names it, so the other side may keep sync state for it.
    pub storage_id: Option<StorageId>,
    /// `true` for a peer that keeps nothing (a browser tab without storage).
    pub is_ephemeral: Option<bool>,
    /// caresync's extensions this peer speaks (for example [`EXTENSION_SCOPE`]).
    /// Sent under the key `caresync` as an array of strings; plain automerge-repo peers
    /// never send it and never receive extension messages.
    pub caresync_extensions: Vec<String>,
}

/// The scope extension: `caresync-scope-request` / `caresync-scope` messages.
pub const EXTENSION_SCOPE: &str = "scope";
/// The refusal extension: a refused change is answered with `caresync-refused` instead of
/// `error` + close, so the device can recover and keep the connection.
pub const EXTENSION_REFUSED: &str = "refused";

/// Heads of one storage id, as gossiped by `remote-heads-changed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteHeads {
    /// Change hashes, each bs58check-encoded on the wire as the JS library does.
    pub heads: Vec<String>,
    /// Milliseconds since the Unix epoch (JS may send it as a float).
    pub timestamp: u64,
}

/// One document in a scope listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeEntry {
    pub document_id: DocumentId,
    /// The relay's durable heads of the document: 32-byte change hashes.
    pub heads: Vec<[u8; 32]>,
    /// The document itself at `heads` (the relay's stored chunks, concatenated, as
    /// `Automerge::load` reads them), when the request asked for documents. A first sync
    /// then needs no exchange per document: the envelopes of a `request`, its answer and
    /// the acknowledgement cost more than a small record itself.
    pub document: Option<Vec<u8>>,
}

/// One frame of the protocol. [`Message::encode`] and [`Message::decode`] convert it to and
/// from CBOR; see the `codec` module for the wire keys of every variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Join {
        sender_id: PeerId,
        supported_protocol_versions: Vec<String>,
        peer_metadata: Option<PeerMetadata>,
    },
    Peer {
        sender_id: PeerId,
        target_id: PeerId,
        selected_protocol_version: String,
        peer_metadata: Option<PeerMetadata>,
    },
    Error {
        message: String,
        sender_id: Option<PeerId>,
        target_id: Option<PeerId>,
    },
    Leave {
        sender_id: PeerId,
    },
    Request {
        document_id: DocumentId,
        sender_id: PeerId,
        target_id: PeerId,
        data: Vec<u8>,
    },
    Sync {
        document_id: DocumentId,
        sender_id: PeerId,
        target_id: PeerId,
        data: Vec<u8>,
    },
    DocUnavailable {
        document_id: DocumentId,
        sender_id: PeerId,
        target_id: PeerId,
    },
    Ephemeral {
        sender_id: PeerId,
        target_id: PeerId,
        count: u64,
        session_id: String,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    RemoteSubscriptionChange {
        sender_id: PeerId,
        target_id: PeerId,
        add: Option<Vec<StorageId>>,
        remove: Option<Vec<StorageId>>,
    },
    RemoteHeadsChanged {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        new_heads: BTreeMap<StorageId, RemoteHeads>,
    },
    /// Extension `caresync-scope-request`: "which documents may I see, changed since `since`?"
    ScopeRequest {
        sender_id: PeerId,
        target_id: PeerId,
        /// The cursor of the previous answer; `None` asks for the whole scope.
        since: Option<u64>,
        /// Send each listed document with its entry: the device holds none of them yet.
        documents: bool,
    },
    /// Extension `caresync-scope`: the answer. When `complete` is false more pages follow.
    Scope {
        sender_id: PeerId,
        target_id: PeerId,
        /// Pass this as `since` next time.
        cursor: u64,
        /// Documents added to the scope or changed since `since`.
        entries: Vec<ScopeEntry>,
        /// Documents that left the scope since `since`.
        removed: Vec<DocumentId>,
        complete: bool,
    },
    /// Extension `caresync-refused`: the relay did not store the changes a peer sent.
    Refused {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        /// A stable machine-readable reason (`forbidden`, `invalid`, ...).
        code: String,
        /// What went wrong, readable by a person, naming the document.
        message: String,
        /// The relay's durable heads of the document, for the device to return to.
        heads: Vec<[u8; 32]>,
    },
}
