//! libFuzzer's entry for coffer-fuzz's `sigv4` target.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::run("sigv4", data));
