//! Bytes stored or received as a document: automerge load, then the record read and judged.
//! The body is `caresync_core::fuzzing::document_load`, which the replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| caresync_core::fuzzing::document_load(data));
