//! Single-object operations: put, get/head, delete, copy, tags.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use coffer_kms::Caller;
use coffer_storage::{
    Checksum, ChecksumAlgorithm, Extent, ObjectMeta, ObjectRecord, Precondition, SseKind, SseRecord,
};

use crate::body::{BodyStream, Ingest, Ingested};
use crate::checksum::{self, ChecksumRequest};
use crate::encrypted::Decryption;
use crate::lock::LockRequest;
use crate::names::{check_key, check_tags, storage_class};
use crate::read::{ByteRange, Conditions, ObjectStream, RangeSpec, stream_range};
use crate::sse::{CustomerKey, Prepared, SseRequest};
use crate::{Error, MAX_PUT_SIZE, Objects, Result};

/// A PutObject request in domain terms.
#[derive(Debug)]
pub struct PutObject {
    /// Who writes (for the KMS calls server-side encryption makes).
    pub caller: Caller,
    pub bucket: String,
    pub key: String,
    /// Content headers and user metadata; `storage_class` unchecked, `tags` ignored (see
    /// `tags`).
    pub meta: ObjectMeta,
    pub tags: Vec<(String, String)>,
    pub declared_len: Option<u64>,
    pub checksums: ChecksumRequest,
    /// `If-None-Match: *` or `If-Match`.
    pub precondition: Precondition,
    pub sse: SseRequest,
    pub lock: LockRequest,
}

/// The outcome of a write that created an object version.
#[derive(Debug, Clone)]
pub struct Written {
    pub etag: String,
    pub size: u64,
    pub last_modified: OffsetDateTime,
    pub checksum: Option<Checksum>,
    /// How the object is encrypted, for the response headers.
    pub sse: Option<SseRecord>,
    /// The version written, as S3 reports it (none in a bucket never versioned).
    pub version_id: Option<String>,
    /// For a copy: the version of the source that was copied, as S3 reports it.
    pub source_version_id: Option<String>,
    /// When a lifecycle rule expires the new object, and the rule's id.
    pub expiration: Option<(OffsetDateTime, String)>,
}

/// A GetObject / HeadObject request.
#[derive(Debug, Clone)]
pub struct GetObject {
    pub caller: Caller,
    /// SSE-C: the key the object was written with.
    pub customer_key: Option<CustomerKey>,
    pub bucket: String,
    pub key: String,
    /// S3's `versionId`: `None` reads the latest version.
    pub version_id: Option<String>,
    pub range: Option<RangeSpec>,
    pub part_number: Option<u32>,
    pub conditions: Conditions,
}

/// What a read found: the object, the range served (if partial), and for GET the bytes.
pub struct Got {
    pub object: ObjectRecord,
    /// The version read, as S3 reports it.
    pub version_id: Option<String>,
    pub range: Option<ByteRange>,
    /// Number of parts when the request named a part number.
    pub parts_count: Option<u32>,
    pub body: Option<ObjectStream>,
}

impl Got {
    /// How many bytes the response carries.
    pub fn content_length(&self) -> u64 {
        self.range.map_or(self.object.size, |r| r.len())
    }
}

/// A CopyObject request.
#[derive(Debug)]
pub struct CopyObject {
    pub caller: Caller,
    /// SSE-C key of the source object.
    pub source_customer_key: Option<CustomerKey>,
    /// Encryption of the copy (re-encrypted under the destination's settings).
    pub sse: SseRequest,
    pub src_bucket: String,
    pub src_key: String,
    /// The source's `versionId`: `None` copies its latest version.
    pub src_version_id: Option<String>,
    pub dst_bucket: String,
    pub dst_key: String,
    /// `Some` for `x-amz-metadata-directive: REPLACE`: the new content headers and metadata.
    pub replace_meta: Option<ObjectMeta>,
    /// `Some` for `x-amz-tagging-directive: REPLACE`.
    pub replace_tags: Option<Vec<(String, String)>>,
    pub storage_class: Option<String>,
    pub source_conditions: Conditions,
    pub precondition: Option<Precondition>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// The copy's ACL, as [`Objects::acl_for_write`] encoded it (a copy never inherits
    /// its source's).
    pub acl: Option<String>,
    /// The copy's owner where it is not the bucket's ([`Objects::new_object_owner`]).
    pub owner: Option<String>,
    /// The copy's own Object Lock (a source's lock is never copied).
    pub lock: LockRequest,
}

