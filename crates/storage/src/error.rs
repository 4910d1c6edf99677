//! What a store can say went wrong. Variants name the meaning, never the engine; an
//! engine's own failures become [`Error::Backend`] with a message for the log only.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bucket {0:?} does not exist")]
    NoSuchBucket(String),
    /// Carries the owner of the existing bucket so the caller can tell "yours" from "taken".
    #[error("bucket {name:?} already exists (owner {owner})")]
    BucketAlreadyExists { name: String, owner: String },
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    #[error("object {key:?} does not exist in bucket {bucket:?}")]
    NoSuchKey { bucket: String, key: String },
    /// A named version of a key that does not exist.
    #[error("version {version_id:?} of {key:?} does not exist")]
    NoSuchVersion { key: String, version_id: String },
    /// The operation does not apply to the version named: it is a delete marker.
    #[error("version {version_id:?} of {key:?} is a delete marker")]
    IsDeleteMarker { key: String, version_id: String },
    /// Object Lock keeps the version (or its lock) as it is: see [`crate::lock`].
    #[error("version {version_id:?} of {key:?} is protected by Object Lock ({refusal:?})")]
    ObjectLocked {
        key: String,
        version_id: String,
        refusal: crate::Refusal,
    },
    #[error("multipart upload {0:?} does not exist")]
    NoSuchUpload(String),
    #[error("a precondition of the write did not hold")]
    PreconditionFailed,
    #[error("part {0} was not uploaded or its ETag does not match")]
    InvalidPart(u32),
    /// A KMS record (key, alias) that does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// A KMS record (alias, material version) that already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("blob {0} does not exist")]
    NoSuchBlob(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage backend failure: {0}")]
    Backend(String),
    /// A write whose connection to the backend failed while it was being committed: it
    /// may or may not have been. The caller must not undo what a committed write would
    /// need (its blobs): recovery and the collector decide by what records reference.
    #[error("storage backend failure, outcome of the write unknown: {0}")]
    OutcomeUnknown(String),
}
