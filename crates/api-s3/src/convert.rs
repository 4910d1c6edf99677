//! Conversions between s3s DTOs and domain types.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::HeaderMap;
use s3s::dto::{self, ETag, StreamingBlob, Timestamp, TimestampFormat};
use s3s::{S3Error, S3ErrorCode, S3Result, TrailingHeaders};

use coffer_objects::{BodyStream, ChecksumRequest, Conditions, ObjectStream, RangeSpec};
use coffer_objects::{Checksum, ChecksumAlgorithm, ObjectMeta};

pub fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

pub fn timestamp(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::from(t)
}

/// Content headers and metadata of a write.
pub struct MetaInput {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
    pub website_redirect_location: Option<String>,
    pub metadata: Option<dto::Metadata>,
    pub storage_class: Option<dto::StorageClass>,
}

impl MetaInput {
    pub fn into_meta(self) -> ObjectMeta {
        let user = self
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), crate::rfc2047::decode(&v)))
            .collect();
        ObjectMeta {
            content_type: self.content_type,
            content_encoding: self.content_encoding.as_deref().and_then(stored_encoding),
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires.as_ref().and_then(http_date),
            website_redirect_location: self.website_redirect_location,
            user,
            storage_class: self.storage_class.map(|c| c.as_str().to_owned()),
            ..ObjectMeta::default()
        }
    }
}

/// The `Content-Encoding` an object keeps: without `aws-chunked`, which describes how the
/// request's body was framed, not the object (`gzip,aws-chunked` is stored as `gzip`, a
/// lone `aws-chunked` as none), as S3 does.
fn stored_encoding(v: &str) -> Option<String> {
    let kept: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// `Mon, 02 Jan 2006 15:04:05 GMT`
pub fn http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

pub fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// The declared checksum values of a request, one field per algorithm.
#[derive(Default)]
pub struct DeclaredChecksums {
    pub algorithm: Option<dto::ChecksumAlgorithm>,
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub content_md5: Option<String>,
}

/// The declared checksums of an input DTO (every write input names them alike).
macro_rules! declared_checksums {
    ($i:expr) => {
        $crate::convert::DeclaredChecksums {
            algorithm: $i.checksum_algorithm,
            crc32: $i.checksum_crc32,
            crc32c: $i.checksum_crc32c,
            crc64nvme: $i.checksum_crc64nvme,
            sha1: $i.checksum_sha1,
            sha256: $i.checksum_sha256,
            content_md5: $i.content_md5,
        }
    };
}
pub(crate) use declared_checksums;

/// The content headers and metadata of a write input DTO.
macro_rules! meta_input {
    ($i:expr) => {
        $crate::convert::MetaInput {
            content_type: $i.content_type,
            content_encoding: $i.content_encoding,
            content_disposition: $i.content_disposition,
            content_language: $i.content_language,
            cache_control: $i.cache_control,
            expires: $i.expires,
            website_redirect_location: $i.website_redirect_location,
            metadata: $i.metadata,
            storage_class: $i.storage_class,
        }
    };
}
pub(crate) use meta_input;

/// What to check and store: at most one declared checksum (header or trailer), plus
/// Content-MD5.
pub fn checksum_request(
    d: DeclaredChecksums,
    headers: &HeaderMap,
    trailers: Option<TrailingHeaders>,
) -> S3Result<ChecksumRequest> {
    let declared: Vec<(ChecksumAlgorithm, String)> = [
        (ChecksumAlgorithm::Crc32, d.crc32),
        (ChecksumAlgorithm::Crc32c, d.crc32c),
        (ChecksumAlgorithm::Crc64Nvme, d.crc64nvme),
        (ChecksumAlgorithm::Sha1, d.sha1),
        (ChecksumAlgorithm::Sha256, d.sha256),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.map(|v| (a, v)))
    .chain(crate::wide_checksum::declared(headers))
    .collect();
    if declared.len() > 1 {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    // The algorithm the SDK says it used (s3s's DTOs have only `x-amz-checksum-algorithm`,
    // or the trailer's algorithm, in that field).
    let named = match headers.get("x-amz-sdk-checksum-algorithm") {
        Some(v) => Some(v.to_str().unwrap_or("").trim()),
        None => d.algorithm.as_ref().map(|a| a.as_str()),
    };
    let sdk_algorithm = match named {
        Some(a) => Some(ChecksumAlgorithm::parse(a).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Value for x-amz-sdk-checksum-algorithm header is invalid.",
            )
        })?),
        None => None,
    };
    // `x-amz-trailer: x-amz-checksum-crc32` announces a checksum sent after the body.
    let trailer_algorithm = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("x-amz-checksum-"))
        .and_then(ChecksumAlgorithm::parse);

    let mut req = ChecksumRequest {
        content_md5: d.content_md5,
        ..ChecksumRequest::default()
    };
    let mismatch = |a: ChecksumAlgorithm| {
        if sdk_algorithm.is_some_and(|s| s != a) {
            Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Value for x-amz-sdk-checksum-algorithm header is invalid.",
            ))
        } else {
            Ok(())
        }
    };
    if let Some((a, v)) = declared.into_iter().next() {
        mismatch(a)?;
        req.algorithm = Some(a);
        req.expected = Some(v);
    } else if let (Some(a), Some(t)) = (trailer_algorithm, trailers) {
        mismatch(a)?;
        let name = format!("x-amz-checksum-{}", a.as_str().to_ascii_lowercase());
        req.algorithm = Some(a);
        req.trailer = Some(Box::new(move || {
            t.read(|h| {
                h.get(&name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .flatten()
        }));
    } else if sdk_algorithm.is_some() {
        // The SDK header says how the value was computed; it never stands alone (AWS).
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.",
        ));
    }
    Ok(req)
}

