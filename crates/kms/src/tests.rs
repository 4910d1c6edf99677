//! Behaviour of the KMS domain, on the in-memory store and on the embedded SQLite store.

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

#[tokio::test]
async fn create_describe_list() {
    let k = kms().await;
    let m = k
        .create_key(
            &caller(),
            CreateKey {
                description: Some("test key".into()),
                tags: vec![("team".into(), "storage".into())],
                ..CreateKey::default()
            },
            t0(),
        )
        .await
        .expect("create");
    assert_eq!(m.state, KeyState::Enabled);
    assert!(m.enabled);
    assert_eq!(
        m.arn,
        format!("arn:aws:kms:us-east-1:111122223333:key/{}", m.key_id)
    );
    assert_eq!(m.current_material_id.as_deref().map(str::len), Some(64));
    let d = k
        .describe_key(&caller(), &m.arn)
        .await
        .expect("describe by arn");
    assert_eq!(d.description, "test key");
    assert!(matches!(
        k.describe_key(&other(), &m.key_id).await,
        Err(Error::NotFound(_))
    ));
    for _ in 0..4 {
        new_key(&k).await;
    }
    let page = k.list_keys(&caller(), Some(3), None).expect("list");
    assert_eq!(page.items.len(), 3);
    let rest = k
        .list_keys(&caller(), None, page.next_marker.as_deref())
        .expect("list");
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_marker.is_none());
    assert!(matches!(
        k.list_keys(&caller(), Some(0), None),
        Err(Error::Validation(_))
    ));
    assert!(
        k.list_keys(&other(), None, None)
            .expect("list")
            .items
            .is_empty()
    );
    let policy = k
        .get_key_policy(&caller(), &m.key_id, None)
        .await
        .expect("policy");
    assert!(policy.contains("arn:aws:iam::111122223333:root"));
}

#[tokio::test]
async fn encrypt_decrypt_bind_the_context() {
    let k = kms().await;
    let id = new_key(&k).await;
    let c = ctx(&[("purpose", "test")]);
    let (blob, arn) = k
        .encrypt(&caller(), &id, &Secret::from_slice(b"hello"), &c, t0())
        .await
        .expect("encrypt");
    assert!(arn.ends_with(&id));
    let d = k
        .decrypt(&caller(), &blob, &c, None, t0())
        .await
        .expect("decrypt");
    assert_eq!(d.plaintext.expose(), b"hello");
    assert_eq!(
        k.decrypt(&caller(), &blob, &ctx(&[("purpose", "other")]), None, t0())
            .await
            .err(),
        Some(Error::InvalidCiphertext)
    );
    assert_eq!(
        k.decrypt(&caller(), &blob, &BTreeMap::new(), None, t0())
            .await
            .err(),
        Some(Error::InvalidCiphertext)
    );
    let other_key = new_key(&k).await;
    assert_eq!(
        k.decrypt(&caller(), &blob, &c, Some(&other_key), t0())
            .await
            .err(),
        Some(Error::IncorrectKey)
    );
    assert!(
        k.decrypt(&caller(), &blob, &c, Some(&id), t0())
            .await
            .is_ok()
    );
    // Another account cannot use the blob at all.
    assert_eq!(
        k.decrypt(&other(), &blob, &c, None, t0()).await.err(),
        Some(Error::InvalidCiphertext)
    );
    // Limits.
    assert!(matches!(
        k.encrypt(&caller(), &id, &Secret::zeroed(4097), &c, t0())
            .await,
        Err(Error::Validation(_))
    ));
}

