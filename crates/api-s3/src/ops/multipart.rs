//! Multipart upload operations.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use coffer_objects::{ChecksumAlgorithm, UploadRecord};
use coffer_objects::{
    CompletePart, CompleteUpload, CreateUpload, PartCopy, UploadPart, UploadQuery,
};

use super::object::copy_source;
use super::{R, owner, principal};
use crate::S3Api;
use crate::convert::{
    self, checksum_algorithm, checksum_request, checksum_type, declared_checksums, etag,
    fill_checksum, meta_input, tagging_header, timestamp,
};
use crate::error::to_s3_error;

use super::sse::{customer_key, fill_sse, fill_sse_kms, sse_request};

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n).map_err(|_| {
        s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        )
    })
}

pub async fn create(
    api: &S3Api,
    req: S3Request<CreateMultipartUploadInput>,
) -> R<CreateMultipartUploadOutput> {
    let p = principal(&req)?;
    let initiator = p.account.id.clone();
    let caller = super::caller(&req)?;
    let customer = customer_key!(api, req)?;
    let encryption = sse_request!(req.input, customer)?;
    let writer = super::principal(&req)?.clone();
    let i = req.input;
    let algorithm = match &i.checksum_algorithm {
        Some(a) => Some(ChecksumAlgorithm::parse(a.as_str()).ok_or_else(|| {
            s3_error!(
                InvalidRequest,
                "Checksum algorithm provided is unsupported."
            )
        })?),
        None => None,
    };
    let full_object = match i.checksum_type.as_ref().map(ChecksumType::as_str) {
        None | Some("COMPOSITE") => false,
        Some("FULL_OBJECT") => true,
        Some(_) => {
            return Err(s3_error!(
                InvalidRequest,
                "Value for x-amz-checksum-type header is invalid."
            ));
        }
    };
    // FULL_OBJECT without an algorithm means CRC64NVME, as on AWS.
    let algorithm = match (algorithm, full_object) {
        (None, true) => Some(ChecksumAlgorithm::Crc64Nvme),
        (a, _) => a,
    };
    let written_by = super::acl::object_write_acl!(api, &writer, i)?;
    let mut meta = meta_input!(i).into_meta();
    meta.acl = written_by.acl;
    meta.owner = written_by.owner;
    let lock = super::lock::lock_request(
        i.object_lock_mode.as_ref(),
        i.object_lock_retain_until_date.as_ref(),
        i.object_lock_legal_hold_status.as_ref(),
    )?;
    let up = api
        .objects
        .create_upload(CreateUpload {
            caller,
            sse: encryption,
            initiator,
            bucket: i.bucket.clone(),
            key: i.key.clone(),
            meta,
            tags: tagging_header(i.tagging.as_deref())?,
            checksum_algorithm: algorithm,
            full_object_checksum: full_object,
            lock,
        })
        .await
        .map_err(to_s3_error)?;
    let (abort_date, abort_rule_id) = abort_date(api, &up).await?;
    let mut out = CreateMultipartUploadOutput {
        abort_date,
        abort_rule_id,
        bucket: Some(up.bucket),
        key: Some(up.key),
        upload_id: Some(up.upload_id),
        checksum_algorithm: algorithm.map(checksum_algorithm),
        checksum_type: up.meta.checksum.as_ref().map(checksum_type),
        ..CreateMultipartUploadOutput::default()
    };
    out.ssekms_encryption_context = fill_sse!(out, up.meta.sse.as_ref());
    Ok(S3Response::new(out))
}

/// `x-amz-abort-date` and `x-amz-abort-rule-id` of an upload a lifecycle rule will abort.
async fn abort_date(
    api: &S3Api,
    up: &coffer_objects::UploadRecord,
) -> S3Result<(Option<Timestamp>, Option<String>)> {
    let at = api
        .objects
        .abort_date_of(&up.bucket, &up.key, up.initiated)
        .await
        .map_err(to_s3_error)?;
    Ok(match at {
        Some((at, rule)) => (Some(timestamp(at)), Some(rule)),
        None => (None, None),
    })
}

