//! The metadata store: buckets, objects, multipart uploads and the blob bookkeeping that
//! keeps blobs and records consistent across crashes.

use std::collections::BTreeMap;
use std::ops::Bound;

use async_trait::async_trait;

use crate::{
    BlobId, BucketRecord, ObjectRecord, ObjectSummary, PartRecord, Precondition, Result, SseRecord,
    UploadRecord,
};

/// Which multipart uploads of a bucket to list, in (key, upload id) order.
#[derive(Debug, Clone)]
pub struct UploadListQuery<'a> {
    pub prefix: &'a str,
    /// Where the scan starts, on keys.
    pub start: Bound<&'a str>,
    /// With `start = Excluded(k)`: also include uploads of key `k` whose id is greater.
    pub upload_id_marker: Option<&'a str>,
    pub limit: usize,
}

/// One page of a listing and whether the scan stopped before the end.
#[derive(Debug, Clone)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub truncated: bool,
}

impl<T> ListPage<T> {
    /// A page of the first `limit` of `items`, fetched past `limit` (one extra is
    /// enough): anything beyond only says that the listing goes on.
    pub fn from_overfetch(mut items: Vec<T>, limit: usize) -> Self {
        let truncated = items.len() > limit;
        items.truncate(limit);
        Self { items, truncated }
    }
}

/// Every method is one atomic, durable transaction: when its future resolves `Ok`, the
/// change survives a crash. Writes that replace data queue the replaced blobs as garbage
/// in the same transaction; the caller deletes them and then calls
/// [`MetaStore::forget_garbage`].
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    // --- buckets ---

    /// Creates a bucket together with its first settings (`(name, value)` pairs, as
    /// [`MetaStore::put_bucket_setting`] stores them), in one transaction: a bucket never
    /// exists without them. Fails with `BucketAlreadyExists` (carrying the existing owner)
    /// if the name is taken, changing nothing.
    async fn create_bucket_with_settings(
        &self,
        bucket: &BucketRecord,
        settings: &[(&str, &str)],
    ) -> Result<()>;

    /// [`MetaStore::create_bucket_with_settings`] without settings.
    async fn create_bucket(&self, bucket: &BucketRecord) -> Result<()> {
        self.create_bucket_with_settings(bucket, &[]).await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>>;

    /// All buckets, ordered by name.
    async fn list_buckets(&self) -> Result<Vec<BucketRecord>>;

    /// Fails with `NoSuchBucket`, or `BucketNotEmpty` while any object or multipart upload
    /// remains (checked in the same transaction as the delete).
    async fn delete_bucket(&self, name: &str) -> Result<()>;

    /// A named bucket setting (encryption configuration, later policy, ...), as JSON.
    async fn get_bucket_setting(&self, bucket: &str, name: &str) -> Result<Option<String>>;

    /// Sets a bucket setting; `NoSuchBucket` if the bucket is gone.
    async fn put_bucket_setting(&self, bucket: &str, name: &str, value: &str) -> Result<()>;

    /// Removes a bucket setting (no error if absent). Deleting a bucket removes them all.
    async fn delete_bucket_setting(&self, bucket: &str, name: &str) -> Result<()>;

    // --- objects ---

    /// The object with its extents (inline bytes included).
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>>;

    /// Creates or replaces an object if `precondition` holds at commit time. Fails with
    /// `NoSuchBucket` if the bucket is gone, `PreconditionFailed` (or `NoSuchKey` for
    /// `EtagMatches` on a missing key). Returns the replaced object, if any.
    async fn put_object(
        &self,
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Option<ObjectRecord>>;

    /// Replaces an object's tag set; `NoSuchKey` if it does not exist.
    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()>;

    /// Replaces the encryption record of an object whose current record has identity
    /// `object_id` (its bytes are untouched): `NoSuchKey` if the key is missing,
    /// `PreconditionFailed` if it now holds another object (replaced meanwhile).
    async fn set_object_sse(
        &self,
        bucket: &str,
        key: &str,
        object_id: &[u8; 16],
        sse: &SseRecord,
    ) -> Result<()>;

    /// Deletes an object; returns it if it existed.
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>>;

    /// Objects whose key starts with `prefix`, from `start`, in bytewise key order: an
    /// ordered index scan reading at most `limit` records.
    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start: Bound<&str>,
        limit: usize,
    ) -> Result<ListPage<ObjectSummary>>;

    // --- multipart uploads ---

    /// `NoSuchBucket` if the bucket is gone.
    async fn create_upload(&self, upload: &UploadRecord) -> Result<()>;

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> Result<Option<UploadRecord>>;

    /// Adds or replaces a part (`NoSuchUpload` if the upload is gone); a replaced part's
    /// blob becomes garbage.
    async fn put_part(&self, bucket: &str, upload_id: &str, part: &PartRecord) -> Result<()>;

    /// Parts with a number greater than `after`, ascending.
    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<ListPage<PartRecord>>;

    async fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery<'_>,
    ) -> Result<ListPage<UploadRecord>>;

    /// Atomically: checks that every `(number, etag)` in `used` is still the stored part
    /// (`InvalidPart` otherwise) and that `precondition` holds for the current object,
    /// writes `object`, removes the upload and its parts, and queues the blobs of unused
    /// parts and of a replaced object as garbage.
    async fn complete_upload(
        &self,
        upload_id: &str,
        used: &[(u32, String)],
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Option<ObjectRecord>>;

    /// Removes an upload and queues its parts' blobs as garbage.
    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> Result<()>;

    // --- blob bookkeeping ---

    /// Whether a committed record (object or part) references the blob.
    async fn blob_referenced(&self, id: &BlobId) -> Result<bool>;

    /// Up to `limit` blobs that no record references any more.
    async fn take_garbage(&self, limit: usize) -> Result<Vec<BlobId>>;

    /// Drops blobs from the garbage queue once they are deleted.
    async fn forget_garbage(&self, ids: &[BlobId]) -> Result<()>;

    /// Asks the engine to make data freed by committed writes unrecoverable from its own
    /// files soon (old copies in write-ahead logs and free pages), without waiting for it.
    /// Called after a plaintext object was deleted or replaced. Engines that keep no such
    /// copies do nothing.
    fn scrub_freed(&self) {}
}
