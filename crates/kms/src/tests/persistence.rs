//! What the KMS keeps on disk: state across restarts, the root-key check, and no
//! plaintext material at rest.

use super::*;

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
