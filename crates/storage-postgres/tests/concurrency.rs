//! Writers on several nodes at once: two `PgStore`s on one database (as two nodes are)
//! write the same keys, buckets and uploads concurrently. What the contract suite checks
//! one call at a time must hold under the interleavings too: no acknowledged version is
//! lost, a key has one current version, a deleted bucket keeps no object, and every blob
//! is either referenced by a record or queued as garbage, never both, never neither.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use coffer_storage::{
    Authority, BlobId, BucketRecord, Error, Extent, MetaStore, ObjectMeta, ObjectRecord,
    PartRecord, Precondition, UploadRecord, VersionListQuery, VersionStart, Versioning,
};
use coffer_storage_postgres::PgStore;
use time::OffsetDateTime;

use common::{Schema, url_in};

async fn two_nodes() -> (PgStore, PgStore, Schema) {
    let schema = Schema::create().await;
    let url = url_in(&schema.0);
    let a = PgStore::connect(&url).await.expect("node a");
    let b = PgStore::connect(&url).await.expect("node b");
    (a, b, schema)
}

fn bucket(name: &str, versioning: Versioning) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        owner: "123456789012".into(),
        region: "us-east-1".into(),
        created: OffsetDateTime::now_utc(),
        versioning,
    }
}

fn object(bucket: &str, key: &str, version: &str, extent: Extent) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        version_id: Some(version.into()),
        size: extent.len(),
        etag: format!("etag-{version}"),
        last_modified: OffsetDateTime::now_utc(),
        meta: ObjectMeta::default(),
        extents: vec![extent],
    }
}

fn blob() -> (BlobId, Extent) {
    let id = BlobId::generate();
    (id.clone(), Extent::Blob { id, len: 10 })
}

