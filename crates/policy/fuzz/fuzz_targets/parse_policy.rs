//! Fuzzes the policy parser and evaluator: arbitrary bytes, read as UTF-8, are parsed as both
//! a resource and an identity policy, and whatever parses is evaluated against a fixed query
//! (alone, through `decide`, and as a key policy through `decide_kms`). Nothing may panic.

#![no_main]

use coffer_policy::document::{Document, Kind};
use coffer_policy::eval::{Context, PolicySet, Query, decide, decide_kms, evaluate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
        let identity = if resource { Vec::new() } else { vec![doc.clone()] };
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
});