/// Sets the `checksum_*` fields of an output DTO from a stored checksum.
macro_rules! fill_checksum {
    ($out:expr, $checksum:expr) => {
        if let Some(c) = $checksum {
            let v = Some(c.value.clone());
            match c.algorithm {
                coffer_objects::ChecksumAlgorithm::Crc32 => $out.checksum_crc32 = v,
                coffer_objects::ChecksumAlgorithm::Crc32c => $out.checksum_crc32c = v,
                coffer_objects::ChecksumAlgorithm::Crc64Nvme => $out.checksum_crc64nvme = v,
                coffer_objects::ChecksumAlgorithm::Sha1 => $out.checksum_sha1 = v,
                coffer_objects::ChecksumAlgorithm::Sha256 => $out.checksum_sha256 = v,
                a => $out.checksum_sha256 = Some($crate::wide_checksum::carry(a, &c.value)),
            }
        }
    };
}
pub(crate) use fill_checksum;

pub fn checksum_type(c: &Checksum) -> dto::ChecksumType {
    dto::ChecksumType::from_static(if c.composite {
        dto::ChecksumType::COMPOSITE
    } else {
        dto::ChecksumType::FULL_OBJECT
    })
}

pub fn checksum_algorithm(a: ChecksumAlgorithm) -> dto::ChecksumAlgorithm {
    dto::ChecksumAlgorithm::from(a.as_str().to_owned())
}

pub fn storage_class(meta: &ObjectMeta) -> String {
    meta.storage_class
        .clone()
        .unwrap_or_else(|| "STANDARD".into())
}

/// Parses `x-amz-tagging: k1=v1&k2=v2` (URL query encoding).
pub fn tagging_header(value: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for pair in v.split('&') {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| S3Error::with_message(S3ErrorCode::InvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
        };
        out.push((decode(k)?, decode(val)?));
    }
    Ok(out)
}

pub fn tag_set(tags: &std::collections::BTreeMap<String, String>) -> Vec<dto::Tag> {
    tags.iter()
        .map(|(k, v)| dto::Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// Conditional headers, read raw so that lists of ETags work.
pub fn conditions(headers: &HeaderMap, prefix: &str) -> Conditions {
    let get = |name: &str| {
        headers
            .get(format!("{prefix}{name}"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let date = |name: &str| {
        get(name)
            .and_then(|v| parse_http_date(&v))
            .map(time::OffsetDateTime::from)
    };
    Conditions {
        if_match: get("if-match"),
        if_none_match: get("if-none-match"),
        if_modified_since: date("if-modified-since"),
        if_unmodified_since: date("if-unmodified-since"),
    }
}

pub fn range(r: Option<dto::Range>) -> Option<RangeSpec> {
    r.map(|r| match r {
        dto::Range::Int { first, last } => RangeSpec::FromTo { first, last },
        dto::Range::Suffix { length } => RangeSpec::Suffix { length },
    })
}

pub fn body(blob: Option<StreamingBlob>) -> BodyStream {
    match blob {
        Some(b) => Box::pin(b.map(|r| r.map_err(|e| -> coffer_objects::BodyError { e }))),
        None => Box::pin(futures::stream::empty()),
    }
}

/// A stream that is `Sync` because it can only be polled through `&mut`: s3s requires
/// `Sync` bodies and our streams hold `Send`-only futures.
struct SyncStream<S>(Mutex<S>);

impl<S: Stream + Unpin> Stream for SyncStream<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let inner = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        Pin::new(inner).poll_next(cx)
    }
}

pub fn object_body(s: ObjectStream) -> StreamingBlob {
    StreamingBlob::wrap(SyncStream(Mutex::new(s.map(
        |r| -> Result<Bytes, std::io::Error> {
            r.map_err(|e| {
                // Headers are gone by now: the only honest signal left is to cut the
                // connection, which the client sees as a short body.
                tracing::error!(error = %e, "object stream failed mid-response");
                std::io::Error::other(e.to_string())
            })
        },
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_not_part_of_a_stored_encoding() {
        assert_eq!(stored_encoding("gzip,aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(
            stored_encoding("aws-chunked, gzip").as_deref(),
            Some("gzip")
        );
        assert_eq!(stored_encoding("aws-chunked"), None);
        assert_eq!(stored_encoding("br").as_deref(), Some("br"));
    }

    #[test]
    fn tagging_header_decodes() {
        let t = tagging_header(Some("a=1&b%20c=d+e&empty=")).expect("valid");
        assert_eq!(
            t,
            vec![
                ("a".into(), "1".into()),
                ("b c".into(), "d e".into()),
                ("empty".into(), String::new())
            ]
        );
    }

    #[test]
    fn conflicting_checksums_are_refused() {
        let d = DeclaredChecksums {
            crc32: Some("AAAAAA==".into()),
            sha1: Some("x".into()),
            ..DeclaredChecksums::default()
        };
        assert!(checksum_request(d, &HeaderMap::new(), None).is_err());
    }
}
