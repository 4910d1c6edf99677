//! libFuzzer's entry for coffer-fuzz's `kms_ciphertext` target.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::run("kms_ciphertext", data));
