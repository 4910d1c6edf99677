//! ListObjectsV2, ListObjects (v1) and ListObjectVersions.

use base64_simd::URL_SAFE_NO_PAD as TOKEN;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use coffer_objects::ObjectSummary;
use coffer_objects::{ListQuery, Listing, VersionQuery, VersionSummary};

use super::R;
use crate::S3Api;
use crate::convert::{checksum_algorithm, etag, storage_class, timestamp};
use crate::error::to_s3_error;

fn max_keys(m: Option<i32>) -> S3Result<usize> {
    match m {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(1000).min(1000)),
    }
}

/// `encoding-type=url`: keys, prefixes and delimiters are percent-encoded in the reply
/// (everything but unreserved characters and `/`).
struct Encoder(bool);

impl Encoder {
    fn new(t: Option<&EncodingType>) -> S3Result<Self> {
        match t.map(EncodingType::as_str) {
            None => Ok(Self(false)),
            Some(t) if t.eq_ignore_ascii_case("url") => Ok(Self(true)),
            Some(_) => Err(s3_error!(
                InvalidArgument,
                "Invalid Encoding Method specified in Request"
            )),
        }
    }

    fn enc(&self, s: &str) -> String {
        if self.0 {
            coffer_sigv4_like_encode(s)
        } else {
            s.to_owned()
        }
    }

    fn opt(&self, s: Option<&String>) -> Option<String> {
        s.map(|s| self.enc(s))
    }
}

fn coffer_sigv4_like_encode(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    utf8_percent_encode(s, SET).to_string()
}

/// The checksum fields of a listing entry.
fn checksum_fields(
    meta: &coffer_objects::ObjectMeta,
) -> (Option<Vec<ChecksumAlgorithm>>, Option<ChecksumType>) {
    (
        meta.checksum
            .as_ref()
            .map(|c| vec![checksum_algorithm(c.algorithm)]),
        meta.checksum.as_ref().map(crate::convert::checksum_type),
    )
}

/// The owner a listing shows for an entry: its writer where the writer kept ownership,
/// else the bucket's owner.
fn owner_of(meta: &coffer_objects::ObjectMeta, bucket_owner: &Owner) -> Owner {
    match &meta.owner {
        Some(id) => Owner {
            display_name: None,
            id: Some(id.clone()),
        },
        None => bucket_owner.clone(),
    }
}

/// The bucket owner as listings show it (AWS no longer returns display names).
async fn listing_owner(api: &S3Api, bucket: &str) -> S3Result<Owner> {
    Ok(Owner {
        display_name: None,
        id: Some(super::acl::bucket_owner(api, bucket).await?),
    })
}

fn object_entry(o: ObjectSummary, enc: &Encoder, with_owner: Option<&Owner>) -> Object {
    let (checksum_algorithm, checksum_type) = checksum_fields(&o.meta);
    let owner = with_owner.map(|b| owner_of(&o.meta, b));
    Object {
        checksum_algorithm,
        checksum_type,
        e_tag: Some(etag(&o.etag)),
        key: Some(enc.enc(&o.key)),
        last_modified: Some(timestamp(o.last_modified)),
        owner,
        restore_status: None,
        size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
        storage_class: Some(ObjectStorageClass::from(storage_class(&o.meta))),
    }
}

fn prefixes(common_prefixes: &[String], enc: &Encoder) -> Option<Vec<CommonPrefix>> {
    (!common_prefixes.is_empty()).then(|| {
        common_prefixes
            .iter()
            .map(|p| CommonPrefix {
                prefix: Some(enc.enc(p)),
            })
            .collect()
    })
}

/// Lists one page of `bucket`; an empty delimiter or marker counts as none, as in AWS.
async fn list(
    api: &S3Api,
    bucket: &str,
    prefix: Option<&String>,
    delimiter: Option<&String>,
    after: Option<&String>,
    max_keys: usize,
) -> S3Result<Listing> {
    api.objects
        .list_objects(
            bucket,
            &ListQuery {
                prefix: prefix.cloned().unwrap_or_default(),
                delimiter: delimiter.filter(|d| !d.is_empty()).cloned(),
                after: after.filter(|m| !m.is_empty()).cloned(),
                max_keys,
            },
        )
        .await
        .map_err(to_s3_error)
}

