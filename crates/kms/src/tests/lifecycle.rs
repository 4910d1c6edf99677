//! Rotation (automatic and on demand) and scheduled deletion.

use super::*;

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
