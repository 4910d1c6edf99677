//! Creating keys, describing and listing them, enabling and disabling, descriptions and
//! GetKeyLastUsage.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use coffer_storage::{KmsKeyRecord, KmsMaterialRecord};

use crate::model::{self, KeyDoc, MaterialDoc};
use crate::policy_tags::{check_policy, check_tags};
use crate::{
    Caller, Error, KeyEntry, KeyManager, KeyMetadata, KeySpec, KeyState, KeyUsage, Kms, LastUsage,
    Material, Op, Origin, Page, Result, lock_write, material_aad,
};

/// A CreateKey request.
#[derive(Debug, Clone, Default)]
pub struct CreateKey {
    pub description: Option<String>,
    pub key_usage: Option<String>,
    pub key_spec: Option<String>,
    pub origin: Option<String>,
    pub policy: Option<String>,
    pub tags: Vec<(String, String)>,
    pub multi_region: bool,
}

/// The key policy CreateKey installs when none is given: the account may do everything
/// with the key (through IAM policies).
pub fn default_policy(account: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// 64 hex characters, the shape of AWS's key material ids.
pub(crate) fn new_material_id() -> Result<String> {
    let mut b = [0u8; 32];
    coffer_crypto::random(&mut b)?;
    Ok(hex_simd::encode_to_string(b, hex_simd::AsciiCase::Lower))
}

const KNOWN_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ECC_NIST_EDWARDS25519",
];

