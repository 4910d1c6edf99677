//! The S3 REST API as the server runs it: AWS's answers to malformed authentication, s3s's
//! SigV4 (header, presigned query, aws-chunked bodies, POST forms), its XML and Coffer's
//! operations, on in-memory stores. The fuzzer writes the request; this target signs it as
//! the mode says (with the operator's credentials, at the real time, since the server checks
//! skew), so mutations reach past the signature check.
//!
//! Input, as text with a free-form body:
//!
//! ```text
//! MODE                  header | unsigned | chunked | chunked-trailer | presign | post |
//!                       anonymous | raw
//! METHOD /PATH?QUERY
//! name: value           (headers, as many as wanted)
//!
//! BODY
//! ```
//!
//! `chunked` frames the body in aws-chunked frames of `x-fuzz-chunk` bytes (default 8),
//! each signed, then applies `x-fuzz-edit` (hex; see [`crate::input::tamper`]) to the
//! framed bytes; `chunked-trailer` does the same with a signed `x-amz-checksum-crc32`
//! trailer (the body's, or `x-fuzz-trailer`'s value). `post` reads the body as form fields (`name=value` lines, then a line
//! `file=` followed by the file's bytes); its `policy` field is the policy's JSON, which is
//! base64-encoded and signed here. `raw` sends the request exactly as written. In the path,
//! query, headers and body, `@UPLOAD@` becomes an upload id of `fuzz/mpu`, `@EXPIRES@`
//! a time an hour from now, `@AMZDATE@` and `@CREDENTIAL@` the signature's; an empty `content-md5` or `x-amz-checksum-sha256` header is
//! given the body's digest.
//!
//! Properties: no 500; every error names its code in the body (except to HEAD); a body
//! never fails once its status went out (nothing at rest is damaged here); and an object
//! written by a plain signed PUT reads back byte for byte.

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;
use coffer_api_s3::S3Front;
use coffer_api_s3::fuzz::{Outcome, call};
use coffer_iam::{Account, Directory, Principal, PrincipalKind, SecretKey};
use coffer_kms::Kms;
use coffer_objects::Objects;
use coffer_sigv4::{CanonicalInput, ChunkSigner, STREAMING_PAYLOAD, Scope, UNSIGNED_PAYLOAD};
use coffer_storage::memory::{MemoryBlobs, MemoryIam, MemoryKms, MemoryMeta};

use crate::input::tamper;

const ACCESS_KEY: &str = "AKIAOPERATOR";
const SECRET: &str = "operator-secret";
const ACCOUNT: &str = "111122223333";
const HOST: &str = "localhost";
/// Calls a world answers before it is built again.
const CALLS_PER_WORLD: u32 = 2_000;
/// Reply bytes kept for the checks.
const KEEP: usize = 1 << 20;

fn operator() -> Principal {
    Principal {
        account: Account {
            id: ACCOUNT.into(),
            name: "default".into(),
            canonical_id: "ab".repeat(32),
        },
        kind: PrincipalKind::Root,
        access_key_id: ACCESS_KEY.into(),
    }
}

fn scope(now: time::OffsetDateTime) -> Scope<'static> {
    Scope {
        access_key_id: ACCESS_KEY,
        secret_access_key: SECRET,
        region: "us-east-1",
        service: "s3",
        time: now,
    }
}

struct World {
    rt: tokio::runtime::Runtime,
    front: S3Front,
    calls: u32,
    upload_id: String,
}

/// A request before signing.
struct Draft {
    mode: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decoded_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                coffer_sigv4::uri_encode(k, true),
                coffer_sigv4::uri_encode(v, true)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// CRC32 (IEEE), as `x-amz-checksum-crc32` carries it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn hex_decode(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect()
}