pub async fn upload_part(api: &S3Api, req: S3Request<UploadPartInput>) -> R<UploadPartOutput> {
    let caller = super::caller(&req)?;
    let customer_key = customer_key!(api, req)?;
    let i = req.input;
    let checksums = checksum_request(declared_checksums!(i), &req.headers, req.trailing_headers)?;
    let declared_len = i
        .content_length
        .map(|l| {
            u64::try_from(l)
                .map_err(|_| s3_error!(InvalidArgument, "Content-Length must not be negative"))
        })
        .transpose()?;
    let written = api
        .objects
        .upload_part(
            UploadPart {
                caller,
                customer_key,
                bucket: i.bucket,
                key: i.key,
                upload_id: i.upload_id,
                part_number: part_number(i.part_number)?,
                declared_len,
                checksums,
            },
            convert::body(i.body),
        )
        .await
        .map_err(to_s3_error)?;
    let mut out = UploadPartOutput {
        e_tag: Some(etag(&written.etag)),
        ..UploadPartOutput::default()
    };
    fill_checksum!(out, &written.checksum);
    let _ = fill_sse!(out, written.sse.as_ref());
    Ok(S3Response::new(out))
}

fn copy_range(r: Option<&str>) -> S3Result<Option<(u64, u64)>> {
    let Some(r) = r else { return Ok(None) };
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (first, last) = r
        .strip_prefix("bytes=")
        .and_then(|s| s.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = first.parse().map_err(|_| bad())?;
    let last: u64 = last.parse().map_err(|_| bad())?;
    Ok(Some((first, last)))
}

pub async fn upload_part_copy(
    api: &S3Api,
    req: S3Request<UploadPartCopyInput>,
) -> R<UploadPartCopyOutput> {
    let caller = super::caller(&req)?;
    let customer_key = customer_key!(api, req)?;
    let source_customer_key = customer_key!(api, req, copy_source)?;
    let i = req.input;
    let (src_bucket, src_key, src_version_id) = copy_source(&i.copy_source)?;
    let written = api
        .objects
        .upload_part_copy(PartCopy {
            caller,
            customer_key,
            source_customer_key,
            bucket: i.bucket,
            key: i.key,
            upload_id: i.upload_id,
            part_number: part_number(i.part_number)?,
            src_bucket,
            src_key,
            src_version_id,
            range: copy_range(i.copy_source_range.as_deref())?,
            source_conditions: convert::conditions(&req.headers, "x-amz-copy-source-"),
        })
        .await
        .map_err(to_s3_error)?;
    let mut result = CopyPartResult {
        e_tag: Some(etag(&written.etag)),
        last_modified: Some(timestamp(written.last_modified)),
        ..CopyPartResult::default()
    };
    fill_checksum!(result, &written.checksum);
    let mut out = UploadPartCopyOutput {
        copy_part_result: Some(result),
        copy_source_version_id: written.source_version_id.clone(),
        ..UploadPartCopyOutput::default()
    };
    let _ = fill_sse!(out, written.sse.as_ref());
    Ok(S3Response::new(out))
}

/// Served through the custom route (`route.rs`), which parses the body itself: s3s's parser
/// refuses the part checksums of the algorithms S3 added in 2025.
pub async fn complete(
    objects: &coffer_objects::Objects,
    req: S3Request<CompleteMultipartUploadInput>,
) -> R<CompleteMultipartUploadOutput> {
    let i = req.input;
    let precondition = match (&i.if_match, &i.if_none_match) {
        (None, None) => coffer_objects::Precondition::None,
        (None, Some(ETagCondition::Any)) => coffer_objects::Precondition::NotExists,
        (Some(ETagCondition::ETag(e)), None) => {
            coffer_objects::Precondition::EtagMatches(e.value().to_owned())
        }
        _ => {
            return Err(s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented"
            ));
        }
    };
    let mut parts = Vec::new();
    for p in i.multipart_upload.and_then(|m| m.parts).unwrap_or_default() {
        let (Some(n), Some(e)) = (p.part_number, p.e_tag) else {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        };
        let checksum = p
            .checksum_crc32
            .or(p.checksum_crc32c)
            .or(p.checksum_crc64nvme)
            .or(p.checksum_sha1)
            .or(p.checksum_sha256.map(crate::wide_checksum::uncarry_value));
        parts.push(CompletePart {
            part_number: part_number(n)?,
            etag: e.value().to_owned(),
            checksum,
        });
    }
    let written = objects
        .complete_upload(CompleteUpload {
            bucket: i.bucket.clone(),
            key: i.key.clone(),
            upload_id: i.upload_id,
            parts,
            precondition,
        })
        .await
        .map_err(to_s3_error)?;
    let mut out = CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag(&written.etag)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        version_id: written.version_id.clone(),
        expiration: super::lifecycle::expiration_header(written.expiration.as_ref()),
        ..CompleteMultipartUploadOutput::default()
    };
    fill_checksum!(out, &written.checksum);
    out.checksum_type = written.checksum.as_ref().map(checksum_type);
    fill_sse_kms!(out, written.sse.as_ref());
    Ok(S3Response::new(out))
}

