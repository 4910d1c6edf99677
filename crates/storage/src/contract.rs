//! The contract suite: what every backend must do, written once against the traits.
//!
//! A backend runs it with two macro calls in its tests, each given an expression that
//! builds a fresh store (and anything that must live as long as it, such as a temp dir):
//!
//! ```text
//! coffer_storage::meta_contract!(make_meta());   // -> (impl MetaStore, guard)
//! coffer_storage::blob_contract!(make_blobs());  // -> (impl BlobStore, guard)
//! ```

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use futures::StreamExt;
use time::OffsetDateTime;

use crate::{
    BlobId, BlobStore, BucketRecord, Error, Extent, MetaStore, ObjectMeta, ObjectRecord,
    PartRecord, Precondition, UploadListQuery, UploadRecord,
};

/// Expands to one `#[tokio::test]` per metadata check.
#[macro_export]
macro_rules! meta_contract {
    ($make:expr) => {
        mod meta_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::meta_contract!(@tests $make;
                buckets, objects_round_trip, replacing_queues_garbage, preconditions,
                listing_is_ordered_bytewise, listing_bounds_and_pages, tags, uploads,
                complete_checks_parts, abort_queues_parts, listing_uploads,
                writes_need_a_bucket, bucket_settings, sse_records_round_trip);
        }
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make;
                $crate::contract::$name(&store).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per blob check.
#[macro_export]
macro_rules! blob_contract {
    ($make:expr) => {
        mod blob_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::blob_contract!(@tests $make;
                blob_round_trip, blob_ranges, blob_staging, abandoned_writer_leaves_nothing);
        }
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make;
                $crate::contract::$name(&store).await;
            }
        )*
    };
}

fn now() -> OffsetDateTime {
    // Stores keep millisecond precision.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .expect("a truncated nanosecond is in range")
}

