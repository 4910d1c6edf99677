//! [`PrincipalGate`], the KMS's [`KeyGate`] for an authenticated principal: it adds KMS's
//! condition keys (`kms:EncryptionContext:KEY`, `kms:EncryptionContextKeys`,
//! `kms:CallerAccount`, `kms:ViaService`, `kms:RequestAlias`) to the request's global keys
//! and applies [`coffer_policy::eval::decide_kms`]; a key's grants are one more way to be
//! allowed, never past an explicit deny.

use std::sync::Arc;

use coffer_iam::Principal;
use coffer_policy::eval::Context;
use coffer_policy::{Decision, KeyGate, KeyUse};

use crate::{Ask, Authorizer};

/// The gate of an authenticated caller.
pub struct PrincipalGate {
    pub authorizer: Arc<Authorizer>,
    pub principal: Principal,
    /// The request's global condition keys ([`Authorizer::base_context`]).
    pub context: Context,
    /// Set when another service calls the KMS on the caller's behalf
    /// (`s3.us-east-1.amazonaws.com`).
    pub via_service: Option<String>,
}

impl KeyGate for PrincipalGate {
    fn check(&self, key: &KeyUse<'_>) -> Result<(), String> {
        // The KMS serves only signed callers: an anonymous request reaches no key, whatever
        // the key policy says (an SSE-KMS object is unreadable to it, as on AWS).
        if self.principal.is_anonymous() {
            return Err(format!(
                "An anonymous caller is not authorized to use {}",
                key.key_arn
            ));
        }
        let Some(policy) = self.authorizer.key_policy(key.key_policy) else {
            return Err(format!(
                "The key policy of {} cannot be evaluated",
                key.key_arn
            ));
        };
        let mut context = self.context.clone();
        context.set_one("kms:CallerAccount", self.principal.account.id.clone());
        if let Some(s) = &self.via_service {
            context.set_one("kms:ViaService", s.clone());
        }
        if let Some(a) = key.request_alias {
            context.set_one("kms:RequestAlias", a);
        }
        if let Some(ec) = key.encryption_context {
            for (k, v) in ec {
                context.set_one(&format!("kms:EncryptionContext:{k}"), v.clone());
            }
            context.set("kms:EncryptionContextKeys", ec.keys().cloned().collect());
        }
        let ask = Ask {
            principal: &self.principal,
            action: key.action,
            resource: key.key_arn,
            resource_account: None,
            resource_policy: None,
            context,
        };
        let decision = self.authorizer.check_kms(&policy, &ask);
        // A grant is one more way to be allowed; it cannot lift an explicit deny.
        let granted = || {
            let names = self.caller_names();
            key.grants
                .iter()
                .any(|g| g.allows(&names, key.action, key.encryption_context))
        };
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny(why) if !coffer_policy::eval::is_explicit_deny(why) && granted() => {
                Ok(())
            }
            Decision::Deny(why) => Err(format!(
                "User: {} is not authorized to perform: {} on resource: {} because {why}",
                self.principal.arn(),
                key.action,
                key.key_arn
            )),
        }
    }

    fn caller_names(&self) -> Vec<String> {
        let mut names = vec![self.principal.arn()];
        names.extend(self.principal.role_arn());
        names
    }
}
