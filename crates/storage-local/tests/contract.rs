//! The storage contract suite against the embedded backend, and the data directory an
//! earlier release wrote (`tests/fixtures/legacy-data-dir`), which must still open.

use coffer_storage_local::LocalStore;

fn open() -> (LocalStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open store");
    (store, dir)
}

fn meta() -> (
    coffer_storage_local::SqliteMeta,
    (LocalStore, tempfile::TempDir),
) {
    let (store, dir) = open();
    (store.meta.clone(), (store, dir))
}

fn blobs() -> (
    coffer_storage_local::FileBlobs,
    (LocalStore, tempfile::TempDir),
) {
    let (store, dir) = open();
    (store.blobs.clone(), (store, dir))
}

coffer_storage::meta_contract!(meta());
coffer_storage::blob_contract!(blobs());
coffer_storage::kms_contract!(meta());
coffer_storage::iam_contract!(meta());

#[test]
fn a_data_dir_is_opened_by_one_process_at_a_time() {
    let (_store, dir) = open();
    match LocalStore::open(dir.path()) {
        Err(coffer_storage_local::OpenError::Locked(_)) => {}
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a second open of a locked data dir succeeded"),
    }
}

/// A copy of the data directory written by the release before default encryption and
/// versioned encryption records (commit 57e3d0d; see tests/fixtures/make_legacy_data_dir.py).
fn legacy_copy() -> tempfile::TempDir {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/legacy-data-dir");
    let to = tempfile::tempdir().expect("temp dir");
    for name in ["meta.sqlite", "meta.sqlite-wal", "meta.sqlite-shm"] {
        std::fs::copy(from.join(name), to.path().join(name)).expect("copy the fixture");
    }
    to
}

#[tokio::test]
async fn records_written_by_the_previous_release_read_back() {
    use coffer_storage::{MetaStore, SseKind, SseRecord};
    let dir = legacy_copy();
    let store = LocalStore::open(dir.path()).expect("open the old data directory");
    let get = |b: &'static str, k: &'static str| {
        let meta = store.meta.clone();
        async move { meta.get_object(b, k).await.expect("get").expect("exists") }
    };
    // Plaintext objects from before: no encryption record, the bytes inline.
    let inline = get("legacy", "inline.txt").await;
    assert!(inline.meta.sse.is_none());
    assert_eq!(inline.size, 58);
    // Version-1 encryption records become the typed records.
    match get("legacy", "s3.txt").await.meta.sse {
        Some(SseRecord::DataKey {
            kind: SseKind::S3,
            encrypted_key,
            context,
            ..
        }) => {
            assert!(!encrypted_key.is_empty());
            assert_eq!(context["aws:s3:arn"], "arn:aws:s3:::legacy/s3.txt");
        }
        other => panic!("SSE-S3 record read as {other:?}"),
    }
    match get("legacy-kms", "secret.txt").await.meta.sse {
        Some(SseRecord::DataKey {
            kind: SseKind::Kms,
            key_arn,
            ..
        }) => {
            assert!(key_arn.starts_with("arn:aws:kms:us-east-1:"), "{key_arn}");
        }
        other => panic!("SSE-KMS record read as {other:?}"),
    }
    // The bucket settings and the upload in progress are there too.
    assert!(
        store
            .meta
            .get_bucket_setting("legacy-kms", "encryption")
            .await
            .expect("get")
            .is_some()
    );
    let uploads = store
        .meta
        .list_uploads(
            "legacy",
            &coffer_storage::UploadListQuery {
                prefix: "",
                start: std::ops::Bound::Unbounded,
                upload_id_marker: None,
                limit: 10,
            },
        )
        .await
        .expect("list uploads");
    assert_eq!(uploads.items.len(), 1);
}

/// `coffer migrate`'s export reads every version once, in pages of any size, including a
/// key whose versions straddle pages, current and noncurrent alike.
#[tokio::test]
async fn export_pages_cover_every_version_once() {
    use coffer_storage::{
        BucketRecord, Extent, MetaStore, ObjectMeta, ObjectRecord, Precondition, Versioning,
        Versions,
    };
    let (store, _dir) = open();
    let meta = store.meta.clone();
    meta.create_bucket(&BucketRecord {
        name: "b".into(),
        owner: "123456789012".into(),
        region: "us-east-1".into(),
        created: time::OffsetDateTime::now_utc(),
        versioning: Versioning::Enabled,
    })
    .await
    .expect("bucket");
    let mut written = 0;
    for (key, versions) in [("a", 1), ("b", 5), ("c", 2), ("d", 4)] {
        for v in 0..versions {
            let body = bytes::Bytes::from(format!("{key}{v}"));
            let o = ObjectRecord {
                bucket: "b".into(),
                key: key.into(),
                version_id: Some(format!("{key}-v{v}")),
                size: body.len() as u64,
                etag: format!("e{v}"),
                last_modified: time::OffsetDateTime::now_utc(),
                meta: ObjectMeta::default(),
                extents: vec![Extent::Inline(body)],
            };
            meta.put_object(&o, &Precondition::None).await.expect("put");
            written += 1;
        }
    }
    let all = |limit: usize| {
        let meta = meta.clone();
        async move {
            let mut seen = Vec::new();
            for which in [Versions::Current, Versions::Noncurrent] {
                let mut after = None;
                loop {
                    let page = meta
                        .export_versions("b", which, after.clone(), limit)
                        .await
                        .expect("export");
                    let Some(last) = page.last() else { break };
                    let key = match &last.entry {
                        coffer_storage::Entry::Object(o) => o.key.clone(),
                        coffer_storage::Entry::Marker(m) => m.key.clone(),
                    };
                    after = Some((key, last.seq));
                    let full = page.len() == limit;
                    seen.extend(
                        page.into_iter()
                            .map(|v| (v.entry.version_id().map(str::to_owned), v.current, v.seq)),
                    );
                    if !full {
                        break;
                    }
                }
            }
            seen
        }
    };
    let whole = all(1000).await;
    assert_eq!(whole.len(), written);
    assert_eq!(whole.iter().filter(|(_, current, _)| *current).count(), 4);
    for limit in [1, 2, 3] {
        assert_eq!(all(limit).await, whole, "pages of {limit}");
    }
}
