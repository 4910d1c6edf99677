//! Coffer's single authorization decision point: every S3 (and later KMS, IAM) operation
//! asks [`authorize`] whether a principal may perform an action on a resource.
//!
//! Today's rule: anonymous callers are denied; the account that owns a resource may do
//! everything with it; a resource that does not exist yet (CreateBucket) or an action on no
//! resource (ListBuckets) is allowed to any authenticated principal. The IAM policy
//! language (identity, bucket and key policies with explicit-deny-wins evaluation) replaces
//! the body of this function with the access-control issue; callers do not change. No I/O:
//! the caller looks up the resource's owner and passes it in.

pub mod document;

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
