//! Coffer's bucket and object domain: the semantics of S3 (naming rules, conditional
//! requests, ranges, listing with delimiters, multipart uploads, checksums and ETags) over
//! the storage traits, with no knowledge of HTTP or XML.
//!
//! The main type is [`Objects`], one value per server, cheap to share behind an `Arc`.
//! Its invariant: an operation that returns `Ok` for a write has made the change durable
//! (bytes fsynced, then the record committed); an operation that fails changes nothing
//! visible and leaves no data behind. Blobs that writes replace are deleted by a background
//! collector after the record that dropped them committed ([`Objects::collect_garbage`]).

mod acl;
mod archive;
mod body;
mod bucket;
pub mod checksum;
mod cors;
mod encrypted;
mod error;
mod impact;
pub mod lifecycle;
mod list;
mod lock;
mod logging;
mod multipart;
pub mod names;
mod object;
mod read;
mod rekey;
mod settings;
mod sse;
mod versions;

use std::sync::Arc;

use coffer_storage::{BlobStore, MetaStore};
use tokio::sync::Notify;

pub use acl::{
    ALL_USERS, AUTHENTICATED_USERS, Acl, Canned, Grant, Grantee, LOG_DELIVERY, Ownership,
    Permission,
};
pub use archive::{RestoreStatus, Restored, Tier, restore_status};
pub use body::{BodyStream, DEFAULT_INLINE_MAX};
pub use checksum::ChecksumRequest;
pub use cors::{CorsConfiguration, CorsRequest, CorsRule};
pub use error::{BodyError, Error, Result};
pub use impact::{BucketImpact, KeyNames};
pub use lifecycle::{LifecycleAction, LifecycleConfiguration, LifecycleSink};
pub use list::{ListQuery, Listing, UploadListing, UploadQuery};
pub use lock::{DefaultRetention, LockConfiguration, LockRequest, Period};
pub use logging::{DateSource, KeyFormat, LoggingConfiguration};
pub use multipart::{CompletePart, CompleteUpload, CreateUpload, PartCopy, UploadPart};
pub use object::{CopyObject, GetObject, Got, PutObject, Written};
pub use read::{ByteRange, Conditions, ObjectStream, RangeSpec};
pub use rekey::Rekey;
pub use settings::PublicAccessBlock;
pub use sse::{BucketEncryption, CustomerKey, SseRequest};
pub use versions::{Removal, VersionListing, VersionQuery, version_ref, wire_version};

// The object model the API layer works with: the records and the KMS caller, so that the
// S3 API depends on this crate alone below it.
pub use coffer_crypto::Secret;
pub use coffer_kms::{Caller, Error as KmsError};
pub use coffer_storage::{
    BucketUsage, Checksum, ChecksumAlgorithm, DeleteMarker, ListedVersion, LockChange, LockMode,
    ObjectMeta, ObjectRecord, ObjectSummary, Precondition, Retention, SseKind, SseRecord,
    UploadRecord, VersionRef, VersionSummary, Versioning,
};

/// Largest body of a single PUT or part (5 GiB), as S3.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest size of every part but the last (5 MiB), as S3.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part number, as S3.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// Settings of the object domain.
#[derive(Debug, Clone)]
pub struct Config {
    /// The region buckets live in; a different `LocationConstraint` is refused.
    pub region: String,
    /// Bodies up to this many bytes are stored inline with their metadata.
    pub inline_max: usize,
    /// What a bucket without its own default encryption applies to writes that ask for
    /// none: SSE-S3, as AWS since January 2023, unless the operator opted out.
    pub default_encryption: DefaultEncryption,
    /// How long a day of Object Lock retention lasts (and, later, of lifecycle rules and
    /// restores): one day, unless tests and demos shorten it (`COFFER_S3_DAY_SECONDS`).
    pub day: time::Duration,
    /// The business clock every date of a record is read from and compared with (moved
    /// forward only on a server started with `--test-clock`).
    pub clock: coffer_storage::Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            inline_max: DEFAULT_INLINE_MAX,
            default_encryption: DefaultEncryption::SseS3,
            day: time::Duration::DAY,
            clock: coffer_storage::Clock::system(),
        }
    }
}

/// The server-wide encryption of buckets that have no configuration of their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DefaultEncryption {
    /// Every bucket encrypts with SSE-S3 unless configured otherwise (AWS's behaviour).
    #[default]
    SseS3,
    /// Buckets without a configuration store objects in plaintext: the operator's opt-out
    /// for benchmarks and development (`--default-encryption none`), a deviation from AWS.
    None,
}

