//! The automerge-repo WebSocket protocol v1 (design §3.1): identifiers, messages and their
//! CBOR encoding.

mod bs58check;
mod codec;
mod document_id;
mod message;
mod peer_id;
mod url;

pub use codec::{
    ARRAY_ITEMS_MAX, DecodeError, FRAME_BYTES_MAX, NESTING_DEPTH_MAX, SCOPE_ENTRIES_MAX,
    STRING_BYTES_MAX,
};
pub use document_id::{DocumentId, DocumentIdError};
pub use message::*;
pub use peer_id::{PeerId, StorageId};
pub use url::{AutomergeUrl, UrlError};