fn bucket(name: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        owner: "123456789012".into(),
        region: "us-east-1".into(),
        created: now(),
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
    store.delete_object("b1", "k").await.expect("delete object");
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
    assert_eq!(old.as_ref(), Some(&first));
    let freed = first.extents[0].blob_id().cloned().expect("blob");
    assert_eq!(garbage(store).await, vec![freed.clone()]);
    assert!(!store.blob_referenced(&freed).await.expect("referenced"));
    store.forget_garbage(&[freed]).await.expect("forget");
    assert!(garbage(store).await.is_empty());

    let deleted = store.delete_object("b", "k").await.expect("delete");
    assert_eq!(deleted.as_ref(), Some(&second));
    assert_eq!(
        garbage(store).await,
        vec![kept.blob_id().cloned().expect("blob")]
    );
    assert!(
        store
            .delete_object("b", "k")
            .await
            .expect("delete again")
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
    store.set_object_tags("b", "k", &tags).await.expect("tags");
    let got = store
        .get_object("b", "k")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.meta.tags, tags);
    assert_eq!(got.extents, o.extents);
    assert!(matches!(
        store.set_object_tags("b", "nope", &tags).await,
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
    assert!(matches!(
        store.delete_bucket("b").await,
        Err(Error::BucketNotEmpty(_))
    ));
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

pub async fn sse_records_round_trip(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let mut o = object("b", "enc", vec![inline(b"ciphertext")]);
    o.meta.sse = Some(crate::SseRecord {
        kind: crate::SseKind::Kms,
        kms_key_arn: Some("arn:aws:kms:us-east-1:123456789012:key/k".into()),
        encrypted_key: Some("AQID".into()),
        context: [("aws:s3:arn".to_string(), "arn:aws:s3:::b/enc".to_string())].into(),
        client_context: None,
        bucket_key: true,
        key_salt: Some("00".repeat(16)),
        object_id: "11".repeat(16),
        customer_key_hmac: None,
        customer_key_md5: None,
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

async fn read_all(store: &dyn BlobStore, id: &BlobId, offset: u64, len: u64) -> Vec<u8> {
    let mut r = store.read(id, offset, len).await.expect("read");
    let mut out = Vec::new();
    while let Some(chunk) = r.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

pub async fn blob_round_trip(store: &dyn BlobStore) {
    let data = pattern(3 * 1024 * 1024 + 17);
    let mut w = store.create().await.expect("create");
    let id = w.id().clone();
    for chunk in data.chunks(100_000) {
        w.write(Bytes::copy_from_slice(chunk)).await.expect("write");
    }
    assert_eq!(w.finish().await.expect("finish"), data.len() as u64);
    assert_eq!(read_all(store, &id, 0, data.len() as u64).await, data);
    store.publish(&id).await.expect("publish");
    assert_eq!(read_all(store, &id, 0, data.len() as u64).await, data);
    store.delete(&id).await.expect("delete");
    assert!(store.read(&id, 0, 1).await.is_err());
    store
        .delete(&id)
        .await
        .expect("deleting a missing blob is fine");
}

pub async fn blob_ranges(store: &dyn BlobStore) {
    let data = pattern(1_000_003);
    let mut w = store.create().await.expect("create");
    let id = w.id().clone();
    w.write(Bytes::from(data.clone())).await.expect("write");
    w.finish().await.expect("finish");
    store.publish(&id).await.expect("publish");
    for (off, len) in [
        (0, 1),
        (1, 0),
        (999_999, 4),
        (65_535, 70_000),
        (500_000, 500_003),
    ] {
        let got = read_all(store, &id, off, len).await;
        assert_eq!(
            got,
            data[off as usize..(off + len) as usize],
            "range {off}+{len}"
        );
    }
    assert!(
        store.read(&id, 1_000_000, 10).await.is_err()
            || read_all_fallible(store, &id, 1_000_000, 10).await.is_err(),
        "reading past the end must fail, not return short data"
    );
}

async fn read_all_fallible(
    store: &dyn BlobStore,
    id: &BlobId,
    offset: u64,
    len: u64,
) -> crate::Result<Vec<u8>> {
    let mut r = store.read(id, offset, len).await?;
    let mut out = Vec::new();
    while let Some(chunk) = r.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

pub async fn blob_staging(store: &dyn BlobStore) {
    let mut w = store.create().await.expect("create");
    let id = w.id().clone();
    w.write(Bytes::from_static(b"abc")).await.expect("write");
    assert!(
        !store.staged().await.expect("staged").contains(&id),
        "an unfinished blob is not listed as staged"
    );
    w.finish().await.expect("finish");
    assert_eq!(store.staged().await.expect("staged"), vec![id.clone()]);
    store.publish(&id).await.expect("publish");
    assert!(store.staged().await.expect("staged").is_empty());
    store
        .publish(&id)
        .await
        .expect("publishing twice is harmless");
    assert_eq!(read_all(store, &id, 0, 3).await, b"abc");
}

pub async fn abandoned_writer_leaves_nothing(store: &dyn BlobStore) {
    let mut w = store.create().await.expect("create");
    let id = w.id().clone();
    w.write(Bytes::from(pattern(200_000))).await.expect("write");
    drop(w);
    assert!(store.staged().await.expect("staged").is_empty());
    assert!(store.read(&id, 0, 1).await.is_err());
}

/// Expands to one `#[tokio::test]` per KMS store check.
#[macro_export]
macro_rules! kms_contract {
    ($make:expr) => {
        mod kms_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::kms_contract!(@tests $make;
                kms_keys_round_trip, kms_rotation_adds_versions, kms_listing_keys,
                kms_aliases, kms_delete_key_destroys_everything, kms_settings);
        }
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make;
                $crate::contract::$name(&store).await;
            }
        )*
    };
}

use crate::{KmsAliasRecord, KmsKeyRecord, KmsMaterialRecord, KmsStore};

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
        .kms_create_key(&k, &material("k1", 0))
        .await
        .expect("create");
    assert_eq!(store.kms_get_key("k1").await.expect("get"), Some(k.clone()));
    assert!(matches!(
        store.kms_create_key(&k, &material("k1", 0)).await,
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

pub async fn kms_rotation_adds_versions(store: &dyn KmsStore) {
    let k = kms_key("k1", "111111111111");
    store
        .kms_create_key(&k, &material("k1", 0))
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
            .kms_create_key(&kms_key(id, "111111111111"), &material(id, 0))
            .await
            .expect("create");
    }
    store
        .kms_create_key(&kms_key("z", "222222222222"), &material("z", 0))
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
        .kms_create_key(&kms_key("k1", "111111111111"), &material("k1", 0))
        .await
        .expect("create");
    store
        .kms_create_key(&kms_key("k2", "111111111111"), &material("k2", 0))
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
        .kms_create_key(&kms_key("k1", "111111111111"), &material("k1", 0))
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
