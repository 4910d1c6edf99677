//! Contract checks of [`KmsStore`]: keys, material versions, aliases and settings.

use crate::{Error, KmsAliasRecord, KmsKeyRecord, KmsMaterialRecord, KmsStore};

use super::objects::now;

fn kms_key(id: &str, account: &str) -> KmsKeyRecord {
    KmsKeyRecord {
        key_id: id.into(),
        account_id: account.into(),
        created: now(),
        doc: format!(r#"{{"state":"Enabled","id":"{id}"}}"#),
    }
}

fn material(id: &str, version: u32) -> KmsMaterialRecord {
    KmsMaterialRecord {
        key_id: id.into(),
        version,
        wrapped: vec![version as u8; 61],
        doc: format!(r#"{{"v":{version}}}"#),
    }
}

fn alias(account: &str, name: &str, key: &str) -> KmsAliasRecord {
    KmsAliasRecord {
        account_id: account.into(),
        name: name.into(),
        key_id: key.into(),
        created: now(),
        updated: now(),
    }
}

pub async fn kms_keys_round_trip(store: &dyn KmsStore) {
    let k = kms_key("k1", "111111111111");
    store
        .kms_create_key(&k, Some(&material("k1", 0)))
        .await
        .expect("create");
    assert_eq!(store.kms_get_key("k1").await.expect("get"), Some(k.clone()));
    assert!(matches!(
        store.kms_create_key(&k, Some(&material("k1", 0))).await,
        Err(Error::AlreadyExists(_))
    ));
    let mut k2 = k.clone();
    k2.doc = r#"{"state":"Disabled"}"#.into();
    store.kms_update_key(&k2).await.expect("update");
    assert_eq!(store.kms_get_key("k1").await.expect("get"), Some(k2));
    assert!(matches!(
        store.kms_update_key(&kms_key("nope", "1")).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.kms_get_key("nope").await.expect("get").is_none());
    assert_eq!(
        store.kms_materials("k1").await.expect("materials"),
        vec![material("k1", 0)]
    );
}

pub async fn kms_materials_can_be_absent_and_removed(store: &dyn KmsStore) {
    // A key awaiting imported material has none.
    let k = kms_key("ext", "111111111111");
    store.kms_create_key(&k, None).await.expect("create");
    assert!(
        store
            .kms_materials("ext")
            .await
            .expect("materials")
            .is_empty()
    );
    let mut imported = k.clone();
    imported.doc = r#"{"state":"Enabled"}"#.into();
    store
        .kms_add_material(&imported, &material("ext", 0))
        .await
        .expect("import");
    assert_eq!(store.kms_materials("ext").await.expect("m").len(), 1);
    // Deleting imported material removes every version and updates the document.
    let mut pending = k.clone();
    pending.doc = r#"{"state":"PendingImport"}"#.into();
    store.kms_remove_materials(&pending).await.expect("remove");
    assert!(store.kms_materials("ext").await.expect("m").is_empty());
    assert_eq!(store.kms_get_key("ext").await.expect("get"), Some(pending));
    assert!(matches!(
        store
            .kms_remove_materials(&kms_key("gone", "111111111111"))
            .await,
        Err(Error::NotFound(_))
    ));
}

pub async fn kms_rotation_adds_versions(store: &dyn KmsStore) {
    let k = kms_key("k1", "111111111111");
    store
        .kms_create_key(&k, Some(&material("k1", 0)))
        .await
        .expect("create");
    let mut rotated = k.clone();
    rotated.doc = r#"{"current":1}"#.into();
    store
        .kms_add_material(&rotated, &material("k1", 1))
        .await
        .expect("rotate");
    store
        .kms_add_material(&rotated, &material("k1", 2))
        .await
        .expect("rotate");
    assert!(matches!(
        store.kms_add_material(&rotated, &material("k1", 2)).await,
        Err(Error::AlreadyExists(_))
    ));
    let versions: Vec<u32> = store
        .kms_materials("k1")
        .await
        .expect("materials")
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, [0, 1, 2]);
    assert_eq!(store.kms_get_key("k1").await.expect("get"), Some(rotated));
}

pub async fn kms_listing_keys(store: &dyn KmsStore) {
    for id in ["c", "a", "b", "d"] {
        store
            .kms_create_key(&kms_key(id, "111111111111"), Some(&material(id, 0)))
            .await
            .expect("create");
    }
    store
        .kms_create_key(&kms_key("z", "222222222222"), Some(&material("z", 0)))
        .await
        .expect("create");
    let page = store
        .kms_list_keys("111111111111", None, 2)
        .await
        .expect("list");
    let ids: Vec<&str> = page.items.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(page.truncated);
    let page = store
        .kms_list_keys("111111111111", Some("b"), 10)
        .await
        .expect("list");
    let ids: Vec<&str> = page.items.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(ids, ["c", "d"]);
    assert!(!page.truncated);
    assert_eq!(store.kms_all_keys().await.expect("all").len(), 5);
}

pub async fn kms_aliases(store: &dyn KmsStore) {
    store
        .kms_create_key(&kms_key("k1", "111111111111"), Some(&material("k1", 0)))
        .await
        .expect("create");
    store
        .kms_create_key(&kms_key("k2", "111111111111"), Some(&material("k2", 0)))
        .await
        .expect("create");
    store
        .kms_create_alias(&alias("111111111111", "alias/b", "k1"))
        .await
        .expect("alias");
    store
        .kms_create_alias(&alias("111111111111", "alias/a", "k2"))
        .await
        .expect("alias");
    store
        .kms_create_alias(&alias("222222222222", "alias/a", "k9"))
        .await
        .expect("other account");
    assert!(matches!(
        store
            .kms_create_alias(&alias("111111111111", "alias/a", "k1"))
            .await,
        Err(Error::AlreadyExists(_))
    ));
    let page = store
        .kms_list_aliases("111111111111", None, None, 10)
        .await
        .expect("list");
    let names: Vec<&str> = page.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["alias/a", "alias/b"]);
    let page = store
        .kms_list_aliases("111111111111", Some("k1"), None, 10)
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    let page = store
        .kms_list_aliases("111111111111", None, Some("alias/a"), 1)
        .await
        .expect("list");
    assert_eq!(page.items[0].name, "alias/b");
    assert!(!page.truncated);
    store
        .kms_update_alias(&alias("111111111111", "alias/b", "k2"))
        .await
        .expect("update");
    assert_eq!(
        store
            .kms_get_alias("111111111111", "alias/b")
            .await
            .expect("get")
            .map(|a| a.key_id),
        Some("k2".to_string())
    );
    assert!(matches!(
        store
            .kms_update_alias(&alias("111111111111", "alias/none", "k2"))
            .await,
        Err(Error::NotFound(_))
    ));
    store
        .kms_delete_alias("111111111111", "alias/b")
        .await
        .expect("delete");
    assert!(matches!(
        store.kms_delete_alias("111111111111", "alias/b").await,
        Err(Error::NotFound(_))
    ));
    assert!(
        store
            .kms_get_alias("111111111111", "alias/b")
            .await
            .expect("get")
            .is_none()
    );
}

pub async fn kms_delete_key_destroys_everything(store: &dyn KmsStore) {
    store
        .kms_create_key(&kms_key("k1", "111111111111"), Some(&material("k1", 0)))
        .await
        .expect("create");
    store
        .kms_add_material(&kms_key("k1", "111111111111"), &material("k1", 1))
        .await
        .expect("rotate");
    store
        .kms_create_alias(&alias("111111111111", "alias/x", "k1"))
        .await
        .expect("alias");
    store.kms_delete_key("k1").await.expect("delete");
    assert!(store.kms_get_key("k1").await.expect("get").is_none());
    assert!(
        store
            .kms_materials("k1")
            .await
            .expect("materials")
            .is_empty()
    );
    assert!(
        store
            .kms_get_alias("111111111111", "alias/x")
            .await
            .expect("get")
            .is_none()
    );
    assert!(matches!(
        store.kms_delete_key("k1").await,
        Err(Error::NotFound(_))
    ));
}

pub async fn kms_settings(store: &dyn KmsStore) {
    assert!(
        store
            .get_setting("root-check")
            .await
            .expect("get")
            .is_none()
    );
    store.put_setting("root-check", b"abc").await.expect("put");
    store.put_setting("root-check", b"def").await.expect("put");
    assert_eq!(
        store
            .get_setting("root-check")
            .await
            .expect("get")
            .as_deref(),
        Some(&b"def"[..])
    );
}

/// A key's document is replaced only if it is still the one the writer read.
pub async fn kms_conditional_updates(store: &impl KmsStore) {
    let mut k = kms_key("k1", "111122223333");
    store.kms_create_key(&k, None).await.expect("create");
    let read = k.doc.clone();
    k.doc = r#"{"state":"Disabled"}"#.into();
    store
        .kms_update_key_if(&k, &read)
        .await
        .expect("unchanged since read");
    let mut stale = k.clone();
    stale.doc = r#"{"state":"Enabled","lastUsage":1}"#.into();
    assert!(matches!(
        store.kms_update_key_if(&stale, &read).await,
        Err(crate::Error::PreconditionFailed)
    ));
    let now = store.kms_get_key("k1").await.expect("get").expect("exists");
    assert_eq!(now.doc, k.doc, "the stale write changed nothing");
    let missing = kms_key("nope", "111122223333");
    assert!(matches!(
        store.kms_update_key_if(&missing, "{}").await,
        Err(crate::Error::NotFound(_))
    ));
}
