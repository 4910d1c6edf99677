//! libFuzzer's entry for coffer-fuzz's `import_token` target.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::run("import_token", data));
