//! libFuzzer's entry for coffer-fuzz's `kms_api` target.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::run("kms_api", data));
