//! Object operations.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use coffer_objects::Precondition;
use coffer_objects::{CopyObject, GetObject, Got, PutObject, Written};

use super::{R, lifecycle, lock};
use crate::S3Api;
use crate::convert::{
    self, MetaInput, checksum_request, checksum_type, declared_checksums, etag, fill_checksum,
    meta_input, parse_http_date, storage_class, tag_set, tagging_header, timestamp,
};
use crate::error::to_s3_error;

use super::sse::{self, customer_key, fill_sse, sse_request};

fn write_precondition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Precondition> {
    match (if_match, if_none_match) {
        (None, None) => Ok(Precondition::None),
        (None, Some(ETagCondition::Any)) => Ok(Precondition::NotExists),
        (Some(ETagCondition::ETag(e)), None) => Ok(Precondition::EtagMatches(e.value().to_owned())),
        _ => Err(s3_error!(
            NotImplemented,
            "A header you provided implies functionality that is not implemented"
        )),
    }
}

fn content_length(len: Option<i64>) -> S3Result<Option<u64>> {
    len.map(|l| {
        u64::try_from(l)
            .map_err(|_| s3_error!(InvalidArgument, "Content-Length must not be negative"))
    })
    .transpose()
}

pub async fn put(api: &S3Api, req: S3Request<PutObjectInput>) -> R<PutObjectOutput> {
    let caller = super::caller(&req)?;
    let customer = customer_key!(api, req)?;
    let encryption = sse_request!(req.input, customer)?;
    let written_by = super::acl::object_write_acl!(api, super::principal(&req)?, req.input)?;
    let i = req.input;
    let precondition = write_precondition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
    let checksums = checksum_request(declared_checksums!(i), &req.headers, req.trailing_headers)?;
    let mut meta = meta_input!(i).into_meta();
    meta.acl = written_by.acl;
    meta.owner = written_by.owner;
    let lock = lock::lock_request(
        i.object_lock_mode.as_ref(),
        i.object_lock_retain_until_date.as_ref(),
        i.object_lock_legal_hold_status.as_ref(),
    )?;
    let written = api
        .objects
        .put_object(
            PutObject {
                caller,
                bucket: i.bucket,
                key: i.key,
                meta,
                tags: tagging_header(i.tagging.as_deref())?,
                declared_len: content_length(i.content_length)?,
                checksums,
                precondition,
                sse: encryption,
                lock,
            },
            convert::body(i.body),
        )
        .await
        .map_err(to_s3_error)?;
    let mut out = PutObjectOutput {
        e_tag: Some(etag(&written.etag)),
        version_id: written.version_id.clone(),
        expiration: lifecycle::expiration_header(written.expiration.as_ref()),
        ..PutObjectOutput::default()
    };
    fill_checksum!(out, &written.checksum);
    out.checksum_type = written.checksum.as_ref().map(checksum_type);
    out.ssekms_encryption_context = fill_sse!(out, written.sse.as_ref());
    Ok(S3Response::new(out))
}

