//! The storage seam of Coffer: what the object domain needs from a metadata store
//! ([`MetaStore`]) and a blob store ([`BlobStore`]), with the records they keep.
//!
//! A backend implements both traits and proves itself by passing the contract suite in
//! [`contract`] (feature `contract`), which every backend's tests run unchanged; the
//! in-memory [`memory`] backend is the model the suite is checked against. The crate knows no
//! engine: the embedded default lives in `coffer-storage-local`, and a distributed engine
//! arrives later as another `coffer-storage-*` crate.
//!
//! Invariants every backend keeps:
//! - each [`MetaStore`] write is atomic and durable when its future resolves;
//! - listing is an ordered scan in bytewise key order (S3's order), never a full scan;
//! - a blob is written to staging, made durable, referenced by a committed metadata
//!   record and only then published; staged blobs that no record references are garbage
//!   (see [`BlobStore::staged`]), and blobs a write replaced are queued as garbage in the
//!   same transaction ([`MetaStore::take_garbage`]).

mod blob;
pub mod clock;
mod error;
mod export;
mod iam;
mod kms;
mod lock;
mod meta;
mod record;
mod sse;

pub mod memory;

#[cfg(feature = "contract")]
pub mod contract;

pub use blob::{BlobReader, BlobStore, BlobWriter};
pub use clock::Clock;
pub use error::{Error, Result};
pub use export::{StoredVersion, Versions};
pub use iam::{IamRecord, IamStore};
pub use kms::{KmsAliasRecord, KmsKeyRecord, KmsMaterialRecord, KmsStore};
pub use lock::{Authority, LockChange, LockMode, Refusal, Retention};
pub use meta::{
    ListPage, Listed, MetaStore, UploadListQuery, VersionListQuery, VersionStart, key_range,
};
pub use record::{
    ARCHIVE_CLASSES, BlobId, BucketRecord, BucketUsage, Checksum, ChecksumAlgorithm, DeleteMarker,
    Deleted, Entry, Extent, Fate, ListedVersion, NewVersion, ObjectMeta, ObjectRecord,
    ObjectSummary, PartInfo, PartRecord, Precondition, Restore, UploadRecord, VersionRef,
    VersionSummary, Versioning, Written, is_archived,
};
pub use sse::{SseKind, SseRecord};
