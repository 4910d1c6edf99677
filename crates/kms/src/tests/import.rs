//! Bring your own key: EXTERNAL keys, import tokens, expiry, reimport.

use super::*;
use crate::ImportMaterial;

async fn external(k: &Kms, spec: Option<&str>, usage: Option<&str>) -> String {
    let m = k
        .create_key(
            &caller(),
            CreateKey {
                origin: Some("EXTERNAL".into()),
                key_spec: spec.map(Into::into),
                key_usage: usage.map(Into::into),
                ..CreateKey::default()
            },
            t0(),
        )
        .await
        .expect("create external");
    assert_eq!(m.state, KeyState::PendingImport);
    assert!(!m.enabled);
    assert_eq!(m.current_material_id, None);
    m.key_id
}

/// GetParametersForImport + the client's wrapping + ImportKeyMaterial.
async fn import(
    k: &Kms,
    id: &str,
    material: &[u8],
    algorithm: &str,
    valid_to: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(String, String), Error> {
    let p = k
        .get_parameters_for_import(&caller(), id, algorithm, "RSA_2048", now)
        .await
        .expect("parameters");
    let blob =
        coffer_crypto::import::wrap_for_import(&p.public_key, algorithm, material).expect("wrap");
    k.import_key_material(
        &caller(),
        id,
        ImportMaterial {
            import_token: p.import_token,
            encrypted_key_material: blob,
            expiration_model: Some(
                if valid_to.is_some() {
                    "KEY_MATERIAL_EXPIRES"
                } else {
                    "KEY_MATERIAL_DOES_NOT_EXPIRE"
                }
                .into(),
            ),
            valid_to,
            ..ImportMaterial::default()
        },
        now,
    )
    .await
}

#[tokio::test]
async fn imported_material_works_expires_and_only_the_same_material_comes_back() {
    let k = kms().await;
    let id = external(&k, None, None).await;
    let none = BTreeMap::new();
    let secret = Secret::from_slice(b"byok");
    assert!(matches!(
        k.encrypt(&caller(), &id, &secret, &none, t0()).await,
        Err(Error::InvalidState {
            state: "pending import",
            ..
        })
    ));
    assert!(matches!(
        k.enable_key(&caller(), &id).await,
        Err(Error::InvalidState { .. })
    ));
    assert!(matches!(
        k.enable_key_rotation(&caller(), &id, None, t0()).await,
        Err(Error::UnsupportedOperation(_))
    ));
    // A key Coffer generated has nothing to import.
    let own = new_key(&k).await;
    assert!(matches!(
        k.get_parameters_for_import(&caller(), &own, "RSAES_OAEP_SHA_256", "RSA_2048", t0())
            .await,
        Err(Error::UnsupportedOperation(_))
    ));

    let material = [0x42u8; 32];
    let until = t0() + Duration::seconds(10);
    let (_, material_id) = import(&k, &id, &material, "RSAES_OAEP_SHA_256", Some(until), t0())
        .await
        .expect("import");
    let m = k.describe_key(&caller(), &id).await.expect("describe");
    assert_eq!(m.state, KeyState::Enabled);
    assert_eq!(m.current_material_id.as_deref(), Some(material_id.as_str()));
    assert_eq!(m.expiration_model, Some(crate::ExpirationModel::Expires));
    assert_eq!(m.valid_to, Some(until));
    let (blob, _) = k
        .encrypt(&caller(), &id, &secret, &none, t0())
        .await
        .expect("encrypt");

    // At ValidTo the material goes and the key waits for an import again.
    let t = k.tick(until).await.expect("tick");
    assert_eq!(t.expired, vec![k.key_arn("111122223333", &id)]);
    let m = k.describe_key(&caller(), &id).await.expect("describe");
    assert_eq!(m.state, KeyState::PendingImport);
    assert_eq!(m.current_material_id, None);
    assert!(
        k.decrypt(&caller(), &blob, &none, None, until)
            .await
            .is_err()
    );

    // Different material is refused; the same material restores the key and its
    // ciphertexts, under any wrapping algorithm.
    let later = until + Duration::seconds(1);
    assert!(matches!(
        import(&k, &id, &[0x43u8; 32], "RSAES_OAEP_SHA_1", None, later).await,
        Err(Error::IncorrectKeyMaterial(_))
    ));
    let (_, again) = import(&k, &id, &material, "RSA_AES_KEY_WRAP_SHA_256", None, later)
        .await
        .expect("reimport");
    assert_eq!(again, material_id);
    let d = k
        .decrypt(&caller(), &blob, &none, None, later)
        .await
        .expect("decrypt after reimport");
    assert_eq!(d.plaintext.expose(), b"byok");
    let m = k.describe_key(&caller(), &id).await.expect("describe");
    assert_eq!(
        m.expiration_model,
        Some(crate::ExpirationModel::DoesNotExpire)
    );
    assert_eq!(m.valid_to, None);
    assert!(
        k.tick(later + Duration::days(400))
            .await
            .expect("tick")
            .expired
            .is_empty()
    );

    // DeleteImportedKeyMaterial: back to PendingImport at once.
    let (_, deleted) = k
        .delete_imported_key_material(&caller(), &id, None)
        .await
        .expect("delete material");
    assert_eq!(deleted.as_deref(), Some(material_id.as_str()));
    assert_eq!(
        k.describe_key(&caller(), &id).await.expect("d").state,
        KeyState::PendingImport
    );
    // Scheduling deletion of a key without material, then cancelling, leaves it waiting
    // for an import, not Disabled.
    k.schedule_key_deletion(&caller(), &id, Some(7), later)
        .await
        .expect("schedule");
    k.cancel_key_deletion(&caller(), &id).await.expect("cancel");
    assert_eq!(
        k.describe_key(&caller(), &id).await.expect("d").state,
        KeyState::PendingImport
    );
}

#[tokio::test]
async fn import_tokens_are_bound_to_their_key_and_expire() {
    let k = kms().await;
    let a = external(&k, None, None).await;
    let b = external(&k, None, None).await;
    let p = k
        .get_parameters_for_import(&caller(), &a, "RSAES_OAEP_SHA_256", "RSA_2048", t0())
        .await
        .expect("parameters");
    assert_eq!(p.valid_to, t0() + Duration::seconds(1), "one KMS day");
    let blob =
        coffer_crypto::import::wrap_for_import(&p.public_key, "RSAES_OAEP_SHA_256", &[7; 32])
            .expect("wrap");
    let req = |token: Vec<u8>, blob: Vec<u8>| ImportMaterial {
        import_token: token,
        encrypted_key_material: blob,
        expiration_model: Some("KEY_MATERIAL_DOES_NOT_EXPIRE".into()),
        ..ImportMaterial::default()
    };
    // Another key's token, a tampered token, garbage.
    let mut tampered = p.import_token.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    for token in [
        p.import_token.clone(),
        tampered,
        b"CIT1".to_vec(),
        Vec::new(),
    ] {
        let on = if token == p.import_token { &b } else { &a };
        assert_eq!(
            k.import_key_material(&caller(), on, req(token, blob.clone()), t0())
                .await
                .err(),
            Some(Error::InvalidImportToken)
        );
    }
    // A token past its day.
    assert_eq!(
        k.import_key_material(
            &caller(),
            &a,
            req(p.import_token.clone(), blob.clone()),
            t0() + Duration::seconds(2)
        )
        .await
        .err(),
        Some(Error::ExpiredImportToken)
    );
    // Material wrapped under another wrapping key.
    let q = k
        .get_parameters_for_import(&caller(), &a, "RSAES_OAEP_SHA_256", "RSA_2048", t0())
        .await
        .expect("parameters");
    assert_eq!(
        k.import_key_material(
            &caller(),
            &a,
            req(q.import_token.clone(), blob.clone()),
            t0()
        )
        .await
        .err(),
        Some(Error::InvalidCiphertext)
    );
    // Material of the wrong size.
    let short =
        coffer_crypto::import::wrap_for_import(&q.public_key, "RSAES_OAEP_SHA_256", &[7; 16])
            .expect("wrap");
    assert!(matches!(
        k.import_key_material(&caller(), &a, req(q.import_token.clone(), short), t0())
            .await,
        Err(Error::IncorrectKeyMaterial(_))
    ));
    // ValidTo rules.
    let mut r = req(q.import_token.clone(), blob.clone());
    r.expiration_model = None;
    assert!(matches!(
        k.import_key_material(&caller(), &a, r, t0()).await,
        Err(Error::Validation(_))
    ));
    assert_eq!(
        k.describe_key(&caller(), &a).await.expect("d").state,
        KeyState::PendingImport,
        "nothing changed"
    );
}

#[tokio::test]
async fn asymmetric_and_hmac_material_can_be_imported() {
    let k = kms().await;
    // An ECC signing key made outside: its signatures verify with its own public key.
    let p256 = coffer_crypto::asym::generate(coffer_crypto::asym::Spec::P256).expect("p256");
    let id = external(&k, Some("ECC_NIST_P256"), Some("SIGN_VERIFY")).await;
    assert!(
        k.get_parameters_for_import(&caller(), &id, "RSAES_OAEP_SHA_256", "RSA_2048", t0())
            .await
            .is_ok()
    );
    import(
        &k,
        &id,
        p256.expose(),
        "RSA_AES_KEY_WRAP_SHA_256",
        None,
        t0(),
    )
    .await
    .expect("import p256");
    let public = k.get_public_key(&caller(), &id).await.expect("public");
    assert_eq!(
        public.der,
        coffer_crypto::asym::public_key_der(coffer_crypto::asym::Spec::P256, &p256).expect("der")
    );
    // RSA keys need the AES key-wrap algorithms.
    let rsa = external(&k, Some("RSA_2048"), Some("SIGN_VERIFY")).await;
    assert!(matches!(
        k.get_parameters_for_import(&caller(), &rsa, "RSAES_OAEP_SHA_256", "RSA_4096", t0())
            .await,
        Err(Error::Validation(_))
    ));
    // HMAC material of an allowed length.
    let mac = external(&k, Some("HMAC_256"), Some("GENERATE_VERIFY_MAC")).await;
    import(&k, &mac, &[9u8; 40], "RSAES_OAEP_SHA_1", None, t0())
        .await
        .expect("import hmac");
    let tag = k
        .generate_mac(&caller(), &mac, b"msg", "HMAC_SHA_256", t0())
        .await
        .expect("mac");
    assert_eq!(
        tag.0,
        coffer_crypto::hmac(256, &[9u8; 40], b"msg").expect("hmac")
    );
}

#[tokio::test]
async fn imported_keys_survive_restart_and_never_rest_in_plaintext() {
    let dir = tempfile::tempdir().expect("dir");
    let material = [0x5au8; 32];
    let id = {
        let store = open_local(dir.path());
        let k = Kms::open(Arc::new(store.meta.clone()), root(1), config())
            .await
            .expect("open");
        let id = external(&k, None, None).await;
        import(&k, &id, &material, "RSAES_OAEP_SHA_256", None, t0())
            .await
            .expect("import");
        id
    };
    let disk = bytes_at_rest(dir.path());
    assert!(!disk.windows(16).any(|w| w == &material[..16]));
    let store = open_local(dir.path());
    let k = Kms::open(Arc::new(store.meta.clone()), root(1), config())
        .await
        .expect("reopen");
    let m = k.describe_key(&caller(), &id).await.expect("describe");
    assert_eq!(m.state, KeyState::Enabled);
    assert_eq!(m.origin, crate::Origin::External);
    let (blob, _) = k
        .encrypt(
            &caller(),
            &id,
            &Secret::from_slice(b"x"),
            &BTreeMap::new(),
            t0(),
        )
        .await
        .expect("encrypt after restart");
    assert!(!blob.is_empty());
}

#[tokio::test]
async fn root_key_rotation_rewraps_every_material_and_the_check() {
    let dir = tempfile::tempdir().expect("dir");
    let ring = Arc::new(coffer_crypto::RootKeyRing::new(root(1)));
    let none = BTreeMap::new();
    let (blob, external_id) = {
        let store = open_local(dir.path());
        let k = Kms::open(Arc::new(store.meta.clone()), ring.clone(), config())
            .await
            .expect("open");
        let id = new_key(&k).await;
        k.rotate_key_on_demand(&caller(), &id, t0())
            .await
            .expect("rotate material");
        let (blob, _) = k
            .encrypt(&caller(), &id, &Secret::from_slice(b"kept"), &none, t0())
            .await
            .expect("encrypt");
        let ext = external(&k, None, None).await;
        import(&k, &ext, &[3u8; 32], "RSAES_OAEP_SHA_256", None, t0())
            .await
            .expect("import");
        ring.rotate_to(root(2));
        // Two versions of one key, the imported one, and the hidden audit/SSE keys none.
        assert_eq!(k.rewrap_under_root().await.expect("rewrap"), 3);
        ring.forget_previous();
        (blob, ext)
    };
    let store = open_local(dir.path());
    assert!(matches!(
        Kms::open(Arc::new(store.meta.clone()), root(1), config()).await,
        Err(OpenError::WrongRootKey { .. })
    ));
    let k = Kms::open(Arc::new(store.meta.clone()), root(2), config())
        .await
        .expect("the new root key alone opens everything");
    let d = k
        .decrypt(&caller(), &blob, &none, None, t0())
        .await
        .expect("decrypt");
    assert_eq!(d.plaintext.expose(), b"kept");
    assert_eq!(
        k.describe_key(&caller(), &external_id)
            .await
            .expect("d")
            .state,
        KeyState::Enabled
    );
}
