//! Bucket settings (default encryption, bucket policy, public access block): stored as text
//! under a name per bucket, and cached in memory, because authorization and every write
//! read them. A change generation keeps a read that raced a change from caching the old
//! value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::{Error, Objects, Result};

pub(crate) const ENCRYPTION: &str = "encryption";
pub(crate) const POLICY: &str = "policy";
pub(crate) const PUBLIC_ACCESS_BLOCK: &str = "public-access-block";
/// Present once a bucket has Object Lock (it cannot be turned off).
pub(crate) const OBJECT_LOCK: &str = "object-lock";
pub(crate) const LIFECYCLE: &str = "lifecycle";
pub(crate) const TAGGING: &str = "tagging";
pub(crate) const CORS: &str = "cors";
/// Server access logging (PutBucketLogging).
pub(crate) const LOGGING: &str = "logging";
/// Object Ownership (absent: ACLs enabled, the writer owns what it writes).
pub(crate) const OWNERSHIP: &str = "ownership";
/// The bucket's ACL, where ACLs are enabled and one was set.
pub(crate) const ACL: &str = "acl";

/// Settings by bucket, then by name: a lookup by `&str` allocates nothing (every request
/// reads a few).
type Cached = HashMap<String, HashMap<&'static str, Option<Arc<str>>>>;

#[derive(Default)]
pub(crate) struct SettingCache(Mutex<(u64, Cached)>);

/// Account-level Block Public Access by account (`None`: not configured), with a change
/// generation as in [`SettingCache`].
#[derive(Default)]
pub(crate) struct AccountCache(Mutex<(u64, HashMap<String, Option<PublicAccessBlock>>)>);

impl AccountCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<String, Option<PublicAccessBlock>>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets an account's cached settings (`None`: every account's).
    pub(crate) fn forget(&self, account: Option<&str>) {
        let mut c = self.lock();
        c.0 += 1;
        match account {
            Some(a) => {
                c.1.remove(a);
            }
            None => c.1.clear(),
        }
    }
}

impl SettingCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Cached)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every cached setting of a bucket (after a change or a bucket deletion).
    pub(crate) fn forget(&self, bucket: &str) {
        let mut c = self.lock();
        c.0 += 1;
        c.1.remove(bucket);
    }

    /// Forgets every cached setting of every bucket.
    pub(crate) fn forget_all(&self) {
        let mut c = self.lock();
        c.0 += 1;
        c.1.clear();
    }
}

/// S3's PublicAccessBlockConfiguration. All four default to false when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// The most restrictive combination of two levels (bucket and account), as S3 applies
    /// them: each setting is on if either level turns it on.
    pub fn or(self, other: Self) -> Self {
        Self {
            block_public_acls: self.block_public_acls || other.block_public_acls,
            ignore_public_acls: self.ignore_public_acls || other.ignore_public_acls,
            block_public_policy: self.block_public_policy || other.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets || other.restrict_public_buckets,
        }
    }

    /// All four settings on: what a new bucket starts with.
    pub fn all() -> Self {
        Self {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        }
    }
}

impl Objects {
    /// A setting's stored text, from the cache when possible. A cached setting needs no
    /// lookup of its bucket (every write and authorization reads settings): deleting or
    /// creating a bucket forgets its settings, so a cached one belongs to a bucket that
    /// exists, as far as the bucket cache knows.
    pub(crate) async fn setting(
        &self,
        bucket: &str,
        name: &'static str,
    ) -> Result<Option<Arc<str>>> {
        if let Some(v) = self
            .settings
            .lock()
            .1
            .get(bucket)
            .and_then(|names| names.get(name))
        {
            return Ok(v.clone());
        }
        self.bucket(bucket).await?;
        let generation = self.settings.lock().0;
        let value: Option<Arc<str>> = self
            .meta
            .get_bucket_setting(bucket, name)
            .await?
            .map(Arc::from);
        let mut c = self.settings.lock();
        if c.0 == generation {
            c.1.entry(bucket.to_owned())
                .or_default()
                .insert(name, value.clone());
        }
        Ok(value)
    }

    /// Stores (`Some`) or removes (`None`) a setting.
    pub(crate) async fn set_setting(
        &self,
        bucket: &str,
        name: &'static str,
        value: Option<&str>,
    ) -> Result<()> {
        self.bucket(bucket).await?;
        match value {
            Some(v) => self.meta.put_bucket_setting(bucket, name, v).await?,
            None => self.meta.delete_bucket_setting(bucket, name).await?,
        }
        self.settings.forget(bucket);
        Ok(())
    }