fn parse(data: &[u8], upload_id: &str, now: time::OffsetDateTime) -> Option<Draft> {
    let expires = coffer_sigv4::amz_date(now + time::Duration::hours(1));
    let expires = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &expires[0..4],
        &expires[4..6],
        &expires[6..8],
        &expires[9..11],
        &expires[11..13],
        &expires[13..15]
    );
    let sc = scope(now);
    let credential = format!("{}/{}", sc.access_key_id, sc.credential_scope());
    let sub = |s: &str| {
        s.replace("@UPLOAD@", upload_id)
            .replace("@EXPIRES@", &expires)
            .replace("@AMZDATE@", &sc.amz_date())
            .replace("@CREDENTIAL@", &credential)
    };
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let mode = lines.next()?.trim().to_owned();
    let request_line = sub(lines.next()?);
    let (method, target) = request_line.split_once(' ')?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), sub(v.trim())))
        .collect();
    let body_text = String::from_utf8_lossy(body);
    let body = if body_text.contains('@') && std::str::from_utf8(body).is_ok() {
        sub(&body_text).into_bytes()
    } else {
        body.to_vec()
    };
    Some(Draft {
        mode,
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The request `draft` describes, signed as its mode says at `now`; `None` if it cannot be
/// put on the wire at all (an invalid URI or header). The second value is the payload a
/// plain PUT of it stores, if its mode sends the body unchanged.
fn build(
    mut draft: Draft,
    now: time::OffsetDateTime,
) -> Option<(http::Request<Bytes>, Option<Vec<u8>>)> {
    let s = scope(now);
    let chunk = header(&draft.headers, "x-fuzz-chunk")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(8)
        .clamp(1, 1 << 16);
    let edit = header(&draft.headers, "x-fuzz-edit").map(hex_decode);
    let trailer_value = header(&draft.headers, "x-fuzz-trailer").map(str::to_owned);
    draft
        .headers
        .retain(|(n, _)| !n.to_ascii_lowercase().starts_with("x-fuzz-"));
    // An empty `content-md5` or `x-amz-checksum-sha256` asks for the body's own.
    for (name, value) in &mut draft.headers {
        if !value.is_empty() {
            continue;
        }
        if name.eq_ignore_ascii_case("content-md5") {
            use md5::Digest as _;
            *value = base64_simd::STANDARD.encode_to_string(md5::Md5::digest(&draft.body));
        } else if name.eq_ignore_ascii_case("x-amz-checksum-sha256") {
            *value = base64_simd::STANDARD.encode_to_string(coffer_crypto::sha256(&draft.body));
        }
    }
    let mut headers = draft.headers.clone();
    let mut query = draft.query.clone();
    let mut payload = None;
    let body = match draft.mode.as_str() {
        "raw" | "anonymous" => {
            if draft.mode == "anonymous" {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
            }
            draft.body
        }
        "header" | "unsigned" => {
            let hash = if draft.mode == "header" {
                coffer_sigv4::sha256_hex(&draft.body)
            } else {
                UNSIGNED_PAYLOAD.to_owned()
            };
            sign_header(&s, &draft, &mut headers, &hash);
            payload = Some(draft.body.clone());
            draft.body
        }
        "chunked" | "chunked-trailer" => {
            let trailer = draft.mode == "chunked-trailer";
            let decoded_len = draft.body.len();
            let trailer_line = format!(
                "x-amz-checksum-crc32:{}",
                trailer_value.unwrap_or_else(
                    || base64_simd::STANDARD.encode_to_string(crc32(&draft.body).to_be_bytes())
                )
            );
            let frame_all = |seed: &str| -> Vec<u8> {
                let mut signer = ChunkSigner::new(&s, seed);
                let mut framed = Vec::new();
                for piece in draft.body.chunks(chunk) {
                    framed.extend(signer.frame(piece));
                }
                if !trailer {
                    framed.extend(signer.frame(&[]));
                    return framed;
                }
                framed.extend(signer.finish_with_trailer(&trailer_line));
                framed
            };
            let framed_len = frame_all(&"0".repeat(64)).len();
            headers.push((
                "x-amz-decoded-content-length".into(),
                decoded_len.to_string(),
            ));
            headers.push(("content-encoding".into(), "aws-chunked".into()));
            headers.push(("content-length".into(), framed_len.to_string()));
            let mode = if trailer {
                headers.push(("x-amz-trailer".into(), "x-amz-checksum-crc32".into()));
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
            } else {
                STREAMING_PAYLOAD
            };
            let seed = sign_header(&s, &draft, &mut headers, mode);
            let framed = frame_all(&seed);
            match edit {
                Some(e) if !e.is_empty() => tamper(&framed, &e),
                _ => {
                    payload = Some(draft.body.clone());
                    framed
                }
            }
        }
        "presign" => {
            let mut signed: Vec<(String, String)> = vec![("host".into(), HOST.into())];
            signed.extend(draft.headers.iter().cloned());
            let names = CanonicalInput {
                method: "",
                canonical_uri: "",
                query: &[],
                headers: &signed,
                payload_hash: "",
            }
            .signed_headers();
            let mut pairs = decoded_query(&draft.query);
            pairs.extend(coffer_sigv4::presign_query(&s, 3600, &names));
            let signature = coffer_sigv4::signature(
                &s,
                &CanonicalInput {
                    method: &draft.method,
                    canonical_uri: &draft.path,
                    query: &pairs,
                    headers: &signed,
                    payload_hash: UNSIGNED_PAYLOAD,
                },
            );
            pairs.push(("X-Amz-Signature".into(), signature));
            query = encode_query(&pairs);
            draft.body
        }
        "post" => post_form(&s, &draft.body, &mut headers),
        _ => return None,
    };
    if header(&headers, "host").is_none() {
        headers.push(("host".into(), HOST.into()));
    }
    // What hyper hands the server after it has framed the message off the connection: a
    // body whose length is its Content-Length. (A declared length the body does not have,
    // or one that is not a number, never gets past hyper; in-process it would reach s3s
    // as no client could make it.)
    headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("transfer-encoding")
    });
    headers.push(("content-length".into(), body.len().to_string()));
    let uri = if query.is_empty() {
        draft.path.clone()
    } else {
        format!("{}?{query}", draft.path)
    };
    let mut b = http::Request::builder()
        .method(draft.method.as_str())
        .uri(uri);
    for (n, v) in &headers {
        b = b.header(n.as_str(), v.as_str());
    }
    let req = b.body(Bytes::from(body)).ok()?;
    let plain_put = draft.method == "PUT"
        && draft.query.is_empty()
        && header(&headers, "x-amz-copy-source").is_none()
        && !headers.iter().any(|(n, _)| {
            n.to_ascii_lowercase()
                .starts_with("x-amz-server-side-encryption-customer")
        });
    Some((req, payload.filter(|_| plain_put)))
}

