//! Contract checks of [`MetaStore`]: buckets, objects, listing, multipart uploads,
//! bucket settings, and the garbage bookkeeping that keeps blobs and records consistent.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::{
    Authority, BlobId, BucketRecord, Entry, Error, Extent, MetaStore, ObjectMeta, ObjectRecord,
    PartRecord, Precondition, UploadListQuery, UploadRecord, VersionRef, Versioning,
};

pub(crate) fn now() -> OffsetDateTime {
    // Stores keep millisecond precision.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .expect("a truncated nanosecond is in range")
}

pub(crate) fn bucket(name: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        owner: "123456789012".into(),
        region: "us-east-1".into(),
        created: now(),
        versioning: Versioning::Unversioned,
    }
}

fn object(bucket: &str, key: &str, extents: Vec<Extent>) -> ObjectRecord {
    let size = extents.iter().map(Extent::len).sum();
    let mut meta = ObjectMeta {
        content_type: Some("text/plain".into()),
        ..ObjectMeta::default()
    };
    meta.user.insert("color".into(), "blue".into());
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        version_id: None,
        size,
        etag: format!("etag-{key}-{size}"),
        last_modified: now(),
        meta,
        extents,
    }
}

fn inline(data: &'static [u8]) -> Extent {
    Extent::Inline(Bytes::from_static(data))
}

fn blob(len: u64) -> Extent {
    Extent::Blob {
        id: BlobId::generate(),
        len,
    }
}

async fn garbage(store: &dyn MetaStore) -> Vec<BlobId> {
    let mut g = store.take_garbage(1000).await.expect("take_garbage");
    g.sort();
    g
}

pub async fn buckets(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b1")).await.expect("create b1");
    store.create_bucket(&bucket("a0")).await.expect("create a0");
    let mut other = bucket("b1");
    other.owner = "999999999999".into();
    match store.create_bucket(&other).await {
        Err(Error::BucketAlreadyExists { owner, .. }) => assert_eq!(owner, "123456789012"),
        r => panic!("duplicate bucket: {r:?}"),
    }
    let got = store.get_bucket("b1").await.expect("get").expect("exists");
    assert_eq!(got, bucket_like(&got, "b1"));
    let names: Vec<String> = store
        .list_buckets()
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["a0", "b1"]);

    store
        .put_object(&object("b1", "k", vec![inline(b"x")]), &Precondition::None)
        .await
        .expect("put");
    assert!(matches!(
        store.delete_bucket("b1").await,
        Err(Error::BucketNotEmpty(_))
    ));
    store
        .delete_object("b1", "k", "unused", &Authority::now(), &Precondition::None)
        .await
        .expect("delete object");
    store
        .delete_bucket("b1")
        .await
        .expect("delete empty bucket");
    assert!(store.get_bucket("b1").await.expect("get").is_none());
    assert!(matches!(
        store.delete_bucket("b1").await,
        Err(Error::NoSuchBucket(_))
    ));
}

fn bucket_like(got: &BucketRecord, name: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        owner: "123456789012".into(),
        region: "us-east-1".into(),
        created: got.created,
        versioning: Versioning::Unversioned,
    }
}

pub async fn objects_round_trip(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let mut small = object("b", "small", vec![inline(b"hello")]);
    small.meta.parts = vec![crate::PartInfo {
        number: 1,
        size: 5,
        etag: "p1".into(),
        checksum: Some("AAAA".into()),
    }];
    small.meta.checksum = Some(crate::Checksum {
        algorithm: crate::ChecksumAlgorithm::Crc32,
        value: "NhCmhg==".into(),
        composite: false,
    });
    let mixed = object("b", "mixed", vec![blob(10), inline(b"tail"), blob(3)]);
    let empty = object("b", "empty", vec![]);
    for o in [&small, &mixed, &empty] {
        assert!(
            store
                .put_object(o, &Precondition::None)
                .await
                .expect("put")
                .replaced
                .is_none()
        );
    }
    for o in [&small, &mixed, &empty] {
        let got = store.get_object("b", &o.key).await.expect("get");
        assert_eq!(got.as_ref(), Some(o));
    }
    assert!(store.get_object("b", "nope").await.expect("get").is_none());
    assert!(
        store
            .get_object("nobucket", "small")
            .await
            .expect("get")
            .is_none()
    );
    for o in [&small, &mixed] {
        for id in o.blob_ids() {
            assert!(store.blob_referenced(id).await.expect("referenced"));
        }
    }
    assert!(
        !store
            .blob_referenced(&BlobId::generate())
            .await
            .expect("referenced")
    );
}

