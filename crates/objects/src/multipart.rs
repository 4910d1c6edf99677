//! Multipart uploads. Each part streams into its own blob as it arrives; completing an
//! upload is one metadata transaction that turns the chosen parts into the object's
//! extents, so no byte is copied or buffered at completion.

use coffer_kms::Caller;
use coffer_storage::{
    ChecksumAlgorithm, ListPage, ObjectMeta, ObjectRecord, PartInfo, PartRecord, Precondition,
    SseKind, UploadRecord,
};

use crate::body::{BodyStream, Ingest};
use crate::checksum::{self, ChecksumRequest};
use crate::names::check_key;
use crate::object::{internal_body, new_object_meta, sealer_for};
use crate::read::{ByteRange, Conditions, RangeSpec};
use crate::sse::{CustomerKey, Prepared, SseRequest};
use crate::{Error, MAX_PART_NUMBER, MAX_PUT_SIZE, MIN_PART_SIZE, Objects, Result, Written};

#[derive(Debug)]
pub struct CreateUpload {
    pub caller: Caller,
    pub sse: SseRequest,
    /// Account id of the initiator.
    pub initiator: String,
    pub bucket: String,
    pub key: String,
    pub meta: ObjectMeta,
    pub tags: Vec<(String, String)>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// `x-amz-checksum-type: FULL_OBJECT` (CRC algorithms only).
    pub full_object_checksum: bool,
    pub lock: crate::LockRequest,
}

#[derive(Debug)]
pub struct UploadPart {
    pub caller: Caller,
    /// SSE-C: the upload's customer key, sent again with every part.
    pub customer_key: Option<CustomerKey>,
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub part_number: u32,
    pub declared_len: Option<u64>,
    pub checksums: ChecksumRequest,
}

#[derive(Debug)]
pub struct PartCopy {
    pub caller: Caller,
    /// SSE-C key of the upload (destination).
    pub customer_key: Option<CustomerKey>,
    /// SSE-C key of the source object.
    pub source_customer_key: Option<CustomerKey>,
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub part_number: u32,
    pub src_bucket: String,
    pub src_key: String,
    /// The source's `versionId`: `None` copies from its latest version.
    pub src_version_id: Option<String>,
    /// `x-amz-copy-source-range: bytes=first-last`.
    pub range: Option<(u64, u64)>,
    pub source_conditions: Conditions,
}

#[derive(Debug, Clone)]
pub struct CompletePart {
    pub part_number: u32,
    pub etag: String,
    /// The part checksum the client lists, if any (checked against the stored one).
    pub checksum: Option<String>,
}

#[derive(Debug)]
pub struct CompleteUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub parts: Vec<CompletePart>,
    pub precondition: Precondition,
}

fn check_part_number(n: u32) -> Result<()> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive".into(),
        ))
    }
}

fn normalize_etag(e: &str) -> String {
    e.trim().trim_matches('"').to_owned()
}

impl Objects {
    pub async fn create_upload(&self, req: CreateUpload) -> Result<UploadRecord> {
        check_key(&req.key)?;
        let mut meta = new_object_meta(req.meta, &req.tags)?;
        // For an upload in progress, `checksum` records the requested algorithm and type;
        // the value is filled in at completion.
        meta.checksum = req
            .checksum_algorithm
            .map(|algorithm| coffer_storage::Checksum {
                algorithm,
                value: String::new(),
                composite: !req.full_object_checksum,
            });
        if req.full_object_checksum
            && req
                .checksum_algorithm
                .is_some_and(|a| !crate::checksum::full_object_capable(a))
        {
            return Err(Error::InvalidRequest(
                "The FULL_OBJECT checksum type is only supported with CRC algorithms".into(),
            ));
        }
        self.bucket(&req.bucket).await?;
        // The lock asked for is checked now and kept with the upload; a default
        // retention is applied when the object is written (at completion).
        self.lock_new_version(&req.bucket, &req.lock, &mut meta, self.now())
            .await?;
        if req.lock.retention.is_none() {
            meta.retention = None;
        }
        let prepared = self
            .prepare_encryption(&req.caller, &req.bucket, &req.key, &req.sse, self.now())
            .await?;
        meta.sse = prepared.map(|p| p.record);
        let upload = UploadRecord {
            upload_id: uuid::Uuid::now_v7().simple().to_string(),
            bucket: req.bucket,
            key: req.key,
            initiated: self.now(),
            initiator: req.initiator,
            meta,
        };
        self.meta.create_upload(&upload).await?;
        Ok(upload)
    }