/// What start-up recovery found and did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Staged blobs a committed record references (published now).
    pub published: usize,
    /// Staged blobs nothing references (an upload that crashed before its commit).
    pub discarded: usize,
}

/// The object domain service.
pub struct Objects {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    /// Where versions of the archive classes keep their bytes (see `archive.rs`).
    archive: Arc<dyn BlobStore>,
    /// The KMS that server-side encryption asks for data keys.
    kms: Option<Arc<coffer_kms::Kms>>,
    config: Config,
    garbage: Notify,
    buckets: bucket::Buckets,
    bucket_keys: sse::BucketKeys,
    /// Bucket settings by bucket and name (see `settings.rs`).
    settings: settings::SettingCache,
    /// Account-level settings by account.
    account_settings: settings::AccountCache,
    usage: bucket::UsageCache,
}

impl Objects {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>, config: Config) -> Self {
        Self {
            meta,
            archive: blobs.clone(),
            blobs,
            kms: None,
            config,
            garbage: Notify::new(),
            buckets: bucket::Buckets::default(),
            bucket_keys: sse::BucketKeys::default(),
            settings: settings::SettingCache::default(),
            account_settings: settings::AccountCache::default(),
            usage: bucket::UsageCache::default(),
        }
    }

    /// Enables server-side encryption through `kms`.
    pub fn with_kms(mut self, kms: Arc<coffer_kms::Kms>) -> Self {
        self.kms = Some(kms);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Brings blobs and records back in line after a crash: every finished blob still in
    /// staging is published if a committed record references it and, with `discard`,
    /// deleted otherwise; then queued garbage is collected. Run once at start-up, before
    /// serving. Without `discard` (other nodes share the blob store and may be writing
    /// into staging now) unreferenced staged blobs are left alone.
    pub async fn recover(&self, discard: bool) -> Result<Recovery> {
        let mut report = Recovery::default();
        for store in self.stores() {
            for id in store.staged().await? {
                if self.meta.blob_referenced(&id).await? {
                    store.publish(&id).await?;
                    report.published += 1;
                } else if discard {
                    store.delete(&id).await?;
                    report.discarded += 1;
                }
            }
        }
        self.collect_garbage().await?;
        Ok(report)
    }

    /// In blob stores other nodes share: publishes, or deletes, what writers that died
    /// mid-way left in staging for at least `idle` (see `BlobStore::abandoned`), as
    /// [`Objects::recover`] does at start-up for a store of one node's own.
    pub async fn collect_abandoned(&self, idle: std::time::Duration) -> Result<Recovery> {
        let mut report = Recovery::default();
        for store in self.stores() {
            for id in store.abandoned(idle).await? {
                if self.meta.blob_referenced(&id).await? {
                    store.publish(&id).await?;
                    report.published += 1;
                } else {
                    store.delete(&id).await?;
                    report.discarded += 1;
                }
            }
        }
        Ok(report)
    }

    /// Deletes blobs that committed writes have dropped. Returns how many were deleted.
    pub async fn collect_garbage(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let batch = self.meta.take_garbage(256).await?;
            if batch.is_empty() {
                return Ok(total);
            }
            for id in &batch {
                self.delete_blob(id).await?;
            }
            self.meta.forget_garbage(&batch).await?;
            total += batch.len();
        }
    }

    /// Runs the garbage collector until the returned task is dropped or aborted: it wakes
    /// whenever a write dropped blobs.
    pub fn spawn_collector(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                this.garbage.notified().await;
                if let Err(e) = this.collect_garbage().await {
                    tracing::warn!(error = %e, "garbage collection failed; will retry on the next write");
                }
            }
        })
    }

    fn garbage_queued(&self) {
        self.garbage.notify_one();
    }

    /// After a write deleted or replaced `old`: its blobs go to the collector, and if it
    /// held plaintext inline in the metadata store, the engine is asked to scrub the freed
    /// bytes from its files (free pages, write-ahead log). A plaintext object in blob
    /// files only needs the collector.
    fn dropped(&self, old: Option<&coffer_storage::Entry>) {
        let Some(coffer_storage::Entry::Object(old)) = old else {
            return;
        };
        if old.meta.sse.is_none()
            && old
                .extents
                .iter()
                .any(|e| matches!(e, coffer_storage::Extent::Inline(_)))
        {
            self.meta.scrub_freed();
        }
        if old.blob_ids().next().is_some() {
            self.garbage_queued();
        }
    }
}
