//! The metadata store: buckets, objects, multipart uploads and the blob bookkeeping that
//! keeps blobs and records consistent across crashes.

use std::collections::BTreeMap;
use std::ops::Bound;

use async_trait::async_trait;

use crate::{
    Authority, BlobId, BucketRecord, Deleted, Entry, ListedVersion, LockChange, ObjectRecord,
    ObjectSummary, PartRecord, Precondition, Result, SseRecord, UploadRecord, VersionRef,
    Versioning, Written,
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

/// Which versions of a bucket to list: keys starting with `prefix`, in bytewise key order,
/// each key's versions newest first (its current version first), from `start`.
#[derive(Debug, Clone)]
pub struct VersionListQuery<'a> {
    pub prefix: &'a str,
    pub start: VersionStart<'a>,
    pub limit: usize,
}

/// Where a listing of versions starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStart<'a> {
    Beginning,
    /// At the first version of this key or the first key after it.
    FromKey(&'a str),
    /// After every version of this key (S3's `key-marker` alone).
    AfterKey(&'a str),
    /// After this version of this key (`key-marker` with `version-id-marker`; `Null` for
    /// the null version): `NoSuchVersion` if the key has no such version.
    AfterVersion(&'a str, VersionRef<'a>),
}

/// A version as a listing showed it, for [`MetaStore::expire`].
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    /// `Null` or `Id`, never `Latest`.
    pub version: VersionRef<'a>,
    pub last_modified: time::OffsetDateTime,
    pub current: bool,
    /// The ETag and tags the listing showed (a delete marker: empty ones). A version
    /// rewritten in the same millisecond, or whose tags changed since (rules filter on
    /// them), is not the one listed.
    pub etag: &'a str,
    pub tags: &'a std::collections::BTreeMap<String, String>,
    /// The id of the delete marker expiring a current object writes, if versioning is
    /// enabled.
    pub marker_id: &'a str,
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The bytewise key range a listing scans — keys starting with `prefix`, from `start` —
/// as its lower bound (with whether it is inclusive) and its exclusive upper bound, if
/// any: what every engine's ordered scan is bounded by.
pub fn key_range<'a>(
    prefix: &'a str,
    start: Bound<&'a str>,
) -> ((&'a [u8], bool), Option<Vec<u8>>) {
    let lower = match start {
        Bound::Included(s) if s.as_bytes() > prefix.as_bytes() => (s.as_bytes(), true),
        Bound::Excluded(s) if s.as_bytes() >= prefix.as_bytes() => (s.as_bytes(), false),
        _ => (prefix.as_bytes(), true),
    };
    (lower, prefix_end(prefix.as_bytes()))
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

    /// Fails with `NoSuchBucket`, or `BucketNotEmpty` while any version or delete marker
    /// remains (checked in the same transaction as the delete). Multipart uploads in
    /// progress do not keep a bucket: they are aborted with it, their parts' blobs queued
    /// as garbage, as S3 does.
    async fn delete_bucket(&self, name: &str) -> Result<()>;

    /// Sets a bucket's versioning state; `NoSuchBucket` if the bucket is gone. (That a
    /// bucket never returns to `Unversioned` is the domain's rule.)
    async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<()>;

    /// What the bucket holds (`NoSuchBucket` if it is gone): counted, not cached, so an
    /// ordered scan of the bucket's versions.
    async fn bucket_usage(&self, bucket: &str) -> Result<crate::BucketUsage>;

    /// A named bucket setting (encryption configuration, later policy, ...), as JSON.
    async fn get_bucket_setting(&self, bucket: &str, name: &str) -> Result<Option<String>>;

    /// Sets a bucket setting; `NoSuchBucket` if the bucket is gone.
    async fn put_bucket_setting(&self, bucket: &str, name: &str, value: &str) -> Result<()>;

    /// Removes a bucket setting (no error if absent). Deleting a bucket removes them all.
    async fn delete_bucket_setting(&self, bucket: &str, name: &str) -> Result<()>;

    /// A named setting of an account (S3's account-level Block Public Access), as JSON.
    async fn get_account_setting(&self, account: &str, name: &str) -> Result<Option<String>>;

    /// Sets an account setting.
    async fn put_account_setting(&self, account: &str, name: &str, value: &str) -> Result<()>;

    /// Removes an account setting (no error if absent).
    async fn delete_account_setting(&self, account: &str, name: &str) -> Result<()>;

    // --- objects ---

    /// A version of a key, objects with their extents (inline bytes included): `Latest`
    /// is the current version, which may be a delete marker. An index seek however many
    /// versions the key has.
    async fn get_entry(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
    ) -> Result<Option<Entry>>;

    /// The current version of a key if it is an object (not a delete marker).
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        Ok(self
            .get_entry(bucket, key, VersionRef::Latest)
            .await?
            .and_then(Entry::object))
    }

    /// Writes a new version of an object if `precondition` holds at commit time for the
    /// current version (a delete marker counts as no object), under the bucket's
    /// versioning as the transaction reads it ([`crate::NewVersion::plan`]; the record's
    /// `version_id` is the id to use if versioning is enabled). A version the write would
    /// replace that Object Lock protects fails it with `ObjectLocked`. Fails with `NoSuchBucket`
    /// if the bucket is gone, `PreconditionFailed` (or `NoSuchKey` for `EtagMatches` on a
    /// missing key).
    async fn put_object(
        &self,
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Written>;

    /// Replaces the tag set of a version of an object: `NoSuchKey`/`NoSuchVersion` if it
    /// does not exist, `IsDeleteMarker` for a delete marker.
    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()>;

    /// Replaces (`Some`) or removes the ACL of a version of an object: `NoSuchKey`/
    /// `NoSuchVersion` if it does not exist, `IsDeleteMarker` for a delete marker.
    async fn set_object_acl(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        acl: Option<&str>,
    ) -> Result<()>;

    /// Replaces the encryption record of a version whose record has identity `object_id`
    /// (its bytes are untouched): `NoSuchKey`/`NoSuchVersion` if it is missing,
    /// `PreconditionFailed` if the version named now holds another object (replaced
    /// meanwhile).
    async fn set_object_sse(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        object_id: &[u8; 16],
        sse: &SseRecord,
    ) -> Result<()>;

    /// Changes the Object Lock of a version of an object if the lock rule lets `by` make
    /// the change ([`crate::lock`], checked in the transaction): `NoSuchKey`/
    /// `NoSuchVersion` if it does not exist, `IsDeleteMarker` for a delete marker,
    /// `ObjectLocked` if refused.
    async fn set_object_lock(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        change: LockChange,
        by: &Authority,
    ) -> Result<()>;

    /// Deletes a key without naming a version, under the bucket's versioning: removes the
    /// object of an unversioned bucket; in a versioned bucket writes a delete marker
    /// (with id `marker_id` if versioning is enabled, else the null one, replacing the
    /// null version). `NoSuchBucket` if the bucket is gone; `ObjectLocked` if the version
    /// it would remove is locked against `by`; `PreconditionFailed` (or `NoSuchKey`) if
    /// `precondition` does not hold for the current version at commit time (a delete
    /// marker counts as no object): S3's conditional delete (`If-Match`).
    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        marker_id: &str,
        by: &Authority,
        precondition: &Precondition,
    ) -> Result<Deleted>;

    /// Removes one version (object or delete marker) for good, unless Object Lock keeps
    /// it from `by` (`ObjectLocked`, checked in the transaction); if it was the current
    /// one, the newest remaining version becomes current. Returns it, or `None` if the
    /// key has no such version. `version` is never `Latest`.
    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        by: &Authority,
    ) -> Result<Option<Entry>>;

    /// Lifecycle's one write, for a version a listing showed: if it is still as listed
    /// (same last-modified time, still current or still noncurrent), a current object is
    /// deleted as [`MetaStore::delete_object`] deletes it (a delete marker with id
    /// `listed.marker_id` in a versioned bucket), and a noncurrent version or a current
    /// delete marker is removed as [`MetaStore::delete_version`] removes it. Returns
    /// `None`, changing nothing, if the version changed or went meanwhile (so a write
    /// that raced the listing is never expired by it); `ObjectLocked` as those methods.
    async fn expire(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        by: &Authority,
    ) -> Result<Option<Deleted>>;

    /// Lifecycle's transition, for an object version a listing showed: if it is still as
    /// listed and its bytes are still `from` (the extents the caller copied), its storage
    /// class becomes `storage_class` and its bytes `extents` (already durable in the blob
    /// store the class keeps them in); the extents it had are freed (blobs queued as
    /// garbage) but for blobs it keeps. Returns the version as it was, or `None`,
    /// changing nothing, if the version changed or went meanwhile (the caller then
    /// discards the new blobs).
    async fn transition(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        from: &[crate::Extent],
        storage_class: &str,
        extents: &[crate::Extent],
    ) -> Result<Option<Entry>>;

    /// Records a restore of a version of an object (its bytes untouched):
    /// `NoSuchKey`/`NoSuchVersion` if it does not exist, `IsDeleteMarker` for a marker.
    async fn set_object_restore(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        restore: &crate::Restore,
    ) -> Result<()>;

    /// Every version and delete marker of the keys the query names, in order (see
    /// [`VersionListQuery`]), at most `limit`.
    async fn list_versions(
        &self,
        bucket: &str,
        query: &VersionListQuery<'_>,
    ) -> Result<ListPage<ListedVersion>>;

    /// Objects whose key starts with `prefix`, from `start`, in bytewise key order: an
    /// ordered index scan reading at most `limit` records. Only current versions that are
    /// objects: a key whose current version is a delete marker is not listed.
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
    /// The object is written as [`MetaStore::put_object`] writes one.
    async fn complete_upload(
        &self,
        upload_id: &str,
        used: &[(u32, String)],
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Written>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_least_upper_bound() {
        assert_eq!(prefix_end(b"abc"), Some(b"abd".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn a_start_before_the_prefix_starts_at_the_prefix() {
        assert_eq!(
            key_range("p/", Bound::Included("a")),
            ((&b"p/"[..], true), Some(b"p0".to_vec()))
        );
        assert_eq!(
            key_range("p/", Bound::Excluded("p/x")),
            ((&b"p/x"[..], false), Some(b"p0".to_vec()))
        );
        assert_eq!(key_range("", Bound::Unbounded), ((&b""[..], true), None));
    }
}