/// The metadata a new object (or upload) starts with: storage class and tags checked,
/// no parts yet, no lock but what the write asks for (see `lock.rs`).
pub(crate) fn new_object_meta(
    mut meta: ObjectMeta,
    tags: &[(String, String)],
) -> Result<ObjectMeta> {
    check_user_metadata(&meta)?;
    meta.storage_class = storage_class(meta.storage_class.as_deref())?;
    meta.tags = check_tags(tags)?;
    meta.parts.clear();
    meta.retention = None;
    meta.legal_hold = None;
    meta.restore = None;
    meta.upload_id = None;
    Ok(meta)
}

/// Most bytes of user-defined metadata an object may carry: S3 sums the UTF-8 bytes of each
/// name and value.
pub const MAX_USER_METADATA: usize = 2 * 1024;

fn check_user_metadata(meta: &ObjectMeta) -> Result<()> {
    let size: usize = meta.user.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA {
        return Err(Error::MetadataTooLarge(size));
    }
    Ok(())
}

fn etag_of(md5: &[u8; 16]) -> String {
    checksum::hex(md5)
}

impl Objects {
    pub async fn put_object(&self, mut req: PutObject, body: BodyStream) -> Result<Written> {
        check_key(&req.key)?;
        let mut meta = new_object_meta(req.meta, &req.tags)?;
        // Fail before reading the body if the bucket is not there.
        self.bucket(&req.bucket).await?;
        self.lock_new_version(&req.bucket, &req.lock, &mut meta, self.now())
            .await?;
        // A locked version must arrive with an integrity check (as on S3).
        if (meta.retention.is_some() || !req.lock.is_empty())
            && req.checksums.algorithm.is_none()
            && req.checksums.content_md5.is_none()
        {
            return Err(Error::InvalidRequest(
                "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters".into(),
            ));
        }
        // As S3 since 2025: an object the client sent no checksum for gets a CRC64NVME of
        // its whole body.
        req.checksums
            .algorithm
            .get_or_insert(crate::checksum::DEFAULT_ALGORITHM);
        let prepared = self
            .prepare_encryption(&req.caller, &req.bucket, &req.key, &req.sse, self.now())
            .await?;
        let (sealer, md5_etag) = sealer_for(prepared.as_ref(), 1)?;
        meta.sse = prepared.map(|p| p.record);
        let ingested = Ingest {
            blobs: self.store_for(meta.storage_class.as_deref()).as_ref(),
            sealer,
            md5_etag,
            inline_max: self.inline_max_for(meta.storage_class.as_deref()),
            declared_len: req.declared_len,
            max_len: MAX_PUT_SIZE,
            checksums: req.checksums,
        }
        .run(body)
        .await?;
        self.commit_single(req.bucket, req.key, meta, ingested, &req.precondition)
            .await
    }

    /// Records a freshly ingested body as the object `bucket/key`.
    async fn commit_single(
        &self,
        bucket: String,
        key: String,
        mut meta: ObjectMeta,
        ingested: Ingested,
        precondition: &Precondition,
    ) -> Result<Written> {
        meta.checksum = ingested.checksum.clone();
        let record = ObjectRecord {
            bucket,
            key,
            version_id: Some(crate::versions::new_version_id()),
            size: ingested.size,
            etag: etag_of(&ingested.md5),
            last_modified: self.now(),
            meta,
            extents: vec![ingested.extent],
        };
        let version_id = self.commit(&record, precondition).await?;
        let expiration = self.expiration_of_record(&record).await;
        Ok(Written {
            etag: record.etag,
            size: record.size,
            last_modified: record.last_modified,
            checksum: record.meta.checksum,
            sse: record.meta.sse,
            version_id,
            source_version_id: None,
            expiration,
        })
    }

