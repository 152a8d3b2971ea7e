//! The shapes JavaScript sees, as plain Rust types with serde: effects and notifications
//! going out, storage completions and index entries coming in, validation errors.
//!
//! Nothing here touches `JsValue`, so native tests check every shape with `serde_json`;
//! the bindings turn the same types into JS values with `serde-wasm-bindgen`, where
//! [`Bytes`] becomes a `Uint8Array`. Hashes are lowercase hex, document ids bs58check text.

use std::fmt;

use automerge::{Automerge, ChangeHash};
use caresync_core::domain::{DocumentMeta, Record};
use caresync_core::protocol::DocumentId;
use caresync_core::sync::{
    AuditEvent, CloseReason, Effect, IndexEntry, Notification, StorageCompletion, StorageOp,
    StorageOpId, StoredChange, StoredDocument,
};
use caresync_core::validation::ValidationError;
use serde::{Deserialize, Serialize};

use crate::error::PhoneError;

/// Bytes that serialise with `serialize_bytes` (a `Uint8Array` in JS, an array of numbers in
/// JSON) and read from either form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Uint8Array or an array of bytes")
            }

            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(bytes.to_vec()))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(bytes))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Bytes, A::Error> {
                // The hint comes from the caller's data; cap it so a wrong hint cannot make
                // us reserve a huge buffer up front.
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(Bytes(bytes))
            }
        }

        deserializer.deserialize_byte_buf(Visitor)
    }
}

// ----- small conversions -------------------------------------------------------------------

/// Heads as lowercase hex strings, the form IndexedDB keeps and the app compares.
pub fn heads_to_hex(heads: &[ChangeHash]) -> Vec<String> {
    heads.iter().map(ChangeHash::to_string).collect()
}

/// Reads one hex change hash (either case).
pub fn hash_from_hex(text: &str) -> Result<ChangeHash, PhoneError> {
    text.parse().map_err(|error| PhoneError::BadInput {
        what: "a change hash",
        detail: format!("{text:?}: {error}"),
    })
}

/// Reads hex heads; fails on the first one that is not a change hash.
pub fn heads_from_hex(heads: &[String]) -> Result<Vec<ChangeHash>, PhoneError> {
    heads.iter().map(|text| hash_from_hex(text)).collect()
}

/// Reads a document id written as bs58check text (as in an `automerge:` URL).
pub fn document_from_text(text: &str) -> Result<DocumentId, PhoneError> {
    text.parse().map_err(|error| PhoneError::BadInput {
        what: "a document id",
        detail: format!("{text:?}: {error}"),
    })
}

// ----- going out: effects ------------------------------------------------------------------

/// One stored change row: its hash and its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeJson {
    pub hash: String,
    pub bytes: Bytes,
}

