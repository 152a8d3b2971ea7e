//! A frame arriving at the relay's engine from a joined peer, storage carried out in memory.
//! The body is `caresync_core::fuzzing::relay_receive`, which the replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| caresync_core::fuzzing::relay_receive(data));
