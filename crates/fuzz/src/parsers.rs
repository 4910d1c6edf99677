//! Targets over pure parsers: SigV4 for the JSON and Query APIs, the IAM policy grammar,
//! the S3 documents Coffer reads itself, and the audit trail's reader and verifier.

use std::cell::RefCell;
use std::path::PathBuf;

use coffer_policy::document::{Document, Kind};
use coffer_policy::eval::{Context, PolicySet, Query, decide, decide_kms, evaluate};
use coffer_sigv4::{Authorization, Received, SigningKey, parse_amz_date, verify};

/// The secret the `sigv4` seeds were signed with.
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// The time the `sigv4` target verifies at (its seeds are signed at this time).
pub fn now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-01-01 00:00:00 UTC)
}

/// A request as text: the Authorization header's value on the first line, then
/// `METHOD PATH[?QUERY]`, then `name: value` header lines, an empty line and the body.
/// The header is parsed; the request is verified for service `kms` at [`now`].
pub fn sigv4(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.split('\n');
    let authorization = lines.next().unwrap_or_default();
    let parsed = Authorization::parse(authorization);
    if let Ok(a) = &parsed {
        assert_eq!(a.signature.len(), 64, "a parsed signature is 64 hex digits");
        assert!(!a.signed_headers.is_empty());
    }
    let request_line = lines.next().unwrap_or("POST /");
    let (method, target) = request_line
        .split_once(' ')
        .unwrap_or(("POST", request_line));
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = vec![("Authorization".to_owned(), authorization.to_owned())];
    for l in lines {
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        if name.eq_ignore_ascii_case("x-amz-date") {
            let _ = parse_amz_date(value.trim());
        }
        headers.push((name.to_owned(), value.trim_start().to_owned()));
    }
    let received = Received {
        method,
        raw_path,
        raw_query,
        headers: &headers,
        body: body.as_bytes(),
    };
    if let Ok(auth) = received.authorization() {
        let key = SigningKey::derive(SECRET, &auth.date, &auth.region, &auth.service);
        let verdict = verify(
            &received,
            &auth,
            &key,
            "kms",
            now(),
            time::Duration::minutes(15),
        );
        if let Err(r) = verdict {
            let _ = r.kind();
            let _ = r.message("kms");
        }
    }
}

/// Arbitrary text parsed as a resource and an identity policy; whatever parses is
/// evaluated alone, through `decide` (for three bucket owners) and as a key policy.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut ctx = Context::new();
    ctx.set_one("aws:SourceIp", "192.0.2.7");
    ctx.set_one("aws:SecureTransport", "true");
    ctx.set_one("aws:CurrentTime", "2024-01-01T00:00:00Z");
    ctx.set_one("s3:prefix", "home/alice/");
    ctx.set("aws:TagKeys", vec!["a".into(), "b".into()]);
    let q = Query {
        action: "s3:GetObject",
        resource: "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/x",
        principal_arn: "arn:aws:iam::111122223333:user/alice",
        principal_account: "111122223333",
        context: &ctx,
    };
    for kind in [Kind::Resource, Kind::Identity] {
        let Ok(doc) = Document::parse(text, kind) else {
            continue;
        };
        let resource = kind == Kind::Resource;
        let _ = evaluate(&doc, &q, resource);
        let identity = if resource {
            Vec::new()
        } else {
            vec![doc.clone()]
        };
        for owner in [Some("111122223333"), Some("444455556666"), None] {
            let set = PolicySet {
                identity: &identity,
                caller_is_root: false,
                anonymous: false,
                resource_policy: resource.then_some(&doc),
                resource_account: owner,
            };
            let _ = decide(&set, &q);
        }
        let _ = decide_kms(&doc, &identity, false, &q);
    }
}

/// The S3 request documents s3s has no model for, read and checked as the operations do.
pub fn s3_xml(data: &[u8]) {
    coffer_api_s3::fuzz::documents(data);
}

thread_local! {
    static TRAIL_DIR: RefCell<Option<(tempfile::TempDir, PathBuf)>> = const { RefCell::new(None) };
}

/// A trail signer that accepts nothing: the target is the reader, not the signatures.
struct NoSigner;

impl coffer_audit::trail::Signer for NoSigner {
    fn sign(&self, _: &[u8]) -> Result<String, String> {
        Err("not in the fuzzer".into())
    }
    fn verify(&self, _: &[u8], signature: &str) -> Result<bool, String> {
        Ok(signature == "ok")
    }
}

/// A trail file (and, after a line `--digest--`, its digest document) read by
/// `read_records` and checked by `verify`.
pub fn trail(data: &[u8]) {
    const SPLIT: &[u8] = b"\n--digest--\n";
    let (file, digest) = match data.windows(SPLIT.len()).position(|w| w == SPLIT) {
        Some(i) => (&data[..i], Some(&data[i + SPLIT.len()..])),
        None => (data, None),
    };
    TRAIL_DIR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().to_owned();
            *cell = Some((dir, path));
        }
        let Some((_, dir)) = cell.as_ref() else {
            return;
        };
        let digest_path = dir.join("trail-00000001.digest.json");
        std::fs::write(dir.join("trail-00000001.jsonl"), file).expect("write the trail file");
        match digest {
            Some(d) => std::fs::write(&digest_path, d).expect("write the digest"),
            None => {
                let _ = std::fs::remove_file(&digest_path);
            }
        }
        let findings = coffer_audit::trail::verify(dir, &NoSigner).expect("verify reads");
        let records = coffer_audit::trail::read_records(dir).expect("read_records reads");
        if findings.is_empty() {
            let lines = file
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            assert_eq!(
                records.len(),
                lines,
                "a trail that verifies has one record per line"
            );
        }
    });
}