#[tokio::test]
async fn data_keys_and_reencrypt() {
    let k = kms().await;
    let a = new_key(&k).await;
    let b = new_key(&k).await;
    let empty = BTreeMap::new();
    let req = |key_spec, number_of_bytes, with_plaintext| DataKeyRequest {
        key_id: &a,
        key_spec,
        number_of_bytes,
        context: &empty,
        with_plaintext,
    };
    let dk = k
        .generate_data_key(&caller(), &req(Some("AES_256"), None, true), t0())
        .await
        .expect("gdk");
    let plain = dk.plaintext.expect("plaintext");
    assert_eq!(plain.len(), 32);
    let back = k
        .decrypt(&caller(), &dk.ciphertext, &BTreeMap::new(), None, t0())
        .await
        .expect("decrypt");
    assert_eq!(back.plaintext, plain);
    let wo = k
        .generate_data_key(&caller(), &req(None, Some(7), false), t0())
        .await
        .expect("gdk without plaintext");
    assert!(wo.plaintext.is_none());
    for (spec, n) in [
        (None, None),
        (Some("AES_256"), Some(32)),
        (None, Some(0)),
        (None, Some(1025)),
        (Some("AES_512"), None),
    ] {
        assert!(matches!(
            k.generate_data_key(&caller(), &req(spec, n, true), t0())
                .await,
            Err(Error::Validation(_))
        ));
    }
    let re = k
        .re_encrypt(
            &caller(),
            &dk.ciphertext,
            &BTreeMap::new(),
            None,
            &b,
            &ctx(&[("x", "y")]),
            t0(),
        )
        .await
        .expect("reencrypt");
    assert!(re.key_arn.ends_with(&b));
    let back = k
        .decrypt(&caller(), &re.ciphertext, &ctx(&[("x", "y")]), None, t0())
        .await
        .expect("decrypt");
    assert_eq!(back.plaintext, plain);
    assert_eq!(k.generate_random(Some(48)).expect("random").len(), 48);
    assert!(k.generate_random(Some(0)).is_err());
}

#[tokio::test]
async fn key_states_gate_operations() {
    let k = kms().await;
    let id = new_key(&k).await;
    let (blob, _) = k
        .encrypt(
            &caller(),
            &id,
            &Secret::from_slice(b"x"),
            &BTreeMap::new(),
            t0(),
        )
        .await
        .expect("encrypt");
    k.disable_key(&caller(), &id).await.expect("disable");
    assert!(matches!(
        k.decrypt(&caller(), &blob, &BTreeMap::new(), None, t0())
            .await,
        Err(Error::Disabled(_))
    ));
    assert!(matches!(
        k.encrypt(
            &caller(),
            &id,
            &Secret::from_slice(b"x"),
            &BTreeMap::new(),
            t0()
        )
        .await,
        Err(Error::Disabled(_))
    ));
    k.enable_key(&caller(), &id).await.expect("enable");
    assert!(
        k.decrypt(&caller(), &blob, &BTreeMap::new(), None, t0())
            .await
            .is_ok()
    );
    let (arn, when, days) = k
        .schedule_key_deletion(&caller(), &id, Some(7), t0())
        .await
        .expect("schedule");
    assert_eq!(days, 7);
    assert_eq!(when, t0() + Duration::seconds(7));
    assert!(arn.ends_with(&id));
    assert!(matches!(
        k.decrypt(&caller(), &blob, &BTreeMap::new(), None, t0())
            .await,
        Err(Error::InvalidState { .. })
    ));
    assert!(matches!(
        k.enable_key(&caller(), &id).await,
        Err(Error::InvalidState { .. })
    ));
    assert!(matches!(
        k.schedule_key_deletion(&caller(), &id, None, t0()).await,
        Err(Error::InvalidState { .. })
    ));
    let m = k.describe_key(&caller(), &id).await.expect("describe");
    assert_eq!(m.state, KeyState::PendingDeletion);
    assert!(!m.enabled);
    k.cancel_key_deletion(&caller(), &id).await.expect("cancel");
    assert_eq!(
        k.describe_key(&caller(), &id)
            .await
            .expect("describe")
            .state,
        KeyState::Disabled
    );
    assert!(matches!(
        k.cancel_key_deletion(&caller(), &id).await,
        Err(Error::InvalidState { .. })
    ));
    for bad in [6, 31] {
        assert!(matches!(
            k.schedule_key_deletion(&caller(), &id, Some(bad), t0())
                .await,
            Err(Error::Validation(_))
        ));
    }
}

