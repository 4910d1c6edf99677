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

type Cached = HashMap<(String, &'static str), Option<Arc<str>>>;

#[derive(Default)]
pub(crate) struct SettingCache(Mutex<(u64, Cached)>);

impl SettingCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Cached)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every cached setting of a bucket (after a change or a bucket deletion).
    pub(crate) fn forget(&self, bucket: &str) {
        let mut c = self.lock();
        c.0 += 1;
        c.1.retain(|(b, _), _| b != bucket);
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
        if let Some(v) = self.settings.lock().1.get(&(bucket.to_owned(), name)) {
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
            c.1.insert((bucket.to_owned(), name), value.clone());
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
}
