//! The policy simulator: SimulatePrincipalPolicy (the policies of a user, group or role,
//! plus any given in `PolicyInputList`) and SimulateCustomPolicy (only the given ones),
//! each action on each resource, optionally with a resource policy and context entries,
//! decided by the same engine that decides real requests.

use std::collections::BTreeMap;

use coffer_iam::Directory;
use coffer_policy::document::{Document, Kind};
use coffer_policy::eval::{Context, Outcome, PolicySet, Query, decide, evaluate};

use crate::operation::Simulate;
use crate::wire::{Xml, member_list};
use crate::{Call, Fail, fail};

/// `Prefix.member.N` list parameters, in order.
fn members(call: &Call<'_>, prefix: &str) -> Vec<String> {
    let mut out: BTreeMap<u32, String> = BTreeMap::new();
    let head = format!("{prefix}.member.");
    for (k, v) in &call.params {
        if let Some(n) = k.strip_prefix(&head).and_then(|n| n.parse().ok()) {
            out.insert(n, v.clone());
        }
    }
    out.into_values().collect()
}

/// `ContextEntries.member.N.{ContextKeyName,ContextKeyValues.member.M}`.
fn context_entries(call: &Call<'_>) -> Context {
    let mut c = Context::new();
    for n in 1..=100 {
        let base = format!("ContextEntries.member.{n}");
        let Some(name) = call.get(&format!("{base}.ContextKeyName")) else {
            break;
        };
        c.set(name, members(call, &format!("{base}.ContextKeyValues")));
    }
    c
}

fn parse(text: &str, kind: Kind) -> Result<Document, Fail> {
    Document::parse(text, kind).map_err(|e| fail("InvalidInput", 400, e.0))
}

pub(crate) fn run(d: &Directory, call: &Call<'_>, op: Simulate) -> Result<String, Fail> {
    let actions = members(call, "ActionNames");
    if actions.is_empty() {
        return Err(fail(
            "ValidationError",
            400,
            "ActionNames must not be empty",
        ));
    }
    let mut resources = members(call, "ResourceArns");
    if resources.is_empty() {
        resources.push("*".to_owned());
    }
    let mut texts = members(call, "PolicyInputList");
    let (principal_arn, principal_account) = if op == Simulate::SimulatePrincipalPolicy {
        let source = call.need("PolicySourceArn")?;
        let found = d.policies_of(call.account(), source).ok_or_else(|| {
            fail(
                "NoSuchEntity",
                404,
                format!("The entity {source} cannot be found."),
            )
        })?;
        texts.extend(found);
        (
            call.get("CallerArn").unwrap_or(source).to_owned(),
            call.account().to_owned(),
        )
    } else {
        (
            call.get("CallerArn")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("arn:aws:iam::{}:user/simulated", call.account())),
            call.account().to_owned(),
        )
    };
    let identity: Vec<Document> = texts
        .iter()
        .map(|t| parse(t, Kind::Identity))
        .collect::<Result<_, _>>()?;
    let resource_policy = call
        .get("ResourcePolicy")
        .map(|t| parse(t, Kind::Resource))
        .transpose()?;
    let owner = call.get("ResourceOwner").map(|o| {
        o.strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split(':').next())
            .unwrap_or(o)
            .to_owned()
    });
    let context = context_entries(call);
    let mut results = Vec::new();
    for action in &actions {
        for resource in &resources {
            let q = Query {
                action,
                resource,
                principal_arn: &principal_arn,
                principal_account: &principal_account,
                context: &context,
            };
            let decision = decide(
                &PolicySet {
                    identity: &identity,
                    caller_is_root: false,
                    anonymous: false,
                    resource_policy: resource_policy.as_ref(),
                    resource_account: owner.as_deref(),
                },
                &q,
            );
            let explicit = identity
                .iter()
                .any(|doc| evaluate(doc, &q, false) == Outcome::ExplicitDeny)
                || resource_policy
                    .as_ref()
                    .is_some_and(|doc| evaluate(doc, &q, true) == Outcome::ExplicitDeny);
            let verdict = match decision {
                coffer_policy::Decision::Allow => "allowed",
                _ if explicit => "explicitDeny",
                _ => "implicitDeny",
            };
            results.push(
                Xml::new()
                    .text("EvalActionName", action)
                    .text("EvalResourceName", resource)
                    .text("EvalDecision", verdict)
                    .raw("MatchedStatements", "")
                    .raw("MissingContextValues", "")
                    .done(),
            );
        }
    }
    Ok(Xml::new()
        .raw("EvaluationResults", &member_list(&results))
        .text("IsTruncated", "false")
        .done())
}
