//! The records a metadata store keeps. They are plain data: the object domain decides what
//! goes in them, the store only keeps them atomically and lists them in order.
//!
//! `ObjectMeta` is stored as JSON by backends; every field added later must be
//! `#[serde(default)]` so that records written by an earlier release still decode.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::lock::Retention;
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
    pub versioning: Versioning,
}

/// A bucket's versioning state. A bucket starts unversioned; once versioning has been
/// enabled it is `Enabled` or `Suspended`, never unversioned again (as on S3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    /// The stored name (and, but for `Unversioned`, S3's `Status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Versioning::Unversioned => "",
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Versioning::Unversioned,
            Versioning::Enabled,
            Versioning::Suspended,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Which version of a key a call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef<'a> {
    /// The key's current version (which may be a delete marker).
    Latest,
    /// The `null` version: written while the bucket was unversioned or suspended.
    Null,
    Id(&'a str),
}

impl<'a> VersionRef<'a> {
    /// From S3's `versionId` (`null` names the null version).
    pub fn from_wire(version_id: Option<&'a str>) -> Self {
        match version_id {
            None => VersionRef::Latest,
            Some("null") => VersionRef::Null,
            Some(id) => VersionRef::Id(id),
        }
    }

    /// The version with this id (`None`: the null version).
    pub fn of(version_id: Option<&'a str>) -> Self {
        match version_id {
            Some(id) => VersionRef::Id(id),
            None => VersionRef::Null,
        }
    }

    /// The error for a version of `bucket`/`key` that is not there: `NoSuchKey` for the
    /// latest, `NoSuchVersion` for a named one.
    pub fn missing(self, bucket: &str, key: &str) -> Error {
        match self {
            VersionRef::Latest => Error::NoSuchKey {
                bucket: bucket.into(),
                key: key.into(),
            },
            VersionRef::Null => Error::NoSuchVersion {
                key: key.into(),
                version_id: "null".into(),
            },
            VersionRef::Id(id) => Error::NoSuchVersion {
                key: key.into(),
                version_id: id.into(),
            },
        }
    }

    /// Whether a version with this id (`None`: the null version) is the one named, for
    /// a named version (never true of `Latest`).
    pub fn names(self, version_id: Option<&str>) -> bool {
        match self {
            VersionRef::Latest => false,
            VersionRef::Null => version_id.is_none(),
            VersionRef::Id(id) => version_id == Some(id),
        }
    }
}

/// A delete marker: the version a delete without a version id writes in a versioned
/// bucket. It has no data; a key whose current version is a marker reads as deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteMarker {
    pub bucket: String,
    pub key: String,
    /// `None`: the null version.
    pub version_id: Option<String>,
    pub last_modified: OffsetDateTime,
}

/// One version of a key: an object or a delete marker.
// Nearly every entry is an object: boxing it would cost every read an allocation to save
// space in the rare marker.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Object(ObjectRecord),
    Marker(DeleteMarker),
}

impl Entry {
    pub fn version_id(&self) -> Option<&str> {
        match self {
            Entry::Object(o) => o.version_id.as_deref(),
            Entry::Marker(m) => m.version_id.as_deref(),
        }
    }

    pub fn set_version_id(&mut self, id: Option<String>) {
        match self {
            Entry::Object(o) => o.version_id = id,
            Entry::Marker(m) => m.version_id = id,
        }
    }

    pub fn blob_ids(&self) -> Vec<&BlobId> {
        match self {
            Entry::Object(o) => o.blob_ids().collect(),
            Entry::Marker(_) => Vec::new(),
        }
    }

    pub fn object(self) -> Option<ObjectRecord> {
        match self {
            Entry::Object(o) => Some(o),
            Entry::Marker(_) => None,
        }
    }
}

/// A version as a listing of versions shows it.
#[allow(clippy::large_enum_variant)] // as for `Entry`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSummary {
    Object(ObjectSummary),
    Marker(DeleteMarker),
}

/// One row of a listing of versions: the version and whether it is its key's current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    pub is_latest: bool,
    pub version: VersionSummary,
}

impl ListedVersion {
    pub fn key(&self) -> &str {
        match &self.version {
            VersionSummary::Object(o) => &o.key,
            VersionSummary::Marker(m) => &m.key,
        }
    }

    pub fn version_id(&self) -> Option<&str> {
        match &self.version {
            VersionSummary::Object(o) => o.version_id.as_deref(),
            VersionSummary::Marker(m) => m.version_id.as_deref(),
        }
    }
}

/// What a bucket holds: its current objects, its noncurrent versions and its delete
/// markers (current or not), with the bytes of each kind of object version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketUsage {
    pub objects: u64,
    pub object_bytes: u64,
    pub noncurrent_versions: u64,
    pub noncurrent_bytes: u64,
    pub delete_markers: u64,
}