pub async fn abort(
    api: &S3Api,
    req: S3Request<AbortMultipartUploadInput>,
) -> R<AbortMultipartUploadOutput> {
    api.objects
        .abort_upload(&req.input.bucket, &req.input.key, &req.input.upload_id)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::with_status(
        AbortMultipartUploadOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

fn initiator(up: &UploadRecord, o: &Owner) -> Initiator {
    // Only account roots exist so far: the initiator is the owning account.
    let _ = up;
    Initiator {
        display_name: o.display_name.clone(),
        id: o.id.clone(),
    }
}

pub async fn list_parts(api: &S3Api, req: S3Request<ListPartsInput>) -> R<ListPartsOutput> {
    let owner = owner(principal(&req)?);
    let i = req.input;
    let after = u32::try_from(i.part_number_marker.unwrap_or(0)).unwrap_or(0);
    let max = i
        .max_parts
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(1000)
        .min(1000);
    let (up, page) = api
        .objects
        .list_parts(&i.bucket, &i.key, &i.upload_id, after, max)
        .await
        .map_err(to_s3_error)?;
    let next = page
        .items
        .last()
        .map(|p| i32::try_from(p.part_number).unwrap_or(i32::MAX));
    let parts: Vec<Part> = page
        .items
        .iter()
        .map(|p| {
            let mut part = Part {
                e_tag: Some(etag(&p.etag)),
                last_modified: Some(timestamp(p.last_modified)),
                part_number: Some(i32::try_from(p.part_number).unwrap_or(i32::MAX)),
                size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
                ..Part::default()
            };
            fill_checksum!(part, &p.checksum);
            part
        })
        .collect();
    let (abort_date, abort_rule_id) = abort_date(api, &up).await?;
    Ok(S3Response::new(ListPartsOutput {
        abort_date,
        abort_rule_id,
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        checksum_algorithm: up
            .meta
            .checksum
            .as_ref()
            .map(|c| checksum_algorithm(c.algorithm)),
        checksum_type: up.meta.checksum.as_ref().map(checksum_type),
        initiator: Some(initiator(&up, &owner)),
        owner: Some(owner),
        is_truncated: Some(page.truncated),
        max_parts: Some(i32::try_from(max).unwrap_or(1000)),
        next_part_number_marker: if page.truncated { next } else { None },
        part_number_marker: i.part_number_marker,
        parts: Some(parts),
        storage_class: Some(StorageClass::from(crate::convert::storage_class(&up.meta))),
        ..ListPartsOutput::default()
    }))
}

pub async fn list_uploads(
    api: &S3Api,
    req: S3Request<ListMultipartUploadsInput>,
) -> R<ListMultipartUploadsOutput> {
    let owner = owner(principal(&req)?);
    let i = req.input;
    let max = i
        .max_uploads
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(1000)
        .min(1000);
    let listing = api
        .objects
        .list_uploads(
            &i.bucket,
            &UploadQuery {
                prefix: i.prefix.clone().unwrap_or_default(),
                delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
                key_marker: i.key_marker.clone().filter(|k| !k.is_empty()),
                upload_id_marker: i.upload_id_marker.clone().filter(|u| !u.is_empty()),
                max_uploads: max,
            },
        )
        .await
        .map_err(to_s3_error)?;
    let uploads: Vec<MultipartUpload> = listing
        .uploads
        .iter()
        .map(|u| MultipartUpload {
            checksum_algorithm: u
                .meta
                .checksum
                .as_ref()
                .map(|c| checksum_algorithm(c.algorithm)),
            checksum_type: u.meta.checksum.as_ref().map(checksum_type),
            initiated: Some(timestamp(u.initiated)),
            initiator: Some(initiator(u, &owner)),
            key: Some(u.key.clone()),
            owner: Some(owner.clone()),
            storage_class: Some(StorageClass::from(crate::convert::storage_class(&u.meta))),
            upload_id: Some(u.upload_id.clone()),
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        common_prefixes: (!listing.common_prefixes.is_empty()).then(|| {
            listing
                .common_prefixes
                .iter()
                .map(|p| CommonPrefix {
                    prefix: Some(p.clone()),
                })
                .collect()
        }),
        delimiter: i.delimiter,
        encoding_type: i.encoding_type,
        is_truncated: Some(listing.truncated),
        key_marker: i.key_marker,
        max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
        next_key_marker: listing.next_key_marker,
        next_upload_id_marker: listing.next_upload_id_marker,
        prefix: i.prefix,
        request_charged: None,
        upload_id_marker: i.upload_id_marker,
        uploads: Some(uploads),
    }))
}