    /// The upload, checked to belong to `bucket`/`key`.
    pub async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord> {
        match self.meta.get_upload(bucket, upload_id).await? {
            Some(u) if u.key == key => Ok(u),
            Some(_) => Err(Error::NoSuchUpload(upload_id.to_owned())),
            None => {
                self.bucket(bucket).await?;
                Err(Error::NoSuchUpload(upload_id.to_owned()))
            }
        }
    }

    pub async fn upload_part(&self, req: UploadPart, body: BodyStream) -> Result<Written> {
        check_part_number(req.part_number)?;
        let upload = self.upload(&req.bucket, &req.key, &req.upload_id).await?;
        let mut checksums = req.checksums;
        // The part's checksum: the client's, else the upload's algorithm, else S3's
        // default (CRC64NVME), so that the object gets a whole-object CRC64NVME.
        if checksums.algorithm.is_none() {
            checksums.algorithm = Some(
                upload
                    .meta
                    .checksum
                    .as_ref()
                    .map_or(checksum::DEFAULT_ALGORITHM, |c| c.algorithm),
            );
        }
        let prepared = self
            .part_encryption(&req.caller, &upload, req.customer_key.as_ref())
            .await?;
        let (sealer, md5_etag) = sealer_for(prepared.as_ref(), req.part_number)?;
        let ingested = Ingest {
            blobs: self
                .store_for(upload.meta.storage_class.as_deref())
                .as_ref(),
            sealer,
            md5_etag,
            inline_max: self.inline_max_for(upload.meta.storage_class.as_deref()),
            declared_len: req.declared_len,
            max_len: MAX_PUT_SIZE,
            checksums,
        }
        .run(body)
        .await?;
        self.commit_part(&upload, req.part_number, ingested).await
    }

    /// The key that seals parts of an encrypted upload (None for a plaintext upload).
    async fn part_encryption(
        &self,
        caller: &Caller,
        upload: &UploadRecord,
        customer: Option<&CustomerKey>,
    ) -> Result<Option<Prepared>> {
        match &upload.meta.sse {
            None => {
                if customer.is_some() {
                    return Err(Error::InvalidRequest(
                        "The encryption parameters are not applicable to this upload.".into(),
                    ));
                }
                Ok(None)
            }
            Some(sse) => {
                if sse.kind() != SseKind::Customer && customer.is_some() {
                    return Err(Error::InvalidRequest(
                        "The encryption parameters are not applicable to this upload.".into(),
                    ));
                }
                let object_key = self.object_key(caller, sse, customer, self.now()).await?;
                Ok(Some(Prepared {
                    record: sse.clone(),
                    object_key,
                }))
            }
        }
    }

    async fn commit_part(
        &self,
        upload: &UploadRecord,
        part_number: u32,
        ingested: crate::body::Ingested,
    ) -> Result<Written> {
        let part = PartRecord {
            part_number,
            size: ingested.size,
            etag: checksum::hex(&ingested.md5),
            last_modified: self.now(),
            checksum: ingested.checksum.clone(),
            extent: ingested.extent,
        };
        match self
            .meta
            .put_part(&upload.bucket, &upload.upload_id, &part)
            .await
        {
            Ok(()) => {
                if let Some(id) = part.extent.blob_id()
                    && let Err(e) = self
                        .store_for(upload.meta.storage_class.as_deref())
                        .publish(id)
                        .await
                {
                    tracing::warn!(blob = id.as_str(), error = %e, "publishing a part failed");
                }
                // A re-uploaded part may have replaced an older blob.
                self.garbage_queued();
                Ok(Written {
                    etag: part.etag,
                    size: part.size,
                    last_modified: part.last_modified,
                    checksum: part.checksum,
                    sse: upload.meta.sse.clone(),
                    version_id: None,
                    source_version_id: None,
                    expiration: None,
                })
            }
            Err(e) => {
                self.discard(std::slice::from_ref(&part.extent)).await;
                Err(e.into())
            }
        }
    }

