//! The `cloudtrail` normalizer on any bytes: one record per line (up to 16), every record a row or a dead
//! letter, never a panic, raw bytes kept whole.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::normalize(vigil_normalize::Format::Cloudtrail, data));
