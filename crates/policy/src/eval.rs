//! The IAM policy evaluation engine: what one [`Document`] says about one [`Query`]
//! ([`evaluate`]), and how the identity, bucket and key policies bearing on a request combine
//! into one [`Decision`] ([`decide`] for S3-style resources, [`decide_kms`] for KMS keys).
//!
//! Sources, all from AWS's IAM User Guide unless noted: "Policy evaluation logic" and
//! "Cross-account policy evaluation logic" (how policies combine), "IAM JSON policy elements"
//! (Action, Resource, Principal, NotPrincipal, Condition), "Condition operators", "Single-valued
//! vs. multivalued context keys", "IAM policy elements: Variables and tags", and the AWS KMS
//! Developer Guide's "Key policies" and "Default key policy".
//!
//! Architecture invariant: evaluation is a pure function of the documents and the query. It
//! does no I/O and reads no clock (`aws:CurrentTime` is a context value the caller supplies),
//! and it never panics on any parsed document or context.

mod conditions;
mod matching;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::Decision;
use crate::document::{Document, Effect, Negatable, Statement};

/// Condition-key values of one request. Keys are case-insensitive (stored lower-cased, as AWS
/// compares condition key names case-insensitively); values are kept as given.
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a (possibly multi-valued) key, replacing any earlier value. An empty list counts as
    /// an absent key for `Null`, `...IfExists` and the set operators, as in AWS.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_lowercase(), values);
    }

    pub fn set_one(&mut self, key: &str, value: impl Into<String>) {
        self.set(key, vec![value.into()]);
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_lowercase()).map(Vec::as_slice)
    }
}

/// One access question.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// e.g. `s3:GetObject`, `kms:Decrypt`; matched case-insensitively.
    pub action: &'a str,
    /// An ARN (`arn:aws:s3:::bucket/key`, `arn:aws:kms:us-east-1:111122223333:key/ID`) or `*`.
    pub resource: &'a str,
    /// `arn:aws:iam::111122223333:user/alice`, `arn:aws:iam::111122223333:root`,
    /// `arn:aws:sts::111122223333:assumed-role/R/session`.
    pub principal_arn: &'a str,
    /// `111122223333`.
    pub principal_account: &'a str,
    pub context: &'a Context,
}

impl<'a> Query<'a> {
    /// The values of a condition key: from the context first, else derived from the query for
    /// the global keys AWS always (or, for `aws:username`/`aws:userid`, per principal type)
    /// puts in the request context. `key` must be lower-cased.
    fn lookup(&self, key: &str) -> Option<Cow<'a, [String]>> {
        if let Some(v) = self.context.get(key) {
            return Some(Cow::Borrowed(v));
        }
        let derived = match key {
            "aws:principalarn" => self.principal_arn,
            "aws:principalaccount" => self.principal_account,
            // aws:username exists only for IAM users: the last segment of the user's path.
            "aws:username" => matching::user_name(self.principal_arn)?,
            // For the root user AWS sets aws:userid to the account id; other principals'
            // unique ids are not in the ARN, so the caller has to put them in the context.
            "aws:userid" if self.caller_is_account_root() => self.principal_account,
            _ => return None,
        };
        (!derived.is_empty()).then(|| Cow::Owned(vec![derived.to_owned()]))
    }

    /// Whether the caller is the root user of its account, judged from its ARN.
    fn caller_is_account_root(&self) -> bool {
        matching::root_account(self.principal_arn) == Some(self.principal_account)
    }
}

/// One document's verdict for a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    ExplicitDeny,
    /// Allowed by a statement whose Principal names the caller itself (or "*"), or by an
    /// identity policy.
    Allow,
    /// (resource policies only) allowed by a statement whose Principal is the caller's
    /// *account* (`"111122223333"` or `"arn:aws:iam::111122223333:root"`): AWS treats this as
    /// delegating to the account, so the caller's own identity policies must also allow
    /// (unless the caller is that account's root).
    AllowAccount,
    NotApplicable,
}

/// How a statement's Principal element reaches the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// Through the caller's account: a delegation, see [`Outcome::AllowAccount`].
    Account,
    /// The caller itself, everyone (`*`), or (for NotPrincipal) everyone not excepted.
    Caller,
}