pub async fn post(api: &S3Api, mut req: S3Request<PostObjectInput>) -> R<PostObjectOutput> {
    let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
    // A form's fields stand for the headers of a PUT: the policy sees them as such
    // (`s3:x-amz-acl`, `s3:x-amz-server-side-encryption`, ...).
    let mut headers = req.headers.clone();
    let i = &req.input;
    for (name, value) in [
        ("x-amz-acl", i.acl.as_ref().map(|v| v.as_str())),
        (
            "x-amz-server-side-encryption",
            i.server_side_encryption.as_ref().map(|v| v.as_str()),
        ),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            i.ssekms_key_id.as_deref(),
        ),
        (
            "x-amz-storage-class",
            i.storage_class.as_ref().map(|v| v.as_str()),
        ),
    ] {
        if let Some(v) = value.and_then(|v| http::HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    let ask = crate::access::AccessRequest {
        access_key: access_key.as_deref(),
        operation: crate::operation::Operation::PostObject,
        bucket: Some(req.input.bucket.clone()),
        key: Some(req.input.key.clone()),
        headers: &headers,
        query: req.uri.query(),
    };
    api.access.authorize(&ask, &mut req.extensions).await?;
    let caller = super::caller(&req)?;
    let encryption = sse_request!(req.input, None)?;
    let writer = super::principal(&req)?.clone();
    let i = req.input;
    let checksums = checksum_request(declared_checksums!(i), &req.headers, None)?;
    let written_by = super::acl::object_write_acl!(api, &writer, i)?;
    let mut meta = meta_input!(i).into_meta();
    meta.acl = written_by.acl;
    meta.owner = written_by.owner;
    let written = api
        .objects
        .put_object(
            PutObject {
                caller,
                bucket: i.bucket,
                key: i.key,
                meta,
                tags: tagging_header(i.tagging.as_deref())?,
                declared_len: None,
                checksums,
                precondition: Precondition::None,
                sse: encryption,
                lock: Default::default(),
            },
            convert::body(i.body),
        )
        .await
        .map_err(to_s3_error)?;
    // s3s writes this value verbatim into the 201 XML body and the redirect's `etag=`
    // parameter, where AWS shows the quoted form.
    let mut out = PostObjectOutput {
        e_tag: Some(ETag::Strong(format!("\"{}\"", written.etag))),
        ..PostObjectOutput::default()
    };
    fill_checksum!(out, &written.checksum);
    // s3s writes no SSE headers for POST from the output; AWS sends them as on PUT.
    let mut resp = S3Response::new(out);
    sse::headers(written.sse.as_ref()).insert_into(&mut resp.headers);
    if let Some(v) = written
        .version_id
        .as_deref()
        .and_then(|v| http::HeaderValue::from_str(v).ok())
    {
        resp.headers.insert("x-amz-version-id", v);
    }
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
fn get_request(
    caller: coffer_objects::Caller,
    customer_key: Option<coffer_objects::CustomerKey>,
    bucket: String,
    key: String,
    version_id: Option<String>,
    range: Option<Range>,
    part_number: Option<i32>,
    headers: &http::HeaderMap,
) -> S3Result<GetObject> {
    // A read carries no encryption request (the object's own encryption applies); S3
    // refuses the header on GET and HEAD.
    if headers.contains_key("x-amz-server-side-encryption") {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-server-side-encryption header is not supported for this operation."
        ));
    }
    let part_number = part_number
        .map(|n| {
            u32::try_from(n).map_err(|_| {
                s3_error!(
                    InvalidArgument,
                    "Part number must be an integer between 1 and 10000, inclusive"
                )
            })
        })
        .transpose()?;
    Ok(GetObject {
        caller,
        customer_key,
        bucket,
        key,
        version_id,
        range: convert::range(range),
        part_number,
        conditions: convert::conditions(headers, ""),
    })
}

/// Fills the headers GET and HEAD share (their output types are distinct s3s DTOs with
/// the same field names).
macro_rules! describe_into {
    ($out:expr, $got:expr, $want_checksum:expr, $now:expr) => {{
        let m = &$got.object.meta;
        $out.accept_ranges = Some("bytes".into());
        $out.content_length = Some(i64::try_from($got.content_length()).unwrap_or(i64::MAX));
        $out.content_range = $got.range.map(|r| r.content_range());
        $out.e_tag = Some(etag(&$got.object.etag));
        $out.version_id = $got.version_id.clone();
        $out.last_modified = Some(timestamp($got.object.last_modified));
        $out.parts_count = $got
            .parts_count
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        $out.content_type = m.content_type.clone();
        $out.content_encoding = m.content_encoding.clone();
        $out.content_disposition = m.content_disposition.clone();
        $out.content_language = m.content_language.clone();
        $out.cache_control = m.cache_control.clone();
        $out.expires = m.expires.as_deref().and_then(parse_http_date);
        $out.metadata = (!m.user.is_empty()).then(|| {
            m.user
                .iter()
                .map(|(k, v)| (k.clone(), crate::rfc2047::encode(v)))
                .collect()
        });
        // AWS omits x-amz-storage-class for STANDARD.
        $out.storage_class = m.storage_class.clone().map(StorageClass::from);
        $out.website_redirect_location = m.website_redirect_location.clone();
        // A partial read carries no whole-object checksum.
        if $want_checksum && $got.range.is_none() {
            fill_checksum!($out, &m.checksum);
            $out.checksum_type = m.checksum.as_ref().map(checksum_type);
        }
        let _ = fill_sse!($out, m.sse.as_ref());
        (
            $out.object_lock_mode,
            $out.object_lock_retain_until_date,
            $out.object_lock_legal_hold_status,
        ) = lock::describe(m);
        $out.restore = super::archive::header(m, $now);
    }};
}