/// What the engine asks the page to do (`phone.takeEffects()`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum EffectJson {
    Send {
        connection: u64,
        frame: Bytes,
    },
    Close {
        connection: u64,
        /// A stable name of the reason (`protocol`, `limit-exceeded`, ...).
        code: &'static str,
        /// For logs and people.
        reason: String,
    },
    Storage {
        id: u64,
        op: StorageOpJson,
    },
    Notify {
        notification: NotificationJson,
    },
    Audit {
        event: &'static str,
        connection: u64,
        document: Option<String>,
        code: Option<&'static str>,
        message: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum StorageOpJson {
    Load {
        document: String,
    },
    PutChanges {
        document: String,
        meta: Option<DocumentMeta>,
        changes: Vec<ChangeJson>,
        heads: Vec<String>,
    },
    Compact {
        document: String,
        snapshot: Bytes,
        covered: Vec<String>,
    },
    Replace {
        document: String,
        snapshot: Bytes,
        /// The snapshot's heads: the document's new local (and relay) heads for the app's
        /// index. The engine's op does not carry them and JavaScript cannot read a snapshot
        /// without automerge, so the bindings add them.
        heads: Vec<String>,
    },
    /// Only a relay's engine asks for this; listed so that no op is ever dropped silently.
    ListScope {
        connection: u64,
        since: Option<u64>,
    },
    SaveScopeCursor {
        cursor: u64,
    },
    PutRelayHeads {
        document: String,
        heads: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum NotificationJson {
    PeerReady {
        connection: u64,
    },
    DocumentChanged {
        document: String,
        heads: Vec<String>,
    },
    LocalChangeSaved {
        document: String,
        heads: Vec<String>,
    },
    PeerHeads {
        connection: u64,
        document: String,
        heads: Vec<String>,
    },
    DocumentUnavailable {
        document: String,
    },
    ChangesRefused {
        document: String,
        code: String,
        message: String,
        /// The whole document as it was before the refusal (automerge save format).
        refused_copy: Bytes,
        /// The same, read as a record so that the user can see what was refused; `None`
        /// if the copy is not a readable record. Boxed: a record is large and rare here.
        refused_record: Option<Box<Record>>,
    },
    StorageFailed {
        document: Option<String>,
        reason: String,
    },
    DocumentError {
        document: String,
        detail: String,
    },
    ScopeSynced {
        connection: u64,
    },
}

/// The JSON shape of one engine effect.
pub fn effect_to_json(effect: Effect) -> EffectJson {
    match effect {
        Effect::Send { connection, frame } => EffectJson::Send {
            connection: connection.0,
            frame: Bytes(frame),
        },
        Effect::Close { connection, reason } => {
            let (code, reason) = close_reason(reason);
            EffectJson::Close {
                connection: connection.0,
                code,
                reason,
            }
        }
        Effect::Storage { id, op } => EffectJson::Storage {
            id: id.0,
            op: storage_op_to_json(op),
        },
        Effect::Notify(notification) => EffectJson::Notify {
            notification: notification_to_json(notification),
        },
        Effect::Audit(event) => audit_to_json(event),
    }
}

fn close_reason(reason: CloseReason) -> (&'static str, String) {
    match reason {
        CloseReason::Protocol(detail) => ("protocol", detail),
        CloseReason::UnsupportedVersion => (
            "unsupported-version",
            "no common protocol version".to_owned(),
        ),
        CloseReason::LimitExceeded(limit) => ("limit-exceeded", limit.to_owned()),
        CloseReason::Refused(message) => ("refused", message),
        CloseReason::HandshakeTimeout => (
            "handshake-timeout",
            "the handshake took too long".to_owned(),
        ),
    }
}

pub fn storage_op_to_json(op: StorageOp) -> StorageOpJson {
    match op {
        StorageOp::Load { document } => StorageOpJson::Load {
            document: document.to_string(),
        },
        StorageOp::PutChanges {
            document,
            meta,
            changes,
            heads,
        } => StorageOpJson::PutChanges {
            document: document.to_string(),
            meta,
            changes: changes
                .into_iter()
                .map(|change| ChangeJson {
                    hash: change.hash.to_string(),
                    bytes: Bytes(change.bytes),
                })
                .collect(),
            heads: heads_to_hex(&heads),
        },
        StorageOp::Compact {
            document,
            snapshot,
            covered,
        } => StorageOpJson::Compact {
            document: document.to_string(),
            snapshot: Bytes(snapshot),
            covered: heads_to_hex(&covered),
        },
        StorageOp::Replace { document, snapshot } => {
            // The engine built this snapshot, so it loads; should it not, empty heads make
            // the app treat the document as unsynced, which only costs a sync.
            let heads = Automerge::load(&snapshot)
                .map(|doc| heads_to_hex(&doc.get_heads()))
                .unwrap_or_default();
            StorageOpJson::Replace {
                document: document.to_string(),
                snapshot: Bytes(snapshot),
                heads,
            }
        }
        // A phone never lists a scope; the variant exists so that every op has a shape.
        StorageOp::ListScope {
            connection, since, ..
        } => StorageOpJson::ListScope {
            connection: connection.0,
            since,
        },
        StorageOp::SaveScopeCursor { cursor } => StorageOpJson::SaveScopeCursor { cursor },
        StorageOp::PutRelayHeads { document, heads } => StorageOpJson::PutRelayHeads {
            document: document.to_string(),
            heads: heads_to_hex(&heads),
        },
    }
}

pub fn notification_to_json(notification: Notification) -> NotificationJson {
    match notification {
        Notification::PeerReady { connection } => NotificationJson::PeerReady {
            connection: connection.0,
        },
        Notification::DocumentChanged { document, heads } => NotificationJson::DocumentChanged {
            document: document.to_string(),
            heads: heads_to_hex(&heads),
        },
        Notification::LocalChangeSaved { document, heads } => NotificationJson::LocalChangeSaved {
            document: document.to_string(),
            heads: heads_to_hex(&heads),
        },
        Notification::PeerHeads {
            connection,
            document,
            heads,
        } => NotificationJson::PeerHeads {
            connection: connection.0,
            document: document.to_string(),
            heads: heads_to_hex(&heads),
        },
        Notification::DocumentUnavailable { document } => NotificationJson::DocumentUnavailable {
            document: document.to_string(),
        },
        Notification::ChangesRefused {
            document,
            code,
            message,
            refused_copy,
        } => {
            let refused_record = Automerge::load(&refused_copy)
                .ok()
                .and_then(|doc| Record::load(&doc).ok())
                .map(Box::new);
            NotificationJson::ChangesRefused {
                document: document.to_string(),
                code,
                message,
                refused_copy: Bytes(refused_copy),
                refused_record,
            }
        }
        Notification::StorageFailed { document, reason } => NotificationJson::StorageFailed {
            document: document.map(|id| id.to_string()),
            reason,
        },
        Notification::DocumentError { document, detail } => NotificationJson::DocumentError {
            document: document.to_string(),
            detail,
        },
        Notification::ScopeSynced { connection } => NotificationJson::ScopeSynced {
            connection: connection.0,
        },
    }
}

fn audit_to_json(event: AuditEvent) -> EffectJson {
    match event {
        AuditEvent::ChangeRefused {
            connection,
            document,
            refusal,
        } => EffectJson::Audit {
            event: "change-refused",
            connection: connection.0,
            document: Some(document.to_string()),
            code: Some(refusal.code.as_str()),
            message: Some(refusal.message),
        },
        AuditEvent::ReadDenied {
            connection,
            document,
        } => EffectJson::Audit {
            event: "read-denied",
            connection: connection.0,
            document: Some(document.to_string()),
            code: None,
            message: None,
        },
        AuditEvent::ProtocolViolation { connection, detail } => EffectJson::Audit {
            event: "protocol-violation",
            connection: connection.0,
            document: None,
            code: None,
            message: Some(detail),
        },
    }
}

// ----- coming in: completions and the index ------------------------------------------------

/// A storage completion as the page reports it (`phone.storageCompleted(now, completion)`):
/// `{id, type: 'loaded', document, stored}`, `{id, type: 'written'}` or
/// `{id, type: 'failed', reason}`.
///
/// One flat struct rather than an internally tagged enum: serde buffers a tagged enum's
/// fields before it can read the tag, and that buffering code costs the phone's download
/// more than checking the fields by hand.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CompletionJson {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: CompletionKind,
    #[serde(default)]
    pub document: Option<String>,
    /// `null` (or absent) in a `loaded` completion: nothing is stored for the document.
    #[serde(default)]
    pub stored: Option<StoredJson>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompletionKind {
    Loaded,
    Written,
    Failed,
}

/// Everything stored for one document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct StoredJson {
    #[serde(default)]
    pub snapshot: Option<Bytes>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub changes: Vec<ChangeJson>,
    /// The `meta` of the document's first `put-changes`, as it was given.
    #[serde(default)]
    pub meta: Option<DocumentMeta>,
}

pub fn completion_from_json(completion: CompletionJson) -> Result<StorageCompletion, PhoneError> {
    let id = StorageOpId(completion.id);
    Ok(match completion.kind {
        CompletionKind::Loaded => {
            let document = completion.document.ok_or_else(|| PhoneError::BadInput {
                what: "a loaded completion",
                detail: "it has no document".to_owned(),
            })?;
            StorageCompletion::Loaded {
                id,
                document: document_from_text(&document)?,
                stored: completion.stored.map(stored_from_json).transpose()?,
            }
        }
        CompletionKind::Written => StorageCompletion::Written { id },
        CompletionKind::Failed => StorageCompletion::Failed {
            id,
            reason: completion.reason.unwrap_or_default(),
        },
    })
}

fn stored_from_json(stored: StoredJson) -> Result<StoredDocument, PhoneError> {
    let changes = stored
        .changes
        .into_iter()
        .map(|change| {
            Ok(StoredChange {
                hash: hash_from_hex(&change.hash)?,
                bytes: change.bytes.0,
            })
        })
        .collect::<Result<Vec<_>, PhoneError>>()?;
    Ok(StoredDocument {
        snapshot: stored.snapshot.map(|bytes| bytes.0),
        changes,
        meta: stored.meta,
    })
}

/// One entry of `phone.restoreIndex([...])`: what the page's storage knows of a document.
/// Missing or `null` heads are empty (a document the relay never acknowledged).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntryJson {
    pub document: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub local_heads: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub relay_heads: Vec<String>,
}

/// `null` (and `undefined`, which reaches serde as unit) read as an empty list: storage
/// code in JavaScript easily leaves a field unset.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

pub fn index_entry_from_json(
    entry: &IndexEntryJson,
) -> Result<(DocumentId, IndexEntry), PhoneError> {
    Ok((
        document_from_text(&entry.document)?,
        IndexEntry {
            local_heads: heads_from_hex(&entry.local_heads)?,
            relay_heads: heads_from_hex(&entry.relay_heads)?,
        },
    ))
}

// ----- validation errors -------------------------------------------------------------------

/// One validation error as forms show it: the field path, a stable code, and the message in
/// Chinese and in English.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorJson {
    pub field: String,
    pub code: &'static str,
    pub zh: String,
    pub en: String,
}

pub fn error_to_json(error: &ValidationError) -> ErrorJson {
    ErrorJson {
        field: error.field.clone(),
        code: error.code.as_str(),
        zh: error.message_zh(),
        en: error.message_en(),
    }
}