pub async fn replacing_queues_garbage(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let first = object("b", "k", vec![blob(5), blob(6)]);
    store
        .put_object(&first, &Precondition::None)
        .await
        .expect("put");
    assert!(garbage(store).await.is_empty());

    // Keeping one extent (a metadata-only rewrite) must not free it.
    let kept = first.extents[1].clone();
    let second = object("b", "k", vec![kept.clone(), inline(b"x")]);
    let old = store
        .put_object(&second, &Precondition::None)
        .await
        .expect("replace");
    assert_eq!(old.replaced, Some(Entry::Object(first.clone())));
    assert_eq!(
        old.version_id, None,
        "an unversioned bucket keeps the null version"
    );
    let freed = first.extents[0].blob_id().cloned().expect("blob");
    assert_eq!(garbage(store).await, vec![freed.clone()]);
    assert!(!store.blob_referenced(&freed).await.expect("referenced"));
    store.forget_garbage(&[freed]).await.expect("forget");
    assert!(garbage(store).await.is_empty());

    let deleted = store
        .delete_object("b", "k", "unused", &Authority::now(), &Precondition::None)
        .await
        .expect("delete");
    assert_eq!(deleted.removed, Some(Entry::Object(second.clone())));
    assert_eq!(
        deleted.marker, None,
        "no delete marker in an unversioned bucket"
    );
    assert_eq!(
        garbage(store).await,
        vec![kept.blob_id().cloned().expect("blob")]
    );
    assert!(
        store
            .delete_object("b", "k", "unused", &Authority::now(), &Precondition::None)
            .await
            .expect("delete again")
            .removed
            .is_none()
    );
}

pub async fn preconditions(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let o = object("b", "k", vec![inline(b"1")]);
    assert!(matches!(
        store
            .put_object(&o, &Precondition::EtagMatches("x".into()))
            .await,
        Err(Error::NoSuchKey { .. })
    ));
    store
        .put_object(&o, &Precondition::NotExists)
        .await
        .expect("create");
    assert!(matches!(
        store.put_object(&o, &Precondition::NotExists).await,
        Err(Error::PreconditionFailed)
    ));
    let mut o2 = object("b", "k", vec![inline(b"22")]);
    o2.etag = "second".into();
    assert!(matches!(
        store
            .put_object(&o2, &Precondition::EtagMatches("wrong".into()))
            .await,
        Err(Error::PreconditionFailed)
    ));
    store
        .put_object(&o2, &Precondition::EtagMatches(o.etag.clone()))
        .await
        .expect("if-match");
    assert_eq!(store.get_object("b", "k").await.expect("get"), Some(o2));
}

pub async fn listing_is_ordered_bytewise(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store.create_bucket(&bucket("c")).await.expect("bucket");
    // Bytewise (UTF-8) order: uppercase < lowercase < '~' < multi-byte.
    let keys = ["a/b", "a", "B", "a/", "é", "~", "a0", "a/b/c", "z", "日本"];
    for k in keys {
        store
            .put_object(&object("b", k, vec![inline(b"x")]), &Precondition::None)
            .await
            .expect("put");
    }
    store
        .put_object(&object("c", "a", vec![]), &Precondition::None)
        .await
        .expect("put other bucket");
    let page = store
        .list_objects("b", "", Bound::Unbounded, 100)
        .await
        .expect("list");
    let got: Vec<&str> = page.items.iter().map(|o| o.key.as_str()).collect();
    let mut want = keys.to_vec();
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(got, want);
    assert!(!page.truncated);
    let first = &page.items[0];
    assert_eq!(
        first.meta.user.get("color").map(String::as_str),
        Some("blue")
    );
}

