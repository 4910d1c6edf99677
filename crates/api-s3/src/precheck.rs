//! AWS's answers to malformed or out-of-date authentication, given before s3s verifies a
//! signature (s3s answers these with its own codes and messages, or not at all). What
//! passes here is left to s3s's SigV4 check. Strings are AWS's, as recorded in real S3
//! replies (LocalStack's AWS-validated snapshots, and AWS bodies quoted in client issues).
//!
//! - `Authorization` present but empty: the request is anonymous, as S3 treats it.
//! - `Authorization` without exactly one space, with an unknown scheme, or a SigV4 header
//!   without its three components: `InvalidArgument` / `AuthorizationHeaderMalformed`.
//! - A header-signed request without a valid `x-amz-date` or `Date`: `AccessDenied`; one
//!   more than 15 minutes from now: `RequestTimeTooSkewed`, before the signature is
//!   checked.
//! - Presigned URLs: missing parameters, `X-Amz-Expires` out of range or not a number:
//!   `AuthorizationQueryParametersError`; one whose `X-Amz-Date` is ahead of the clock:
//!   `Request is not yet valid`.
//! - A signature that is not 64 lower-case hex digits cannot match: `SignatureDoesNotMatch`.
//! - A body in plain HTTP chunked transfer coding (`Transfer-Encoding: chunked` without the
//!   `aws-chunked` framing and its `x-amz-decoded-content-length`): S3 answers
//!   `501 NotImplemented` naming the header, so Coffer does too.
//! - A header section over 8 KiB (names, values and their separators):
//!   `400 RequestHeaderSectionTooLarge` with `MaxSizeAllowed`, as S3 answers.
//! - An aws-chunked body (`x-amz-content-sha256: STREAMING-...`) on anything but the two
//!   operations that carry object data, PutObject and UploadPart: `501 NotImplemented`
//!   naming the header. AWS's SDKs stream only those two; s3s 0.14.1 reads any other body
//!   whole and checks its decoded length against the framed `Content-Length` (so an intact
//!   one failed as `IncompleteBody`) and answered a bad chunk signature with a 500.

use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// What to do with a request before s3s sees it.
pub(crate) enum Verdict {
    /// Leave it to s3s.
    Pass,
    /// Treat it as unsigned (an empty `Authorization` header).
    Anonymous,
    /// Answer with this error: (status, code, message, extra elements).
    Refuse(
        StatusCode,
        &'static str,
        String,
        Vec<(&'static str, String)>,
    ),
}

/// Largest difference between a request's time and the server's (15 minutes).
const MAX_SKEW_MS: i64 = 900_000;

/// Longest a presigned URL may be valid (7 days).
const MAX_EXPIRES: i64 = 604_800;

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your key and signing method.";

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Verdict {
    Verdict::Refuse(status, code, message.into(), Vec::new())
}

fn is_signature(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `20150830T123600Z`.
fn amz_date(s: &str) -> Option<OffsetDateTime> {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, f)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

fn iso(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether a query is one a request carrying object data has: none, or only `partNumber`,
/// `uploadId`, the SDKs' `x-id`, and a presigned URL's `X-Amz-*` parameters (with the
/// `x-amz-*` headers it hoists into the query).
pub(crate) fn object_data_query(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .all(|p| {
            let name = p.split_once('=').map_or(p, |(k, _)| k);
            matches!(name, "partNumber" | "uploadId" | "x-id")
                || name
                    .get(..6)
                    .is_some_and(|s| s.eq_ignore_ascii_case("x-amz-"))
        })
}

/// `object_data`: the request is a PUT to a key whose query is [`object_data_query`]
/// (PutObject, UploadPart, or a copy of either).
/// Largest header section S3 takes.
const MAX_HEADER_SECTION: usize = 8192;

pub(crate) fn check(
    uri: &Uri,
    headers: &HeaderMap,
    object_data: bool,
    now: OffsetDateTime,
) -> Verdict {
    let section: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if section > MAX_HEADER_SECTION {
        return Verdict::Refuse(
            StatusCode::BAD_REQUEST,
            "RequestHeaderSectionTooLarge",
            "Your request header section exceeds the maximum allowed size.".into(),
            vec![("MaxSizeAllowed", MAX_HEADER_SECTION.to_string())],
        );
    }
    let chunked = headers
        .get(http::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked && !headers.contains_key("x-amz-decoded-content-length") {
        return Verdict::Refuse(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented".into(),
            vec![("Header", "Transfer-Encoding".to_owned())],
        );
    }
    let streaming = headers
        .get("x-amz-content-sha256")
        .is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"));
    if streaming && !object_data {
        return Verdict::Refuse(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented".into(),
            vec![("Header", "x-amz-content-sha256".to_owned())],
        );
    }
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        return header_auth(auth, headers, now);
    }
    let query = uri.query().unwrap_or("");
    if query.split('&').any(|p| p.starts_with("X-Amz-Signature=")) {
        return presigned(query, now);
    }
    Verdict::Pass
}

fn header_auth(auth: &HeaderValue, headers: &HeaderMap, now: OffsetDateTime) -> Verdict {
    let Ok(auth) = auth.to_str() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Unsupported Authorization Type",
        );
    };
    if auth.trim().is_empty() {
        return Verdict::Anonymous;
    }
    let Some((scheme, rest)) = auth.split_once(' ') else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Authorization header is invalid -- one and only one ' ' (space) required.",
        );
    };
    match scheme {
        // SigV2: left to s3s.
        "AWS" => return Verdict::Pass,
        "AWS4-HMAC-SHA256" => {}
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Unsupported Authorization Type",
            );
        }
    }
    let parts: Vec<(&str, &str)> = rest
        .split(',')
        .map(str::trim)
        .filter_map(|p| p.split_once('='))
        .collect();
    let get = |name: &str| parts.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let (Some(_), Some(_), Some(signature)) =
        (get("Credential"), get("SignedHeaders"), get("Signature"))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.",
        );
    };
    // The request's time: x-amz-date wins over Date.
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (raw, when) = match (header("x-amz-date"), header("date")) {
        (Some(d), _) if !d.is_empty() => (d, amz_date(d)),
        (_, Some(d)) => (d, OffsetDateTime::parse(d, &Rfc2822).ok()),
        _ => ("", None),
    };
    let Some(when) = when else {
        return refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "AWS authentication requires a valid Date or x-amz-date header",
        );
    };
    if (now - when).whole_milliseconds().abs() > i128::from(MAX_SKEW_MS) {
        return Verdict::Refuse(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.".into(),
            vec![
                ("RequestTime", raw.to_owned()),
                ("ServerTime", iso(now)),
                ("MaxAllowedSkewMilliseconds", MAX_SKEW_MS.to_string()),
            ],
        );
    }
    if !is_signature(signature) {
        return refuse(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
        );
    }
    Verdict::Pass
}

