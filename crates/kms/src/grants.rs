//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant. A grant
//! lets one principal perform some operations on one key, optionally only with an
//! encryption context equal to, or containing, given pairs. Grants live in their key's
//! document (so a grant and its key change atomically); the caller's [`crate::KeyGate`]
//! weighs them after the key policy. Grants take effect at once, so grant tokens are
//! accepted and need not be presented; a grant's token is kept only as a SHA-256, to
//! find the grant RetireGrant names by token.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::model::{self, GrantDoc};
use crate::{Caller, Error, Kms, Op, Result};

/// The operations a grant may allow (AWS's GrantOperation values).
const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
];

/// Grants per key. AWS allows 50,000; Coffer keeps a key's grants in its document.
const MAX_GRANTS_PER_KEY: usize = 1000;

/// A CreateGrant request.
#[derive(Debug, Clone, Default)]
pub struct CreateGrant<'a> {
    pub key_id: &'a str,
    pub grantee: &'a str,
    pub retiring: Option<&'a str>,
    pub operations: Vec<String>,
    pub context_equals: Option<BTreeMap<String, String>>,
    pub context_subset: Option<BTreeMap<String, String>>,
    pub name: Option<&'a str>,
}

/// A grant as ListGrants describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub key_arn: String,
    pub grant_id: String,
    pub name: Option<String>,
    pub grantee: String,
    pub retiring: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<String>,
    pub context_equals: Option<BTreeMap<String, String>>,
    pub context_subset: Option<BTreeMap<String, String>>,
    pub created: OffsetDateTime,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn validation(msg: impl Into<String>) -> Error {
    Error::Validation(msg.into())
}

fn check_principal(what: &str, p: &str) -> Result<()> {
    if p.is_empty() || p.len() > 256 {
        return Err(validation(format!(
            "1 validation error detected: Value at '{what}' failed to satisfy constraint: Member must have length between 1 and 256"
        )));
    }
    Ok(())
}

impl Kms {
    fn grant(&self, account: &str, key_id: &str, g: &GrantDoc) -> Grant {
        Grant {
            key_arn: self.key_arn(account, key_id),
            grant_id: g.grant_id.clone(),
            name: g.name.clone(),
            grantee: g.grantee.clone(),
            retiring: g.retiring.clone(),
            issuing_account: format!("arn:aws:iam::{}:root", g.issuing_account),
            operations: g.operations.clone(),
            context_equals: g.context_equals.clone(),
            context_subset: g.context_subset.clone(),
            created: model::from_ms(g.created_ms),
        }
    }