pub async fn listing_bounds_and_pages(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    for i in 0..50 {
        let k = format!("p/{i:03}");
        store
            .put_object(&object("b", &k, vec![inline(b"x")]), &Precondition::None)
            .await
            .expect("put");
    }
    store
        .put_object(&object("b", "q", vec![inline(b"x")]), &Precondition::None)
        .await
        .expect("put");
    let page = store
        .list_objects("b", "p/", Bound::Excluded("p/009"), 10)
        .await
        .expect("list");
    let got: Vec<&str> = page.items.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(got.first(), Some(&"p/010"));
    assert_eq!(got.last(), Some(&"p/019"));
    assert!(page.truncated);
    let page = store
        .list_objects("b", "p/", Bound::Included("p/045"), 10)
        .await
        .expect("list");
    assert_eq!(page.items.len(), 5);
    assert_eq!(page.items[0].key, "p/045");
    assert!(!page.truncated);
    let page = store
        .list_objects("b", "", Bound::Excluded("p/049"), 10)
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].key, "q");
    let page = store
        .list_objects("b", "p/", Bound::Unbounded, 50)
        .await
        .expect("list");
    assert_eq!(page.items.len(), 50);
    assert!(!page.truncated, "an exact page is not truncated");
}

pub async fn tags(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let o = object("b", "k", vec![inline(b"x")]);
    store
        .put_object(&o, &Precondition::None)
        .await
        .expect("put");
    let tags: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
    store
        .set_object_tags("b", "k", VersionRef::Latest, &tags)
        .await
        .expect("tags");
    let got = store
        .get_object("b", "k")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.meta.tags, tags);
    assert_eq!(got.extents, o.extents);
    assert!(matches!(
        store
            .set_object_tags("b", "nope", VersionRef::Latest, &tags)
            .await,
        Err(Error::NoSuchKey { .. })
    ));
    // An ACL is set, replaced and removed in place, like tags.
    store
        .set_object_acl("b", "k", VersionRef::Latest, Some("{\"g\":1}"))
        .await
        .expect("acl");
    let got = store
        .get_object("b", "k")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.meta.acl.as_deref(), Some("{\"g\":1}"));
    assert_eq!(got.meta.tags, tags, "the rest of the metadata stays");
    store
        .set_object_acl("b", "k", VersionRef::Latest, None)
        .await
        .expect("remove acl");
    let got = store
        .get_object("b", "k")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.meta.acl, None);
    assert!(matches!(
        store
            .set_object_acl("b", "nope", VersionRef::Latest, None)
            .await,
        Err(Error::NoSuchKey { .. })
    ));
}

fn upload(bucket: &str, key: &str, id: &str) -> UploadRecord {
    UploadRecord {
        upload_id: id.into(),
        bucket: bucket.into(),
        key: key.into(),
        initiated: now(),
        initiator: "123456789012".into(),
        meta: ObjectMeta {
            content_type: Some("video/mp4".into()),
            ..ObjectMeta::default()
        },
    }
}

fn part(number: u32, extent: Extent) -> PartRecord {
    PartRecord {
        part_number: number,
        size: extent.len(),
        etag: format!("etag{number}-{}", extent.len()),
        last_modified: now(),
        checksum: None,
        extent,
    }
}