    pub async fn upload_part_copy(&self, req: PartCopy) -> Result<Written> {
        check_part_number(req.part_number)?;
        let upload = self.upload(&req.bucket, &req.key, &req.upload_id).await?;
        let (src, source_version_id) = self
            .copy_source(&req.src_bucket, &req.src_key, req.src_version_id.as_deref())
            .await?;
        req.source_conditions
            .check_copy_source(&src.etag, src.last_modified)?;
        let range = match req.range {
            Some((first, last)) => {
                // S3's three answers: a range that ends before it starts is malformed; one
                // that starts past the end is invalid for the object; one that runs past
                // the end is not valid for its size.
                if last < first {
                    return Err(Error::InvalidArgument(
                        "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy".into(),
                    ));
                }
                if first >= src.size {
                    return Err(Error::InvalidRequest(
                        "The specified copy range is invalid for the source object size".into(),
                    ));
                }
                if last >= src.size {
                    return Err(Error::InvalidArgument(format!(
                        "Range specified is not valid for source object of size: {}",
                        src.size
                    )));
                }
                RangeSpec::FromTo {
                    first,
                    last: Some(last),
                }
                .resolve(src.size)?
            }
            None => ByteRange {
                start: 0,
                end: src.size,
                size: src.size,
            },
        };
        if range.len() > MAX_PUT_SIZE {
            return Err(Error::EntityTooLarge);
        }
        let body = self
            .plaintext_stream(&req.caller, &src, req.source_customer_key.as_ref(), range)
            .await?;
        let prepared = self
            .part_encryption(&req.caller, &upload, req.customer_key.as_ref())
            .await?;
        let (sealer, md5_etag) = sealer_for(prepared.as_ref(), req.part_number)?;
        let ingested = Ingest {
            blobs: self
                .store_for(upload.meta.storage_class.as_deref())
                .as_ref(),
            sealer,
            md5_etag,
            inline_max: self.inline_max_for(upload.meta.storage_class.as_deref()),
            declared_len: Some(range.len()),
            max_len: MAX_PUT_SIZE,
            checksums: ChecksumRequest {
                algorithm: Some(
                    upload
                        .meta
                        .checksum
                        .as_ref()
                        .map_or(checksum::DEFAULT_ALGORITHM, |c| c.algorithm),
                ),
                ..ChecksumRequest::default()
            },
        }
        .run(internal_body(body))
        .await?;
        let written = self.commit_part(&upload, req.part_number, ingested).await?;
        Ok(Written {
            source_version_id,
            ..written
        })
    }

