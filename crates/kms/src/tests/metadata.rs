//! Aliases, tags, key policies and last usage.

use super::*;

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