pub async fn uploads(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let up = upload("b", "big", "u1");
    store.create_upload(&up).await.expect("create upload");
    assert_eq!(
        store.get_upload("b", "u1").await.expect("get"),
        Some(up.clone())
    );
    assert!(
        store
            .get_upload("other", "u1")
            .await
            .expect("get")
            .is_none()
    );

    let p1 = part(1, blob(5));
    let p2 = part(2, inline(b"inline part"));
    let p3 = part(3, blob(7));
    for p in [&p1, &p2, &p3] {
        store.put_part("b", "u1", p).await.expect("put part");
    }
    assert!(
        store
            .blob_referenced(p1.extent.blob_id().expect("blob"))
            .await
            .expect("ref")
    );
    // Re-uploading part 3 frees the first upload of it.
    let p3b = part(3, blob(9));
    store.put_part("b", "u1", &p3b).await.expect("replace part");
    assert_eq!(
        garbage(store).await,
        vec![p3.extent.blob_id().cloned().expect("blob")]
    );
    store
        .forget_garbage(&[p3.extent.blob_id().cloned().expect("blob")])
        .await
        .expect("forget");

    let page = store.list_parts("b", "u1", 0, 2).await.expect("parts");
    assert_eq!(page.items, vec![p1.clone(), p2.clone()]);
    assert!(page.truncated);
    let page = store.list_parts("b", "u1", 2, 10).await.expect("parts");
    assert_eq!(page.items, vec![p3b.clone()]);
    assert!(!page.truncated);

    assert!(matches!(
        store.put_part("b", "nope", &p1).await,
        Err(Error::NoSuchUpload(_))
    ));
    assert!(matches!(
        store.list_parts("b", "nope", 0, 10).await,
        Err(Error::NoSuchUpload(_))
    ));
    // Uploads in progress do not keep a bucket: they are aborted with it (as on S3),
    // their parts' blobs queued as garbage.
    store
        .delete_bucket("b")
        .await
        .expect("a bucket with only uploads is deleted");
    let mut freed = vec![
        p1.extent.blob_id().cloned().expect("blob"),
        p3b.extent.blob_id().cloned().expect("blob"),
    ];
    freed.sort();
    assert_eq!(garbage(store).await, freed);
    assert!(store.get_upload("b", "u1").await.expect("get").is_none());
    store.create_bucket(&bucket("b")).await.expect("re-create");
    let none = store
        .list_uploads(
            "b",
            &UploadListQuery {
                prefix: "",
                start: Bound::Unbounded,
                upload_id_marker: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert!(none.items.is_empty(), "{:?}", none.items);
}

pub async fn complete_checks_parts(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store
        .create_upload(&upload("b", "big", "u1"))
        .await
        .expect("upload");
    let p1 = part(1, blob(5));
    let p2 = part(2, inline(b"two"));
    let p3 = part(3, blob(7));
    for p in [&p1, &p2, &p3] {
        store.put_part("b", "u1", p).await.expect("put part");
    }
    let obj = object("b", "big", vec![p1.extent.clone(), p2.extent.clone()]);
    let bad = [(1, p1.etag.clone()), (2, "wrong".to_string())];
    assert!(matches!(
        store
            .complete_upload("u1", &bad, &obj, &Precondition::None)
            .await,
        Err(Error::InvalidPart(2))
    ));
    let used = [(1, p1.etag.clone()), (2, p2.etag.clone())];
    assert!(matches!(
        store
            .complete_upload("u1", &used, &obj, &Precondition::EtagMatches("x".into()))
            .await,
        Err(Error::NoSuchKey { .. })
    ));
    assert!(
        store
            .complete_upload("u1", &used, &obj, &Precondition::None)
            .await
            .expect("complete")
            .replaced
            .is_none()
    );
    assert_eq!(
        store.get_object("b", "big").await.expect("get"),
        Some(obj.clone())
    );
    assert!(store.get_upload("b", "u1").await.expect("get").is_none());
    // Part 3 was not used: its blob is garbage; part 1's blob now belongs to the object.
    assert_eq!(
        garbage(store).await,
        vec![p3.extent.blob_id().cloned().expect("blob")]
    );
    assert!(
        store
            .blob_referenced(p1.extent.blob_id().expect("blob"))
            .await
            .expect("ref")
    );
    assert!(matches!(
        store
            .complete_upload("u1", &used, &obj, &Precondition::None)
            .await,
        Err(Error::NoSuchUpload(_))
    ));
}

pub async fn abort_queues_parts(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store
        .create_upload(&upload("b", "k", "u1"))
        .await
        .expect("upload");
    let p1 = part(1, blob(5));
    store.put_part("b", "u1", &p1).await.expect("part");
    store.abort_upload("b", "u1").await.expect("abort");
    assert_eq!(
        garbage(store).await,
        vec![p1.extent.blob_id().cloned().expect("blob")]
    );
    assert!(matches!(
        store.abort_upload("b", "u1").await,
        Err(Error::NoSuchUpload(_))
    ));
    store
        .delete_bucket("b")
        .await
        .expect("bucket is empty again");
}

pub async fn listing_uploads(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    for (key, id) in [
        ("b", "u3"),
        ("a", "u2"),
        ("a", "u1"),
        ("c/x", "u4"),
        ("a", "u5"),
    ] {
        store
            .create_upload(&upload("b", key, id))
            .await
            .expect("upload");
    }
    let all = |start, marker, limit| UploadListQuery {
        prefix: "",
        start,
        upload_id_marker: marker,
        limit,
    };
    let ids = |page: crate::ListPage<UploadRecord>| -> Vec<String> {
        page.items.into_iter().map(|u| u.upload_id).collect()
    };
    let page = store
        .list_uploads("b", &all(Bound::Unbounded, None, 10))
        .await
        .expect("list");
    assert_eq!(ids(page), ["u1", "u2", "u5", "u3", "u4"]);
    let page = store
        .list_uploads("b", &all(Bound::Excluded("a"), Some("u2"), 10))
        .await
        .expect("list");
    assert_eq!(ids(page), ["u5", "u3", "u4"]);
    let page = store
        .list_uploads("b", &all(Bound::Excluded("a"), None, 1))
        .await
        .expect("list");
    assert!(page.truncated);
    assert_eq!(ids(page), ["u3"]);
    let q = UploadListQuery {
        prefix: "c/",
        start: Bound::Unbounded,
        upload_id_marker: None,
        limit: 10,
    };
    assert_eq!(
        ids(store.list_uploads("b", &q).await.expect("list")),
        ["u4"]
    );
}

/// Account settings are per account and name, replaced whole, and need no bucket.
pub async fn account_settings(store: &dyn MetaStore) {
    let get = |a: &'static str| async move {
        store
            .get_account_setting(a, "public-access-block")
            .await
            .expect("get")
    };
    assert_eq!(get("111122223333").await, None);
    store
        .put_account_setting("111122223333", "public-access-block", "{\"a\":1}")
        .await
        .expect("put");
    store
        .put_account_setting("111122223333", "public-access-block", "{\"a\":2}")
        .await
        .expect("replace");
    assert_eq!(get("111122223333").await.as_deref(), Some("{\"a\":2}"));
    assert_eq!(get("444455556666").await, None, "settings are per account");
    store
        .delete_account_setting("111122223333", "public-access-block")
        .await
        .expect("delete");
    store
        .delete_account_setting("111122223333", "public-access-block")
        .await
        .expect("deleting nothing is fine");
    assert_eq!(get("111122223333").await, None);
}

pub async fn bucket_settings(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    assert!(
        store
            .get_bucket_setting("b", "encryption")
            .await
            .expect("get")
            .is_none()
    );
    store
        .put_bucket_setting("b", "encryption", "{\"a\":1}")
        .await
        .expect("put");
    store
        .put_bucket_setting("b", "encryption", "{\"a\":2}")
        .await
        .expect("replace");
    assert_eq!(
        store
            .get_bucket_setting("b", "encryption")
            .await
            .expect("get")
            .as_deref(),
        Some("{\"a\":2}")
    );
    assert!(matches!(
        store.put_bucket_setting("nope", "encryption", "{}").await,
        Err(Error::NoSuchBucket(_))
    ));
    store
        .delete_bucket_setting("b", "encryption")
        .await
        .expect("delete");
    store
        .delete_bucket_setting("b", "encryption")
        .await
        .expect("delete twice");
    assert!(
        store
            .get_bucket_setting("b", "encryption")
            .await
            .expect("get")
            .is_none()
    );
    store
        .put_bucket_setting("b", "policy", "{}")
        .await
        .expect("put");
    store.delete_bucket("b").await.expect("delete bucket");
    store.create_bucket(&bucket("b")).await.expect("recreate");
    assert!(
        store
            .get_bucket_setting("b", "policy")
            .await
            .expect("get")
            .is_none(),
        "a recreated bucket starts without the old settings"
    );
}

pub async fn buckets_are_created_with_their_settings(store: &dyn MetaStore) {
    store
        .create_bucket_with_settings(&bucket("b"), &[("public-access-block", "{\"on\":1}")])
        .await
        .expect("bucket");
    assert_eq!(
        setting(store, "public-access-block").await.as_deref(),
        Some("{\"on\":1}")
    );
    // A name that is taken changes nothing: the existing bucket keeps its settings.
    let mut other = bucket("b");
    other.owner = "someone-else".into();
    assert!(matches!(
        store
            .create_bucket_with_settings(&other, &[("public-access-block", "{}"), ("x", "1")])
            .await,
        Err(Error::BucketAlreadyExists { .. })
    ));
    assert_eq!(
        setting(store, "public-access-block").await.as_deref(),
        Some("{\"on\":1}")
    );
    assert!(setting(store, "x").await.is_none());
}

async fn setting(store: &dyn MetaStore, name: &str) -> Option<String> {
    store.get_bucket_setting("b", name).await.expect("get")
}

pub async fn sse_records_round_trip(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let mut o = object("b", "enc", vec![inline(b"ciphertext")]);
    o.meta.sse = Some(crate::SseRecord::BucketKey {
        key_arn: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
        encrypted_bucket_key: vec![1, 2, 3],
        context: [("aws:s3:arn".to_string(), "arn:aws:s3:::b".to_string())].into(),
        client_context: None,
        salt: [0; 16],
        object_id: [0x11; 16],
        wrapped_object_key: None,
    });
    store
        .put_object(&o, &Precondition::None)
        .await
        .expect("put");
    assert_eq!(
        store.get_object("b", "enc").await.expect("get"),
        Some(o.clone())
    );
    let listed = store
        .list_objects("b", "", Bound::Unbounded, 10)
        .await
        .expect("list");
    assert_eq!(listed.items[0].meta.sse, o.meta.sse);
}

pub async fn sse_records_are_replaced_in_place(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let mut o = object("b", "enc", vec![inline(b"ciphertext")]);
    let first = crate::SseRecord::DataKey {
        kind: crate::SseKind::S3,
        key_arn: "arn:aws:kms:us-east-1:123456789012:key/a".into(),
        encrypted_key: vec![1, 2, 3],
        context: BTreeMap::new(),
        client_context: None,
        object_id: [0x11; 16],
    };
    o.meta.sse = Some(first.clone());
    store
        .put_object(&o, &Precondition::None)
        .await
        .expect("put");
    let second = crate::SseRecord::BucketKey {
        key_arn: "arn:aws:kms:us-east-1:123456789012:key/b".into(),
        encrypted_bucket_key: vec![1, 2, 3],
        context: BTreeMap::new(),
        client_context: None,
        salt: [0x22; 16],
        object_id: [0x11; 16],
        wrapped_object_key: Some(vec![4, 5, 6]),
    };
    store
        .set_object_sse("b", "enc", VersionRef::Latest, &first.object_id(), &second)
        .await
        .expect("replace");
    let got = store
        .get_object("b", "enc")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.meta.sse, Some(second.clone()));
    assert_eq!(got.extents, o.extents, "the bytes are untouched");
    assert_eq!(got.etag, o.etag);
    assert_eq!(got.last_modified, o.last_modified);
    assert!(matches!(
        store
            .set_object_sse("b", "enc", VersionRef::Latest, &[0x33; 16], &first)
            .await,
        Err(Error::PreconditionFailed)
    ));
    assert!(matches!(
        store
            .set_object_sse("b", "nope", VersionRef::Latest, &first.object_id(), &first)
            .await,
        Err(Error::NoSuchKey { .. })
    ));
}

pub async fn writes_need_a_bucket(store: &dyn MetaStore) {
    assert!(matches!(
        store
            .put_object(&object("nope", "k", vec![]), &Precondition::None)
            .await,
        Err(Error::NoSuchBucket(_))
    ));
    assert!(matches!(
        store.create_upload(&upload("nope", "k", "u")).await,
        Err(Error::NoSuchBucket(_))
    ));
}
