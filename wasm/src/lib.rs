//! caresync-wasm: the wasm-bindgen bindings of `caresync-core` for the browser. Nothing
//! but thin wrappers lives here; all logic is in `core`.

use caresync_core::protocol::DocumentId;
use wasm_bindgen::prelude::{JsError, wasm_bindgen};

/// The version of the caresync crates built into this wasm module.
#[wasm_bindgen]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// A new document id, as the bs58check text automerge-repo uses, from 16 random bytes
/// (the caller draws them, e.g. with `crypto.getRandomValues(new Uint8Array(16))`).
#[wasm_bindgen]
pub fn new_document_id(random: &[u8]) -> Result<String, JsError> {
    document_id_text(random).map_err(|msg| JsError::new(&msg))
}

/// The logic of [`new_document_id`], kept free of JS types so that native tests can run it.
fn document_id_text(random: &[u8]) -> Result<String, String> {
    let bytes: [u8; DocumentId::LEN_BYTES] = random.try_into().map_err(|_| {
        format!(
            "new_document_id needs {} random bytes, got {}",
            DocumentId::LEN_BYTES,
            random.len()
        )
    })?;
    Ok(DocumentId::random_from(bytes).to_string())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]

    use super::*;

    #[test]
    fn document_id_text_round_trips() {
        let text = document_id_text(&[7; 16]).unwrap();
        let id: DocumentId = text.parse().unwrap();
        assert_eq!(id.to_string(), text);
    }

    #[test]
    fn document_id_text_refuses_wrong_length() {
        let err = document_id_text(&[7; 15]).unwrap_err();
        assert!(err.contains("16"), "{err}");
    }
}