#[tokio::test]
async fn rotation_keeps_old_ciphertexts_readable() {
    let k = kms().await;
    let id = new_key(&k).await;
    let c = BTreeMap::new();
    let (before, _) = k
        .encrypt(&caller(), &id, &Secret::from_slice(b"v0"), &c, t0())
        .await
        .expect("encrypt");
    k.rotate_key_on_demand(&caller(), &id, t0())
        .await
        .expect("rotate");
    let (after_demand, _) = k
        .encrypt(&caller(), &id, &Secret::from_slice(b"v1"), &c, t0())
        .await
        .expect("encrypt");
    assert_ne!(
        before[17..21],
        after_demand[17..21],
        "new ciphertexts use the new version"
    );
    k.enable_key_rotation(&caller(), &id, Some(90), t0())
        .await
        .expect("enable rotation");
    let status = k
        .get_key_rotation_status(&caller(), &id)
        .await
        .expect("status");
    assert!(status.enabled);
    assert_eq!(status.next_rotation, Some(t0() + Duration::seconds(90)));
    // Not due yet.
    assert!(
        k.tick(t0() + Duration::seconds(89))
            .await
            .expect("tick")
            .rotated
            .is_empty()
    );
    let t = k.tick(t0() + Duration::seconds(90)).await.expect("tick");
    assert_eq!(t.rotated, vec![k.key_arn("111122223333", &id)]);
    let (after_auto, _) = k
        .encrypt(&caller(), &id, &Secret::from_slice(b"v2"), &c, t0())
        .await
        .expect("encrypt");
    for (blob, want) in [
        (&before, b"v0"),
        (&after_demand, b"v1"),
        (&after_auto, b"v2"),
    ] {
        let d = k
            .decrypt(&caller(), blob, &c, None, t0())
            .await
            .expect("decrypt");
        assert_eq!(d.plaintext.expose(), want);
    }
    let rotations = k
        .list_key_rotations(&caller(), &id, None, None, None)
        .await
        .expect("list")
        .items;
    let kinds: Vec<_> = rotations
        .iter()
        .map(|r| r.rotation_type.map(|t| t.as_str()))
        .collect();
    assert_eq!(kinds, [Some("ON_DEMAND"), Some("AUTOMATIC")]);
    assert!(rotations[1].current);
    let all = k
        .list_key_rotations(&caller(), &id, Some("ALL_KEY_MATERIAL"), None, None)
        .await
        .expect("list");
    assert_eq!(all.items.len(), 3);
    // The next automatic rotation is one period after the last.
    let status = k
        .get_key_rotation_status(&caller(), &id)
        .await
        .expect("status");
    assert_eq!(status.next_rotation, Some(t0() + Duration::seconds(180)));
    for bad in [89, 2561] {
        assert!(
            k.enable_key_rotation(&caller(), &id, Some(bad), t0())
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn on_demand_rotation_is_limited_to_25() {
    let k = kms().await;
    let id = new_key(&k).await;
    for _ in 0..25 {
        k.rotate_key_on_demand(&caller(), &id, t0())
            .await
            .expect("rotate");
    }
    assert!(matches!(
        k.rotate_key_on_demand(&caller(), &id, t0()).await,
        Err(Error::LimitExceeded(_))
    ));
    k.disable_key(&caller(), &id).await.expect("disable");
    let other_key = new_key(&k).await;
    k.disable_key(&caller(), &other_key).await.expect("disable");
    assert!(matches!(
        k.rotate_key_on_demand(&caller(), &other_key, t0()).await,
        Err(Error::Disabled(_))
    ));
}

#[tokio::test]
async fn deletion_destroys_the_key_after_its_window() {
    let k = kms().await;
    let doomed = new_key(&k).await;
    let kept = new_key(&k).await;
    k.create_alias(&caller(), "alias/doomed", &doomed, t0())
        .await
        .expect("alias");
    let (blob, _) = k
        .encrypt(
            &caller(),
            &doomed,
            &Secret::from_slice(b"x"),
            &BTreeMap::new(),
            t0(),
        )
        .await
        .expect("encrypt");
    let (kept_blob, _) = k
        .encrypt(
            &caller(),
            &kept,
            &Secret::from_slice(b"y"),
            &BTreeMap::new(),
            t0(),
        )
        .await
        .expect("encrypt");
    k.schedule_key_deletion(&caller(), &doomed, Some(7), t0())
        .await
        .expect("schedule");
    assert!(
        k.tick(t0() + Duration::seconds(6))
            .await
            .expect("tick")
            .deleted
            .is_empty()
    );
    let t = k.tick(t0() + Duration::seconds(7)).await.expect("tick");
    assert_eq!(t.deleted, vec![k.key_arn("111122223333", &doomed)]);
    assert!(matches!(
        k.describe_key(&caller(), &doomed).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        k.decrypt(&caller(), &blob, &BTreeMap::new(), None, t0())
            .await
            .err(),
        Some(Error::InvalidCiphertext)
    );
    assert!(matches!(
        k.describe_key(&caller(), "alias/doomed").await,
        Err(Error::NotFound(_))
    ));
    let d = k
        .decrypt(&caller(), &kept_blob, &BTreeMap::new(), None, t0())
        .await
        .expect("other keys are fine");
    assert_eq!(d.plaintext.expose(), b"y");
}

#[tokio::test]
async fn aliases_resolve_and_are_checked() {
    let k = kms().await;
    let a = new_key(&k).await;
    let b = new_key(&k).await;
    k.create_alias(&caller(), "alias/app", &a, t0())
        .await
        .expect("alias");
    assert_eq!(
        k.describe_key(&caller(), "alias/app")
            .await
            .expect("describe")
            .key_id,
        a
    );
    assert_eq!(
        k.describe_key(&caller(), "arn:aws:kms:us-east-1:111122223333:alias/app")
            .await
            .expect("describe")
            .key_id,
        a
    );
    assert!(matches!(
        k.create_alias(&caller(), "alias/app", &b, t0()).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        k.create_alias(&caller(), "alias/aws/s3", &b, t0()).await,
        Err(Error::NotAuthorized(_))
    ));
    assert!(matches!(
        k.create_alias(&caller(), "app", &b, t0()).await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        k.create_alias(&caller(), "alias/x", "alias/app", t0())
            .await,
        Err(Error::NotFound(_))
    ));
    k.update_alias(&caller(), "alias/app", &b, t0())
        .await
        .expect("update");
    assert_eq!(
        k.describe_key(&caller(), "alias/app")
            .await
            .expect("describe")
            .key_id,
        b
    );
    let list = k
        .list_aliases(&caller(), None, None, None)
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1);
    let for_a = k
        .list_aliases(&caller(), Some(&a), None, None)
        .await
        .expect("list");
    assert!(for_a.items.is_empty());
    // Management operations take key ids, not aliases.
    assert!(matches!(
        k.disable_key(&caller(), "alias/app").await,
        Err(Error::NotFound(_))
    ));
    k.delete_alias(&caller(), "alias/app")
        .await
        .expect("delete");
    assert!(matches!(
        k.delete_alias(&caller(), "alias/app").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        k.describe_key(&caller(), "alias/app").await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn tags_and_policies() {
    let k = kms().await;
    let id = new_key(&k).await;
    k.tag_resource(
        &caller(),
        &id,
        &[("a".into(), "1".into()), ("b".into(), "2".into())],
    )
    .await
    .expect("tag");
    k.untag_resource(&caller(), &id, &["a".into()])
        .await
        .expect("untag");
    let tags = k
        .list_resource_tags(&caller(), &id, None, None)
        .await
        .expect("tags");
    assert_eq!(tags.items, vec![("b".to_string(), "2".to_string())]);
    assert!(matches!(
        k.tag_resource(&caller(), &id, &[("aws:x".into(), "1".into())])
            .await,
        Err(Error::Tag(_))
    ));
    let too_many: Vec<(String, String)> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
    assert!(matches!(
        k.tag_resource(&caller(), &id, &too_many).await,
        Err(Error::Tag(_))
    ));
    let p = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
    k.put_key_policy(&caller(), &id, Some("default"), p)
        .await
        .expect("put policy");
    assert_eq!(
        k.get_key_policy(&caller(), &id, Some("default"))
            .await
            .expect("get"),
        p
    );
    assert!(matches!(
        k.put_key_policy(&caller(), &id, None, "{not json").await,
        Err(Error::MalformedPolicyDocument(_))
    ));
    assert!(matches!(
        k.get_key_policy(&caller(), &id, Some("other")).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        k.list_key_policies(&caller(), &id, None)
            .await
            .expect("list"),
        vec!["default"]
    );
}

#[tokio::test]
async fn last_usage_is_tracked_and_persisted() {
    let k = kms().await;
    let id = new_key(&k).await;
    let (_, usage, _, _) = k.get_key_last_usage(&caller(), &id).await.expect("usage");
    assert!(usage.is_none());
    k.encrypt(
        &caller(),
        &id,
        &Secret::from_slice(b"x"),
        &BTreeMap::new(),
        t0(),
    )
    .await
    .expect("encrypt");
    let (_, usage, _, _) = k.get_key_last_usage(&caller(), &id).await.expect("usage");
    assert_eq!(usage.map(|u| u.operation).as_deref(), Some("Encrypt"));
    k.tick(t0()).await.expect("tick");
    let stored = coffer_storage::KmsStore::kms_get_key(k.store.as_ref(), &id)
        .await
        .expect("get")
        .expect("key");
    assert!(stored.doc.contains("\"operation\":\"Encrypt\""));
}

fn open_local(dir: &Path) -> coffer_storage_local::LocalStore {
    coffer_storage_local::LocalStore::open(dir).expect("open store")
}

#[tokio::test]
async fn state_survives_restart_and_a_wrong_root_key_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (id, blob) = {
        let store = open_local(dir.path());
        let k = Kms::open(Arc::new(store.meta.clone()), root(1), config())
            .await
            .expect("open");
        let id = new_key(&k).await;
        k.create_alias(&caller(), "alias/keep", &id, t0())
            .await
            .expect("alias");
        let (blob, _) = k
            .encrypt(
                &caller(),
                &id,
                &Secret::from_slice(b"persist"),
                &BTreeMap::new(),
                t0(),
            )
            .await
            .expect("encrypt");
        k.rotate_key_on_demand(&caller(), &id, t0())
            .await
            .expect("rotate");
        k.disable_key(&caller(), &id).await.expect("disable");
        (id, blob)
    };
    let store = open_local(dir.path());
    match Kms::open(Arc::new(store.meta.clone()), root(2), config()).await {
        Err(OpenError::WrongRootKey { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a wrong root key must be refused"),
    }
    let k = Kms::open(Arc::new(store.meta.clone()), root(1), config())
        .await
        .expect("reopen");
    let m = k
        .describe_key(&caller(), "alias/keep")
        .await
        .expect("alias survives");
    assert_eq!(m.key_id, id);
    assert_eq!(m.state, KeyState::Disabled);
    k.enable_key(&caller(), &id).await.expect("enable");
    let d = k
        .decrypt(&caller(), &blob, &BTreeMap::new(), None, t0())
        .await
        .expect("decrypt");
    assert_eq!(d.plaintext.expose(), b"persist");
    let rot = k
        .list_key_rotations(&caller(), &id, None, None, None)
        .await
        .expect("rotations");
    assert_eq!(rot.items.len(), 1);
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

#[tokio::test]
async fn no_key_material_is_stored_in_plaintext() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_local(dir.path());
    let k = Kms::open(Arc::new(store.meta.clone()), root(1), config())
        .await
        .expect("open");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = new_key(&k).await;
        k.rotate_key_on_demand(&caller(), &id, t0())
            .await
            .expect("rotate");
        k.rotate_key_on_demand(&caller(), &id, t0())
            .await
            .expect("rotate");
        ids.push(id);
    }
    let materials: Vec<Vec<u8>> = crate::lock_read(&k.keys)
        .values()
        .flat_map(|e| {
            e.materials
                .iter()
                .map(|m| m.secret.expose().to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(materials.len(), 15);
    let disk = bytes_at_rest(dir.path());
    assert!(disk.len() > 10_000, "the scan must see the database");
    for m in &materials {
        assert!(
            !disk.windows(m.len()).any(|w| w == m.as_slice()),
            "key material found in plaintext at rest"
        );
        // Nor any 16-byte half of it.
        for half in m.chunks(16) {
            assert!(!disk.windows(16).any(|w| w == half));
        }
    }
}

mod import;
mod properties;

#[tokio::test]
async fn managed_keys_are_created_once_and_service_keys_stay_hidden() {
    let k = kms().await;
    let a = k
        .aws_managed_key("111122223333", "s3", t0())
        .await
        .expect("managed");
    let b = k
        .aws_managed_key("111122223333", "s3", t0())
        .await
        .expect("managed again");
    assert_eq!(a, b);
    let m = k
        .describe_key(&caller(), "alias/aws/s3")
        .await
        .expect("visible");
    assert_eq!(m.manager.as_str(), "AWS");
    assert!(matches!(
        k.disable_key(&caller(), &a).await,
        Err(Error::UnsupportedOperation(_))
    ));
    let svc = k
        .sse_s3_key("111122223333", t0())
        .await
        .expect("service key");
    assert_ne!(svc, a);
    // Clients cannot see or use the service key, by id or alias.
    assert!(matches!(
        k.describe_key(&caller(), &svc).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        k.describe_key(&caller(), "alias/aws/coffer-sse-s3").await,
        Err(Error::NotFound(_))
    ));
    assert!(
        k.list_keys(&caller(), None, None)
            .expect("list")
            .items
            .iter()
            .all(|(id, _)| *id != svc)
    );
    let aliases = k
        .list_aliases(&caller(), None, None, None)
        .await
        .expect("aliases");
    assert!(
        aliases
            .items
            .iter()
            .all(|al| al.name != "alias/aws/coffer-sse-s3")
    );
    let internal = Caller {
        internal: true,
        ..caller()
    };
    let empty = BTreeMap::new();
    let dk = k
        .generate_data_key(
            &internal,
            &DataKeyRequest {
                key_id: &svc,
                key_spec: Some("AES_256"),
                number_of_bytes: None,
                context: &empty,
                with_plaintext: true,
            },
            t0(),
        )
        .await
        .expect("internal use");
    assert_eq!(
        k.decrypt(&caller(), &dk.ciphertext, &empty, None, t0())
            .await
            .err(),
        Some(Error::InvalidCiphertext),
        "a client cannot decrypt what the service key encrypted"
    );
    assert!(
        k.decrypt(&internal, &dk.ciphertext, &empty, None, t0())
            .await
            .is_ok()
    );
}

/// A gate that records what it was asked and allows only what it is told to.
struct RecordingGate {
    allow: Vec<&'static str>,
    asked: std::sync::Mutex<Vec<(String, String, Option<String>)>>,
}

impl crate::KeyGate for RecordingGate {
    fn check(&self, key: &crate::KeyUse<'_>) -> Result<(), String> {
        self.asked.lock().expect("lock").push((
            key.action.to_owned(),
            key.key_arn.to_owned(),
            key.encryption_context
                .and_then(|c| c.get("purpose"))
                .cloned(),
        ));
        if self.allow.contains(&key.action) {
            Ok(())
        } else {
            Err(format!("not {}", key.action))
        }
    }
}

#[tokio::test]
async fn every_key_use_asks_the_gate_and_foreign_keys_cross_only_for_crypto() {
    let k = kms().await;
    let id = new_key(&k).await;
    let arn = k.key_arn("111122223333", &id);
    let gate = Arc::new(RecordingGate {
        allow: vec!["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
        asked: std::sync::Mutex::new(Vec::new()),
    });
    let mine = Caller::client("111122223333", "R", gate.clone());
    let c = ctx(&[("purpose", "test")]);
    let secret = Secret::from_slice(b"hello");
    let (blob, _) = k
        .encrypt(&mine, &id, &secret, &c, t0())
        .await
        .expect("allowed");
    assert_eq!(
        gate.asked.lock().expect("lock").last(),
        Some(&(
            "kms:Encrypt".to_owned(),
            arn.clone(),
            Some("test".to_owned())
        ))
    );
    // A refusal is AccessDenied, and comes before the state check.
    k.disable_key(&caller(), &id).await.expect("disable");
    assert!(matches!(
        k.generate_data_key(
            &mine,
            &DataKeyRequest {
                key_id: &id,
                key_spec: Some("AES_256"),
                number_of_bytes: None,
                context: &c,
                with_plaintext: true,
            },
            t0()
        )
        .await,
        Err(Error::AccessDenied(_))
    ));
    assert!(matches!(
        k.encrypt(&mine, &id, &secret, &c, t0()).await,
        Err(Error::Disabled(_))
    ));
    k.enable_key(&caller(), &id).await.expect("enable");

    // Another account finds the key only by ARN, and only for cross-account actions; its
    // gate decides.
    let theirs = Caller::client("444455556666", "R2", gate.clone());
    assert!(matches!(
        k.describe_key(&theirs, &id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        k.describe_key(&theirs, &arn).await.expect("by ARN").key_id,
        id
    );
    assert!(matches!(
        k.disable_key(&theirs, &arn).await,
        Err(Error::NotFound(_))
    ));
    let plain = k
        .decrypt(&theirs, &blob, &c, None, t0())
        .await
        .expect("decrypt allowed by the gate");
    assert_eq!(plain.plaintext.expose(), b"hello");
    let refusing = Caller::client(
        "444455556666",
        "R3",
        Arc::new(RecordingGate {
            allow: vec![],
            asked: std::sync::Mutex::new(Vec::new()),
        }),
    );
    assert!(matches!(
        k.decrypt(&refusing, &blob, &c, None, t0()).await,
        Err(Error::AccessDenied(_))
    ));
    // A trusted caller of another account does not cross.
    assert!(matches!(
        k.decrypt(&other(), &blob, &c, None, t0()).await,
        Err(Error::InvalidCiphertext)
    ));
}