/// Everything the matchers need besides the query: whether policy variables apply.
#[derive(Clone, Copy)]
struct Env<'q, 'a> {
    q: &'q Query<'a>,
    /// Policy variables (`${aws:username}`) are substituted only in `"Version": "2012-10-17"`
    /// documents; in 2008-10-17 documents, or ones without a Version, `${...}` is literal text.
    variables: bool,
}

/// Evaluates one document. `resource_policy` = true for bucket and key policies (statements
/// must match Principal/NotPrincipal); false for identity policies (no Principal element).
///
/// Any matching Deny statement makes the result [`Outcome::ExplicitDeny`], whatever else
/// matches; otherwise the strongest matching Allow decides ([`Outcome::Allow`] over
/// [`Outcome::AllowAccount`]).
pub fn evaluate(doc: &Document, q: &Query<'_>, resource_policy: bool) -> Outcome {
    let env = Env {
        q,
        variables: doc.version.as_deref() == Some("2012-10-17"),
    };
    let mut best: Option<Reach> = None;
    for st in &doc.statements {
        let Some(reach) = statement_applies(st, &env, resource_policy) else {
            continue;
        };
        match st.effect {
            Effect::Deny => return Outcome::ExplicitDeny,
            Effect::Allow => best = best.max(Some(reach)),
        }
    }
    match best {
        Some(Reach::Caller) => Outcome::Allow,
        Some(Reach::Account) => Outcome::AllowAccount,
        None => Outcome::NotApplicable,
    }
}

/// Whether a statement applies to the query, and through what; `None` when it does not.
fn statement_applies(st: &Statement, env: &Env<'_, '_>, resource_policy: bool) -> Option<Reach> {
    let reach = if resource_policy {
        // The parser requires a Principal in resource policies; a hand-built statement
        // without one names nobody.
        matching::principal(st.principal.as_ref()?, env.q)?
    } else {
        // Identity policies apply to the principal they are attached to.
        Reach::Caller
    };
    let action = match &st.action {
        Negatable::Is(list) => list.iter().any(|a| matching::action(a, env.q.action)),
        Negatable::Not(list) => !list.iter().any(|a| matching::action(a, env.q.action)),
    };
    if !action {
        return None;
    }
    let resource = match &st.resource {
        // A resource-policy statement without Resource applies to the policy's own resource.
        None => true,
        Some(Negatable::Is(list)) => list.iter().any(|r| matching::resource(r, env)),
        Some(Negatable::Not(list)) => !list.iter().any(|r| matching::resource(r, env)),
    };
    if !resource {
        return None;
    }
    conditions::hold(&st.condition, env).then_some(reach)
}

/// Everything that bears on one request.
#[derive(Debug, Clone, Copy)]
pub struct PolicySet<'a> {
    /// Identity policies of the caller (inline + attached + group policies). Ignored for a
    /// root caller.
    pub identity: &'a [Document],
    /// The caller is the root user of `q.principal_account` (root is implicitly allowed
    /// everything in its own account, except what a resource policy explicitly denies).
    pub caller_is_root: bool,
    /// The caller is anonymous (an unsigned S3 request): it has no identity side and no
    /// account, so only a resource-policy statement naming everyone (`*`, or a NotPrincipal
    /// that does not except it) can allow it.
    pub anonymous: bool,
    /// The resource's policy (bucket policy), if any.
    pub resource_policy: Option<&'a Document>,
    /// The account owning the resource; None for actions on no resource (ListBuckets,
    /// CreateBucket) — then treat it as the caller's own account.
    pub resource_account: Option<&'a str>,
}

/// What the caller's identity policies say: (some explicit deny, some allow).
fn identity_side(identity: &[Document], caller_is_root: bool, q: &Query<'_>) -> (bool, bool) {
    if caller_is_root {
        // The root user has no identity policies and is implicitly allowed everything.
        return (false, true);
    }
    let mut deny = false;
    let mut allow = false;
    for d in identity {
        match evaluate(d, q, false) {
            Outcome::ExplicitDeny => deny = true,
            Outcome::Allow | Outcome::AllowAccount => allow = true,
            Outcome::NotApplicable => {}
        }
    }
    (deny, allow)
}