fn checksum_enabled(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case("ENABLED"))
}

pub async fn get(api: &S3Api, req: S3Request<GetObjectInput>) -> R<GetObjectOutput> {
    let caller = super::caller(&req)?;
    let customer = customer_key!(api, req)?;
    let i = req.input;
    let want_checksum = checksum_enabled(i.checksum_mode.as_ref());
    let get = get_request(
        caller,
        customer,
        i.bucket,
        i.key,
        i.version_id,
        i.range,
        i.part_number,
        &req.headers,
    )?;
    let got: Got = api
        .objects
        .get_object(&get, true)
        .await
        .map_err(to_s3_error)?;
    let mut out = GetObjectOutput::default();
    describe_into!(out, got, want_checksum, api.objects.now());
    out.expiration =
        lifecycle::read_expiration(api, &get.bucket, get.version_id.as_deref(), &got.object)
            .await?;
    out.tag_count = (!got.object.meta.tags.is_empty())
        .then(|| i32::try_from(got.object.meta.tags.len()).unwrap_or(i32::MAX));
    out.body = got.body.map(convert::object_body);
    Ok(S3Response::new(out))
}

pub async fn head(api: &S3Api, req: S3Request<HeadObjectInput>) -> R<HeadObjectOutput> {
    let caller = super::caller(&req)?;
    let customer = customer_key!(api, req)?;
    let i = req.input;
    let want_checksum = checksum_enabled(i.checksum_mode.as_ref());
    let get = get_request(
        caller,
        customer,
        i.bucket,
        i.key,
        i.version_id,
        i.range,
        i.part_number,
        &req.headers,
    )?;
    let got = api
        .objects
        .get_object(&get, false)
        .await
        .map_err(to_s3_error)?;
    let mut out = HeadObjectOutput::default();
    describe_into!(out, got, want_checksum, api.objects.now());
    out.expiration =
        lifecycle::read_expiration(api, &get.bucket, get.version_id.as_deref(), &got.object)
            .await?;
    let mut resp = S3Response::new(out);
    if got.range.is_some() {
        resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(resp)
}

/// The ETag a conditional delete names (`If-Match`); `If-Match: *` is not one.
fn delete_if_match(c: Option<&ETagCondition>) -> S3Result<Option<&str>> {
    match c {
        None => Ok(None),
        Some(ETagCondition::ETag(e)) => Ok(Some(e.value())),
        Some(ETagCondition::Any) => Err(s3_error!(
            NotImplemented,
            "A header you provided implies functionality that is not implemented"
        )),
    }
}

pub async fn delete(api: &S3Api, req: S3Request<DeleteObjectInput>) -> R<DeleteObjectOutput> {
    let i = req.input;
    let bypass = lock::bypass(api, &i.bucket, i.bypass_governance_retention).await?;
    let removal = api
        .objects
        .delete_object(
            &i.bucket,
            &i.key,
            i.version_id.as_deref(),
            bypass,
            delete_if_match(i.if_match.as_ref())?,
        )
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: removal.delete_marker.then_some(true),
        version_id: removal.version_id,
        ..DeleteObjectOutput::default()
    }))
}

pub async fn delete_many(
    api: &S3Api,
    req: S3Request<DeleteObjectsInput>,
) -> R<DeleteObjectsOutput> {
    let may_delete_versions = super::resolved(&req)?.may_delete_versions;
    let i = req.input;
    if i.delete.objects.len() > 1000 {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    api.objects.bucket(&i.bucket).await.map_err(to_s3_error)?;
    let bypass = lock::bypass(api, &i.bucket, i.bypass_governance_retention).await?;
    let quiet = i.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for o in i.delete.objects {
        // Naming a version needs s3:DeleteObjectVersion too, key by key, as on AWS.
        if o.version_id.is_some() && !may_delete_versions {
            errors.push(Error {
                code: Some("AccessDenied".to_owned()),
                key: Some(o.key),
                message: Some("Access Denied".to_owned()),
                version_id: o.version_id,
            });
            continue;
        }
        let result = api
            .objects
            .delete_object(
                &i.bucket,
                &o.key,
                o.version_id.as_deref(),
                bypass,
                o.e_tag.as_ref().map(|e| e.value()),
            )
            .await
            .map_err(to_s3_error);
        match result {
            Ok(_) if quiet => {}
            Ok(removal) => deleted.push(DeletedObject {
                key: Some(o.key),
                // A version named in the request is echoed; a delete marker (written, or
                // removed by id) is named as such.
                delete_marker: removal.delete_marker.then_some(true),
                delete_marker_version_id: removal
                    .delete_marker
                    .then(|| removal.version_id.clone())
                    .flatten(),
                version_id: o.version_id,
            }),
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_owned()),
                key: Some(o.key),
                message: e.message().map(str::to_owned),
                version_id: o.version_id,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..DeleteObjectsOutput::default()
    }))
}