    /// Commits a record whose blobs are durable in staging, then publishes them; returns
    /// the version written as S3 reports it. If the commit fails the blobs are deleted at
    /// once, unless its outcome is unknown (the record may be committed): then they stay
    /// in staging, where start-up recovery or the collector publishes or deletes them by
    /// whether a record references them.
    async fn commit(
        &self,
        record: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Option<String>> {
        match self.meta.put_object(record, precondition).await {
            Ok(written) => {
                self.publish(record).await;
                self.dropped(written.replaced.as_ref());
                Ok(crate::versions::written_version(&written))
            }
            Err(e @ coffer_storage::Error::OutcomeUnknown(_)) => Err(e.into()),
            Err(e) => {
                self.discard(&record.extents).await;
                Err(e.into())
            }
        }
    }

    pub(crate) async fn publish(&self, record: &ObjectRecord) {
        for id in record.blob_ids() {
            // Not fatal: start-up recovery publishes any committed blob left in staging,
            // and reads find staged blobs too.
            if let Err(e) = self
                .store_for(record.meta.storage_class.as_deref())
                .publish(id)
                .await
            {
                tracing::warn!(blob = id.as_str(), error = %e, "publishing a blob failed");
            }
        }
    }

    pub(crate) async fn discard(&self, extents: &[Extent]) {
        for id in extents.iter().filter_map(Extent::blob_id) {
            if let Err(e) = self.delete_blob(id).await {
                tracing::warn!(blob = id.as_str(), error = %e, "deleting an uncommitted blob failed");
            }
        }
    }

    /// Reads an object (HEAD when `with_body` is false).
    pub async fn get_object(&self, req: &GetObject, with_body: bool) -> Result<Got> {
        // A concurrent overwrite may free the blob between reading the record and opening
        // the blob; one retry reads the new record.
        match self.get_once(req, with_body).await {
            Err(Error::Internal(_)) if with_body => self.get_once(req, with_body).await,
            other => other,
        }
    }

    async fn get_once(&self, req: &GetObject, with_body: bool) -> Result<Got> {
        let (object, version_id) = self
            .object_version_reported(&req.bucket, &req.key, req.version_id.as_deref())
            .await?;
        req.conditions.check(&object.etag, object.last_modified)?;
        if with_body {
            self.check_readable(&object)?;
        }
        if req.range.is_some() && req.part_number.is_some() {
            return Err(Error::InvalidRequest(
                "Cannot specify both Range header and partNumber query parameter".into(),
            ));
        }
        let (range, parts_count) = match (req.range, req.part_number) {
            (Some(spec), _) => (Some(spec.resolve(object.size)?), None),
            (None, Some(n)) => {
                let (r, count) = part_range(&object, n)?;
                // Only a multipart object reports its part count (x-amz-mp-parts-count).
                (Some(r), (!object.meta.parts.is_empty()).then_some(count))
            }
            (None, None) => (None, None),
        };
        let full = ByteRange {
            start: 0,
            end: object.size,
            size: object.size,
        };
        let body = match (&object.meta.sse, with_body) {
            (None, _) if req.customer_key.is_some() => {
                return Err(Error::InvalidRequest(
                    "The encryption parameters are not applicable to this object.".into(),
                ));
            }
            (None, true) => Some(
                stream_range(
                    self.store_for(object.meta.storage_class.as_deref()).clone(),
                    &object,
                    range.unwrap_or(full),
                )
                .await?,
            ),
            (None, false) => None,
            (Some(sse), true) => Some(
                self.decrypting_stream(
                    &req.caller,
                    &object,
                    sse,
                    req.customer_key.as_ref(),
                    range.unwrap_or(full),
                )
                .await?,
            ),
            (Some(sse), false) => {
                // HEAD needs no data key, but an SSE-C object still needs the right key.
                if sse.kind() == SseKind::Customer {
                    self.object_key(&req.caller, sse, req.customer_key.as_ref(), self.now())
                        .await?;
                } else if req.customer_key.is_some() {
                    return Err(Error::InvalidRequest(
                        "The encryption parameters are not applicable to this object.".into(),
                    ));
                }
                None
            }
        };
        Ok(Got {
            object,
            version_id,
            range,
            parts_count,
            body,
        })
    }

    /// The plaintext of `range` of an encrypted object.
    pub(crate) async fn decrypting_stream(
        &self,
        caller: &Caller,
        object: &ObjectRecord,
        sse: &SseRecord,
        customer: Option<&CustomerKey>,
        range: ByteRange,
    ) -> Result<ObjectStream> {
        let key = self.object_key(caller, sse, customer, self.now()).await?;
        crate::encrypted::stream_range(
            self.store_for(object.meta.storage_class.as_deref()).clone(),
            object,
            range,
            Decryption {
                key,
                object_id: sse.object_id(),
            },
        )
        .await
    }

    /// The plaintext of `range` of any object.
    pub(crate) async fn plaintext_stream(
        &self,
        caller: &Caller,
        object: &ObjectRecord,
        customer: Option<&CustomerKey>,
        range: ByteRange,
    ) -> Result<ObjectStream> {
        match &object.meta.sse {
            Some(sse) => {
                self.decrypting_stream(caller, object, sse, customer, range)
                    .await
            }
            None => {
                if customer.is_some() {
                    return Err(Error::InvalidRequest(
                        "The encryption parameters are not applicable to this object.".into(),
                    ));
                }
                stream_range(
                    self.store_for(object.meta.storage_class.as_deref()).clone(),
                    object,
                    range,
                )
                .await
            }
        }
    }

    pub async fn copy_object(&self, req: CopyObject) -> Result<Written> {
        check_key(&req.dst_key)?;
        let (src, source_version_id) = self
            .copy_source(&req.src_bucket, &req.src_key, req.src_version_id.as_deref())
            .await?;
        req.source_conditions
            .check_copy_source(&src.etag, src.last_modified)?;
        if src.size > MAX_PUT_SIZE {
            return Err(Error::InvalidRequest(format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_PUT_SIZE}"
            )));
        }
        self.bucket(&req.dst_bucket).await?;
        // Copying an older version onto its key is how S3 restores it: not a self-copy.
        let same = req.src_bucket == req.dst_bucket
            && req.src_key == req.dst_key
            && req.src_version_id.is_none();
        let new_class = storage_class(req.storage_class.as_deref())?;
        if same
            && req.replace_meta.is_none()
            && (req.storage_class.is_none() || new_class == src.meta.storage_class)
            && req.checksum_algorithm.is_none()
            && matches!(req.sse, SseRequest::Default)
            // A plaintext object copied onto itself under a default that encrypts changes
            // its encryption: the documented way to encrypt objects from before.
            && (src.meta.sse.is_some()
                || self
                    .effective_request(&req.dst_bucket, &SseRequest::Default)
                    .await?
                    .is_none())
        {
            return Err(Error::InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.".into(),
            ));
        }

        let mut meta = match req.replace_meta {
            Some(m) => {
                check_user_metadata(&m)?;
                m
            }
            None => ObjectMeta {
                checksum: None,
                parts: Vec::new(),
                sse: None,
                ..src.meta.clone()
            },
        };
        meta.sse = None;
        meta.acl = req.acl.clone();
        meta.owner = req.owner.clone();
        meta.parts.clear();
        meta.upload_id = None;
        meta.retention = None;
        meta.legal_hold = None;
        self.lock_new_version(&req.dst_bucket, &req.lock, &mut meta, self.now())
            .await?;
        // A copy is STANDARD unless it asks for a class (AWS's rule): an archived
        // source's copy is readable.
        meta.storage_class = new_class;
        meta.restore = None;
        meta.tags = match &req.replace_tags {
            Some(t) => check_tags(t)?,
            None => src.meta.tags.clone(),
        };
        let algorithm = req
            .checksum_algorithm
            .or(src.meta.checksum.as_ref().map(|c| c.algorithm))
            .or(Some(crate::checksum::DEFAULT_ALGORITHM));
        let full = ByteRange {
            start: 0,
            end: src.size,
            size: src.size,
        };
        let body = self
            .plaintext_stream(&req.caller, &src, req.source_customer_key.as_ref(), full)
            .await?;
        let prepared = self
            .prepare_encryption(
                &req.caller,
                &req.dst_bucket,
                &req.dst_key,
                &req.sse,
                self.now(),
            )
            .await?;
        let (sealer, md5_etag) = sealer_for(prepared.as_ref(), 1)?;
        meta.sse = prepared.map(|p| p.record);
        let ingested = Ingest {
            blobs: self.store_for(meta.storage_class.as_deref()).as_ref(),
            sealer,
            md5_etag,
            inline_max: self.inline_max_for(meta.storage_class.as_deref()),
            declared_len: Some(src.size),
            max_len: MAX_PUT_SIZE,
            checksums: ChecksumRequest {
                algorithm,
                ..ChecksumRequest::default()
            },
        }
        .run(internal_body(body))
        .await?;
        let precondition = req.precondition.unwrap_or(Precondition::None);
        let written = self
            .commit_single(req.dst_bucket, req.dst_key, meta, ingested, &precondition)
            .await?;
        Ok(Written {
            source_version_id,
            ..written
        })
    }

    /// The version a copy reads, and its id as S3 reports it: a delete marker named by
    /// id cannot be copied.
    pub(crate) async fn copy_source(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectRecord, Option<String>)> {
        match self.object_version_reported(bucket, key, version_id).await {
            Err(Error::IsDeleteMarker { .. }) => Err(Error::InvalidRequest(
                "The source of a copy request may not specifically refer to a delete marker by version id.".into(),
            )),
            Ok((o, v)) => {
                self.check_readable(&o)?;
                Ok((o, v))
            }
            other => other,
        }
    }

    /// A version's tags, and the version as S3 reports it.
    pub async fn get_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(BTreeMap<String, String>, Option<String>)> {
        let (o, reported) = self
            .object_version_reported(bucket, key, version_id)
            .await?;
        Ok((o.meta.tags, reported))
    }

    /// Replaces a version's tags; returns the version as S3 reports it.
    pub async fn put_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Option<String>> {
        let tags = check_tags(tags)?;
        // Read first: the version the change applies to (the latest, unless named) and
        // its id to report; a delete marker has no tags.
        let o = self.object_version(bucket, key, version_id).await?;
        let version = coffer_storage::VersionRef::of(o.version_id.as_deref());
        match self.meta.set_object_tags(bucket, key, version, &tags).await {
            // Removed between the read and the write.
            Err(
                coffer_storage::Error::NoSuchKey { .. }
                | coffer_storage::Error::NoSuchVersion { .. },
            ) => return Err(Error::NoSuchKey(key.to_owned())),
            other => other?,
        }
        self.reported_version(bucket, o.version_id.as_deref()).await
    }

    /// A version as GetObjectAttributes describes it, and its id as S3 reports it.
    pub async fn object_attributes(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectRecord, Option<String>)> {
        self.object_version_reported(bucket, key, version_id).await
    }
}

