//! The JSON structural scanner (envelopes, `attrs` members) on any bytes: spans in bounds, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::scan(data));
