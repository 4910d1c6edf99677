//! libFuzzer's entry for coffer-fuzz's `trail` target.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::run("trail", data));
