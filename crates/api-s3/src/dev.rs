//! Development mode (`coffer serve --dev`) on the S3 side: a request signed with an access
//! key the server does not know, which `Credentials::unverified` maps to a principal, is
//! served whatever secret signed it, as moto and LocalStack serve it.
//!
//! s3s checks every signature itself against the secret `Auth` gives it, so such a
//! request is signed again here, before s3s, with [`SECRET`] (which `Auth` then gives for
//! that key) over exactly what the client signed: the parse, the date, the signed headers
//! and the payload hash are still the client's and still checked. What cannot be signed
//! again is left as it came and so refused as a mismatch: a browser's POST form, whose
//! signature is inside the form. An aws-chunked body with signed chunks
//! (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, `-TRAILER`: the AWS SDKs for Java and Rust send
//! it) has each chunk's and the trailer's signature signed again as the body streams
//! through ([`Resigned`]), one chunk in memory at a time. Signature version 2 (`AWS
//! key:sig`, and the presigned URLs boto3 and the AWS CLI still make by default) is signed
//! again too, for path-style requests.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::Stream;

use coffer_iam::Credentials;
use coffer_sigv4::{
    Authorization, CanonicalInput, ChunkSigner, SigningKey, sha256_hex, uri_encode_path,
};

/// The secret requests of unverified keys are signed again with. Not a secret: it only
/// ever signs what a development server has already decided to accept.
pub(crate) const SECRET: &str = "coffer-dev-mode-accepts-any-secret";

/// Whether `key` is one this server takes without checking its signature.
pub(crate) fn unverified(credentials: &dyn Credentials, key: &str) -> bool {
    credentials.lookup(key).is_none() && credentials.unverified(key).is_some()
}

/// Signs `parts` again with [`SECRET`] if its access key is unverified. Leaves anything it
/// cannot parse as it is, for s3s to refuse in AWS's words. For a body of signed chunks,
/// returns what [`Resigned`] signs them again with.
pub(crate) fn resign(
    credentials: &dyn Credentials,
    parts: &mut http::request::Parts,
) -> Option<ChunkResigner> {
    if resign_v2(credentials, parts) {
        return None;
    }
    if let Some(auth) = header(&parts.headers, "authorization") {
        let Ok(a) = Authorization::parse(&auth) else {
            return None;
        };
        if !unverified(credentials, &a.access_key_id) {
            return None;
        }
        let (Some(date), Some(payload)) = (
            header(&parts.headers, "x-amz-date"),
            header(&parts.headers, "x-amz-content-sha256"),
        ) else {
            return None;
        };
        let query = decode_query(parts.uri.query().unwrap_or(""));
        let sig = signature(parts, &a, &date, &query, &a.signed_headers, &payload)?;
        let new = auth.replace(
            &format!("Signature={}", a.signature),
            &format!("Signature={sig}"),
        );
        let v = http::HeaderValue::from_str(&new).ok()?;
        parts.headers.insert(http::header::AUTHORIZATION, v);
        if !payload.starts_with("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
            return None;
        }
        return Some(ChunkResigner {
            signer: ChunkSigner::resume(
                SigningKey::derive(SECRET, &a.date, &a.region, &a.service),
                &date,
                &format!("{}/{}/{}/aws4_request", a.date, a.region, a.service),
                &sig,
            ),
            trailer: payload.ends_with("-TRAILER"),
        });
    }
    // A presigned URL.
    let raw = parts.uri.query().unwrap_or("").to_owned();
    let query = decode_query(&raw);
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(credential), Some(date), Some(signed), Some(old)) = (
        get("X-Amz-Credential"),
        get("X-Amz-Date"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Signature"),
    ) else {
        return None;
    };
    let header_text = format!(
        "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={old}"
    );
    let Ok(a) = Authorization::parse(&header_text) else {
        return None;
    };
    if !unverified(credentials, &a.access_key_id) {
        return None;
    }
    let rest: Vec<(String, String)> = query
        .into_iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .collect();
    let sig = signature(
        parts,
        &a,
        &date,
        &rest,
        &a.signed_headers,
        "UNSIGNED-PAYLOAD",
    )?;
    // Only the signature's value changes; everything else stays byte for byte.
    set_param(parts, &raw, "X-Amz-Signature", &sig);
    None
}

/// Signs a version 2 request again (header `AWS KEY:SIG`, or a presigned URL with
/// `AWSAccessKeyId` and `Signature`); whether the request was one.
fn resign_v2(credentials: &dyn Credentials, parts: &mut http::request::Parts) -> bool {
    if let Some(auth) = header(&parts.headers, "authorization") {
        let Some((key, _)) = auth.strip_prefix("AWS ").and_then(|r| r.split_once(':')) else {
            return false;
        };
        if unverified(credentials, key) {
            let sig = v2_signature(parts, None);
            if let Ok(v) = http::HeaderValue::from_str(&format!("AWS {key}:{sig}")) {
                parts.headers.insert(http::header::AUTHORIZATION, v);
            }
        }
        return true;
    }
    let raw = parts.uri.query().unwrap_or("").to_owned();
    let query = decode_query(&raw);
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(key), Some(_), Some(expires)) =
        (get("AWSAccessKeyId"), get("Signature"), get("Expires"))
    else {
        return false;
    };
    if !unverified(credentials, &key) {
        return true;
    }
    let sig = v2_signature(parts, Some(&expires));
    let encoded = coffer_sigv4::uri_encode(&sig, true);
    set_param(parts, &raw, "Signature", &encoded);
    true
}

