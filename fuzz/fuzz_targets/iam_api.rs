//! libFuzzer's entry for coffer-fuzz's `iam_api` target.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::run("iam_api", data));