/// The blobs records reference and the blobs queued as garbage, read directly.
async fn blob_state(schema: &Schema) -> (BTreeSet<String>, BTreeSet<String>) {
    let (client, conn) = tokio_postgres::connect(&url_in(&schema.0), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let mut sets = Vec::new();
    for table in ["blob_refs", "garbage"] {
        let rows = client
            .query(&format!("SELECT blob_id FROM {table}"), &[])
            .await
            .expect("read");
        sets.push(rows.iter().map(|r| r.get::<_, String>(0)).collect());
    }
    let garbage = sets.pop().unwrap_or_default();
    (sets.pop().unwrap_or_default(), garbage)
}

async fn rows_of(schema: &Schema, bucket: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(&url_in(&schema.0), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .query_one(
            "SELECT (SELECT COUNT(*) FROM objects WHERE bucket = $1)
                  + (SELECT COUNT(*) FROM versions WHERE bucket = $1)
                  + (SELECT COUNT(*) FROM uploads WHERE bucket = $1)",
            &[&bucket],
        )
        .await
        .expect("count")
        .get(0)
}

const WRITERS: usize = 4;
const WRITES: usize = 25;

/// Runs `WRITERS` tasks on each node, each calling `write(node, writer, i)` `WRITES`
/// times; returns what each call returned.
async fn on_both<T, F, Fut>(a: &PgStore, b: &PgStore, write: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(PgStore, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let mut tasks = Vec::new();
    for (n, node) in [a, b].into_iter().enumerate() {
        for w in 0..WRITERS {
            let (node, write) = (node.clone(), write.clone());
            let writer = n * WRITERS + w;
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..WRITES {
                    out.push(write(node.clone(), writer, i).await);
                }
                out
            }));
        }
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_written_on_two_nodes_are_all_kept() {
    let (a, b, schema) = two_nodes().await;
    a.create_bucket(&bucket("v", Versioning::Enabled))
        .await
        .expect("bucket");
    let acked = on_both(&a, &b, |node, w, i| async move {
        let (id, extent) = blob();
        let version = format!("w{w:02}-{i:03}");
        node.put_object(&object("v", "same", &version, extent), &Precondition::None)
            .await
            .expect("put");
        (version, id)
    })
    .await;
    let page = a
        .list_versions(
            "v",
            &VersionListQuery {
                prefix: "",
                start: VersionStart::Beginning,
                limit: 10_000,
            },
        )
        .await
        .expect("list");
    let listed: BTreeSet<String> = page
        .items
        .iter()
        .filter_map(|v| v.version_id().map(str::to_owned))
        .collect();
    let want: BTreeSet<String> = acked.iter().map(|(v, _)| v.clone()).collect();
    assert_eq!(page.items.len(), 2 * WRITERS * WRITES);
    assert_eq!(listed, want, "every acknowledged version is listed once");
    assert_eq!(page.items.iter().filter(|v| v.is_latest).count(), 1);
    assert!(
        page.items[0].is_latest,
        "the current version is listed first"
    );
    // The current version is the last write acknowledged on its writer's own sequence.
    let (refs, garbage) = blob_state(&schema).await;
    assert_eq!(refs.len(), acked.len(), "every version keeps its blob");
    assert!(garbage.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_on_two_nodes_frees_every_replaced_blob_once() {
    let (a, b, schema) = two_nodes().await;
    a.create_bucket(&bucket("u", Versioning::Unversioned))
        .await
        .expect("bucket");
    let acked = on_both(&a, &b, |node, w, i| async move {
        let (id, extent) = blob();
        // Two keys, so that writes to different keys interleave as well.
        let key = if (w + i) % 2 == 0 { "k0" } else { "k1" };
        node.put_object(&object("u", key, "ignored", extent), &Precondition::None)
            .await
            .expect("put");
        id.as_str().to_owned()
    })
    .await;
    let mut current = BTreeSet::new();
    for key in ["k0", "k1"] {
        let o = b.get_object("u", key).await.expect("get").expect("exists");
        current.extend(o.blob_ids().map(|i| i.as_str().to_owned()));
    }
    let (refs, garbage) = blob_state(&schema).await;
    assert_eq!(
        refs, current,
        "only the current objects' blobs are referenced"
    );
    let all: BTreeSet<String> = acked.into_iter().collect();
    let freed: BTreeSet<String> = all.difference(&current).cloned().collect();
    assert_eq!(garbage, freed, "every replaced blob is queued, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_deleted_during_writes_keeps_nothing() {
    let (a, b, schema) = two_nodes().await;
    for round in 0..5 {
        let name = format!("d{round}");
        a.create_bucket(&bucket(&name, Versioning::Unversioned))
            .await
            .expect("bucket");
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (node, name) = (b.clone(), name.clone());
                tokio::spawn(async move {
                    for i in 0..WRITES {
                        let key = format!("w{w}-{i}");
                        let o = object(&name, &key, "x", Extent::Inline(Bytes::from_static(b"x")));
                        match node.put_object(&o, &Precondition::None).await {
                            Ok(_) => {}
                            Err(Error::NoSuchBucket(_)) => return,
                            Err(e) => panic!("put: {e}"),
                        }
                        let u = UploadRecord {
                            upload_id: format!("{name}-{key}"),
                            bucket: name.clone(),
                            key: key.clone(),
                            initiated: OffsetDateTime::now_utc(),
                            initiator: "me".into(),
                            meta: ObjectMeta::default(),
                        };
                        match node.create_upload(&u).await {
                            Ok(()) | Err(Error::NoSuchBucket(_)) => {}
                            Err(e) => panic!("create upload: {e}"),
                        }
                    }
                })
            })
            .collect();
        // Empty the bucket while it fills, until a delete wins.
        loop {
            let page = a
                .list_objects(&name, "", std::ops::Bound::Unbounded, 1000)
                .await
                .expect("list");
            for o in &page.items {
                a.delete_object(&name, &o.key, "", &Authority::now(), &Precondition::None)
                    .await
                    .expect("delete object");
            }
            match a.delete_bucket(&name).await {
                Ok(()) => break,
                Err(Error::BucketNotEmpty(_)) => continue,
                Err(e) => panic!("delete bucket: {e}"),
            }
        }
        for w in writers {
            w.await.expect("writer");
        }
        assert_eq!(
            rows_of(&schema, &name).await,
            0,
            "nothing outlives its bucket"
        );
        assert!(a.get_bucket(&name).await.expect("get").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_raced_by_completion_are_used_or_freed() {
    let (a, b, schema) = two_nodes().await;
    a.create_bucket(&bucket("m", Versioning::Unversioned))
        .await
        .expect("bucket");
    let mut used_blobs = BTreeSet::new();
    let mut all_blobs = BTreeSet::new();
    for round in 0..10 {
        let id = format!("up{round}");
        a.create_upload(&UploadRecord {
            upload_id: id.clone(),
            bucket: "m".into(),
            key: "big".into(),
            initiated: OffsetDateTime::now_utc(),
            initiator: "me".into(),
            meta: ObjectMeta::default(),
        })
        .await
        .expect("upload");
        // Both nodes write part 1 (again and again) and part 2 while a completes with
        // whatever part 1 is when it reads it.
        let writers: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .map(|(n, node)| {
                let id = id.clone();
                tokio::spawn(async move {
                    let mut written = Vec::new();
                    for i in 0..20u32 {
                        let (blob_id, extent) = blob();
                        let part = PartRecord {
                            part_number: 1 + (i % 2),
                            size: 10,
                            etag: format!("p{n}-{i}"),
                            last_modified: OffsetDateTime::now_utc(),
                            checksum: None,
                            extent,
                        };
                        match node.put_part("m", &id, &part).await {
                            Ok(()) => written.push(blob_id.as_str().to_owned()),
                            Err(Error::NoSuchUpload(_)) => break,
                            Err(e) => panic!("put part: {e}"),
                        }
                    }
                    written
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(5 * round)).await;
        let done = loop {
            let parts = a.list_parts("m", &id, 0, 100).await.expect("parts");
            if parts.items.is_empty() {
                tokio::task::yield_now().await;
                continue;
            }
            let used: Vec<(u32, String)> = parts
                .items
                .iter()
                .map(|p| (p.part_number, p.etag.clone()))
                .collect();
            let extents: Vec<Extent> = parts.items.iter().map(|p| p.extent.clone()).collect();
            let size = extents.iter().map(Extent::len).sum();
            let o = ObjectRecord {
                size,
                extents: extents.clone(),
                ..object("m", "big", "x", Extent::Inline(Bytes::new()))
            };
            match a.complete_upload(&id, &used, &o, &Precondition::None).await {
                Ok(_) => break extents,
                // A part was replaced after the listing: list again, as a client would.
                Err(Error::InvalidPart(_)) => continue,
                Err(e) => panic!("complete: {e}"),
            }
        };
        for w in writers {
            all_blobs.extend(w.await.expect("writer"));
        }
        used_blobs = done
            .iter()
            .filter_map(Extent::blob_id)
            .map(|b| b.as_str().to_owned())
            .collect();
        assert!(a.get_upload("m", &id).await.expect("get").is_none());
    }
    let (refs, garbage) = blob_state(&schema).await;
    assert_eq!(refs, used_blobs, "only the object's parts are referenced");
    assert!(refs.is_disjoint(&garbage));
    let unreferenced: BTreeSet<String> = all_blobs.difference(&refs).cloned().collect();
    assert_eq!(garbage, unreferenced, "every other part written is garbage");
}

/// Group commit: concurrent writes of new current versions are applied in batches
/// (fewer batches than writes), all of them, and each is readable with its own bytes.
/// Writes to one key in one batch are left to the locked path but the first, and still
/// all acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_applied_in_batches() {
    let (a, _b, _schema) = two_nodes().await;
    a.create_bucket(&bucket("g", Versioning::Unversioned))
        .await
        .expect("bucket");
    let (before_batches, before_writes) = a.write_batches();
    let writes = (0..64).map(|i| {
        let a = a.clone();
        tokio::spawn(async move {
            let body = Bytes::from(format!("body {i}"));
            let mut o = object("g", &format!("k{i:02}"), "ignored", Extent::Inline(body));
            o.version_id = None;
            a.put_object(&o, &Precondition::None).await.expect("put");
        })
    });
    for w in writes.collect::<Vec<_>>() {
        w.await.expect("writer");
    }
    let (batches, applied) = a.write_batches();
    let (batches, applied) = (batches - before_batches, applied - before_writes);
    assert_eq!(applied, 64, "every write was applied by a batch");
    assert!(
        batches < 64,
        "batches held several writes: {batches} batches"
    );
    for i in 0..64 {
        let o = a
            .get_object("g", &format!("k{i:02}"))
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(
            o.extents,
            vec![Extent::Inline(Bytes::from(format!("body {i}")))]
        );
    }
    // One key written 16 times at once: one batch applies at most one of them per read
    // (the others saw a row that moved), the locked path the rest; every write is
    // acknowledged and one is current.
    let same = (0..16).map(|i| {
        let a = a.clone();
        tokio::spawn(async move {
            let mut o = object(
                "g",
                "same",
                "ignored",
                Extent::Inline(Bytes::from(vec![i; 4])),
            );
            o.version_id = None;
            a.put_object(&o, &Precondition::None).await.expect("put");
        })
    });
    for w in same.collect::<Vec<_>>() {
        w.await.expect("writer");
    }
    assert!(a.get_object("g", "same").await.expect("get").is_some());
}

/// A key whose lock is held (a long transaction; a node that died holding it) holds up
/// the writes to that key only: writes batched with it are applied, and it is applied
/// once the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_key_does_not_hold_up_the_writes_batched_with_it() {
    let (a, _b, schema) = two_nodes().await;
    a.create_bucket(&bucket("h", Versioning::Unversioned))
        .await
        .expect("bucket");
    let (mut holder, conn) = tokio_postgres::connect(&url_in(&schema.0), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let tx = holder.transaction().await.expect("begin");
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&a.key_lock("h", "busy")],
    )
    .await
    .expect("lock");
    let write = |key: String| {
        let a = a.clone();
        tokio::spawn(async move {
            let mut o = object(
                "h",
                &key,
                "ignored",
                Extent::Inline(Bytes::from(key.clone())),
            );
            o.version_id = None;
            a.put_object(&o, &Precondition::None).await.expect("put");
        })
    };
    // Waves of writes, each with a write to the busy key in its middle, so that the
    // busy key's writes share batches with others (and would stall every batch worker
    // if a batch waited for the lock).
    let (mut busy, mut others) = (Vec::new(), Vec::new());
    for wave in 0..4 {
        for i in 0..16 {
            if i == 8 {
                busy.push(write("busy".into()));
            }
            others.push(write(format!("free{wave}-{i:02}")));
        }
        tokio::task::yield_now().await;
    }
    let all_free = async {
        for w in others {
            w.await.expect("writer");
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), all_free)
        .await
        .expect("the other writes finish while the key's lock is held");
    assert!(
        busy.iter().all(|w| !w.is_finished()),
        "the busy key's writes wait for its lock"
    );
    tx.commit().await.expect("release");
    for w in busy {
        w.await.expect("the busy key's write");
    }
    let o = a
        .get_object("h", "busy")
        .await
        .expect("get")
        .expect("written");
    assert_eq!(o.extents, vec![Extent::Inline(Bytes::from("busy"))]);
}

/// Batches guess that writes to a bucket whose recent writes were of new keys are new
/// too, under the versioning they last saw; a wrong guess changes nothing. Versioning
/// enabled after such writes gives the next new keys version ids, and overwrites of
/// keys guessed new replace them (freeing their blobs once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_of_new_keys_never_apply_wrongly() {
    let (a, _b, schema) = two_nodes().await;
    a.create_bucket(&bucket("n", Versioning::Unversioned))
        .await
        .expect("bucket");
    let wave = |prefix: &'static str| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                let a = a.clone();
                tokio::spawn(async move {
                    let (id, extent) = blob();
                    let mut o = object("n", &format!("{prefix}{i:02}"), &format!("v{i}"), extent);
                    o.version_id = Some(format!("{prefix}-v{i:02}"));
                    let w = a.put_object(&o, &Precondition::None).await.expect("put");
                    (w.version_id, id.as_str().to_owned())
                })
            })
            .collect();
        async move {
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.expect("writer"));
            }
            out
        }
    };
    let first = wave("k").await;
    assert!(
        first.iter().all(|(v, _)| v.is_none()),
        "unversioned: null versions"
    );
    // Overwrites of the same keys: guessed new (the bucket's writes were), refused by
    // the database, applied after a read.
    let second = wave("k").await;
    let (refs, garbage) = blob_state(&schema).await;
    let first_blobs: BTreeSet<String> = first.into_iter().map(|(_, b)| b).collect();
    let second_blobs: BTreeSet<String> = second.into_iter().map(|(_, b)| b).collect();
    assert_eq!(refs, second_blobs, "the overwrites' blobs are referenced");
    assert_eq!(
        garbage, first_blobs,
        "every overwritten blob is queued once"
    );
    a.set_versioning("n", Versioning::Enabled)
        .await
        .expect("versioning");
    let third = wave("new").await;
    for (i, (v, _)) in third.iter().enumerate() {
        assert_eq!(
            v.as_deref(),
            Some(format!("new-v{i:02}").as_str()),
            "a version id"
        );
    }
}
