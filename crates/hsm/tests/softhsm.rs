//! The HSM root key against SoftHSM2 (Debian's `softhsm2`, which `scripts/test` installs):
//! a token initialised here, a key generated inside it that the token refuses to reveal,
//! wrapping that survives a new session, and refusal of a wrong PIN or token label.

use std::path::Path;
use std::process::Command;

use coffer_crypto::{Error, RootKey, Secret};
use coffer_hsm::{Hsm, HsmError};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

#[test]
fn a_softhsm_token_holds_a_root_key_that_never_leaves_it() {
    // SoftHSM reads SOFTHSM2_CONF when the module initializes; the checks run in a child
    // process of this test binary with it set (changing this process's environment would
    // need `unsafe`).
    if std::env::var_os("COFFER_HSM_TEST_CHILD").is_some() {
        return checks();
    }
    let dir = tempfile::tempdir().expect("dir");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::create_dir(dir.path().join("tokens")).expect("tokens");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.path().join("tokens").display()
        ),
    )
    .expect("conf");
    let init = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "coffer-test",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .output()
        .expect("softhsm2-util must be installed (apt-get install softhsm2)");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let me = std::env::current_exe().expect("test binary");
    let child = Command::new(me)
        .env("SOFTHSM2_CONF", &conf)
        .env("COFFER_HSM_TEST_CHILD", "1")
        .args([
            "--exact",
            "a_softhsm_token_holds_a_root_key_that_never_leaves_it",
            "--nocapture",
        ])
        .output()
        .expect("run the checks");
    assert!(
        child.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
}

fn checks() {
    let module = Path::new(MODULE);
    let hsm = Hsm::open(module, "coffer-test", "1234").expect("open");
    let key = hsm.generate_key().expect("generate");
    let p = key.protection().expect("attributes");
    assert!(p.sensitive && !p.extractable && !p.value_readable, "{p:?}");

    let m = Secret::from_slice(b"key material");
    let w = key.wrap(b"aad", &m).expect("wrap");
    assert_eq!(w[0], 0x02);
    assert!(!w.windows(12).any(|x| x == b"key material"));
    assert_ne!(
        key.wrap(b"aad", &m).expect("wrap again"),
        w,
        "fresh nonce per wrap"
    );
    assert_eq!(key.unwrap(b"aad", &w).expect("unwrap"), m);
    assert_eq!(key.unwrap(b"other", &w), Err(Error::Decrypt));
    let mut bad = w.clone();
    bad[20] ^= 1;
    assert_eq!(key.unwrap(b"aad", &bad), Err(Error::Decrypt));
    assert_eq!(key.unwrap(b"aad", &w[..10]), Err(Error::Decrypt));
    let id = key.id().to_vec();
    assert_eq!(hsm.key_ids().expect("ids"), vec![id.clone()]);
    drop(key);
    drop(hsm);

    // A new session finds the same key by id.
    let hsm = Hsm::open(module, "coffer-test", "1234").expect("reopen");
    let key = hsm.key(&id).expect("find").expect("the key persists");
    assert_eq!(key.unwrap(b"aad", &w).expect("unwrap after reopen"), m);
    assert!(hsm.destroy_key(&id).expect("destroy"));
    assert!(hsm.key(&id).expect("find").is_none());
    drop(key);
    drop(hsm);

    match Hsm::open(module, "coffer-test", "0000") {
        Err(HsmError::Login { .. }) => {}
        other => panic!("a wrong PIN must be refused: {other:?}"),
    }
    match Hsm::open(module, "no-such-token", "1234") {
        Err(HsmError::NoToken(_)) => {}
        other => panic!("a wrong token label must be refused: {other:?}"),
    }
}