/// AWS's evaluation logic for S3/IAM-style resources:
/// 1. an explicit Deny in any applicable policy (identity or resource) → Deny;
/// 2. same account (resource_account == principal_account or None): Allow if the identity
///    side allows (root counts as allowing) OR the resource policy returns Allow; a
///    resource-policy AllowAccount counts only together with an identity allow;
/// 3. cross-account: Allow only if the resource policy allows (Allow or AllowAccount) AND the
///    identity side allows (a root caller's identity side allows);
/// 4. otherwise implicit Deny.
///
/// An anonymous caller is allowed only by a resource-policy Allow that reaches it directly.
pub fn decide(set: &PolicySet<'_>, q: &Query<'_>) -> Decision {
    let (identity_denies, identity_allows) = identity_side(set.identity, set.caller_is_root, q);
    let resource = set
        .resource_policy
        .map_or(Outcome::NotApplicable, |d| evaluate(d, q, true));
    if identity_denies {
        return Decision::Deny(EXPLICIT_DENY);
    }
    if resource == Outcome::ExplicitDeny {
        return Decision::Deny(EXPLICIT_DENY_RESOURCE);
    }
    if set.anonymous {
        return if resource == Outcome::Allow {
            Decision::Allow
        } else {
            Decision::Deny("no policy allows anonymous access")
        };
    }
    let same_account = set
        .resource_account
        .is_none_or(|owner| owner == q.principal_account);
    if same_account {
        if identity_allows || resource == Outcome::Allow {
            Decision::Allow
        } else {
            Decision::Deny("no policy allows")
        }
    } else {
        let resource_allows = matches!(resource, Outcome::Allow | Outcome::AllowAccount);
        if resource_allows && identity_allows {
            Decision::Allow
        } else {
            Decision::Deny("cross-account access needs both sides")
        }
    }
}

/// The reason [`Decision::Deny`] gives when an identity policy explicitly denies.
pub const EXPLICIT_DENY: &str = "explicit deny";

/// The reason [`Decision::Deny`] gives when a resource policy (a bucket or key policy)
/// explicitly denies.
pub const EXPLICIT_DENY_RESOURCE: &str = "explicit deny in a resource-based policy";

/// Whether a denial's reason is an explicit deny (which no grant or ACL can lift).
pub fn is_explicit_deny(why: &str) -> bool {
    why == EXPLICIT_DENY || why == EXPLICIT_DENY_RESOURCE
}

/// AWS KMS logic: the key policy is primary. Allow iff no explicit Deny anywhere and
/// (key policy returns Allow for the caller) or (key policy returns AllowAccount — i.e. it
/// delegates to the caller's account — and (caller is that account's root, or an identity
/// policy allows)). Identity policies alone never grant KMS access. Cross-account callers
/// need the key policy to name their account or them, plus their identity allow (root counts).
///
/// The key's account is read from `q.resource` (`arn:aws:kms:REGION:ACCOUNT:key/ID`); a
/// resource that is not such an ARN is taken to be in the caller's account.
pub fn decide_kms(
    key_policy: &Document,
    identity: &[Document],
    caller_is_root: bool,
    q: &Query<'_>,
) -> Decision {
    let key = evaluate(key_policy, q, true);
    let (identity_denies, identity_allows) = identity_side(identity, caller_is_root, q);
    if identity_denies {
        return Decision::Deny(EXPLICIT_DENY);
    }
    if key == Outcome::ExplicitDeny {
        return Decision::Deny(EXPLICIT_DENY_RESOURCE);
    }
    let cross_account =
        matching::arn_account(q.resource).is_some_and(|owner| owner != q.principal_account);
    match key {
        Outcome::Allow if !cross_account => Decision::Allow,
        Outcome::Allow | Outcome::AllowAccount if identity_allows => Decision::Allow,
        Outcome::Allow | Outcome::AllowAccount if cross_account => {
            Decision::Deny("cross-account access needs both sides")
        }
        Outcome::Allow | Outcome::AllowAccount => {
            Decision::Deny("the key policy delegates to IAM policies and none allows")
        }
        Outcome::NotApplicable | Outcome::ExplicitDeny => {
            Decision::Deny("the key policy does not allow")
        }
    }
}
