//! Behaviour of the KMS domain, on the in-memory store and on the embedded SQLite store.
//! Shared helpers live here; the tests are grouped by subject: `operations` (create,
//! describe, the cryptographic calls, the key-state table), `lifecycle` (rotation,
//! deletion), `metadata` (aliases, tags, policies, last usage), `persistence` (restart,
//! root-key check, nothing in plaintext at rest), `access` (managed keys, the key gate),
//! `import` (bring your own key, root-key re-wrap) and `properties`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use coffer_crypto::{LocalRootKey, RootKey, Secret};
use coffer_storage::memory::MemoryKms;

use crate::{Caller, Config, CreateKey, DataKeyRequest, Error, KeyState, Kms, OpenError};

fn caller() -> Caller {
    Caller::trusted("111122223333", "REQ")
}

fn other() -> Caller {
    Caller::trusted("444455556666", "REQ2")
}

fn root(b: u8) -> Arc<dyn RootKey> {
    Arc::new(LocalRootKey::from_secret(Secret::new(vec![b; 32])).expect("root"))
}

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 00:00:00 UTC)
}

fn config() -> Config {
    Config {
        region: "us-east-1".into(),
        day: Duration::seconds(1),
        ..Config::default()
    }
}

async fn kms() -> Kms {
    Kms::open(Arc::new(MemoryKms::new()), root(1), config())
        .await
        .expect("open")
}

fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

async fn new_key(k: &Kms) -> String {
    k.create_key(&caller(), CreateKey::default(), t0())
        .await
        .expect("create")
        .key_id
}

fn open_local(dir: &Path) -> coffer_storage_local::LocalStore {
    coffer_storage_local::LocalStore::open(dir).expect("open store")
}

/// Every byte the store holds, as files on disk.
fn bytes_at_rest(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).expect("read file"));
            }
        }
    }
    out
}

mod access;
mod import;
mod lifecycle;
mod metadata;
mod operations;
mod persistence;
mod properties;
