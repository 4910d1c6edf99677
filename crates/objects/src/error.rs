//! What can go wrong with a bucket or object operation, named by meaning. The S3 adapter
//! maps each variant to an S3 error code in one exhaustive match.

use coffer_storage::ChecksumAlgorithm;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the request body stream (client hung up, bad chunk signature, ...). The
/// adapter that produced it can recover its own error type by downcasting.
pub type BodyError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the specified bucket is not valid: {0}")]
    InvalidBucketName(String),
    #[error("bucket {0:?} does not exist")]
    NoSuchBucket(String),
    #[error("bucket {0:?} already exists and is owned by you")]
    BucketAlreadyOwnedByYou(String),
    #[error("bucket {0:?} already exists")]
    BucketAlreadyExists(String),
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    /// The bucket's state does not allow the request (S3's `InvalidBucketState`).
    #[error("{0}")]
    InvalidBucketState(String),
    /// Object Lock protects the version (or its lock) from the request.
    #[error("version {version_id:?} of key {key:?} is protected by Object Lock")]
    ObjectLocked { key: String, version_id: String },
    /// PutBucketLogging names a target bucket that cannot take the logs.
    #[error("{0}")]
    InvalidTargetBucketForLogging(String),
    /// ACLs are disabled on the bucket (its ownership is `BucketOwnerEnforced`).
    #[error("the bucket does not allow ACLs")]
    AccessControlListNotSupported,
    /// An ACL granting others access on a bucket whose ownership is enforced.
    #[error("bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")]
    InvalidBucketAclWithObjectOwnership,
    /// The version has no retention (GetObjectRetention).
    #[error("the object has no Object Lock configuration")]
    NoSuchObjectLockConfiguration,
    #[error("the location constraint {0:?} is incompatible with this region")]
    InvalidLocationConstraint(String),
    #[error("key {0:?} does not exist")]
    NoSuchKey(String),
    #[error("version {version_id:?} of key {key:?} does not exist")]
    NoSuchVersion { key: String, version_id: String },
    /// The version named is a delete marker, which the operation does not apply to.
    #[error("version {version_id:?} of key {key:?} is a delete marker")]
    IsDeleteMarker {
        key: String,
        version_id: String,
        last_modified: Option<time::OffsetDateTime>,
    },
    /// The key's latest version is a delete marker (`version_id`): it reads as missing.
    #[error("key {key:?} was deleted (delete marker {version_id:?})")]
    DeletedKey { key: String, version_id: String },
    #[error("the object key is longer than 1024 bytes")]
    KeyTooLong,
    #[error("multipart upload {0:?} does not exist")]
    NoSuchUpload(String),
    #[error("the requested range is not satisfiable")]
    InvalidRange { size: u64 },
    #[error("the requested part number is not satisfiable")]
    InvalidPartNumber,
    #[error("a precondition did not hold")]
    PreconditionFailed,
    #[error("not modified")]
    NotModified {
        etag: String,
        last_modified: time::OffsetDateTime,
    },
    #[error("a conditional write conflicted with a concurrent one")]
    ConditionalRequestConflict,
    #[error("the Content-MD5 you specified did not match what was received")]
    BadDigest,
    #[error("the Content-MD5 you specified is not valid")]
    InvalidDigest,
    #[error("the {0} you specified did not match the calculated checksum")]
    ChecksumMismatch(&'static str),
    #[error("value for x-amz-checksum-{} is not a valid checksum", .0.as_str().to_ascii_lowercase())]
    InvalidChecksum(ChecksumAlgorithm),
    #[error("the request body ended before the declared length")]
    IncompleteBody,
    #[error("the request body is longer than the declared length")]
    BodyTooLong,
    #[error("the request body could not be read: {0}")]
    Body(BodyError),
    #[error("your proposed upload exceeds the maximum allowed size")]
    EntityTooLarge,
    #[error("your proposed upload is smaller than the minimum allowed size")]
    EntityTooSmall,
    #[error("one or more of the specified parts could not be found or its ETag did not match")]
    InvalidPart(u32),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("the storage class you specified is not valid")]
    InvalidStorageClass(String),
    #[error("the tag set is not valid: {0}")]
    InvalidTag(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the XML you provided was not well-formed or did not validate")]
    MalformedXml(String),
    /// The KMS refused (disabled key, pending deletion, unknown key, ...).
    #[error("KMS: {0}")]
    Kms(coffer_kms::Error),
    /// An SSE-C object read without its customer key.
    #[error("the object was stored using SSE-C and the key was not provided")]
    SseCustomerKeyMissing,
    /// An SSE-C object read with a different key.
    #[error("the provided customer key does not match the object's")]
    SseCustomerKeyMismatch,
    /// An SSE-C write to a bucket whose default encryption blocks SSE-C.
    #[error("SSE-C writes are blocked for this bucket")]
    EncryptionTypeBlocked,
    /// An archived version read before it is restored, or a restore of a version that
    /// is not archived.
    #[error("{0}")]
    InvalidObjectState(String),
    /// A restore of a version that is not archived (it is readable as it is).
    #[error("this operation is not allowed against this storage tier")]
    ObjectAlreadyInActiveTier,
    /// A restore of a version whose restore is still under way.
    #[error("a restore of this object is already in progress")]
    RestoreAlreadyInProgress,
    /// User-defined metadata over 2 KB (its size in bytes), as S3 measures it.
    #[error("user metadata of {0} bytes exceeds 2 KB")]
    MetadataTooLarge(usize),
    /// The store is out of space (a full disk): nothing of the write was kept, and writes
    /// succeed again once space is freed.
    #[error("out of space: {0}")]
    NoSpace(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Whether a storage error says the disk (or the database on it) is full.
fn out_of_space(e: &coffer_storage::Error) -> bool {
    match e {
        coffer_storage::Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        coffer_storage::Error::Backend(msg) => {
            msg.contains("database or disk is full") || msg.contains("No space left on device")
        }
        _ => false,
    }
}

impl From<coffer_storage::Error> for Error {
    fn from(e: coffer_storage::Error) -> Self {
        use coffer_storage::Error as S;
        if out_of_space(&e) {
            return Error::NoSpace(e.to_string());
        }
        match e {
            S::NoSuchBucket(b) => Error::NoSuchBucket(b),
            S::BucketAlreadyExists { name, .. } => Error::BucketAlreadyExists(name),
            S::BucketNotEmpty(b) => Error::BucketNotEmpty(b),
            S::NoSuchKey { key, .. } => Error::NoSuchKey(key),
            S::NoSuchUpload(u) => Error::NoSuchUpload(u),
            S::NoSuchVersion { key, version_id } => Error::NoSuchVersion { key, version_id },
            S::IsDeleteMarker { key, version_id } => Error::IsDeleteMarker {
                key,
                version_id,
                last_modified: None,
            },
            S::ObjectLocked {
                key, version_id, ..
            } => Error::ObjectLocked { key, version_id },
            S::PreconditionFailed => Error::PreconditionFailed,
            S::InvalidPart(n) => Error::InvalidPart(n),
            S::NoSuchBlob(_)
            | S::NotFound(_)
            | S::AlreadyExists(_)
            | S::Corrupt(_)
            | S::Io(_)
            | S::Backend(_)
            | S::OutcomeUnknown(_) => Error::Internal(e.to_string()),
        }
    }
}
