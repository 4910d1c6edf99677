//! Verifying a header-signed request for the services Coffer routes before the S3 adapter
//! (KMS today; IAM, STS and CloudTrail later). These use the "double-encoded" canonical
//! URI and always sign the SHA-256 of the body, unlike S3.

use time::{Duration, OffsetDateTime};

use crate::{
    Authorization, CanonicalInput, SigningKey, parse_amz_date, sha256_hex, uri_encode_path,
};

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// The header or `X-Amz-Date` cannot be parsed, or a required header is unsigned.
    Malformed(&'static str),
    /// The request time is too far from the server's.
    Skewed { request: String },
    /// The credential scope names another service.
    WrongService(String),
    /// The signature does not match.
    Mismatch,
}

/// The three kinds of refusal every AWS protocol names with an error code of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// No signature at all (`MissingAuthenticationToken…`).
    Missing,
    /// A signature that cannot be read (`IncompleteSignature…`).
    Incomplete,
    /// A signature that does not hold (`InvalidSignatureException`, `SignatureDoesNotMatch`).
    Invalid,
}

impl Refusal {
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::Missing => RefusalKind::Missing,
            Refusal::Malformed(_) => RefusalKind::Incomplete,
            Refusal::Skewed { .. } | Refusal::WrongService(_) | Refusal::Mismatch => {
                RefusalKind::Invalid
            }
        }
    }

    /// AWS's message for the refusal, the same in every protocol; `service` is the
    /// signing name the API expects (`kms`, `iam`, ...).
    pub fn message(&self, service: &str) -> String {
        match self {
            Refusal::Missing => "Missing Authentication Token".into(),
            Refusal::Malformed(why) => (*why).into(),
            Refusal::Skewed { request } => format!(
                "Signature expired: {request} is now earlier or later than the allowed 15 minutes of server time."
            ),
            Refusal::WrongService(s) => {
                format!("Credential should be scoped to correct service: '{service}', not '{s}'.")
            }
            Refusal::Mismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        }
    }
}

/// A request as received, reduced to what SigV4 covers.
pub struct Received<'a> {
    pub method: &'a str,
    /// The path exactly as it came on the request line (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as received, without `?`.
    pub raw_query: &'a str,
    /// Every header (any case); only the signed ones are used.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Received<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The parsed `Authorization` header.
    pub fn authorization(&self) -> Result<Authorization, Refusal> {
        let h = self.header("authorization").ok_or(Refusal::Missing)?;
        Authorization::parse(h)
            .map_err(|_| Refusal::Malformed("the Authorization header is malformed"))
    }
}

fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// Checks the signature of `req`, made with `signing_key` for `auth`'s scope, at `now`,
/// for `service`. `signing_key` is passed in so that callers can cache derived keys.
pub fn verify(
    req: &Received<'_>,
    auth: &Authorization,
    signing_key: &SigningKey,
    service: &str,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<(), Refusal> {
    let sts = string_to_sign_of(req, auth, service, now, max_skew)?;
    let expected = signing_key.sign(&sts);
    if crate::signatures_equal(&expected, &auth.signature) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

/// Every check of [`verify`] but the signature's own: the service, the signed `host`, the
/// date and its skew, every signed header present. Returns the string to sign. A server
/// that takes any secret (`coffer serve --dev`) still refuses what this refuses.
pub fn string_to_sign_of(
    req: &Received<'_>,
    auth: &Authorization,
    service: &str,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<String, Refusal> {
    if auth.service != service {
        return Err(Refusal::WrongService(auth.service.clone()));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(Refusal::Malformed("the host header must be signed"));
    }
    let date = req
        .header("x-amz-date")
        .ok_or(Refusal::Malformed("X-Amz-Date is missing"))?;
    let t = parse_amz_date(date).map_err(|_| Refusal::Malformed("X-Amz-Date is malformed"))?;
    if (t - now).abs() > max_skew {
        return Err(Refusal::Skewed {
            request: date.to_owned(),
        });
    }
    if !date.starts_with(&auth.date) {
        return Err(Refusal::Malformed(
            "the credential date does not match X-Amz-Date",
        ));
    }
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        if values.is_empty() {
            return Err(Refusal::Malformed("a signed header is missing"));
        }
        signed.push((name.clone(), values.join(",")));
    }
    let query = decode_query(req.raw_query);
    let canonical_uri = uri_encode_path(if req.raw_path.is_empty() {
        "/"
    } else {
        req.raw_path
    });
    let payload_hash = sha256_hex(req.body);
    let input = CanonicalInput {
        method: req.method,
        canonical_uri: &canonical_uri,
        query: &query,
        headers: &signed,
        payload_hash: &payload_hash,
    };
    Ok(format!(
        "{}\n{}\n{}/{}/{}/aws4_request\n{}",
        crate::ALGORITHM,
        date,
        auth.date,
        auth.region,
        auth.service,
        sha256_hex(input.canonical_request().as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;
    use time::macros::datetime;

    fn signed_request(body: &[u8], t: OffsetDateTime) -> Vec<(String, String)> {
        let scope = Scope {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "secret",
            region: "us-east-1",
            service: "kms",
            time: t,
        };
        let mut headers = vec![
            ("Host".to_string(), "127.0.0.1:7373".to_string()),
            ("X-Amz-Date".to_string(), scope.amz_date()),
            (
                "X-Amz-Target".to_string(),
                "TrentService.ListKeys".to_string(),
            ),
            (
                "Content-Type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
        ];
        let hash = sha256_hex(body);
        let auth = crate::authorization_header(
            &scope,
            &CanonicalInput {
                method: "POST",
                canonical_uri: "/",
                query: &[],
                headers: &headers,
                payload_hash: &hash,
            },
        );
        headers.push(("Authorization".to_string(), auth));
        headers
    }

    fn check(
        headers: &[(String, String)],
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), Refusal> {
        let req = Received {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers,
            body,
        };
        let auth = req.authorization()?;
        let key = SigningKey::derive("secret", &auth.date, &auth.region, &auth.service);
        verify(&req, &auth, &key, "kms", now, Duration::minutes(15))
    }

    #[test]
    fn accepts_what_the_signer_produces_and_nothing_else() {
        let t = datetime!(2026-11-27 10:00:00 UTC);
        let body = br#"{"Limit": 10}"#;
        let h = signed_request(body, t);
        assert_eq!(check(&h, body, t), Ok(()));
        assert_eq!(check(&h, br#"{"Limit": 11}"#, t), Err(Refusal::Mismatch));
        assert!(matches!(
            check(&h, body, t + Duration::minutes(16)),
            Err(Refusal::Skewed { .. })
        ));
        let mut tampered = h.clone();
        tampered[2].1 = "TrentService.CreateKey".into();
        assert_eq!(check(&tampered, body, t), Err(Refusal::Mismatch));
        let unsigned: Vec<_> = h
            .iter()
            .filter(|(n, _)| n != "Authorization")
            .cloned()
            .collect();
        assert_eq!(check(&unsigned, body, t), Err(Refusal::Missing));
        let key = SigningKey::derive("secret", "20261127", "us-east-1", "s3");
        let req = Received {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            body,
        };
        let auth = req.authorization().expect("auth");
        assert_eq!(
            verify(&req, &auth, &key, "iam", t, Duration::minutes(15)),
            Err(Refusal::WrongService("kms".into()))
        );
    }
}