/// Adds `host`, `x-amz-date`, `x-amz-content-sha256` and the `Authorization` header that
/// signs them and every header of `draft`; returns the signature.
fn sign_header(
    s: &Scope<'_>,
    draft: &Draft,
    headers: &mut Vec<(String, String)>,
    payload_hash: &str,
) -> String {
    headers.push(("host".into(), HOST.into()));
    headers.push(("x-amz-date".into(), s.amz_date()));
    headers.push(("x-amz-content-sha256".into(), payload_hash.into()));
    let pairs = decoded_query(&draft.query);
    let input = CanonicalInput {
        method: &draft.method,
        canonical_uri: &draft.path,
        query: &pairs,
        headers,
        payload_hash,
    };
    let signature = coffer_sigv4::signature(s, &input);
    let value = format!(
        "{} Credential={}/{}, SignedHeaders={}, Signature={signature}",
        coffer_sigv4::ALGORITHM,
        s.access_key_id,
        s.credential_scope(),
        input.signed_headers()
    );
    headers.push(("authorization".into(), value));
    signature
}

/// A browser form upload: the fields of `spec`, the policy signed, as multipart/form-data.
fn post_form(s: &Scope<'_>, spec: &[u8], headers: &mut Vec<(String, String)>) -> Vec<u8> {
    const MARK: &[u8] = b"\nfile=\n";
    let (fields, file) = match spec.windows(MARK.len()).position(|w| w == MARK) {
        Some(i) => (&spec[..i], &spec[i + MARK.len()..]),
        None => (spec, &[][..]),
    };
    let mut form: Vec<(String, String)> = String::from_utf8_lossy(fields)
        .split('\n')
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let Some(i) = form.iter().position(|(k, _)| k == "policy") {
        let policy = base64_simd::STANDARD.encode_to_string(form[i].1.as_bytes());
        let signature = s.signing_key().sign(&policy);
        form[i].1 = policy;
        form.push(("x-amz-algorithm".into(), coffer_sigv4::ALGORITHM.into()));
        form.push((
            "x-amz-credential".into(),
            format!("{}/{}", s.access_key_id, s.credential_scope()),
        ));
        form.push(("x-amz-date".into(), s.amz_date()));
        form.push(("x-amz-signature".into(), signature));
    }
    let boundary = "fuzzboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in &form {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    headers.push((
        "content-type".into(),
        format!("multipart/form-data; boundary={boundary}"),
    ));
    body
}