/// The sub-resources a version 2 signature covers (S3's list, as s3s keeps it).
const V2_QUERY: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A version 2 signature of `parts` with [`SECRET`], as s3s computes it: `expires` for a
/// presigned URL, else the header form.
fn v2_signature(parts: &http::request::Parts, expires: Option<&str>) -> String {
    let h = |name: &str| header(&parts.headers, name).unwrap_or_default();
    let mut sts = format!(
        "{}\n{}\n{}\n",
        parts.method.as_str(),
        h("content-md5"),
        h("content-type")
    );
    match expires {
        Some(e) => sts.push_str(e),
        None if parts.headers.contains_key("x-amz-date") => {}
        None => sts.push_str(&h("date")),
    }
    sts.push('\n');
    let mut names: Vec<&str> = parts
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| n.starts_with("x-amz-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
            .map(str::trim)
            .collect();
        sts.push_str(name);
        sts.push(':');
        sts.push_str(&values.join(","));
        sts.push('\n');
    }
    sts.push_str(parts.uri.path());
    let query = decode_query(parts.uri.query().unwrap_or(""));
    let mut first = true;
    for q in V2_QUERY {
        if let Some((_, v)) = query.iter().find(|(k, _)| k == q) {
            sts.push(if first { '?' } else { '&' });
            first = false;
            sts.push_str(q);
            if !v.is_empty() {
                sts.push('=');
                sts.push_str(v);
            }
        }
    }
    base64_simd::STANDARD.encode_to_string(coffer_sigv4::v2_signature(SECRET, &sts))
}

/// Sets the value of query parameter `name` in `raw` (the query as received) to `value`
/// (already encoded); every other byte of the query stays as it came.
fn set_param(parts: &mut http::request::Parts, raw: &str, name: &str, value: &str) {
    let rewritten: Vec<String> = raw
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => p.to_owned(),
        })
        .collect();
    set_query(parts, &rewritten.join("&"));
}

/// Replaces the query of `parts`' URI, keeping its path.
fn set_query(parts: &mut http::request::Parts, query: &str) {
    let pq = format!("{}?{query}", parts.uri.path());
    let mut uri = http::uri::Parts::default();
    uri.scheme = parts.uri.scheme().cloned();
    uri.authority = parts.uri.authority().cloned();
    if let Ok(pq) = http::uri::PathAndQuery::from_maybe_shared(pq) {
        uri.path_and_query = Some(pq);
        if let Ok(u) = http::Uri::from_parts(uri) {
            parts.uri = u;
        }
    }
}

/// The signature of `parts` as s3s computes it, with [`SECRET`].
fn signature(
    parts: &http::request::Parts,
    a: &Authorization,
    date: &str,
    query: &[(String, String)],
    signed_headers: &[String],
    payload: &str,
) -> Option<String> {
    let mut headers = Vec::with_capacity(signed_headers.len());
    for name in signed_headers {
        let values: Vec<&str> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
            .collect();
        if values.is_empty() {
            return None;
        }
        headers.push((name.clone(), values.join(",")));
    }
    // S3 encodes the decoded path once (every other service twice).
    let decoded = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8()
        .ok()?;
    let canonical_uri = uri_encode_path(&decoded);
    let input = CanonicalInput {
        method: parts.method.as_str(),
        canonical_uri: &canonical_uri,
        query,
        headers: &headers,
        payload_hash: payload,
    };
    let sts = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}/{}/{}/aws4_request\n{}",
        a.date,
        a.region,
        a.service,
        sha256_hex(input.canonical_request().as_bytes())
    );
    Some(SigningKey::derive(SECRET, &a.date, &a.region, &a.service).sign(&sts))
}

