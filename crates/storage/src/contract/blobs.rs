//! Contract checks of [`BlobStore`]: round trips, ranges, staging and abandoned writes.

use bytes::Bytes;
use futures::StreamExt;

use crate::{BlobId, BlobStore};

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

/// Staged blobs found once idle: finished ones staged long enough are returned (for the
/// caller to publish or delete), published ones never are.
pub async fn abandoned_staged_blobs_are_found_once_idle(store: &impl BlobStore) {
    let mut w = store.create().await.expect("create");
    w.write(Bytes::from_static(b"left behind"))
        .await
        .expect("write");
    let left = w.id().clone();
    w.finish().await.expect("finish");
    let mut w = store.create().await.expect("create");
    w.write(Bytes::from_static(b"kept")).await.expect("write");
    let kept = w.id().clone();
    w.finish().await.expect("finish");
    store.publish(&kept).await.expect("publish");
    let hour = std::time::Duration::from_secs(3600);
    assert!(
        store.abandoned(hour).await.expect("abandoned").is_empty(),
        "nothing is idle for an hour yet"
    );
    // Stores keep times at a second's precision (S3's Last-Modified).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let found = store
        .abandoned(std::time::Duration::from_millis(1000))
        .await
        .expect("abandoned");
    assert_eq!(found, vec![left]);
}
