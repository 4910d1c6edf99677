//! Property tests of the policy engine's invariants, through the public API only:
//! adding a Deny never grants, removing an Allow never grants, and nothing panics — not on
//! random contexts, not on random documents, not on arbitrary text fed to the parser (the
//! property-test twin of coffer-fuzz's `policy` target).

use coffer_policy::Decision;
use coffer_policy::document::{Condition, Document, Effect, Kind, Negatable, Principal, Statement};
use coffer_policy::eval::{Context, PolicySet, Query, decide, decide_kms, evaluate};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:*",
    "s3:Get*",
    "s3:List?ucket",
    "kms:Decrypt",
    "kms:*",
    "*",
];
const PATTERNS: &[&str] = &[
    "*",
    "arn:aws:s3:::b",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::b/${aws:username}/*",
    "arn:aws:s3:::b/${aws:PrincipalTag/team, 'x'}/*",
    "arn:aws:s3:::other/*",
    "arn:aws:kms:*:${aws:PrincipalAccount}:key/*",
    "arn:aws:kms:us-east-1:111122223333:key/*",
];
const PRINCIPAL_IDS: &[&str] = &[
    "*",
    "111122223333",
    "444455556666",
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::444455556666:root",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::444455556666:user/dave",
    "arn:aws:iam::111122223333:role/R",
    "s3.amazonaws.com",
];
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "NumericLessThan",
    "NumericNotEquals",
    "NumericGreaterThanEquals",
    "DateLessThan",
    "DateNotEquals",
    "DateGreaterThanEquals",
    "Bool",
    "BoolIfExists",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "NotIpAddressIfExists",
    "ArnLike",
    "ArnNotEquals",
    "Null",
    "ForAllValues:StringEquals",
    "ForAllValues:StringNotLike",
    "ForAnyValue:StringLike",
    "ForAnyValue:NumericLessThan",
    "StringEqualsIfExists",
    "ForAllValues:Null",
    "NoSuchOperator",
];
const KEYS: &[&str] = &[
    "aws:SourceIp",
    "aws:SecureTransport",
    "aws:CurrentTime",
    "aws:username",
    "aws:PrincipalTag/team",
    "aws:TagKeys",
    "aws:SourceArn",
    "s3:prefix",
    "s3:max-keys",
    "example:blob",
    "kms:EncryptionContext:aws:s3:arn",
];
const VALUES: &[&str] = &[
    "192.0.2.0/24",
    "192.0.2.7",
    "2001:db8::/32",
    "2001:db8::1",
    "::ffff:192.0.2.9",
    "10.0.0.0/33",
    "true",
    "false",
    "TRUE",
    "home/*",
    "home/alice/",
    "10",
    "-3.5",
    "1e9",
    "2020-01-01T00:00:00Z",
    "1577836800",
    "2020-01-01",
    "aGk=",
    "arn:aws:s3:::b",
    "arn:aws:s3:::b/*",
    "${aws:username}",
    "${*}${?}${$}",
    "${",
    "alice",
    "",
    "*",
];
const QUERY_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "kms:Decrypt",
];
const QUERY_RESOURCES: &[&str] = &[
    "*",
    "arn:aws:s3:::b",
    "arn:aws:s3:::b/alice/x",
    "arn:aws:s3:::other/k",
    "arn:aws:kms:us-east-1:111122223333:key/k",
    "arn:aws:kms:us-east-1:444455556666:key/k",
];
/// (principal ARN, account, is root)
const CALLERS: &[(&str, &str, bool)] = &[
    (
        "arn:aws:iam::111122223333:user/alice",
        "111122223333",
        false,
    ),
    ("arn:aws:iam::111122223333:root", "111122223333", true),
    ("arn:aws:iam::444455556666:user/dave", "444455556666", false),
    ("arn:aws:iam::444455556666:root", "444455556666", true),
    (
        "arn:aws:sts::111122223333:assumed-role/R/session",
        "111122223333",
        false,
    ),
];

fn strings(pool: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(select(pool).prop_map(String::from), 1..=max)
}

fn negatable(pool: &'static [&'static str]) -> impl Strategy<Value = Negatable<Vec<String>>> {
    (any::<bool>(), strings(pool, 3)).prop_map(|(not, v)| {
        if not {
            Negatable::Not(v)
        } else {
            Negatable::Is(v)
        }
    })
}

fn principal() -> impl Strategy<Value = Negatable<Principal>> {
    let list = prop_oneof![
        1 => Just(Principal::Any),
        4 => prop::collection::vec(
            (select(&["AWS", "AWS", "Service"][..]).prop_map(String::from), strings(PRINCIPAL_IDS, 3)),
            1..=2,
        )
        .prop_map(Principal::Typed),
    ];
    (any::<bool>(), list).prop_map(|(not, p)| {
        if not {
            Negatable::Not(p)
        } else {
            Negatable::Is(p)
        }
    })
}

fn condition() -> impl Strategy<Value = Condition> {
    let values = prop::collection::vec(select(VALUES).prop_map(String::from), 0..=3);
    let entries = prop::collection::vec((select(KEYS).prop_map(String::from), values), 1..=2);
    prop::collection::vec((select(OPERATORS).prop_map(String::from), entries), 0..=2)
}

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![3 => Just(Effect::Allow), 1 => Just(Effect::Deny)]
}

fn statement(
    effect: impl Strategy<Value = Effect>,
    resource_policy: bool,
) -> impl Strategy<Value = Statement> {
    let resource = if resource_policy {
        prop::option::weighted(0.8, negatable(PATTERNS)).boxed()
    } else {
        negatable(PATTERNS).prop_map(Some).boxed()
    };
    let principal = if resource_policy {
        principal().prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    (effect, principal, negatable(ACTIONS), resource, condition()).prop_map(
        |(effect, principal, action, resource, condition)| Statement {
            sid: None,
            effect,
            principal,
            action,
            resource,
            condition,
        },
    )
}

fn document(resource_policy: bool) -> impl Strategy<Value = Document> {
    let version = select(&[None, Some("2012-10-17"), Some("2008-10-17")][..])
        .prop_map(|v| v.map(String::from));
    (
        version,
        prop::collection::vec(statement(effect(), resource_policy), 1..=4),
    )
        .prop_map(|(version, statements)| Document {
            version,
            id: None,
            statements,
        })
}

fn context() -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
    let values = prop::collection::vec(select(VALUES).prop_map(String::from), 0..=3);
    prop::collection::vec((select(KEYS).prop_map(String::from), values), 0..=6)
}

/// Everything one request brings to `decide` and `decide_kms`.
#[derive(Debug, Clone)]
struct Scenario {
    identity: Vec<Document>,
    resource: Option<Document>,
    resource_account: Option<&'static str>,
    caller: (&'static str, &'static str, bool),
    action: &'static str,
    target: &'static str,
    context: Vec<(String, Vec<String>)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(document(false), 0..=2),
        prop::option::weighted(0.8, document(true)),
        select(&[None, Some("111122223333"), Some("444455556666")][..]),
        select(CALLERS),
        select(QUERY_ACTIONS),
        select(QUERY_RESOURCES),
        context(),
    )
        .prop_map(
            |(identity, resource, resource_account, caller, action, target, context)| Scenario {
                identity,
                resource,
                resource_account,
                caller,
                action,
                target,
                context,
            },
        )
}

/// The outcomes of both decision functions for a scenario (the key policy being the resource
/// policy, or an empty one).
fn decisions(s: &Scenario) -> (Decision, Decision) {
    let mut ctx = Context::new();
    for (k, v) in &s.context {
        ctx.set(k, v.clone());
    }
    let q = Query {
        action: s.action,
        resource: s.target,
        principal_arn: s.caller.0,
        principal_account: s.caller.1,
        context: &ctx,
    };
    let set = PolicySet {
        identity: &s.identity,
        caller_is_root: s.caller.2,
        anonymous: false,
        resource_policy: s.resource.as_ref(),
        resource_account: s.resource_account,
    };
    let empty = Document {
        version: Some("2012-10-17".into()),
        id: None,
        statements: Vec::new(),
    };
    let key_policy = s.resource.as_ref().unwrap_or(&empty);
    (
        decide(&set, &q),
        decide_kms(key_policy, &s.identity, s.caller.2, &q),
    )
}

fn never_grants(before: &Decision, after: &Decision) -> bool {
    !(matches!(before, Decision::Deny(_)) && *after == Decision::Allow)
}

/// Every statement position in a scenario: (None = resource policy | Some(i) = identity i, index).
fn positions(s: &Scenario) -> Vec<(Option<usize>, usize)> {
    let mut out = Vec::new();
    for (i, d) in s.identity.iter().enumerate() {
        out.extend((0..d.statements.len()).map(|j| (Some(i), j)));
    }
    if let Some(r) = &s.resource {
        out.extend((0..r.statements.len()).map(|j| (None, j)));
    }
    out
}

fn doc_mut(s: &mut Scenario, which: Option<usize>) -> Option<&mut Document> {
    match which {
        Some(i) => s.identity.get_mut(i),
        None => s.resource.as_mut(),
    }
}

/// A string shaped like JSON policy text: the grammar's words, punctuation, and noise.
fn json_ish_value(depth: u32) -> BoxedStrategy<Value> {
    const WORDS: &[&str] = &[
        "Version",
        "2012-10-17",
        "2008-10-17",
        "Statement",
        "Effect",
        "Allow",
        "Deny",
        "Principal",
        "NotPrincipal",
        "AWS",
        "Service",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "Sid",
        "*",
        "s3:*",
        "kms:Decrypt",
        "arn:aws:s3:::b/*",
        "111122223333",
        "StringEquals",
        "StringNotLike",
        "ForAllValues:StringLike",
        "IpAddress",
        "Null",
        "DateLessThanIfExists",
        "aws:SourceIp",
        "aws:username",
        "${aws:username}",
        "${",
        "192.0.2.0/24",
        "true",
    ];
    let leaf = prop_oneof![
        select(WORDS).prop_map(|w| Value::String(w.into())),
        ".{0,12}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        Just(Value::Null),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let inner = json_ish_value(depth - 1);
    prop_oneof![
        2 => leaf,
        1 => prop::collection::vec(inner.clone(), 0..=3).prop_map(Value::Array),
        2 => prop::collection::vec((select(WORDS).prop_map(String::from), inner), 0..=4)
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
    ]
    .boxed()
}

/// Mostly-well-formed JSON for one element, sometimes replaced by random JSON.
fn element(good: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![9 => good, 1 => json_ish_value(2)].boxed()
}

fn string_or_list(pool: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        select(pool).prop_map(|v| json!(v)),
        prop::collection::vec(select(pool), 0..=3).prop_map(|v| json!(v)),
    ]
}

/// A policy-shaped document: each statement element is usually well-formed and sometimes
/// random, so that a useful share gets past the parser and reaches the evaluator.
fn json_ish_policy() -> impl Strategy<Value = String> {
    let principal = element(prop_oneof![
        Just(json!("*")),
        string_or_list(PRINCIPAL_IDS).prop_map(|ids| json!({ "AWS": ids })),
        string_or_list(PRINCIPAL_IDS).prop_map(|ids| json!({ "Service": ids })),
    ]);
    let values = prop_oneof![
        string_or_list(VALUES),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i32>().prop_map(|n| json!(n)),
    ];
    let condition = element(
        prop::collection::vec(
            (
                select(OPERATORS),
                prop::collection::vec((select(KEYS), values), 0..=2),
            ),
            0..=3,
        )
        .prop_map(|ops| {
            let ops: Map<String, Value> = ops
                .into_iter()
                .map(|(op, keys)| {
                    let keys: Map<String, Value> =
                        keys.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                    (op.to_owned(), Value::Object(keys))
                })
                .collect();
            Value::Object(ops)
        }),
    );
    let stmt = (
        element(select(&["Allow", "Deny"][..]).prop_map(|e| json!(e))),
        prop::option::weighted(0.6, (any::<bool>(), principal)),
        (any::<bool>(), element(string_or_list(ACTIONS))),
        prop::option::weighted(0.7, (any::<bool>(), element(string_or_list(PATTERNS)))),
        prop::option::weighted(0.6, condition),
    )
        .prop_map(|(effect, principal, action, resource, condition)| {
            let mut m = Map::new();
            m.insert("Effect".into(), effect);
            let name = |not: bool, base: &str| {
                if not {
                    format!("Not{base}")
                } else {
                    base.to_owned()
                }
            };
            if let Some((not, p)) = principal {
                m.insert(name(not, "Principal"), p);
            }
            m.insert(name(action.0, "Action"), action.1);
            if let Some((not, r)) = resource {
                m.insert(name(not, "Resource"), r);
            }
            if let Some(c) = condition {
                m.insert("Condition".into(), c);
            }
            Value::Object(m)
        });
    (
        select(vec![json!("2012-10-17"), json!("2008-10-17"), Value::Null]),
        prop::collection::vec(stmt, 1..=3),
    )
        .prop_map(|(version, statements)| {
            let mut top = Map::new();
            if !version.is_null() {
                top.insert("Version".into(), version);
            }
            top.insert("Statement".into(), Value::Array(statements));
            Value::Object(top).to_string()
        })
}

/// Parses `text` as both kinds and evaluates whatever parses against a fixed query, as
/// coffer-fuzz's `policy` target does.
fn parse_and_evaluate(text: &str) {
    let mut ctx = Context::new();
    ctx.set_one("aws:SourceIp", "192.0.2.7");
    ctx.set_one("aws:SecureTransport", "true");
    ctx.set_one("aws:CurrentTime", "2024-01-01T00:00:00Z");
    ctx.set("aws:TagKeys", vec!["a".into(), "b".into()]);
    let q = Query {
        action: "s3:GetObject",
        resource: "arn:aws:s3:::b/alice/x",
        principal_arn: "arn:aws:iam::111122223333:user/alice",
        principal_account: "111122223333",
        context: &ctx,
    };
    for kind in [Kind::Resource, Kind::Identity] {
        if let Ok(doc) = Document::parse(text, kind) {
            let resource = kind == Kind::Resource;
            let _ = evaluate(&doc, &q, resource);
            let identity = if resource {
                Vec::new()
            } else {
                vec![doc.clone()]
            };
            let set = PolicySet {
                identity: &identity,
                caller_is_root: false,
                anonymous: false,
                resource_policy: resource.then_some(&doc),
                resource_account: Some("444455556666"),
            };
            let _ = decide(&set, &q);
            let _ = decide_kms(&doc, &identity, false, &q);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Explicit deny wins: adding a Deny statement anywhere never turns a Deny into an Allow.
    #[test]
    fn adding_a_deny_never_grants(
        s in scenario(),
        deny_identity in statement(Just(Effect::Deny), false),
        deny_resource in statement(Just(Effect::Deny), true),
        target in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
    ) {
        let before = decisions(&s);
        let mut after = s.clone();
        // Targets: each identity document, the resource policy (created if absent), or a new
        // identity document.
        let n = after.identity.len() + 2;
        match target.index(n) {
            i if i < after.identity.len() => {
                let d = &mut after.identity[i];
                let pos = at.index(d.statements.len() + 1);
                d.statements.insert(pos, deny_identity);
            }
            i if i == after.identity.len() => {
                let d = after.resource.get_or_insert_with(|| Document {
                    version: Some("2012-10-17".into()),
                    id: None,
                    statements: Vec::new(),
                });
                let pos = at.index(d.statements.len() + 1);
                d.statements.insert(pos, deny_resource);
            }
            _ => after.identity.push(Document {
                version: Some("2012-10-17".into()),
                id: None,
                statements: vec![deny_identity],
            }),
        }
        let after_d = decisions(&after);
        prop_assert!(never_grants(&before.0, &after_d.0), "decide: {:?} -> {:?}", before.0, after_d.0);
        prop_assert!(never_grants(&before.1, &after_d.1), "decide_kms: {:?} -> {:?}", before.1, after_d.1);
    }

    /// Removing an Allow statement never turns a Deny into an Allow.
    #[test]
    fn removing_an_allow_never_grants(s in scenario(), pick in any::<prop::sample::Index>()) {
        let allows: Vec<_> = positions(&s)
            .into_iter()
            .filter(|(which, j)| {
                let doc = match which {
                    Some(i) => s.identity.get(*i),
                    None => s.resource.as_ref(),
                };
                doc.is_some_and(|d| d.statements[*j].effect == Effect::Allow)
            })
            .collect();
        prop_assume!(!allows.is_empty());
        let (which, j) = allows[pick.index(allows.len())];
        let before = decisions(&s);
        let mut after = s.clone();
        if let Some(d) = doc_mut(&mut after, which) {
            d.statements.remove(j);
        }
        let after_d = decisions(&after);
        prop_assert!(never_grants(&before.0, &after_d.0), "decide: {:?} -> {:?}", before.0, after_d.0);
        prop_assert!(never_grants(&before.1, &after_d.1), "decide_kms: {:?} -> {:?}", before.1, after_d.1);
    }

    /// `decide` and `decide_kms` never panic, whatever the context holds.
    #[test]
    fn decide_never_panics_on_random_contexts(
        s in scenario(),
        noise in prop::collection::vec((".{0,16}", prop::collection::vec(".{0,24}", 0..=3)), 0..=6),
    ) {
        let mut s = s;
        s.context.extend(noise);
        let _ = decisions(&s);
    }

    /// The property-test twin of coffer-fuzz's `policy` target: arbitrary text never panics the
    /// parser or the evaluator.
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        parse_and_evaluate(&text);
    }

    /// JSON-shaped input with the grammar's own words, so that much of it parses and the
    /// evaluator sees odd-but-valid documents.
    #[test]
    fn json_ish_policies_never_panic(text in json_ish_policy()) {
        parse_and_evaluate(&text);
    }
}