/// The byte range of part `n` of an object. A single-part object has one part.
fn part_range(object: &ObjectRecord, n: u32) -> Result<(ByteRange, u32)> {
    if n == 0 {
        return Err(Error::InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive".into(),
        ));
    }
    if object.meta.parts.is_empty() {
        if n != 1 {
            return Err(Error::InvalidPartNumber);
        }
        let whole = ByteRange {
            start: 0,
            end: object.size,
            size: object.size,
        };
        return Ok((whole, 1));
    }
    let count = u32::try_from(object.meta.parts.len()).unwrap_or(u32::MAX);
    let mut start = 0u64;
    for p in &object.meta.parts {
        if p.number == n {
            return Ok((
                ByteRange {
                    start,
                    end: start + p.size,
                    size: object.size,
                },
                count,
            ));
        }
        start += p.size;
    }
    Err(Error::InvalidPartNumber)
}

/// The sealer for one extent of a write, and whether its ETag is the plaintext MD5 (true
/// for plaintext and SSE-S3 objects, as on AWS).
pub(crate) fn sealer_for(
    prepared: Option<&Prepared>,
    part: u32,
) -> Result<(Option<coffer_crypto::stream::Sealer>, bool)> {
    match prepared {
        None => Ok((None, true)),
        Some(p) => {
            let sealer = coffer_crypto::stream::Sealer::new(
                &p.object_key,
                coffer_crypto::stream::Binding {
                    object: p.record.object_id(),
                    part,
                },
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
            Ok((Some(sealer), p.record.kind() == SseKind::S3))
        }
    }
}

/// Adapts a stored object's stream into a request body (for copies).
pub(crate) fn internal_body(s: ObjectStream) -> BodyStream {
    use futures::TryStreamExt;
    Box::pin(s.map_err(|e| -> crate::BodyError { Box::new(e) }))
}
