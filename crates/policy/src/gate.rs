//! The KMS's authorization seam. The key service knows keys (their policies, accounts,
//! ARNs); it does not know callers. A [`KeyGate`] travels with each KMS call, knows the
//! caller, and answers for each key the call touches (`coffer_authz::PrincipalGate` is
//! the gate of an authenticated principal). [`KeyGrant`] matches a key's grants.

use std::collections::BTreeMap;

/// One use of one key.
pub struct KeyUse<'a> {
    /// `kms:Decrypt`, `kms:GenerateDataKey`, ...
    pub action: &'a str,
    pub key_arn: &'a str,
    /// The key policy's text.
    pub key_policy: &'a str,
    /// The encryption context of a cryptographic request.
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
    /// The alias the request named the key by, if it did (`alias/name`).
    pub request_alias: Option<&'a str>,
    /// The key's grants.
    pub grants: &'a [KeyGrant<'a>],
}

/// A grant on a key, as the gate sees it.
pub struct KeyGrant<'a> {
    /// The principal ARN the grant is for.
    pub grantee: &'a str,
    /// Operation names without the `kms:` prefix.
    pub operations: &'a [String],
    pub context_equals: Option<&'a BTreeMap<String, String>>,
    pub context_subset: Option<&'a BTreeMap<String, String>>,
}

impl KeyGrant<'_> {
    /// Whether the grant allows `action` for a caller known by `names`, given the request's
    /// encryption context (AWS's EncryptionContextEquals / EncryptionContextSubset).
    pub fn allows(
        &self,
        names: &[String],
        action: &str,
        context: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let op = action.strip_prefix("kms:").unwrap_or(action);
        if !names.iter().any(|n| n == self.grantee) || !self.operations.iter().any(|o| o == op) {
            return false;
        }
        let empty = BTreeMap::new();
        let ctx = context.unwrap_or(&empty);
        if let Some(eq) = self.context_equals
            && eq != ctx
        {
            return false;
        }
        if let Some(sub) = self.context_subset
            && !sub.iter().all(|(k, v)| ctx.get(k) == Some(v))
        {
            return false;
        }
        true
    }
}

/// Answers whether a KMS call may use a key; `Err` carries the AccessDenied message.
pub trait KeyGate: Send + Sync {
    fn check(&self, key: &KeyUse<'_>) -> Result<(), String>;

    /// The ARNs the caller is known by (its own; for a role session also the role's), to
    /// match grantee and retiring principals. Empty for callers with no identity.
    fn caller_names(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn grants_match_grantee_operation_and_constraints() {
        let ops = vec!["Decrypt".to_owned()];
        let subset = ctx(&[("tenant", "t1")]);
        let equals = ctx(&[("tenant", "t1")]);
        let names = vec!["arn:aws:iam::111122223333:user/app".to_owned()];
        let g = |s, e| KeyGrant {
            grantee: "arn:aws:iam::111122223333:user/app",
            operations: &ops,
            context_subset: s,
            context_equals: e,
        };
        let plain = g(None, None);
        assert!(plain.allows(&names, "kms:Decrypt", None));
        assert!(!plain.allows(&names, "kms:Encrypt", None));
        assert!(!plain.allows(
            &["arn:aws:iam::111122223333:user/other".to_owned()],
            "kms:Decrypt",
            None
        ));
        let sub = g(Some(&subset), None);
        assert!(sub.allows(
            &names,
            "kms:Decrypt",
            Some(&ctx(&[("tenant", "t1"), ("x", "y")]))
        ));
        assert!(!sub.allows(&names, "kms:Decrypt", Some(&ctx(&[("tenant", "t2")]))));
        assert!(!sub.allows(&names, "kms:Decrypt", None));
        let eq = g(None, Some(&equals));
        assert!(eq.allows(&names, "kms:Decrypt", Some(&ctx(&[("tenant", "t1")]))));
        assert!(!eq.allows(
            &names,
            "kms:Decrypt",
            Some(&ctx(&[("tenant", "t1"), ("x", "y")]))
        ));
    }
}
