//! Table-driven tests of the evaluation engine: `aws_examples` holds AWS's documented
//! policy examples (each group cites its page; where a row goes beyond what the page states,
//! the comment says so), `semantics` the matching and operator rules case by case. The
//! table tests are `#[rustfmt::skip]` so that each row stays one line. This module holds
//! the row types and the runners they share.

mod aws_examples;
mod semantics;

use super::*;
use crate::document::{Document, Kind};
use Outcome::{AllowAccount, ExplicitDeny, NotApplicable};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB_A: &str = "arn:aws:iam::111122223333:user/bob";
const ROOT_A: &str = "arn:aws:iam::111122223333:root";
const DAVE_B: &str = "arn:aws:iam::444455556666:user/Dave";
const BOB_B: &str = "arn:aws:iam::444455556666:user/Bob";
const ROOT_B: &str = "arn:aws:iam::444455556666:root";
const BUCKET: &str = "arn:aws:s3:::amzn-s3-demo-bucket";
const OBJECT: &str = "arn:aws:s3:::amzn-s3-demo-bucket/photos/cat.jpg";
const KEY_A: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

type Ctx = &'static [(&'static str, &'static [&'static str])];

/// One row of an [`evaluate`] table.
struct Row {
    name: &'static str,
    action: &'static str,
    resource: &'static str,
    principal: &'static str,
    ctx: Ctx,
    expect: Outcome,
}

const fn row(
    name: &'static str,
    action: &'static str,
    resource: &'static str,
    principal: &'static str,
    ctx: Ctx,
    expect: Outcome,
) -> Row {
    Row {
        name,
        action,
        resource,
        principal,
        ctx,
        expect,
    }
}

fn context(pairs: Ctx) -> Context {
    let mut c = Context::new();
    for (k, vs) in pairs {
        c.set(k, vs.iter().map(|v| (*v).to_owned()).collect());
    }
    c
}

/// The caller's account: an empty ARN stands for an anonymous caller, whose account AWS
/// calls `anonymous`.
fn account_of(arn: &str) -> &str {
    if arn.is_empty() {
        return ANONYMOUS;
    }
    arn.split(':').nth(4).unwrap_or("")
}

/// The principal of an unsigned request (no ARN).
const ANONYMOUS: &str = "anonymous";

fn parse(text: &str, kind: Kind) -> Document {
    match Document::parse(text, kind) {
        Ok(d) => d,
        Err(e) => panic!("test policy does not parse: {e}\n{text}"),
    }
}

/// Runs every row and reports all mismatches at once.
fn check(policy: &str, kind: Kind, rows: &[Row]) {
    let doc = parse(policy, kind);
    let mut failures = Vec::new();
    for r in rows {
        let ctx = context(r.ctx);
        let q = Query {
            action: r.action,
            resource: r.resource,
            principal_arn: r.principal,
            principal_account: account_of(r.principal),
            context: &ctx,
        };
        let got = evaluate(&doc, &q, kind == Kind::Resource);
        if got != r.expect {
            failures.push(format!("{}: expected {:?}, got {got:?}", r.name, r.expect));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One row of a [`decide`] / [`decide_kms`] table.
struct Call<'a> {
    name: &'static str,
    principal: &'static str,
    identity: &'a [&'a str],
    action: &'static str,
    resource: &'static str,
    ctx: Ctx,
    /// `None` for Allow, `Some(reason)` for Deny.
    deny: Option<&'static str>,
}

const fn call<'a>(
    name: &'static str,
    principal: &'static str,
    identity: &'a [&'a str],
    action: &'static str,
    resource: &'static str,
    ctx: Ctx,
    deny: Option<&'static str>,
) -> Call<'a> {
    Call {
        name,
        principal,
        identity,
        action,
        resource,
        ctx,
        deny,
    }
}

fn expected(c: &Call<'_>) -> Decision {
    c.deny.map_or(Decision::Allow, Decision::Deny)
}

/// Runs every call through `decision` (given the call's parsed identity policies and its
/// query) and reports all mismatches at once.
fn run_calls(
    calls: &[Call<'_>],
    decision: impl Fn(&Call<'_>, &[Document], &Query<'_>) -> Decision,
) {
    let mut failures = Vec::new();
    for c in calls {
        let identity: Vec<Document> = c
            .identity
            .iter()
            .map(|p| parse(p, Kind::Identity))
            .collect();
        let ctx = context(c.ctx);
        let q = Query {
            action: c.action,
            resource: c.resource,
            principal_arn: c.principal,
            principal_account: account_of(c.principal),
            context: &ctx,
        };
        let got = decision(c, &identity, &q);
        if got != expected(c) {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}",
                c.name,
                expected(c)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `decide` for each call against a bucket policy of a bucket owned by `owner`.
fn check_decide(bucket_policy: Option<&str>, owner: Option<&str>, calls: &[Call<'_>]) {
    let rp = bucket_policy.map(|p| parse(p, Kind::Resource));
    run_calls(calls, |c, identity, q| {
        let set = PolicySet {
            identity,
            caller_is_root: c.principal.ends_with(":root"),
            anonymous: c.principal.is_empty(),
            resource_policy: rp.as_ref(),
            resource_account: owner,
        };
        decide(&set, q)
    });
}

fn check_kms(key_policy: &str, calls: &[Call<'_>]) {
    let kp = parse(key_policy, Kind::Resource);
    run_calls(calls, |c, identity, q| {
        decide_kms(&kp, identity, c.principal.ends_with(":root"), q)
    });
}

const ALLOW: Outcome = Outcome::Allow;
