//! AWS Signature Version 4, as pure functions: canonical requests, signing keys, header and
//! presigned-URL signatures, and the chunk signatures of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`.
//!
//! The crate does no I/O and reads no clock: every function takes the request time as a
//! parameter, so the same code signs (in `coffer-bench` and tests) and will verify (for the
//! KMS, IAM and CloudTrail endpoints, which are routed before the S3 adapter) deterministically.
//! Secrets enter as `&str` and derived keys are zeroized when dropped; nothing here implements
//! `Display` for a secret. Tested against AWS's published SigV4 examples.

mod chunked;
mod encode;
mod error;
mod verify;

pub use chunked::{ChunkSigner, EMPTY_SHA256, encoded_length};
pub use encode::{uri_encode, uri_encode_path};
pub use error::Error;
pub use verify::{Received, Refusal, RefusalKind, string_to_sign_of, verify};

use aws_lc_rs::{digest, hmac};
use time::OffsetDateTime;
use time::macros::format_description;
use zeroize::Zeroizing;

/// The only algorithm this crate speaks.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Payload hash for requests whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Payload hash announcing a body in aws-chunked encoding with a signature per chunk.
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";

/// Who signs, where, and when: everything a signature depends on except the request itself.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: OffsetDateTime,
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("time", &self.time)
            .finish()
    }
}

impl Scope<'_> {
    /// `20150830T123600Z`
    pub fn amz_date(&self) -> String {
        amz_date(self.time)
    }

    /// `20150830/us-east-1/service/aws4_request`
    pub fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            short_date(self.time),
            self.region,
            self.service
        )
    }

    /// The derived signing key for this scope's day, region and service.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::derive(
            self.secret_access_key,
            &short_date(self.time),
            self.region,
            self.service,
        )
    }
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub struct SigningKey(Zeroizing<Vec<u8>>);

impl SigningKey {
    pub fn derive(secret: &str, short_date: &str, region: &str, service: &str) -> Self {
        let seed = Zeroizing::new(format!("AWS4{secret}"));
        let k_date = hmac_sha256(seed.as_bytes(), short_date.as_bytes());
        let k_region = hmac_sha256(&k_date, region.as_bytes());
        let k_service = hmac_sha256(&k_region, service.as_bytes());
        let k_signing = hmac_sha256(&k_service, b"aws4_request");
        Self(Zeroizing::new(k_signing.to_vec()))
    }

    /// Hex HMAC-SHA256 of `string_to_sign` under this key.
    pub fn sign(&self, string_to_sign: &str) -> String {
        hex_lower(&hmac_sha256(&self.0, string_to_sign.as_bytes()))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// A request reduced to the parts SigV4 reads. Header names may be in any case; values are
/// trimmed and inner runs of spaces collapsed as the specification requires.
#[derive(Debug, Clone)]
pub struct CanonicalInput<'a> {
    pub method: &'a str,
    /// The already-canonical URI path (see [`uri_encode_path`]); S3 encodes once, every
    /// other service twice.
    pub canonical_uri: &'a str,
    /// Decoded query parameters; they are encoded and sorted here.
    pub query: &'a [(String, String)],
    /// The headers to sign (name, value).
    pub headers: &'a [(String, String)],
    pub payload_hash: &'a str,
}

impl CanonicalInput<'_> {
    /// Lower-cased, sorted, `;`-joined header names.
    pub fn signed_headers(&self) -> String {
        let mut names: Vec<String> = self
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        names.sort();
        names.dedup();
        names.join(";")
    }

    pub fn canonical_request(&self) -> String {
        let mut query: Vec<(String, String)> = self
            .query
            .iter()
            .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
            .collect();
        query.sort();
        let query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");

        let mut headers: Vec<(String, String)> = Vec::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            let name = name.to_ascii_lowercase();
            let value = canonical_header_value(value);
            match headers.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(&value);
                }
                None => headers.push((name, value)),
            }
        }
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        let mut canonical_headers = String::new();
        for (n, v) in &headers {
            canonical_headers.push_str(n);
            canonical_headers.push(':');
            canonical_headers.push_str(v);
            canonical_headers.push('\n');
        }

        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.canonical_uri,
            query,
            canonical_headers,
            self.signed_headers(),
            self.payload_hash
        )
    }
}

/// The string to sign for a canonical request made at `scope.time`.
pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.amz_date(),
        scope.credential_scope(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The hex signature of a request.
pub fn signature(scope: &Scope<'_>, input: &CanonicalInput<'_>) -> String {
    let sts = string_to_sign(scope, &input.canonical_request());
    scope.signing_key().sign(&sts)
}

/// The `Authorization` header value for a request. The caller must already have put
/// `host`, `x-amz-date` and `x-amz-content-sha256` (for S3) among `input.headers`.
pub fn authorization_header(scope: &Scope<'_>, input: &CanonicalInput<'_>) -> String {
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={}",
        scope.access_key_id,
        scope.credential_scope(),
        input.signed_headers(),
        signature(scope, input)
    )
}

