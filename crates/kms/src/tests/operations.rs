//! Creating and describing keys, the cryptographic operations, and the key-state table.

use super::*;

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