    pub async fn complete_upload(&self, req: CompleteUpload) -> Result<Written> {
        let upload = match self.upload(&req.bucket, &req.key, &req.upload_id).await {
            Err(Error::NoSuchUpload(id)) => {
                return match self
                    .completed(&req.bucket, &req.key, &req.upload_id)
                    .await?
                {
                    Some(w) => Ok(w),
                    None => Err(Error::NoSuchUpload(id)),
                };
            }
            other => other?,
        };
        if req.parts.is_empty() {
            return Err(Error::MalformedXml(
                "You must specify at least one part".into(),
            ));
        }
        for w in req.parts.windows(2) {
            if w[0].part_number >= w[1].part_number {
                return Err(Error::InvalidPartOrder);
            }
        }
        // Read every stored part (at most 10,000) once.
        let mut stored: Vec<PartRecord> = Vec::new();
        let mut after = 0;
        loop {
            let ListPage { items, truncated } = self
                .meta
                .list_parts(&req.bucket, &req.upload_id, after, 1000)
                .await?;
            after = items.last().map_or(after, |p| p.part_number);
            stored.extend(items);
            if !truncated {
                break;
            }
        }
        let mut chosen = Vec::with_capacity(req.parts.len());
        for (i, want) in req.parts.iter().enumerate() {
            let etag = normalize_etag(&want.etag);
            let part = stored
                .iter()
                .find(|p| p.part_number == want.part_number && p.etag == etag)
                .ok_or(Error::InvalidPart(want.part_number))?;
            if i + 1 < req.parts.len() && part.size < MIN_PART_SIZE {
                return Err(Error::EntityTooSmall);
            }
            if let (Some(listed), Some(have)) = (&want.checksum, &part.checksum)
                && listed != &have.value
            {
                return Err(Error::InvalidPart(want.part_number));
            }
            chosen.push(part);
        }

        let size: u64 = chosen.iter().map(|p| p.size).sum();
        let etags: Vec<String> = chosen.iter().map(|p| p.etag.clone()).collect();
        let mut meta = upload.meta.clone();
        meta.checksum = match upload.meta.checksum.as_ref() {
            Some(requested) => {
                let mut digests = Vec::with_capacity(chosen.len());
                for p in &chosen {
                    let Some(c) = p
                        .checksum
                        .as_ref()
                        .filter(|c| c.algorithm == requested.algorithm)
                    else {
                        return Err(Error::InvalidRequest(format!(
                            "part {} has no {} checksum",
                            p.part_number,
                            requested.algorithm.as_str()
                        )));
                    };
                    digests.push((checksum::decode(c.algorithm, &c.value)?, p.size));
                }
                Some(checksum::combine_parts(
                    requested.algorithm,
                    &digests,
                    !requested.composite,
                )?)
            }
            // An upload that asked for no checksum: S3's default, a whole-object CRC64NVME
            // combined from the parts' (when every part has one: a client may have sent
            // its own algorithm with some parts).
            None => {
                let digests: Option<Vec<(Vec<u8>, u64)>> = chosen
                    .iter()
                    .map(|p| {
                        p.checksum
                            .as_ref()
                            .filter(|c| c.algorithm == checksum::DEFAULT_ALGORITHM)
                            .and_then(|c| checksum::decode(c.algorithm, &c.value).ok())
                            .map(|d| (d, p.size))
                    })
                    .collect();
                match digests {
                    Some(d) => Some(checksum::combine_parts(
                        checksum::DEFAULT_ALGORITHM,
                        &d,
                        true,
                    )?),
                    None => None,
                }
            }
        };
        meta.parts = chosen
            .iter()
            .map(|p| PartInfo {
                number: p.part_number,
                size: p.size,
                etag: p.etag.clone(),
                checksum: p.checksum.as_ref().map(|c| c.value.clone()),
            })
            .collect();
        let last_modified = self.now();
        meta.upload_id = Some(req.upload_id.clone());
        self.lock_completed_upload(&req.bucket, &mut meta, last_modified)
            .await?;
        let record = ObjectRecord {
            bucket: req.bucket.clone(),
            key: req.key.clone(),
            version_id: Some(crate::versions::new_version_id()),
            size,
            etag: checksum::multipart_etag(&etags)?,
            last_modified,
            meta,
            extents: chosen.iter().map(|p| p.extent.clone()).collect(),
        };
        let used: Vec<(u32, String)> = chosen
            .iter()
            .map(|p| (p.part_number, p.etag.clone()))
            .collect();
        let written = self
            .meta
            .complete_upload(&req.upload_id, &used, &record, &req.precondition)
            .await?;
        // Unused parts and any replaced object are garbage now.
        self.garbage_queued();
        self.dropped(written.replaced.as_ref());
        if upload.meta.sse.is_none() {
            // Unused parts of a plaintext upload were freed.
            self.meta.scrub_freed();
        }
        let expiration = self.expiration_of_record(&record).await;
        Ok(Written {
            etag: record.etag,
            size: record.size,
            last_modified: record.last_modified,
            checksum: record.meta.checksum,
            sse: record.meta.sse,
            version_id: crate::versions::written_version(&written),
            source_version_id: None,
            expiration,
        })
    }

    /// A completion repeated after it succeeded: the object it made, if it is still the
    /// key's current version (S3 answers 200 with the same ETag).
    async fn completed(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Option<Written>> {
        let (o, version_id) = match self.object_version_reported(bucket, key, None).await {
            Ok(found) => found,
            Err(Error::NoSuchKey(_) | Error::DeletedKey { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if o.meta.upload_id.as_deref() != Some(upload_id) {
            return Ok(None);
        }
        let expiration = self.expiration_of_record(&o).await;
        Ok(Some(Written {
            etag: o.etag,
            size: o.size,
            last_modified: o.last_modified,
            checksum: o.meta.checksum,
            sse: o.meta.sse,
            version_id,
            source_version_id: None,
            expiration,
        }))
    }

    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let upload = self.upload(bucket, key, upload_id).await?;
        self.meta.abort_upload(bucket, upload_id).await?;
        self.garbage_queued();
        if upload.meta.sse.is_none() {
            self.meta.scrub_freed();
        }
        Ok(())
    }

    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max_parts: usize,
    ) -> Result<(UploadRecord, ListPage<PartRecord>)> {
        let upload = self.upload(bucket, key, upload_id).await?;
        let page = self
            .meta
            .list_parts(bucket, upload_id, after, max_parts)
            .await?;
        Ok((upload, page))
    }
}
