//! Keys Coffer creates on first use: AWS-managed keys (`alias/aws/s3`, the default SSE-KMS
//! key, visible to the account like on AWS) and the hidden SSE-S3 service key of each
//! account (never listed, never usable by clients).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use coffer_storage::KmsAliasRecord;

use crate::keys::default_policy;
use crate::lifecycle::DEFAULT_ROTATION_DAYS;
use crate::model::{self, KeyDoc};
use crate::{KeyManager, KeySpec, KeyState, KeyUsage, Kms, Origin, Result, lock_write};

/// The alias under which an account's SSE-S3 service key is recorded. Under the reserved
/// `alias/aws/` prefix, so no client can create or move it.
const SSE_S3_ALIAS: &str = "alias/aws/coffer-sse-s3";
/// The hidden key that signs the audit trail's digests.
const AUDIT_ALIAS: &str = "alias/aws/coffer-audit";
const AUDIT_MAC_INFO: &[u8] = b"coffer-audit-digest-mac-v1";

/// The key policy AWS gives an AWS-managed key (`alias/aws/s3`): every principal of the
/// account may use it through the service, and the account may read its metadata.
fn managed_policy(account: &str, service: &str, region: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": format!("auto-{service}-2"),
        "Statement": [
            {
                "Sid": format!("Allow access through {} for all principals in the account that are authorized to use {}", service.to_ascii_uppercase(), service.to_ascii_uppercase()),
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {
                    "kms:CallerAccount": account,
                    "kms:ViaService": format!("{service}.{region}.amazonaws.com"),
                }},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                "Resource": "*",
            },
        ],
    })
    .to_string()
}

impl Kms {
    /// The AWS-managed key for `service` (e.g. `s3` → `alias/aws/s3`), created on first use.
    pub async fn aws_managed_key(
        &self,
        account: &str,
        service: &str,
        now: OffsetDateTime,
    ) -> Result<String> {
        let alias = format!("alias/aws/{service}");
        let description = format!(
            "Default key that protects my {} resources when no other key is defined",
            service.to_ascii_uppercase()
        );
        let policy = managed_policy(account, service, &self.config.region);
        self.managed_key(account, &alias, &description, Some(policy), now)
            .await
    }

    /// The hidden key behind SSE-S3 for `account`, created on first use.
    pub async fn sse_s3_key(&self, account: &str, now: OffsetDateTime) -> Result<String> {
        self.managed_key(
            account,
            SSE_S3_ALIAS,
            "Coffer SSE-S3 service key",
            None,
            now,
        )
        .await
    }

    /// The hidden key that signs audit digests (in the operator's account), created on
    /// first use. Its material never leaves the KMS: [`Kms::audit_mac`] signs with it.
    pub async fn audit_key(&self, account: &str, now: OffsetDateTime) -> Result<String> {
        self.managed_key(
            account,
            AUDIT_ALIAS,
            "Coffer audit trail signing key",
            None,
            now,
        )
        .await
    }

    /// The audit key, if one was created (for checking a trail without writing anything).
    pub async fn existing_audit_key(&self, account: &str) -> Result<Option<String>> {
        self.alias_target(account, AUDIT_ALIAS).await
    }

    /// HMAC-SHA256 of `data` under a key derived from one material version of the audit
    /// key (the current one when `version` is `None`); returns the version used.
    pub fn audit_mac(
        &self,
        key_id: &str,
        version: Option<u32>,
        data: &[u8],
    ) -> Result<(u32, [u8; 32])> {
        let e = self
            .entry(key_id)
            .ok_or_else(|| crate::Error::NotFound(format!("audit key {key_id} is gone")))?;
        let m = match version {
            Some(v) => e
                .material(v)
                .ok_or_else(|| crate::Error::NotFound(format!("audit key version {v}")))?,
            None => e.current()?,
        };
        let k = coffer_crypto::derive_key(&m.secret, b"", AUDIT_MAC_INFO)?;
        Ok((m.version, coffer_crypto::hmac_sha256(k.expose(), data)))
    }

    async fn managed_key(
        &self,
        account: &str,
        alias: &str,
        description: &str,
        // `None` for the hidden SSE-S3 key (used only internally, never through a gate).
        policy: Option<String>,
        now: OffsetDateTime,
    ) -> Result<String> {
        let hidden = policy.is_none();
        if let Some(id) = self.alias_target(account, alias).await? {
            return Ok(id);
        }
        // Serialize creation so two first uses do not create two keys.
        let _creating = self.managed.lock().await;
        if let Some(id) = self.alias_target(account, alias).await? {
            return Ok(id);
        }
        let doc = KeyDoc {
            description: description.to_owned(),
            usage: KeyUsage::EncryptDecrypt,
            spec: KeySpec::SymmetricDefault,
            origin: Origin::AwsKms,
            manager: KeyManager::Aws,
            state: KeyState::Enabled,
            deletion_date_ms: None,
            pending_window_days: None,
            // AWS-managed keys rotate every year.
            rotation_period_days: Some(DEFAULT_ROTATION_DAYS),
            next_rotation_ms: Some(model::ms(now + self.days(DEFAULT_ROTATION_DAYS))),
            on_demand_rotations: 0,
            current_version: 0,
            policy: policy.unwrap_or_else(|| default_policy(account)),
            tags: BTreeMap::new(),
            last_usage: None,
            hidden,
            grants: Vec::new(),
            import: None,
        };
        let entry = self.store_new_key(account, doc, now).await?;
        let _guard = self.mutate.lock().await;
        let created = self
            .store
            .kms_create_alias(&KmsAliasRecord {
                account_id: account.to_owned(),
                name: alias.to_owned(),
                key_id: entry.id.clone(),
                created: now,
                updated: now,
            })
            .await;
        if let Err(coffer_storage::Error::AlreadyExists(_)) = created {
            // Another node (sharing the store) created the account's key first: use
            // that one, and drop ours, which nothing references.
            self.store.kms_delete_key(&entry.id).await?;
            lock_write(&self.keys).remove(&entry.id);
            drop(_guard);
            return self
                .alias_target(account, alias)
                .await?
                .ok_or_else(|| crate::Error::Internal(format!("alias {alias} vanished")));
        }
        created?;
        lock_write(&self.aliases).insert((account.to_owned(), alias.to_owned()), entry.id.clone());
        Ok(entry.id.clone())
    }
}