impl World {
    fn new() -> Self {
        let (rt, root) = crate::world();
        let front = rt.block_on(async {
            let root: Arc<dyn coffer_crypto::RootKey> = Arc::new(root);
            let kms = Kms::open(
                Arc::new(MemoryKms::new()),
                root.clone(),
                coffer_kms::Config::default(),
            )
            .await
            .expect("an in-memory KMS");
            let objects = Objects::new(
                Arc::new(MemoryMeta::new()),
                Arc::new(MemoryBlobs::new()),
                coffer_objects::Config {
                    inline_max: 64,
                    ..coffer_objects::Config::default()
                },
            )
            .with_kms(Arc::new(kms));
            let directory = Arc::new(
                Directory::load(
                    Arc::new(MemoryIam::new()),
                    root,
                    SecretKey::new(SECRET.into()),
                    operator(),
                )
                .await
                .expect("an in-memory directory"),
            );
            let authorizer = Arc::new(coffer_authz::Authorizer::new(directory.clone()));
            coffer_api_s3::service(
                Arc::new(objects),
                directory,
                authorizer,
                &coffer_api_s3::Config {
                    domain: None,
                    allow_insecure_sse_c: true,
                    dev: false,
                },
            )
        });
        let mut w = Self {
            rt,
            front,
            calls: 0,
            upload_id: String::new(),
        };
        for setup in [
            "header\nPUT /fuzz\n\n",
            "header\nPUT /fuzz-ver\n\n",
            "header\nPUT /fuzz-ver?versioning\n\n<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
            "header\nPUT /fuzz-lock\nx-amz-bucket-object-lock-enabled: true\n\n",
            "header\nPUT /fuzz/existing\n\nexisting object",
        ] {
            let o = w.send(setup.as_bytes()).expect("a setup request");
            assert_eq!(o.status, 200, "fuzz world setup: {setup}");
        }
        let o = w
            .send(b"header\nPOST /fuzz/mpu?uploads\n\n")
            .expect("CreateMultipartUpload");
        let text = String::from_utf8_lossy(&o.body);
        w.upload_id = text
            .split_once("<UploadId>")
            .and_then(|(_, r)| r.split_once("</UploadId>"))
            .map(|(id, _)| id.to_owned())
            .expect("an upload id");
        w
    }

    fn send(&self, data: &[u8]) -> Option<Outcome> {
        let now = time::OffsetDateTime::now_utc();
        let draft = parse(data, &self.upload_id, now)?;
        let (req, _) = build(draft, now)?;
        Some(self.rt.block_on(call(&self.front, req, KEEP)))
    }
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

pub fn s3_api(data: &[u8]) {
    WORLD.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|w| w.calls >= CALLS_PER_WORLD) {
            *cell = Some(World::new());
        }
        let w = cell.as_mut().expect("a world");
        w.calls += 1;
        let now = time::OffsetDateTime::now_utc();
        let Some(draft) = parse(data, &w.upload_id, now) else {
            return;
        };
        let method = draft.method.clone();
        let path = draft.path.clone();
        let Some((req, stored)) = build(draft, now) else {
            return;
        };
        let o = w.rt.block_on(call(&w.front, req, KEEP));
        if std::env::var_os("COFFER_FUZZ_SHOW").is_some() {
            eprintln!(
                "{method} {path}: {} {:?} {}",
                o.status,
                o.code,
                String::from_utf8_lossy(&o.body[..o.body.len().min(300)])
            );
        }
        assert!(
            o.status < 500 || o.status == 501,
            "{method} {path} answered {} {:?}",
            o.status,
            o.code
        );
        assert!(
            !o.body_failed,
            "{method} {path}: the body failed after the status"
        );
        if o.status >= 300 && method != "HEAD" && o.status != 304 {
            let code = o.code.as_deref().expect("an error names its code");
            let text = String::from_utf8_lossy(&o.body);
            assert!(
                text.contains(&format!("<Code>{code}</Code>")),
                "{method} {path}: error {code} not in its body: {text}"
            );
        }
        if let Some(stored) = stored
            && o.status == 200
            && method == "PUT"
            && path
                .splitn(3, '/')
                .nth(2)
                .is_some_and(|key| !key.is_empty())
        {
            let read = format!("header\nGET {path}\n\n");
            let back = w.send(read.as_bytes()).expect("a GET");
            assert_eq!(back.status, 200, "GET {path} after a PUT answered 200");
            assert!(
                back.body == stored,
                "GET {path} returned other bytes than were PUT"
            );
        }
    });
}
