//! caresync-tests: cross-crate integration tests (real server processes, simulated devices,
//! the JavaScript automerge-repo client, a browser). They live in `tests/tests/`; this
//! library will hold their shared helpers. The first server start-up test is
//! `server/tests/starts.rs`, where Cargo gives it the path of the `caresync` binary.
