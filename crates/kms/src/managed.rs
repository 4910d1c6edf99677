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
        self.managed_key(account, &alias, &description, false, now)
            .await
    }

    /// The hidden key behind SSE-S3 for `account`, created on first use.
    pub async fn sse_s3_key(&self, account: &str, now: OffsetDateTime) -> Result<String> {
        self.managed_key(
            account,
            SSE_S3_ALIAS,
            "Coffer SSE-S3 service key",
            true,
            now,
        )
        .await
    }

    async fn managed_key(
        &self,
        account: &str,
        alias: &str,
        description: &str,
        hidden: bool,
        now: OffsetDateTime,
    ) -> Result<String> {
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
            policy: default_policy(account),
            tags: BTreeMap::new(),
            last_usage: None,
            hidden,
        };
        let entry = self.store_new_key(account, doc, now).await?;
        let _guard = self.mutate.lock().await;
        self.store
            .kms_create_alias(&KmsAliasRecord {
                account_id: account.to_owned(),
                name: alias.to_owned(),
                key_id: entry.id.clone(),
                created: now,
                updated: now,
            })
            .await?;
        lock_write(&self.aliases).insert((account.to_owned(), alias.to_owned()), entry.id.clone());
        Ok(entry.id.clone())
    }
}