    /// The bucket policy's text (validated by the caller before it was stored).
    pub async fn get_bucket_policy(&self, bucket: &str) -> Result<Option<Arc<str>>> {
        self.setting(bucket, POLICY).await
    }

    pub async fn put_bucket_policy(&self, bucket: &str, policy: &str) -> Result<()> {
        self.set_setting(bucket, POLICY, Some(policy)).await
    }

    pub async fn delete_bucket_policy(&self, bucket: &str) -> Result<()> {
        self.set_setting(bucket, POLICY, None).await
    }

    /// The bucket's tag set, `None` if it has none (S3's `NoSuchTagSet`).
    pub async fn get_bucket_tagging(&self, bucket: &str) -> Result<Option<Vec<(String, String)>>> {
        match self.setting(bucket, TAGGING).await? {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::Internal(format!("stored bucket tags: {e}"))),
            None => Ok(None),
        }
    }

    /// Replaces the bucket's tag set (checked as S3 checks it; the order given is kept).
    pub async fn put_bucket_tagging(&self, bucket: &str, tags: &[(String, String)]) -> Result<()> {
        crate::names::check_bucket_tags(tags)?;
        let json = serde_json::to_string(tags).map_err(|e| Error::Internal(e.to_string()))?;
        self.set_setting(bucket, TAGGING, Some(&json)).await
    }

    pub async fn delete_bucket_tagging(&self, bucket: &str) -> Result<()> {
        self.set_setting(bucket, TAGGING, None).await
    }

    pub async fn get_public_access_block(&self, bucket: &str) -> Result<Option<PublicAccessBlock>> {
        match self.setting(bucket, PUBLIC_ACCESS_BLOCK).await? {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::Internal(format!("stored public access block: {e}"))),
            None => Ok(None),
        }
    }

    pub async fn put_public_access_block(
        &self,
        bucket: &str,
        cfg: &PublicAccessBlock,
    ) -> Result<()> {
        let json = serde_json::to_string(cfg).map_err(|e| Error::Internal(e.to_string()))?;
        self.set_setting(bucket, PUBLIC_ACCESS_BLOCK, Some(&json))
            .await
    }

    pub async fn delete_public_access_block(&self, bucket: &str) -> Result<()> {
        self.set_setting(bucket, PUBLIC_ACCESS_BLOCK, None).await
    }

    /// The account's own Block Public Access (S3 Control's PublicAccessBlock), `None` if
    /// it has none.
    pub async fn get_account_public_access_block(
        &self,
        account: &str,
    ) -> Result<Option<PublicAccessBlock>> {
        if let Some(v) = self.account_settings.lock().1.get(account) {
            return Ok(*v);
        }
        let generation = self.account_settings.lock().0;
        let value = match self
            .meta
            .get_account_setting(account, PUBLIC_ACCESS_BLOCK)
            .await?
        {
            Some(j) => Some(serde_json::from_str(&j).map_err(|e| {
                Error::Internal(format!("stored account public access block: {e}"))
            })?),
            None => None,
        };
        let mut c = self.account_settings.lock();
        if c.0 == generation {
            if c.1.len() > 10_000 {
                c.1.clear();
            }
            c.1.insert(account.to_owned(), value);
        }
        Ok(value)
    }

    /// Sets (`Some`) or removes (`None`) the account's Block Public Access.
    pub async fn set_account_public_access_block(
        &self,
        account: &str,
        cfg: Option<&PublicAccessBlock>,
    ) -> Result<()> {
        match cfg {
            Some(cfg) => {
                let json =
                    serde_json::to_string(cfg).map_err(|e| Error::Internal(e.to_string()))?;
                self.meta
                    .put_account_setting(account, PUBLIC_ACCESS_BLOCK, &json)
                    .await?;
            }
            None => {
                self.meta
                    .delete_account_setting(account, PUBLIC_ACCESS_BLOCK)
                    .await?
            }
        }
        let mut c = self.account_settings.lock();
        c.0 += 1;
        c.1.remove(account);
        Ok(())
    }

    /// The Block Public Access in force for a bucket of `owner`: its own settings and its
    /// account's, combined as S3 combines them.
    pub async fn public_access_block_in_force(
        &self,
        bucket: &str,
        owner: &str,
    ) -> Result<PublicAccessBlock> {
        let own = self
            .get_public_access_block(bucket)
            .await?
            .unwrap_or_default();
        let account = self
            .get_account_public_access_block(owner)
            .await?
            .unwrap_or_default();
        Ok(own.or(account))
    }
}
