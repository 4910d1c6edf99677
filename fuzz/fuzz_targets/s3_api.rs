//! libFuzzer's entry for coffer-fuzz's `s3_api` target.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::run("s3_api", data));
