//! Managed and hidden service keys, and the key gate every key use asks.

use super::*;

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
