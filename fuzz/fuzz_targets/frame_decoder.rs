//! A frame from a peer: core's CBOR decoder of protocol messages.
//! The body is `caresync_core::fuzzing::frame_decoder`, which the replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| caresync_core::fuzzing::frame_decoder(data));