    /// Creates a grant; returns (grant id, grant token). A grant with the same name and
    /// the same parameters is returned again rather than duplicated (AWS's idempotency).
    pub async fn create_grant(
        &self,
        caller: &Caller,
        req: &CreateGrant<'_>,
        now: OffsetDateTime,
    ) -> Result<(String, String)> {
        check_principal("granteePrincipal", req.grantee)?;
        if let Some(r) = req.retiring {
            check_principal("retiringPrincipal", r)?;
        }
        if req.operations.is_empty() {
            return Err(validation(
                "1 validation error detected: Value at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        for op in &req.operations {
            if !GRANT_OPERATIONS.contains(&op.as_str()) {
                return Err(validation(format!(
                    "1 validation error detected: Value '[{op}]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                    GRANT_OPERATIONS.join(", ")
                )));
            }
        }
        if req.context_equals.is_some() && req.context_subset.is_some() {
            return Err(validation(
                "Only one of EncryptionContextEquals and EncryptionContextSubset may be given",
            ));
        }
        let mut id_bytes = [0u8; 32];
        coffer_crypto::random(&mut id_bytes)?;
        let mut operations = req.operations.clone();
        operations.sort();
        operations.dedup();
        let mut doc = GrantDoc {
            grant_id: hex(&id_bytes),
            name: req.name.map(str::to_owned),
            grantee: req.grantee.to_owned(),
            retiring: req.retiring.map(str::to_owned),
            operations,
            context_equals: req.context_equals.clone(),
            context_subset: req.context_subset.clone(),
            issuing_account: caller.account_id.clone(),
            created_ms: model::ms(now),
            token_sha256: String::new(),
        };
        // The token is the grant id and 256 random bits: it names the grant and cannot be
        // guessed. Only its digest is stored.
        let mut secret = [0u8; 32];
        coffer_crypto::random(&mut secret)?;
        let token_for = |id: &str| format!("{id}{}", hex(&secret));
        let mut issued: Option<(String, String)> = None;
        self.change(caller, req.key_id, Op::CreateGrant, |d| {
            let same = d.grants.iter_mut().find(|g| {
                g.name.is_some()
                    && g.name == doc.name
                    && g.grantee == doc.grantee
                    && g.retiring == doc.retiring
                    && g.operations == doc.operations
                    && g.context_equals == doc.context_equals
                    && g.context_subset == doc.context_subset
            });
            let target = match same {
                Some(g) => g,
                None => {
                    if d.grants.len() >= MAX_GRANTS_PER_KEY {
                        return Err(Error::LimitExceeded(format!(
                            "A key can have at most {MAX_GRANTS_PER_KEY} grants"
                        )));
                    }
                    doc.token_sha256.clear();
                    d.grants.push(doc);
                    d.grants
                        .last_mut()
                        .ok_or_else(|| Error::Internal("grant vanished".into()))?
                }
            };
            let token = token_for(&target.grant_id);
            target.token_sha256 = hex(&coffer_crypto::sha256(token.as_bytes()));
            issued = Some((target.grant_id.clone(), token));
            Ok(())
        })
        .await?;
        issued.ok_or_else(|| Error::Internal("grant not issued".into()))
    }

    /// The grants of a key, optionally only one grant or one grantee's.
    pub async fn list_grants(
        &self,
        caller: &Caller,
        key_id: &str,
        grant_id: Option<&str>,
        grantee: Option<&str>,
    ) -> Result<Vec<Grant>> {
        let e = self
            .resolve(caller, key_id, false, Op::ListGrants.action())
            .await?;
        Ok(e.doc
            .grants
            .iter()
            .filter(|g| grant_id.is_none_or(|id| g.grant_id == id))
            .filter(|g| grantee.is_none_or(|p| g.grantee == p))
            .map(|g| self.grant(&e.account, &e.id, g))
            .collect())
    }

    /// Every grant, on any key, that names `retiring` as its retiring principal.
    pub fn list_retirable_grants(&self, retiring: &str) -> Result<Vec<Grant>> {
        check_principal("retiringPrincipal", retiring)?;
        let keys = crate::lock_read(&self.keys);
        let mut out: Vec<Grant> = keys
            .values()
            .flat_map(|e| {
                e.doc
                    .grants
                    .iter()
                    .filter(|g| g.retiring.as_deref() == Some(retiring))
                    .map(|g| self.grant(&e.account, &e.id, g))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        Ok(out)
    }

    /// Retires a grant named by its token, or by key and grant id. The retiring principal,
    /// or the grantee of a grant that allows RetireGrant, may; so may whoever the key
    /// policy allows kms:RetireGrant.
    pub async fn retire_grant(
        &self,
        caller: &Caller,
        token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
    ) -> Result<()> {
        let not_found = || Error::NotFound("Grant not found".into());
        let (key, id) = match (token, key_id, grant_id) {
            (Some(t), _, _) => {
                let digest = hex(&coffer_crypto::sha256(t.as_bytes()));
                let keys = crate::lock_read(&self.keys);
                let found = keys.values().find_map(|e| {
                    e.doc
                        .grants
                        .iter()
                        .find(|g| {
                            coffer_crypto::equal(g.token_sha256.as_bytes(), digest.as_bytes())
                        })
                        .map(|g| (self.key_arn(&e.account, &e.id), g.grant_id.clone()))
                });
                found.ok_or(Error::InvalidGrantToken)?
            }
            (None, Some(k), Some(g)) => (k.to_owned(), g.to_owned()),
            _ => {
                return Err(validation(
                    "Either GrantToken, or both KeyId and GrantId, must be specified",
                ));
            }
        };
        let names = caller
            .gate
            .as_ref()
            .map(|g| g.caller_names())
            .unwrap_or_default();
        let e = self.entry_by_ref(&key).ok_or_else(not_found)?;
        let g = e
            .doc
            .grants
            .iter()
            .find(|g| g.grant_id == id)
            .ok_or_else(not_found)?;
        let by_grant = caller.gate.is_none()
            || g.retiring.as_ref().is_some_and(|r| names.contains(r))
            || (names.contains(&g.grantee) && g.operations.iter().any(|o| o == "RetireGrant"));
        if !by_grant {
            self.authorize(caller, &e, Op::RetireGrant.action(), None, None)?;
        }
        self.remove_grant(&e, &id).await
    }

    /// Revokes a grant (needs kms:RevokeGrant on the key).
    pub async fn revoke_grant(&self, caller: &Caller, key_id: &str, grant_id: &str) -> Result<()> {
        let mut found = false;
        self.change(caller, key_id, Op::RevokeGrant, |d| {
            let before = d.grants.len();
            d.grants.retain(|g| g.grant_id != grant_id);
            found = d.grants.len() != before;
            Ok(())
        })
        .await?;
        if found {
            Ok(())
        } else {
            Err(Error::NotFound("Grant not found".into()))
        }
    }

    /// The key a key ARN or id names, in any account (RetireGrant is authorized by the
    /// grant, not by where the key lives).
    fn entry_by_ref(&self, key: &str) -> Option<std::sync::Arc<crate::KeyEntry>> {
        let id = key.rsplit('/').next().unwrap_or(key);
        self.entry(id)
    }

    async fn remove_grant(&self, e: &crate::KeyEntry, grant_id: &str) -> Result<()> {
        let _guard = self.mutate.lock().await;
        let current = self
            .entry(&e.id)
            .ok_or_else(|| Error::NotFound("Grant not found".into()))?;
        let mut doc = current.doc.clone();
        doc.grants.retain(|g| g.grant_id != grant_id);
        self.commit_doc(&current, doc).await.map(|_| ())
    }
}
