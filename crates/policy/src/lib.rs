//! Coffer's authorization decision point and AWS IAM policy engine. [`document`] parses the
//! policy language into a typed [`document::Document`]; [`eval`] evaluates it as AWS does:
//! [`eval::evaluate`] gives one document's verdict on a [`eval::Query`] (action, resource ARN,
//! caller, condition-key [`eval::Context`]) through Action/NotAction, Resource/NotResource,
//! Principal/NotPrincipal, every condition operator with `...IfExists` and the
//! `ForAllValues`/`ForAnyValue` set operators, and policy variables; [`eval::decide`] combines
//! identity and bucket policies (an explicit deny wins; in the same account either side may
//! allow, across accounts both must) and [`eval::decide_kms`] applies KMS's rule that the key
//! policy is primary and IAM policies count only where it delegates to the account. Invariant:
//! evaluation is pure (no I/O, no clock: the caller supplies `aws:CurrentTime`), never panics,
//! and adding a Deny never grants access. The older owner-account rule, [`authorize`], stays
//! until its callers switch to the engine.

mod authorizer;
pub mod document;
pub mod eval;

pub use authorizer::{Ask, Authorizer};

use coffer_iam::Principal;

/// What authorization concluded, and why (for the audit trail and error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(&'static str),
}

/// One question to the policy engine.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `None` for an unauthenticated caller.
    pub principal: Option<&'a Principal>,
    /// The IAM action, e.g. `s3:GetObject`.
    pub action: &'a str,
    /// The account owning the resource acted on, when it exists.
    pub resource_owner: Option<&'a str>,
}

pub fn authorize(req: &Request<'_>) -> Decision {
    let Some(principal) = req.principal else {
        return Decision::Deny("anonymous access is not allowed");
    };
    match req.resource_owner {
        None => Decision::Allow,
        Some(owner) if owner == principal.account.id => Decision::Allow,
        Some(_) => Decision::Deny("the resource belongs to another account"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_iam::{Account, PrincipalKind};

    fn principal(account: &str) -> Principal {
        Principal {
            account: Account {
                id: account.into(),
                name: "a".into(),
                canonical_id: "0".repeat(64),
            },
            kind: PrincipalKind::Root,
            access_key_id: "AK".into(),
        }
    }

    #[test]
    fn anonymous_is_denied() {
        let r = Request {
            principal: None,
            action: "s3:GetObject",
            resource_owner: Some("111111111111"),
        };
        assert!(matches!(authorize(&r), Decision::Deny(_)));
    }

    #[test]
    fn owner_is_allowed_and_others_denied() {
        let p = principal("111111111111");
        let own = Request {
            principal: Some(&p),
            action: "s3:GetObject",
            resource_owner: Some("111111111111"),
        };
        assert_eq!(authorize(&own), Decision::Allow);
        let other = Request {
            resource_owner: Some("222222222222"),
            ..own.clone()
        };
        assert!(matches!(authorize(&other), Decision::Deny(_)));
        let none = Request {
            resource_owner: None,
            ..own
        };
        assert_eq!(authorize(&none), Decision::Allow);
    }
}