fn presigned(query: &str, now: OffsetDateTime) -> Verdict {
    let params = crate::access::form_urlencoded(query);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(_), Some(_), Some(signature), Some(date), Some(_), Some(expires)) = (
        get("X-Amz-Algorithm"),
        get("X-Amz-Credential"),
        get("X-Amz-Signature"),
        get("X-Amz-Date"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Expires"),
    ) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        );
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires should be a number",
        );
    };
    if expires < 0 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be non-negative",
        );
    }
    if expires > MAX_EXPIRES {
        return refuse(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        );
    }
    let Some(when) = amz_date(date) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "AWS authentication requires a valid Date or x-amz-date header",
        );
    };
    if (when - now).whole_milliseconds() > i128::from(MAX_SKEW_MS) {
        return Verdict::Refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request is not yet valid".into(),
            vec![
                ("X-Amz-Date", (when.unix_timestamp() * 1000).to_string()),
                ("Expires", iso(when + time::Duration::seconds(expires))),
                ("ServerTime", iso(now)),
            ],
        );
    }
    if now > when + time::Duration::seconds(expires) {
        return Verdict::Refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request has expired".into(),
            vec![
                ("X-Amz-Expires", expires.to_string()),
                ("Expires", iso(when + time::Duration::seconds(expires))),
                ("ServerTime", iso(now)),
            ],
        );
    }
    if !is_signature(signature) {
        return refuse(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
        );
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-05 12:00:00 UTC);
    const SIG: &str = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";

    fn headers(auth: &str, date: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(auth).expect("value"));
        if let Some(d) = date {
            h.insert("x-amz-date", HeaderValue::from_str(d).expect("value"));
        }
        h
    }

    fn code(v: &Verdict) -> Option<&'static str> {
        match v {
            Verdict::Refuse(_, c, _, _) => Some(c),
            _ => None,
        }
    }

    #[test]
    fn header_authentication_edges() {
        let uri: Uri = "/b/k".parse().expect("uri");
        let good = format!(
            "AWS4-HMAC-SHA256 Credential=AK/20261205/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"
        );
        let check = |auth: &str, date| check(&uri, &headers(auth, date), false, NOW);
        assert!(matches!(
            check(&good, Some("20261205T120000Z")),
            Verdict::Pass
        ));
        assert!(matches!(check("", None), Verdict::Anonymous));
        assert_eq!(code(&check("garbage", None)), Some("InvalidArgument"));
        assert_eq!(code(&check("AWS4 HAHAHA", None)), Some("InvalidArgument"));
        assert_eq!(
            code(&check("AWS4-HMAC-SHA256 garbage", None)),
            Some("AuthorizationHeaderMalformed")
        );
        assert_eq!(code(&check(&good, None)), Some("AccessDenied"));
        assert_eq!(code(&check(&good, Some("yesterday"))), Some("AccessDenied"));
        let skewed = check(&good, Some("20261205T114400Z"));
        assert_eq!(code(&skewed), Some("RequestTimeTooSkewed"));
        if let Verdict::Refuse(s, _, m, extra) = skewed {
            assert_eq!(s, StatusCode::FORBIDDEN);
            assert_eq!(
                m,
                "The difference between the request time and the current time is too large."
            );
            assert_eq!(extra[0], ("RequestTime", "20261205T114400Z".to_owned()));
            assert_eq!(extra[1], ("ServerTime", "2026-12-05T12:00:00Z".to_owned()));
        }
        assert!(matches!(
            check(&good, Some("20261205T114600Z")),
            Verdict::Pass
        ));
        let upper = good.replace(SIG, &SIG.to_ascii_uppercase());
        assert_eq!(
            code(&check(&upper, Some("20261205T120000Z"))),
            Some("SignatureDoesNotMatch")
        );
        // SigV2 is s3s's to check.
        assert!(matches!(check("AWS AK:c2ln", None), Verdict::Pass));
    }

    #[test]
    fn plain_chunked_bodies_are_not_implemented() {
        let uri: Uri = "/b/k".parse().expect("uri");
        let mut h = HeaderMap::new();
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        assert_eq!(code(&check(&uri, &h, false, NOW)), Some("NotImplemented"));
        h.insert(
            "x-amz-decoded-content-length",
            HeaderValue::from_static("5"),
        );
        assert!(matches!(check(&uri, &h, false, NOW), Verdict::Pass));
    }

    #[test]
    fn a_header_section_over_8_kib_is_too_large() {
        let uri: Uri = "/b/k".parse().expect("uri");
        let mut h = HeaderMap::new();
        h.insert("x-amz-meta-a", HeaderValue::from_static("v"));
        let value = "a".repeat(8000);
        h.insert(
            "x-amz-meta-big",
            HeaderValue::from_str(&value).expect("value"),
        );
        assert!(matches!(check(&uri, &h, true, NOW), Verdict::Pass));
        h.insert(
            "x-amz-meta-more",
            HeaderValue::from_str(&value[..200]).expect("value"),
        );
        let v = check(&uri, &h, true, NOW);
        assert_eq!(code(&v), Some("RequestHeaderSectionTooLarge"));
        let Verdict::Refuse(status, _, _, extra) = v else {
            return;
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(extra, vec![("MaxSizeAllowed", "8192".to_owned())]);
    }

    /// Found by the `s3_api` fuzz target: an aws-chunked body on an operation that reads
    /// its body whole reached s3s, which answered an intact one `IncompleteBody` and one
    /// with a bad chunk signature `500 InternalError`.
    #[test]
    fn aws_chunked_bodies_are_for_object_data_only() {
        let uri: Uri = "/b?tagging".parse().expect("uri");
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        );
        assert_eq!(code(&check(&uri, &h, false, NOW)), Some("NotImplemented"));
        assert!(matches!(check(&uri, &h, true, NOW), Verdict::Pass));
        for q in [
            None,
            Some(""),
            Some("partNumber=1&uploadId=u"),
            Some("x-id=PutObject"),
            Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00&x-amz-acl=private"),
        ] {
            assert!(object_data_query(q), "{q:?}");
        }
        for q in [
            "tagging",
            "uploads",
            "partNumber=1&acl",
            "retention&x-id=PutObject",
        ] {
            assert!(!object_data_query(Some(q)), "{q}");
        }
    }

    #[test]
    fn presigned_url_edges() {
        let url = |expires: &str, date: &str, sig: &str| -> Uri {
            format!("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261205%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}")
                .parse()
                .expect("uri")
        };
        let check = |u: Uri| check(&u, &HeaderMap::new(), false, NOW);
        assert!(matches!(
            check(url("3600", "20261205T115000Z", SIG)),
            Verdict::Pass
        ));
        assert!(matches!(
            check(url("604800", "20261205T115000Z", SIG)),
            Verdict::Pass
        ));
        for bad in ["604801", "-1", "soon"] {
            assert_eq!(
                code(&check(url(bad, "20261205T115000Z", SIG))),
                Some("AuthorizationQueryParametersError"),
                "{bad}"
            );
        }
        assert_eq!(
            code(&check(url("60", "20261205T115000Z", SIG))),
            Some("AccessDenied"),
            "expired"
        );
        assert_eq!(
            code(&check(url("60", "20261205T123000Z", SIG))),
            Some("AccessDenied"),
            "not yet valid"
        );
        assert_eq!(
            code(&check(url(
                "3600",
                "20261205T115000Z",
                &SIG.to_ascii_uppercase()
            ))),
            Some("SignatureDoesNotMatch")
        );
        let missing: Uri = "/b/k?X-Amz-Signature=abc".parse().expect("uri");
        assert_eq!(
            code(&check(missing)),
            Some("AuthorizationQueryParametersError")
        );
    }
}
