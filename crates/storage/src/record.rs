//! The records a metadata store keeps. They are plain data: the object domain decides what
//! goes in them, the store only keeps them atomically and lists them in order.
//!
//! `ObjectMeta` is stored as JSON by backends; every field added later must be
//! `#[serde(default)]` so that records written by an earlier release still decode.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::sse::SseRecord;
use crate::{Error, Result};
use time::OffsetDateTime;

/// A bucket. `owner` is the 12-digit account id of the account that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRecord {
    pub name: String,
    pub owner: String,
    pub region: String,
    pub created: OffsetDateTime,
}

/// Identifies one blob of a blob store. Backends use it as a file name, so it is always a
/// lower-case hyphenated UUID (checked by [`BlobId::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(String);

impl BlobId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    /// Accepts only what [`BlobId::generate`] produces, so a name read back from disk or a
    /// database can never smuggle a path into a backend.
    pub fn parse(s: &str) -> Option<Self> {
        let u = uuid::Uuid::try_parse(s).ok()?;
        let canonical = u.hyphenated().to_string();
        (canonical == s).then_some(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One contiguous run of an object's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extent {
    /// Small bodies live inside the metadata store, committed with their record, so a small
    /// PUT costs a share of one group commit instead of an fsync of its own.
    Inline(Bytes),
    /// Larger bodies live in the blob store.
    Blob { id: BlobId, len: u64 },
}

impl Extent {
    pub fn len(&self) -> u64 {
        match self {
            Extent::Inline(b) => b.len() as u64,
            Extent::Blob { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn blob_id(&self) -> Option<&BlobId> {
        match self {
            Extent::Inline(_) => None,
            Extent::Blob { id, .. } => Some(id),
        }
    }
}

/// The checksum algorithms S3 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    #[serde(rename = "CRC32")]
    Crc32,
    #[serde(rename = "CRC32C")]
    Crc32c,
    #[serde(rename = "CRC64NVME")]
    Crc64Nvme,
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// The name S3 uses on the wire (`CRC32`, `SHA256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// A stored checksum: its algorithm, base64 value, and whether it covers the whole object
/// (`FULL_OBJECT`) or is a checksum of part checksums (`COMPOSITE`, value ends in `-N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
    #[serde(default)]
    pub composite: bool,
}

/// Everything about an object that is not its bytes or its identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The `Expires` header exactly as the client sent it.
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
    /// `x-amz-meta-*` without the prefix, names lower-cased.
    pub user: BTreeMap<String, String>,
    /// Absent means STANDARD.
    pub storage_class: Option<String>,
    pub checksum: Option<Checksum>,
    pub tags: BTreeMap<String, String>,
    /// For multipart objects: each part's size, ETag and checksum, in order.
    pub parts: Vec<PartInfo>,
    /// Server-side encryption: present when the stored bytes are encrypted.
    pub sse: Option<SseRecord>,
}

/// One part of a completed multipart object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    #[serde(default)]
    pub checksum: Option<String>,
}

/// An object: identity, description and where its bytes are. `extents` are in order and
/// their lengths add up to `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// The ETag without quotes.
    pub etag: String,
    pub last_modified: OffsetDateTime,
    pub meta: ObjectMeta,
    pub extents: Vec<Extent>,
}

impl ObjectRecord {
    pub fn blob_ids(&self) -> impl Iterator<Item = &BlobId> {
        self.extents.iter().filter_map(Extent::blob_id)
    }

    pub fn summary(&self) -> ObjectSummary {
        ObjectSummary {
            key: self.key.clone(),
            size: self.size,
            etag: self.etag.clone(),
            last_modified: self.last_modified,
            meta: self.meta.clone(),
        }
    }
}

/// What a listing returns of an object: everything but its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub last_modified: OffsetDateTime,
    pub meta: ObjectMeta,
}

/// What must hold, atomically with a write, for the write to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// `If-None-Match: *`: the key must not exist.
    NotExists,
    /// `If-Match: etag`: the key must exist with this ETag (unquoted).
    EtagMatches(String),
}

impl Precondition {
    /// Whether a write of `bucket`/`key` may happen, given the ETag of the key's current
    /// version (`None`: no such key). Every backend asks this inside its write
    /// transaction, so the check and the write are one atomic step.
    pub fn check(&self, current_etag: Option<&str>, bucket: &str, key: &str) -> Result<()> {
        match (self, current_etag) {
            (Precondition::None, _) | (Precondition::NotExists, None) => Ok(()),
            (Precondition::NotExists, Some(_)) => Err(Error::PreconditionFailed),
            (Precondition::EtagMatches(_), None) => Err(Error::NoSuchKey {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            }),
            (Precondition::EtagMatches(want), Some(have)) if want == have => Ok(()),
            (Precondition::EtagMatches(_), Some(_)) => Err(Error::PreconditionFailed),
        }
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated: OffsetDateTime,
    /// Account id of the initiator.
    pub initiator: String,
    /// The metadata the completed object will carry.
    pub meta: ObjectMeta,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    pub last_modified: OffsetDateTime,
    pub checksum: Option<Checksum>,
    pub extent: Extent,
}