impl Kms {
    pub async fn create_key(
        &self,
        caller: &Caller,
        req: CreateKey,
        now: OffsetDateTime,
    ) -> Result<KeyMetadata> {
        let spec = match req.key_spec.as_deref() {
            None | Some("SYMMETRIC_DEFAULT") => KeySpec::SymmetricDefault,
            Some(s) if s != "SM2" && KeySpec::parse(s).is_some() => {
                KeySpec::parse(s).unwrap_or(KeySpec::SymmetricDefault)
            }
            Some(s) if KNOWN_SPECS.contains(&s) => {
                return Err(Error::UnsupportedOperation(format!(
                    "KeySpec {s} is not supported by this server yet"
                )));
            }
            Some(s) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{s}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set"
                )));
            }
        };
        // HMAC keys generate and verify MACs; symmetric keys encrypt and decrypt;
        // asymmetric keys sign and verify (RSA encryption and ECDH come later).
        let rsa = spec.as_str().starts_with("RSA_");
        let wanted = if spec.mac_algorithm().is_some() {
            KeyUsage::GenerateVerifyMac
        } else if rsa && req.key_usage.as_deref() == Some("SIGN_VERIFY") {
            KeyUsage::SignVerify
        } else if spec.asym().is_some() && !rsa {
            // NIST curves sign or agree keys (ECDH); secp256k1 only signs, as on AWS.
            if req.key_usage.as_deref() == Some("KEY_AGREEMENT") && spec != KeySpec::EccSecgP256k1 {
                KeyUsage::KeyAgreement
            } else {
                KeyUsage::SignVerify
            }
        } else {
            // Symmetric keys, and RSA keys by default, encrypt and decrypt.
            KeyUsage::EncryptDecrypt
        };
        let usage = match req.key_usage.as_deref() {
            None if wanted == KeyUsage::EncryptDecrypt => KeyUsage::EncryptDecrypt,
            None => {
                return Err(Error::Validation(format!(
                    "KeyUsage GENERATE_VERIFY_MAC is required for KeySpec {}",
                    spec.as_str()
                )));
            }
            Some(u) => match KeyUsage::parse(u) {
                Some(k) if k == wanted => k,
                Some(_) => {
                    return Err(Error::Validation(format!(
                        "KeyUsage {u} is not compatible with KeySpec {}",
                        spec.as_str()
                    )));
                }
                None => {
                    return Err(Error::Validation(format!(
                        "1 validation error detected: Value '{u}' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set"
                    )));
                }
            },
        };
        let origin = match req.origin.as_deref() {
            None | Some("AWS_KMS") => Origin::AwsKms,
            // Key material the customer brings (BYOK): the key waits in PendingImport.
            Some("EXTERNAL") => Origin::External,
            Some("AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE") => {
                return Err(Error::UnsupportedOperation(format!(
                    "Origin {} is not supported by this server yet",
                    req.origin.as_deref().unwrap_or_default()
                )));
            }
            Some(o) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{o}' at 'origin' failed to satisfy constraint: Member must satisfy enum value set"
                )));
            }
        };
        if req.multi_region {
            return Err(Error::UnsupportedOperation(
                "Multi-Region keys are not supported by this server".into(),
            ));
        }
        let description = req.description.unwrap_or_default();
        if description.len() > 8192 {
            return Err(Error::Validation(
                "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192".into(),
            ));
        }
        let policy = match req.policy {
            Some(p) => {
                check_policy(&p)?;
                p
            }
            None => default_policy(&caller.account_id),
        };
        let tags = check_tags(&BTreeMap::new(), &req.tags)?;
        let doc = KeyDoc {
            description,
            usage,
            spec,
            origin,
            manager: KeyManager::Customer,
            state: match origin {
                Origin::External => KeyState::PendingImport,
                Origin::AwsKms => KeyState::Enabled,
            },
            deletion_date_ms: None,
            pending_window_days: None,
            rotation_period_days: None,
            next_rotation_ms: None,
            on_demand_rotations: 0,
            current_version: 0,
            policy,
            tags,
            last_usage: None,
            hidden: false,
            grants: Vec::new(),
            import: None,
        };
        let entry = self.store_new_key(&caller.account_id, doc, now).await?;
        Ok(self.metadata(&entry))
    }

    /// Generates material, wraps it and stores a new key (with no material for an
    /// EXTERNAL key, whose material is imported later). Used by CreateKey and for
    /// AWS-managed keys.
    pub(crate) async fn store_new_key(
        &self,
        account: &str,
        doc: KeyDoc,
        now: OffsetDateTime,
    ) -> Result<Arc<KeyEntry>> {
        let key_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let created = now
            .replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
            .unwrap_or(now);
        let record = KmsKeyRecord {
            key_id: key_id.clone(),
            account_id: account.to_owned(),
            created,
            doc: to_json(&doc)?,
        };
        let mut materials = Vec::new();
        let mut stored = None;
        if doc.origin == Origin::AwsKms {
            let secret = match doc.spec.asym() {
                Some(a) => crate::generate_key_pair(a).await?,
                None => coffer_crypto::random_secret(doc.spec.material_len())?,
            };
            let mdoc = MaterialDoc {
                material_id: new_material_id()?,
                created_ms: model::ms(now),
                rotation: None,
            };
            stored = Some(KmsMaterialRecord {
                key_id: key_id.clone(),
                version: 0,
                wrapped: self.root.wrap(&material_aad(&key_id, 0), &secret)?,
                doc: to_json(&mdoc)?,
            });
            materials.push(Material {
                version: 0,
                doc: mdoc,
                secret,
            });
        }
        let _guard = self.mutate.lock().await;
        self.store.kms_create_key(&record, stored.as_ref()).await?;
        let entry = Arc::new(KeyEntry {
            id: key_id.clone(),
            account: account.to_owned(),
            created,
            doc,
            materials: Arc::new(materials),
            stored: Some(record.doc.clone()),
        });
        lock_write(&self.keys).insert(key_id, entry.clone());
        Ok(entry)
    }

    pub async fn describe_key(&self, caller: &Caller, key_id: &str) -> Result<KeyMetadata> {
        let e = self
            .resolve(caller, key_id, true, Op::DescribeKey.action())
            .await?;
        Ok(self.metadata(&e))
    }

    /// ListKeys: the caller's keys by id, `limit` (1-1000) at a time after `marker`.
    pub fn list_keys(
        &self,
        caller: &Caller,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<(String, String)>> {
        let limit = list_limit(limit, 100)?;
        if let Some(m) = marker
            && uuid::Uuid::try_parse(m).is_err()
        {
            return Err(Error::InvalidMarker);
        }
        let keys = crate::lock_read(&self.keys);
        let mut ids: Vec<&String> = keys
            .values()
            .filter(|e| e.account == caller.account_id && !e.doc.hidden)
            .map(|e| &e.id)
            .filter(|id| marker.is_none_or(|m| id.as_str() > m))
            .collect();
        ids.sort();
        let truncated = ids.len() > limit;
        ids.truncate(limit);
        let next = if truncated {
            ids.last().map(|s| (*s).clone())
        } else {
            None
        };
        Ok(Page {
            items: ids
                .into_iter()
                .map(|id| (id.clone(), self.key_arn(&caller.account_id, id)))
                .collect(),
            next_marker: next,
        })
    }

    /// Applies `change` to a key's document under the change lock, after checking `op`
    /// against the key's state.
    pub(crate) async fn change(
        &self,
        caller: &Caller,
        key_id: &str,
        op: Op,
        change: impl FnOnce(&mut KeyDoc) -> Result<()>,
    ) -> Result<Arc<KeyEntry>> {
        self.change_entry(caller, key_id, op, |_, d| change(d))
            .await
    }

    /// [`Kms::change`] for changes that depend on more of the key than its document.
    pub(crate) async fn change_entry(
        &self,
        caller: &Caller,
        key_id: &str,
        op: Op,
        change: impl FnOnce(&KeyEntry, &mut KeyDoc) -> Result<()>,
    ) -> Result<Arc<KeyEntry>> {
        let e = self.resolve(caller, key_id, false, op.action()).await?;
        let _guard = self.mutate.lock().await;
        // Re-read under the lock: another change may have committed meanwhile.
        let e = self.entry(&e.id).ok_or_else(|| {
            Error::NotFound(format!(
                "Key '{}' does not exist",
                self.key_arn(&caller.account_id, &e.id)
            ))
        })?;
        op.check_origin(e.doc.origin, &self.key_arn(&e.account, &e.id))?;
        op.check(e.doc.state, &self.key_arn(&e.account, &e.id))?;
        if e.doc.manager == KeyManager::Aws {
            return Err(Error::UnsupportedOperation(format!(
                "{} is an AWS managed key and cannot be modified",
                self.key_arn(&e.account, &e.id)
            )));
        }
        let mut doc = e.doc.clone();
        change(&e, &mut doc)?;
        self.commit_doc(&e, doc).await
    }

    pub async fn enable_key(&self, caller: &Caller, key_id: &str) -> Result<()> {
        self.change(caller, key_id, Op::EnableKey, |d| {
            d.state = KeyState::Enabled;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn disable_key(&self, caller: &Caller, key_id: &str) -> Result<()> {
        self.change(caller, key_id, Op::DisableKey, |d| {
            d.state = KeyState::Disabled;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn update_key_description(
        &self,
        caller: &Caller,
        key_id: &str,
        description: &str,
    ) -> Result<()> {
        if description.len() > 8192 {
            return Err(Error::Validation(
                "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192".into(),
            ));
        }
        let description = description.to_owned();
        self.change(caller, key_id, Op::UpdateKeyDescription, |d| {
            d.description = description;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// GetKeyLastUsage: (key ARN, last use, tracking start, key creation).
    pub async fn get_key_last_usage(
        &self,
        caller: &Caller,
        key_id: &str,
    ) -> Result<(String, Option<LastUsage>, OffsetDateTime, OffsetDateTime)> {
        let e = self
            .resolve(caller, key_id, false, Op::GetKeyLastUsage.action())
            .await?;
        // Memory first, then the stored document, read afresh: `flush_usage` removes an
        // entry from memory only after the document holds it.
        let pending = self
            .usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&e.id)
            .cloned();
        let last = pending.or_else(|| {
            self.entry(&e.id)
                .and_then(|fresh| fresh.doc.last_usage.clone())
        });
        Ok((self.key_arn(&e.account, &e.id), last, e.created, e.created))
    }
}

/// Validates a `Limit` parameter (1-1000) with AWS's default.
pub(crate) fn list_limit(limit: Option<i64>, default: usize) -> Result<usize> {
    match limit {
        None => Ok(default),
        Some(l) if (1..=1000).contains(&l) => Ok(usize::try_from(l).unwrap_or(default)),
        Some(l) => Err(Error::Validation(format!(
            "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000"
        ))),
    }
}

/// JSON encoding of stored documents.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}