/// What writing a new version of a key did: the id it got (`None`: the null version),
/// the bucket's versioning it was written under, and the version it replaced, if any,
/// whose data is now freed (an overwrite in an unversioned bucket, or of the null version
/// in a suspended one). A version kept as noncurrent is not "replaced".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub version_id: Option<String>,
    pub versioning: Versioning,
    pub replaced: Option<Entry>,
}

/// What a delete without a version id did: the delete marker it wrote (versioned
/// buckets), and the version whose data it freed, if any (the object of an unversioned
/// bucket, or the null version of a suspended one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub marker: Option<DeleteMarker>,
    pub removed: Option<Entry>,
}

/// What becomes of a key's current version when a new one is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It stays, as a noncurrent version.
    Kept,
    /// It is replaced: removed, its data freed.
    Replaced,
}

/// The one rule of S3 versioning every backend applies when a key gets a new version
/// (an object or a delete marker): the new version's id and what happens to the versions
/// already there. `candidate` is a fresh id, used if the bucket is versioning-enabled;
/// `current` is the id of the key's current version, if it has one (`Some(None)`: null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    pub version_id: Option<String>,
    pub current: Fate,
    /// Whether a noncurrent null version (if any) is replaced too.
    pub replaces_noncurrent_null: bool,
}

impl NewVersion {
    pub fn plan(versioning: Versioning, candidate: &str, current: Option<Option<&str>>) -> Self {
        match versioning {
            // Unversioned: one version per key, the null one, overwritten in place.
            Versioning::Unversioned => NewVersion {
                version_id: None,
                current: Fate::Replaced,
                replaces_noncurrent_null: false,
            },
            // Enabled: every write adds a version; nothing is replaced.
            Versioning::Enabled => NewVersion {
                version_id: Some(candidate.to_owned()),
                current: Fate::Kept,
                replaces_noncurrent_null: false,
            },
            // Suspended: writes make the null version, replacing the previous null version
            // wherever it is; other versions stay.
            Versioning::Suspended => NewVersion {
                version_id: None,
                current: match current {
                    Some(None) => Fate::Replaced,
                    _ => Fate::Kept,
                },
                replaces_noncurrent_null: true,
            },
        }
    }
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
    // Added by S3 in 2025 (botocore 1.43 sends SHA512 itself, the XXHASH ones with the CRT,
    // MD5 only as a value the caller computed).
    #[serde(rename = "SHA512")]
    Sha512,
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "XXHASH64")]
    Xxhash64,
    #[serde(rename = "XXHASH3")]
    Xxhash3,
    #[serde(rename = "XXHASH128")]
    Xxhash128,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 10] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
        Self::Sha512,
        Self::Md5,
        Self::Xxhash64,
        Self::Xxhash3,
        Self::Xxhash128,
    ];

    /// The name S3 uses on the wire (`CRC32`, `SHA256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
            Self::Md5 => "MD5",
            Self::Xxhash64 => "XXHASH64",
            Self::Xxhash3 => "XXHASH3",
            Self::Xxhash128 => "XXHASH128",
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
    /// Object Lock retention ([`crate::lock`]); absent in records of unlocked versions,
    /// which therefore encode as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Object Lock legal hold: `None` if never set (S3 tells it from `OFF`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<bool>,
    /// A restore of an archived version (RestoreObject), if one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
    /// The multipart upload that completed into this version, if one did (S3 answers a
    /// completion repeated after it succeeded with the same result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// The version's access control list, as the object layer encodes it, where the
    /// bucket's ACLs are enabled and one was set; absent otherwise (records without one
    /// encode as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
    /// The canonical id of the version's owner where it is not the bucket's owner (a
    /// writer from another account, or an anonymous one, on a bucket whose ACLs are
    /// enabled); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Storage classes whose bytes live in the archive tier: not readable until restored.
pub const ARCHIVE_CLASSES: [&str; 2] = ["GLACIER", "DEEP_ARCHIVE"];

/// Whether a version of this storage class (`None`: STANDARD) keeps its bytes in the
/// archive blob store. The one rule that says where a version's blobs are.
pub fn is_archived(storage_class: Option<&str>) -> bool {
    storage_class.is_some_and(|c| ARCHIVE_CLASSES.contains(&c))
}

/// A restore of an archived version: readable from `ready_at` until `expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    #[serde(with = "time::serde::rfc3339")]
    pub ready_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
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
    /// `None`: the null version. On a write, the id the version gets if the bucket is
    /// versioning-enabled (the store decides: see [`NewVersion::plan`]).
    pub version_id: Option<String>,
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
            version_id: self.version_id.clone(),
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
    pub version_id: Option<String>,
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
