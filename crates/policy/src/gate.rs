//! The KMS's authorization seam. The key service knows keys (their policies, accounts,
//! ARNs); it does not know callers. A [`KeyGate`] travels with each KMS call, knows the
//! caller, and answers for each key the call touches. [`PrincipalGate`] is the gate of an
//! authenticated principal: it adds KMS's condition keys (`kms:EncryptionContext:KEY`,
//! `kms:EncryptionContextKeys`, `kms:CallerAccount`, `kms:ViaService`, `kms:RequestAlias`)
//! to the request's global keys and applies [`crate::eval::decide_kms`].

use std::collections::BTreeMap;
use std::sync::Arc;

use coffer_iam::Principal;

use crate::eval::Context;
use crate::{Ask, Authorizer, Decision};

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
}

/// Answers whether a KMS call may use a key; `Err` carries the AccessDenied message.
pub trait KeyGate: Send + Sync {
    fn check(&self, key: &KeyUse<'_>) -> Result<(), String>;
}

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
        match self.authorizer.check_kms(&policy, &ask) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => Err(format!(
                "User: {} is not authorized to perform: {} on resource: {} because {why}",
                self.principal.arn(),
                key.action,
                key.key_arn
            )),
        }
    }
}
