//! caresync-core: the domain model, the CRDT documents, validation, access rules and the
//! sans-IO sync engine. Nothing in this crate does IO, reads a clock or spawns: every entry
//! point that needs the time takes `now` as an argument. See `ARCHITECTURE.md`.

pub mod access;
pub mod domain;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod protocol;
pub mod record_cache;
pub mod relay_policy;
pub mod sync;
pub mod validation;
