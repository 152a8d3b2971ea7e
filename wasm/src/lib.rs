//! caresync-wasm: the wasm-bindgen bindings of `caresync-core` for the browser. Nothing
//! but thin wrappers lives here; all logic is in `core`.
//!
//! - [`json`]: the shapes JavaScript sees (effects, storage ops and completions,
//!   notifications, validation errors) as plain Rust types;
//! - [`phone`]: the device engine with its record operations, in plain Rust;
//! - `bindings`: the `Phone` class and `validateRecord`, turning JS values into those types
//!   and back. Only this module touches `JsValue`.
//!
//! The JavaScript API is described in `docs/wasm-api.md`.

mod bindings;
pub mod error;
pub mod json;
pub mod phone;

use caresync_core::protocol::DocumentId;
use wasm_bindgen::prelude::{JsError, wasm_bindgen};

pub use bindings::{Phone, validate_record};

/// The version of the caresync crates built into this wasm module.
#[wasm_bindgen]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// A new document id, as the bs58check text automerge-repo uses, from 16 random bytes
/// (the caller draws them, e.g. with `crypto.getRandomValues(new Uint8Array(16))`).
#[wasm_bindgen(js_name = newDocumentId)]
pub fn new_document_id(random: &[u8]) -> Result<String, JsError> {
    document_id_text(random).map_err(|msg| JsError::new(&msg))
}

/// The logic of [`new_document_id`], kept free of JS types so that native tests can run it.
fn document_id_text(random: &[u8]) -> Result<String, String> {
    let bytes: [u8; DocumentId::LEN_BYTES] = random.try_into().map_err(|_| {
        format!(
            "newDocumentId needs {} random bytes, got {}",
            DocumentId::LEN_BYTES,
            random.len()
        )
    })?;
    Ok(DocumentId::random_from(bytes).to_string())
}

#[cfg(test)]
mod tests;