fn directive(value: Option<&str>, name: &str) -> S3Result<bool> {
    match value {
        None | Some("COPY") => Ok(false),
        Some("REPLACE") => Ok(true),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Unknown {name}"),
        )),
    }
}

/// The bucket, key and version (`?versionId=`) a copy reads.
pub fn copy_source(src: &CopySource) -> S3Result<(String, String, Option<String>)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_deref().map(str::to_owned),
        )),
        _ => Err(s3_error!(
            NotImplemented,
            "Access point and outpost copy sources are not supported"
        )),
    }
}

pub async fn copy(api: &S3Api, req: S3Request<CopyObjectInput>) -> R<CopyObjectOutput> {
    let caller = super::caller(&req)?;
    let source_customer_key = customer_key!(api, req, copy_source)?;
    let customer = customer_key!(api, req)?;
    let encryption = sse_request!(req.input, customer)?;
    let writer = super::principal(&req)?.clone();
    let i = req.input;
    let (src_bucket, src_key, src_version_id) = copy_source(&i.copy_source)?;
    let lock = lock::lock_request(
        i.object_lock_mode.as_ref(),
        i.object_lock_retain_until_date.as_ref(),
        i.object_lock_legal_hold_status.as_ref(),
    )?;
    let replace_meta = directive(
        i.metadata_directive.as_ref().map(|d| d.as_str()),
        "metadata directive",
    )?;
    let replace_tags = directive(
        i.tagging_directive.as_ref().map(|d| d.as_str()),
        "tagging directive",
    )?;
    let replace_meta = replace_meta.then(|| {
        MetaInput {
            content_type: i.content_type,
            content_encoding: i.content_encoding,
            content_disposition: i.content_disposition,
            content_language: i.content_language,
            cache_control: i.cache_control,
            expires: i.expires,
            website_redirect_location: i.website_redirect_location,
            metadata: i.metadata,
            storage_class: None,
        }
        .into_meta()
    });
    let replace_tags = if replace_tags {
        Some(tagging_header(i.tagging.as_deref())?)
    } else {
        None
    };
    let checksum_algorithm = match i.checksum_algorithm {
        Some(a) => Some(
            coffer_objects::ChecksumAlgorithm::parse(a.as_str()).ok_or_else(|| {
                s3_error!(
                    InvalidRequest,
                    "Value for x-amz-checksum-algorithm header is invalid."
                )
            })?,
        ),
        None => None,
    };
    let written_by = super::acl::object_write_acl!(api, &writer, i)?;
    let written: Written = api
        .objects
        .copy_object(CopyObject {
            caller,
            source_customer_key,
            sse: encryption,
            src_bucket,
            src_key,
            src_version_id,
            dst_bucket: i.bucket,
            dst_key: i.key,
            replace_meta,
            replace_tags,
            storage_class: i.storage_class.map(|c| c.as_str().to_owned()),
            source_conditions: convert::conditions(&req.headers, "x-amz-copy-source-"),
            precondition: None,
            checksum_algorithm,
            acl: written_by.acl,
            owner: written_by.owner,
            lock,
        })
        .await
        .map_err(to_s3_error)?;
    let mut result = CopyObjectResult {
        e_tag: Some(etag(&written.etag)),
        last_modified: Some(timestamp(written.last_modified)),
        ..CopyObjectResult::default()
    };
    fill_checksum!(result, &written.checksum);
    result.checksum_type = written.checksum.as_ref().map(checksum_type);
    let mut out = CopyObjectOutput {
        copy_object_result: Some(result),
        copy_source_version_id: written.source_version_id.clone(),
        version_id: written.version_id.clone(),
        expiration: lifecycle::expiration_header(written.expiration.as_ref()),
        ..CopyObjectOutput::default()
    };
    out.ssekms_encryption_context = fill_sse!(out, written.sse.as_ref());
    Ok(S3Response::new(out))
}

