//! Object Lock in S3's terms: a bucket's lock configuration (enabled for good, with an
//! optional default retention), the lock a write asks for, retention and legal hold of a
//! version. What a lock forbids is decided by the store, inside the transaction that would
//! break it (`coffer_storage::lock`); this module decides what a request may ask.
//!
//! Days of retention are `Config::day` long (86,400 s unless `COFFER_S3_DAY_SECONDS` says
//! otherwise, for tests and demos); a year is 365 such days.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use coffer_storage::{Authority, LockChange, LockMode, ObjectMeta, Retention, Versioning};

use crate::settings::OBJECT_LOCK;
use crate::versions::version_ref;
use crate::{Error, Objects, Result};

/// How long a default retention lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    Days(u32),
    Years(u32),
}

/// A bucket's default retention: what a new version gets unless its write says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: LockMode,
    pub period: Period,
}

/// S3's ObjectLockConfiguration of a bucket that has Object Lock (it cannot be turned
/// off). Stored as the bucket's `object-lock` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockConfiguration {
    pub default_retention: Option<DefaultRetention>,
}

/// The Object Lock a write asks for (`x-amz-object-lock-mode` with
/// `-retain-until-date`, `x-amz-object-lock-legal-hold`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockRequest {
    pub retention: Option<Retention>,
    pub legal_hold: Option<bool>,
}

impl LockRequest {
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && self.legal_hold.is_none()
    }
}

/// Longest default retention S3 accepts (100 years).
const MAX_DAYS: u32 = 36_500;
const MAX_YEARS: u32 = 100;

impl DefaultRetention {
    /// `InvalidArgument` for a period S3 refuses (zero, or over 100 years).
    pub fn check(&self) -> Result<()> {
        let (n, max) = match self.period {
            Period::Days(d) => (d, MAX_DAYS),
            Period::Years(y) => (y, MAX_YEARS),
        };
        if n == 0 {
            return Err(Error::InvalidArgument(
                "Default retention period must be a positive integer value.".into(),
            ));
        }
        if n > max {
            return Err(Error::InvalidArgument(
                "Default retention period too large.".into(),
            ));
        }
        Ok(())
    }
}

impl Objects {
    /// The bucket's Object Lock configuration, `None` if it has no Object Lock.
    pub async fn get_object_lock_configuration(
        &self,
        bucket: &str,
    ) -> Result<Option<LockConfiguration>> {
        match self.setting(bucket, OBJECT_LOCK).await? {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::Internal(format!("stored object lock configuration: {e}"))),
            None => Ok(None),
        }
    }

    /// PutObjectLockConfiguration: turns Object Lock on for a versioning-enabled bucket
    /// (for good), or changes its default retention.
    pub async fn put_object_lock_configuration(
        &self,
        bucket: &str,
        cfg: &LockConfiguration,
    ) -> Result<()> {
        if let Some(d) = &cfg.default_retention {
            d.check()?;
        }
        if self.bucket(bucket).await?.versioning != Versioning::Enabled {
            return Err(Error::InvalidBucketState(
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
                    .into(),
            ));
        }
        let json = serde_json::to_string(cfg).map_err(|e| Error::Internal(e.to_string()))?;
        self.set_setting(bucket, OBJECT_LOCK, Some(&json)).await
    }

    /// The configuration of a bucket that must have Object Lock for the request to make
    /// sense (`InvalidRequest` otherwise, with S3's message for the operation).
    async fn lock_required(&self, bucket: &str, message: &str) -> Result<LockConfiguration> {
        self.get_object_lock_configuration(bucket)
            .await?
            .ok_or_else(|| Error::InvalidRequest(message.into()))
    }

    /// Sets the lock a new version of `bucket` carries: what the write asked for (checked:
    /// only in a bucket with Object Lock, a retention date in the future), else the
    /// bucket's default retention from `now`.
    pub(crate) async fn lock_new_version(
        &self,
        bucket: &str,
        asked: &LockRequest,
        meta: &mut ObjectMeta,
        now: OffsetDateTime,
    ) -> Result<()> {
        let cfg = if asked.is_empty() {
            match self.get_object_lock_configuration(bucket).await? {
                Some(c) => c,
                None => return Ok(()),
            }
        } else {
            self.lock_required(bucket, "Bucket is missing ObjectLockConfiguration")
                .await?
        };
        if let Some(r) = asked.retention {
            check_future(&r, now)?;
        }
        meta.retention = asked
            .retention
            .or_else(|| cfg.default_retention.map(|d| self.retention_from(&d, now)));
        meta.legal_hold = asked.legal_hold;
        Ok(())
    }

    /// A multipart upload completing: the default retention if its creation asked for
    /// none (an object's retention runs from when it is written).
    pub(crate) async fn lock_completed_upload(
        &self,
        bucket: &str,
        meta: &mut ObjectMeta,
        now: OffsetDateTime,
    ) -> Result<()> {
        if meta.retention.is_none()
            && let Some(d) = self
                .get_object_lock_configuration(bucket)
                .await?
                .and_then(|c| c.default_retention)
        {
            meta.retention = Some(self.retention_from(&d, now));
        }
        Ok(())
    }

    fn retention_from(&self, d: &DefaultRetention, now: OffsetDateTime) -> Retention {
        // At most 36,500 days (`DefaultRetention::check`).
        let days = match d.period {
            Period::Days(n) => n,
            Period::Years(n) => n.saturating_mul(365),
        };
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        Retention {
            mode: d.mode,
            until: now + self.config.day * days,
        }
    }

    /// GetObjectRetention: `NoSuchObjectLockConfiguration` if the version has none.
    pub async fn get_object_retention(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Retention> {
        self.lock_required(bucket, "Bucket is missing Object Lock Configuration")
            .await?;
        let o = self.object_version(bucket, key, version_id).await?;
        o.meta.retention.ok_or(Error::NoSuchObjectLockConfiguration)
    }

    /// GetObjectLegalHold: `NoSuchObjectLockConfiguration` if none was ever set.
    pub async fn get_object_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<bool> {
        self.lock_required(bucket, "Bucket is missing Object Lock Configuration")
            .await?;
        let o = self.object_version(bucket, key, version_id).await?;
        o.meta
            .legal_hold
            .ok_or(Error::NoSuchObjectLockConfiguration)
    }

    /// PutObjectRetention (`None` removes it) and PutObjectLegalHold: the store applies
    /// the change if the lock rule lets the caller (`bypass_governance`: asked for and
    /// permitted) make it.
    pub async fn change_object_lock(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        change: LockChange,
        bypass_governance: bool,
    ) -> Result<()> {
        let version = version_ref(version_id)?;
        self.lock_required(bucket, "Bucket is missing Object Lock Configuration")
            .await?;
        let now = self.now();
        if let LockChange::Retention(Some(r)) = &change {
            check_future(r, now)?;
        }
        let by = Authority {
            now,
            bypass_governance,
        };
        match self
            .meta
            .set_object_lock(bucket, key, version, change, &by)
            .await
        {
            Err(coffer_storage::Error::NoSuchKey { .. }) => {
                self.bucket(bucket).await?;
                Err(Error::NoSuchKey(key.to_owned()))
            }
            other => Ok(other?),
        }
    }
}

fn check_future(r: &Retention, now: OffsetDateTime) -> Result<()> {
    if r.until <= now {
        return Err(Error::InvalidArgument(
            "The retain until date must be in the future!".into(),
        ));
    }
    Ok(())
}