/// Query parameters of a presigned URL (without the signature), in the order AWS emits them.
pub fn presign_query(
    scope: &Scope<'_>,
    expires_secs: u64,
    signed_headers: &str,
) -> Vec<(String, String)> {
    vec![
        ("X-Amz-Algorithm".into(), ALGORITHM.into()),
        (
            "X-Amz-Credential".into(),
            format!("{}/{}", scope.access_key_id, scope.credential_scope()),
        ),
        ("X-Amz-Date".into(), scope.amz_date()),
        ("X-Amz-Expires".into(), expires_secs.to_string()),
        ("X-Amz-SignedHeaders".into(), signed_headers.into()),
    ]
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn parse(header: &str) -> Result<Self, Error> {
        let rest = header
            .strip_prefix(ALGORITHM)
            .ok_or(Error::UnsupportedAlgorithm)?
            .trim_start();
        let (mut credential, mut signed, mut sig) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            let (k, v) = part.split_once('=').ok_or(Error::MalformedAuthorization)?;
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => sig = Some(v),
                _ => return Err(Error::MalformedAuthorization),
            }
        }
        let credential = credential.ok_or(Error::MalformedAuthorization)?;
        let mut fields = credential.rsplitn(5, '/');
        let terminator = fields.next().ok_or(Error::MalformedAuthorization)?;
        let service = fields.next().ok_or(Error::MalformedAuthorization)?;
        let region = fields.next().ok_or(Error::MalformedAuthorization)?;
        let date = fields.next().ok_or(Error::MalformedAuthorization)?;
        let access_key_id = fields.next().ok_or(Error::MalformedAuthorization)?;
        if terminator != "aws4_request" || access_key_id.is_empty() || date.len() != 8 {
            return Err(Error::MalformedAuthorization);
        }
        let signature = sig.ok_or(Error::MalformedAuthorization)?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::MalformedAuthorization);
        }
        let signed_headers: Vec<String> = signed
            .ok_or(Error::MalformedAuthorization)?
            .split(';')
            .map(str::to_owned)
            .collect();
        if signed_headers.iter().any(String::is_empty) {
            return Err(Error::MalformedAuthorization);
        }
        Ok(Self {
            access_key_id: access_key_id.into(),
            date: date.into(),
            region: region.into(),
            service: service.into(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// Constant-time comparison of two hex signatures.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Parses an `X-Amz-Date` value (`20150830T123600Z`).
pub fn parse_amz_date(s: &str) -> Result<OffsetDateTime, Error> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &fmt)
        .map(|t| t.assume_utc())
        .map_err(|_| Error::MalformedDate)
}

pub fn amz_date(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("formatting a UTC date with a fixed numeric description cannot fail")
}

fn short_date(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("formatting a UTC date with a fixed numeric description cannot fail")
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(digest::digest(&digest::SHA256, data).as_ref())
}

/// S3's legacy signature version 2: HMAC-SHA1 of the string to sign under the secret
/// (base64-encoding it is the caller's). Only for signing again what a development server
/// accepts; Coffer verifies version 2 signatures in s3s.
pub fn v2_signature(secret: &str, string_to_sign: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    hmac::sign(&key, string_to_sign.as_bytes())
        .as_ref()
        .to_vec()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

fn hex_lower(bytes: &[u8]) -> String {
    hex_simd::encode_to_string(bytes, hex_simd::AsciiCase::Lower)
}

fn canonical_header_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut last_space = false;
    for c in v.trim().chars() {
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    // AWS SigV4 test suite: the shared credentials and scope of every case.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn suite_scope() -> Scope<'static> {
        Scope {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: SECRET,
            region: "us-east-1",
            service: "service",
            time: datetime!(2015-08-30 12:36:00 UTC),
        }
    }

    #[test]
    fn aws_suite_get_vanilla() {
        let headers = vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        let input = CanonicalInput {
            method: "GET",
            canonical_uri: "/",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        assert_eq!(
            input.canonical_request(),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            authorization_header(&suite_scope(), &input),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn aws_suite_get_vanilla_query_order_key_case() {
        let headers = vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        let query = vec![
            ("Param2".to_string(), "value2".to_string()),
            ("Param1".to_string(), "value1".to_string()),
        ];
        let input = CanonicalInput {
            method: "GET",
            canonical_uri: "/",
            query: &query,
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        assert_eq!(
            signature(&suite_scope(), &input),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn aws_s3_docs_get_object_example() {
        // "Example: GET Object" from the S3 SigV4 header-based authentication documentation.
        let scope = Scope {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "s3",
            time: datetime!(2013-05-24 00:00:00 UTC),
        };
        let headers = vec![
            (
                "Host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("Range".to_string(), "bytes=0-9".to_string()),
            ("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let input = CanonicalInput {
            method: "GET",
            canonical_uri: "/test.txt",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        assert_eq!(
            signature(&scope, &input),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn parses_authorization_header() {
        let a = Authorization::parse("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31").expect("valid header");
        assert_eq!(a.access_key_id, "AKIDEXAMPLE");
        assert_eq!(a.service, "kms");
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        for bad in [
            "",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=A/2015/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/other, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "AWS HMAC",
        ] {
            assert!(Authorization::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amz_date_round_trips() {
        let t = parse_amz_date("20150830T123600Z").expect("valid date");
        assert_eq!(amz_date(t), "20150830T123600Z");
        assert!(parse_amz_date("2015-08-30").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = format!("{:?} {:?}", suite_scope(), suite_scope().signing_key());
        assert!(!s.contains(SECRET));
    }
}