fn header(h: &http::HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Query parameters decoded as s3s decodes them (`+` is a space).
fn decode_query(q: &str) -> Vec<(String, String)> {
    crate::access::form_urlencoded(q)
}

/// What a body of signed chunks is signed again with.
pub(crate) struct ChunkResigner {
    signer: ChunkSigner,
    /// `-TRAILER`: trailing headers with their own signature follow the final chunk.
    trailer: bool,
}

/// The largest chunk held while it is signed again; clients send 8 KiB to 1 MiB. A larger
/// one passes as it came (and fails the signature check).
const MAX_CHUNK: usize = 16 << 20;
/// The most trailer bytes held.
const MAX_TRAILER: usize = 16 << 10;

/// A body of signed chunks, passed on with each chunk's (and the trailer's) signature
/// replaced by its signature under [`SECRET`], chained from the re-signed seed. Every other
/// byte passes as it came, and a signature is as long as the one it replaces, so the
/// length stays what `Content-Length` says. What does not parse passes unchanged from
/// there on, for s3s to refuse.
pub(crate) struct Resigned {
    inner: s3s::Body,
    signer: ChunkSigner,
    trailer: bool,
    buf: BytesMut,
    ready: VecDeque<Bytes>,
    phase: Phase,
    ended: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Chunks,
    Trailer,
    /// Everything from here passes unchanged.
    Through,
}

impl Resigned {
    pub(crate) fn new(inner: s3s::Body, r: ChunkResigner) -> Self {
        Self {
            inner,
            signer: r.signer,
            trailer: r.trailer,
            buf: BytesMut::new(),
            ready: VecDeque::new(),
            phase: Phase::Chunks,
            ended: false,
        }
    }

    /// Turns what `buf` holds into output as far as it can; false when it needs more.
    fn step(&mut self) -> bool {
        match self.phase {
            Phase::Through => {
                if self.buf.is_empty() {
                    return false;
                }
                self.ready.push_back(self.buf.split().freeze());
                true
            }
            Phase::Chunks => self.chunk(),
            Phase::Trailer => {
                if !self.ended {
                    if self.buf.len() > MAX_TRAILER {
                        self.phase = Phase::Through;
                        return true;
                    }
                    return false;
                }
                self.trailers();
                self.phase = Phase::Through;
                true
            }
        }
    }

    /// One chunk: `HEX;chunk-signature=SIG\r\nDATA\r\n`.
    fn chunk(&mut self) -> bool {
        let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") else {
            if self.buf.len() > 4096 || self.ended {
                self.phase = Phase::Through;
                return true;
            }
            return false;
        };
        let line = &self.buf[..eol];
        let parsed = std::str::from_utf8(line).ok().and_then(|l| {
            let (size, sig) = l.split_once(";chunk-signature=")?;
            let n = usize::from_str_radix(size, 16).ok()?;
            (sig.len() == 64).then_some((size.len(), n))
        });
        let Some((size_len, n)) = parsed.filter(|(_, n)| *n <= MAX_CHUNK) else {
            self.phase = Phase::Through;
            return true;
        };
        let need = if n == 0 { eol + 2 } else { eol + 2 + n + 2 };
        if self.buf.len() < need {
            if self.ended {
                self.phase = Phase::Through;
                return true;
            }
            return false;
        }
        let frame = self.buf.split_to(need);
        let data = if n == 0 {
            &[][..]
        } else {
            &frame[eol + 2..eol + 2 + n]
        };
        let sig = self.signer.sign_chunk(data);
        let mut out = BytesMut::with_capacity(need);
        out.extend_from_slice(&frame[..size_len]);
        out.extend_from_slice(b";chunk-signature=");
        out.extend_from_slice(sig.as_bytes());
        out.extend_from_slice(&frame[eol..]);
        self.ready.push_back(out.freeze());
        if n == 0 {
            self.phase = if self.trailer {
                Phase::Trailer
            } else {
                Phase::Through
            };
        }
        true
    }

    /// The trailing headers, whole: the `x-amz-trailer-signature` value is signed again
    /// over the others' canonical form, as s3s reads it.
    fn trailers(&mut self) {
        let text = self.buf.split().freeze();
        let Ok(s) = std::str::from_utf8(&text) else {
            self.ready.push_back(text);
            return;
        };
        let mut entries: Vec<(String, String)> = s
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
            .filter(|(n, _)| n != "x-amz-trailer-signature")
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let canonical: String = entries.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let sig = self.signer.sign_trailer(&canonical);
        let mut out = String::with_capacity(s.len());
        for piece in s.split_inclusive('\n') {
            match piece.split_once(':') {
                Some((n, v))
                    if n.eq_ignore_ascii_case("x-amz-trailer-signature")
                        && v.trim().len() == 64 =>
                {
                    let keep = v.len() - v.trim_start().len();
                    out.push_str(n);
                    out.push(':');
                    out.push_str(&v[..keep]);
                    out.push_str(&sig);
                    out.push_str(&v[keep + 64..]);
                }
                _ => out.push_str(piece),
            }
        }
        self.ready.push_back(Bytes::from(out));
    }
}

impl Stream for Resigned {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(b) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(b)));
            }
            if this.step() {
                continue;
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(b))) => this.buf.extend_from_slice(&b),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl s3s::stream::ByteStream for Resigned {
    /// What the client has still to send and what is held here: the same bytes, but for
    /// signatures of the same length.
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        let held = self.buf.len() + self.ready.iter().map(Bytes::len).sum::<usize>();
        match s3s::stream::ByteStream::remaining_length(&self.inner).exact() {
            Some(n) => s3s::stream::RemainingLength::new_exact(n + held),
            None => s3s::stream::RemainingLength::unknown(),
        }
    }
}
