//! Fuzz targets for every parser of untrusted input, as plain functions of bytes.
//!
//! Each target feeds its input to one parser (or one API after authentication) and asserts
//! properties: nothing panics; an API answers bad input with a 4xx AWS error, never a 500;
//! a tampered ciphertext, segment or import token never opens. Two drivers run them: the
//! cargo-fuzz project in `fuzz/` (libFuzzer, coverage-guided; `scripts/fuzz SECONDS`), and
//! `tests/replay.rs`, which runs every committed seed and every input a fuzzer once found
//! (`corpus/<target>/`) on each test run.

mod formats;
mod input;
mod kms;
mod parsers;
mod s3;
mod services;

pub use input::Input;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, by the name `fuzz/` and the corpus directories use.
pub const TARGETS: &[Target] = &[
    Target {
        name: "sigv4",
        run: parsers::sigv4,
    },
    Target {
        name: "policy",
        run: parsers::policy,
    },
    Target {
        name: "s3_xml",
        run: parsers::s3_xml,
    },
    Target {
        name: "trail",
        run: parsers::trail,
    },
    Target {
        name: "kms_ciphertext",
        run: formats::kms_ciphertext,
    },
    Target {
        name: "segment",
        run: formats::segment,
    },
    Target {
        name: "kms_api",
        run: kms::kms_api,
    },
    Target {
        name: "import_token",
        run: kms::import_token,
    },
    Target {
        name: "iam_api",
        run: services::iam_api,
    },
    Target {
        name: "s3_api",
        run: s3::s3_api,
    },
];

/// What every in-memory world of the API targets starts from: a single-threaded runtime
/// (with timers) and a fixed root key.
fn world() -> (tokio::runtime::Runtime, coffer_crypto::LocalRootKey) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let root = coffer_crypto::LocalRootKey::from_secret(coffer_crypto::Secret::new(vec![1; 32]))
        .expect("a root key");
    (rt, root)
}

/// Runs the target named `name` on `data`.
///
/// # Panics
/// If no target has that name, or the target finds a property broken.
pub fn run(name: &str, data: &[u8]) {
    match TARGETS.iter().find(|t| t.name == name) {
        Some(t) => (t.run)(data),
        None => panic!("no fuzz target named {name}"),
    }
}