pub async fn objects_v2(api: &S3Api, req: S3Request<ListObjectsV2Input>) -> R<ListObjectsV2Output> {
    let i = req.input;
    let owner = listing_owner(api, &i.bucket).await?;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let after = match &i.continuation_token {
        Some(t) => Some(
            TOKEN
                .decode_to_vec(t.as_bytes())
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "The continuation token provided is incorrect"
                    )
                })?,
        ),
        // StartAfter counts only when no continuation token is given.
        None => i.start_after.clone().filter(|s| !s.is_empty()),
    };
    let listing = list(
        api,
        &i.bucket,
        i.prefix.as_ref(),
        i.delimiter.as_ref(),
        after.as_ref(),
        max,
    )
    .await?;
    let with_owner = i.fetch_owner.unwrap_or(false).then_some(&owner);
    let common_prefixes = prefixes(&listing.common_prefixes, &enc);
    let key_count = listing.objects.len() + listing.common_prefixes.len();
    let next = listing
        .next
        .as_ref()
        .map(|n| TOKEN.encode_to_string(n.as_bytes()));
    let contents: Vec<Object> = listing
        .objects
        .into_iter()
        .map(|o| object_entry(o, &enc, with_owner))
        .collect();
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(enc.enc(i.prefix.as_deref().unwrap_or(""))),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        key_count: Some(i32::try_from(key_count).unwrap_or(i32::MAX)),
        continuation_token: i.continuation_token,
        is_truncated: Some(listing.truncated),
        next_continuation_token: next,
        contents: (!contents.is_empty()).then_some(contents),
        common_prefixes,
        delimiter: enc.opt(i.delimiter.as_ref()),
        encoding_type: i.encoding_type,
        start_after: enc.opt(i.start_after.as_ref()),
        request_charged: None,
    }))
}

pub async fn objects_v1(api: &S3Api, req: S3Request<ListObjectsInput>) -> R<ListObjectsOutput> {
    let i = req.input;
    let owner = listing_owner(api, &i.bucket).await?;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let listing = list(
        api,
        &i.bucket,
        i.prefix.as_ref(),
        i.delimiter.as_ref(),
        i.marker.as_ref(),
        max,
    )
    .await?;
    let common_prefixes = prefixes(&listing.common_prefixes, &enc);
    // NextMarker is returned only with a delimiter, as AWS does.
    let next_marker = if i.delimiter.is_some() {
        enc.opt(listing.next.as_ref())
    } else {
        None
    };
    let contents: Vec<Object> = listing
        .objects
        .into_iter()
        .map(|o| object_entry(o, &enc, Some(&owner)))
        .collect();
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: Some(enc.enc(i.prefix.as_deref().unwrap_or(""))),
        marker: Some(enc.enc(i.marker.as_deref().unwrap_or(""))),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(listing.truncated),
        contents: (!contents.is_empty()).then_some(contents),
        common_prefixes,
        delimiter: enc.opt(i.delimiter.as_ref()),
        next_marker,
        encoding_type: i.encoding_type,
        request_charged: None,
    }))
}

pub async fn versions(
    api: &S3Api,
    req: S3Request<ListObjectVersionsInput>,
) -> R<ListObjectVersionsOutput> {
    let i = req.input;
    let owner = listing_owner(api, &i.bucket).await?;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let listing = api
        .objects
        .list_versions(
            &i.bucket,
            &VersionQuery {
                prefix: i.prefix.clone().unwrap_or_default(),
                delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
                key_marker: i.key_marker.clone().filter(|k| !k.is_empty()),
                version_id_marker: i.version_id_marker.clone(),
                max_keys: max,
            },
        )
        .await
        .map_err(to_s3_error)?;
    let common_prefixes = prefixes(&listing.common_prefixes, &enc);
    let mut versions = Vec::new();
    let mut delete_markers = Vec::new();
    for v in listing.versions {
        let is_latest = v.is_latest;
        match v.version {
            VersionSummary::Object(o) => {
                let (checksum_algorithm, checksum_type) = checksum_fields(&o.meta);
                versions.push(ObjectVersion {
                    checksum_algorithm,
                    checksum_type,
                    e_tag: Some(etag(&o.etag)),
                    is_latest: Some(is_latest),
                    key: Some(enc.enc(&o.key)),
                    last_modified: Some(timestamp(o.last_modified)),
                    owner: Some(owner_of(&o.meta, &owner)),
                    restore_status: None,
                    size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
                    storage_class: Some(ObjectVersionStorageClass::from(storage_class(&o.meta))),
                    version_id: Some(o.version_id.unwrap_or_else(|| "null".into())),
                })
            }
            VersionSummary::Marker(m) => delete_markers.push(DeleteMarkerEntry {
                is_latest: Some(is_latest),
                key: Some(enc.enc(&m.key)),
                last_modified: Some(timestamp(m.last_modified)),
                owner: Some(owner.clone()),
                version_id: Some(m.version_id.unwrap_or_else(|| "null".into())),
            }),
        }
    }
    Ok(S3Response::new(ListObjectVersionsOutput {
        common_prefixes,
        delete_markers: (!delete_markers.is_empty()).then_some(delete_markers),
        delimiter: enc.opt(i.delimiter.as_ref()),
        encoding_type: i.encoding_type,
        is_truncated: Some(listing.truncated),
        key_marker: Some(enc.enc(i.key_marker.as_deref().unwrap_or(""))),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        name: Some(i.bucket),
        next_key_marker: enc.opt(listing.next_key_marker.as_ref()),
        next_version_id_marker: listing.next_version_id_marker,
        prefix: Some(enc.enc(i.prefix.as_deref().unwrap_or(""))),
        request_charged: None,
        version_id_marker: i.version_id_marker,
        versions: (!versions.is_empty()).then_some(versions),
    }))
}
