//! libFuzzer's entry for coffer-fuzz's `segment` target.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::run("segment", data));