pub async fn attributes(
    api: &S3Api,
    req: S3Request<GetObjectAttributesInput>,
) -> R<GetObjectAttributesOutput> {
    let i = req.input;
    let (o, version_id) = api
        .objects
        .object_attributes(&i.bucket, &i.key, i.version_id.as_deref())
        .await
        .map_err(to_s3_error)?;
    // Clients send the list as one comma-separated header value.
    let wants = |name: &str| {
        i.object_attributes
            .iter()
            .flat_map(|a| a.as_str().split(','))
            .any(|a| a.trim().eq_ignore_ascii_case(name))
    };
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(timestamp(o.last_modified)),
        version_id,
        ..GetObjectAttributesOutput::default()
    };
    if wants("ETag") {
        out.e_tag = Some(etag(&o.etag));
    }
    if wants("ObjectSize") {
        out.object_size = Some(i64::try_from(o.size).unwrap_or(i64::MAX));
    }
    if wants("StorageClass") {
        out.storage_class = Some(StorageClass::from(storage_class(&o.meta)));
    }
    if wants("Checksum")
        && let Some(c) = &o.meta.checksum
    {
        let mut cs = Checksum {
            checksum_type: Some(checksum_type(c)),
            ..Checksum::default()
        };
        fill_checksum!(cs, Some(c));
        out.checksum = Some(cs);
    }
    if wants("ObjectParts") && !o.meta.parts.is_empty() {
        let marker = i.part_number_marker.unwrap_or(0).max(0);
        let max = i
            .max_parts
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(1000)
            .min(1000);
        let after: Vec<_> = o
            .meta
            .parts
            .iter()
            .filter(|p| i64::from(p.number) > i64::from(marker))
            .collect();
        let truncated = after.len() > max;
        let algorithm = o.meta.checksum.as_ref().map(|c| c.algorithm);
        let parts: Vec<ObjectPart> = after
            .iter()
            .take(max)
            .map(|p| {
                let mut part = ObjectPart {
                    part_number: Some(i32::try_from(p.number).unwrap_or(i32::MAX)),
                    size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
                    ..ObjectPart::default()
                };
                if let (Some(a), Some(v)) = (algorithm, &p.checksum) {
                    let c = coffer_objects::Checksum {
                        algorithm: a,
                        value: v.clone(),
                        composite: false,
                    };
                    fill_checksum!(part, Some(&c));
                }
                part
            })
            .collect();
        let next = parts.last().and_then(|p| p.part_number);
        out.object_parts = Some(GetObjectAttributesParts {
            is_truncated: Some(truncated),
            max_parts: Some(i32::try_from(max).unwrap_or(1000)),
            next_part_number_marker: if truncated { next } else { None },
            part_number_marker: Some(marker),
            parts: Some(parts),
            total_parts_count: Some(i32::try_from(o.meta.parts.len()).unwrap_or(i32::MAX)),
        });
    }
    let mut resp = S3Response::new(out);
    resp.extensions.insert(crate::front::UnquotedEtag);
    Ok(resp)
}

pub async fn get_tags(
    api: &S3Api,
    req: S3Request<GetObjectTaggingInput>,
) -> R<GetObjectTaggingOutput> {
    let i = req.input;
    let (tags, version_id) = api
        .objects
        .get_object_tags(&i.bucket, &i.key, i.version_id.as_deref())
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: tag_set(&tags),
        version_id,
    }))
}

pub async fn put_tags(
    api: &S3Api,
    req: S3Request<PutObjectTaggingInput>,
) -> R<PutObjectTaggingOutput> {
    let i = req.input;
    let mut tags = Vec::with_capacity(i.tagging.tag_set.len());
    for t in i.tagging.tag_set {
        match (t.key, t.value) {
            (Some(k), Some(v)) => tags.push((k, v)),
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema"
                ));
            }
        }
    }
    let version_id = api
        .objects
        .put_object_tags(&i.bucket, &i.key, i.version_id.as_deref(), &tags)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
}

pub async fn delete_tags(
    api: &S3Api,
    req: S3Request<DeleteObjectTaggingInput>,
) -> R<DeleteObjectTaggingOutput> {
    let i = req.input;
    let version_id = api
        .objects
        .put_object_tags(&i.bucket, &i.key, i.version_id.as_deref(), &[])
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::with_status(
        DeleteObjectTaggingOutput { version_id },
        http::StatusCode::NO_CONTENT,
    ))
}
