//! Bucket operations.

use time::OffsetDateTime;

use coffer_storage::BucketRecord;

use crate::names::check_bucket_name;
use crate::settings::{self, PublicAccessBlock};
use crate::{Error, Objects, Result};

impl Objects {
    /// Creates a bucket owned by `owner` (an account id), with all four Block Public Access
    /// settings on; with `object_lock`, versioning-enabled and with Object Lock (no default
    /// retention), for good. `location` is the
    /// `LocationConstraint`; it must name this server's region (absent means us-east-1,
    /// which only a us-east-1 server accepts, as on AWS).
    pub async fn create_bucket(
        &self,
        owner: &str,
        name: &str,
        location: Option<&str>,
        object_lock: bool,
        ownership: crate::Ownership,
        acl: Option<&crate::Acl>,
    ) -> Result<BucketRecord> {
        check_bucket_name(name)?;
        let region = &self.config.region;
        match location {
            None | Some("") if region == "us-east-1" => {}
            Some(l) if l == region => {}
            Some(l) => return Err(Error::InvalidLocationConstraint(l.to_owned())),
            None => {
                return Err(Error::InvalidLocationConstraint(
                    "unspecified (us-east-1)".into(),
                ));
            }
        }
        let record = BucketRecord {
            name: name.to_owned(),
            owner: owner.to_owned(),
            region: region.clone(),
            created: self.now(),
            versioning: if object_lock {
                coffer_storage::Versioning::Enabled
            } else {
                coffer_storage::Versioning::Unversioned
            },
        };
        // A new bucket blocks public access until its owner says otherwise, as on AWS since
        // April 2023; stored with the bucket, so it never exists without the block.
        let block = serde_json::to_string(&PublicAccessBlock::all())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let lock = serde_json::to_string(&crate::LockConfiguration::default())
            .map_err(|e| Error::Internal(e.to_string()))?;
        // Object Ownership too: BucketOwnerEnforced unless the request asked otherwise,
        // as on AWS since April 2023.
        let ownership =
            serde_json::to_string(&ownership).map_err(|e| Error::Internal(e.to_string()))?;
        let mut first = vec![
            (settings::PUBLIC_ACCESS_BLOCK, block.as_str()),
            (settings::OWNERSHIP, ownership.as_str()),
        ];
        if object_lock {
            first.push((settings::OBJECT_LOCK, lock.as_str()));
        }
        // An ACL asked for at creation is stored with the bucket, so that a bucket never
        // exists without it (and re-creating an existing bucket leaves its ACL alone).
        let acl = acl
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(a) = &acl {
            first.push((settings::ACL, a.as_str()));
        }
        match self.meta.create_bucket_with_settings(&record, &first).await {
            Ok(()) => {
                self.settings.forget(name);
                Ok(record)
            }
            // S3's legacy behaviour in us-east-1: creating a bucket you already own
            // there succeeds (and changes nothing); elsewhere it is an error.
            Err(coffer_storage::Error::BucketAlreadyExists { owner: o, .. })
                if o == owner && region == "us-east-1" =>
            {
                self.bucket(name).await
            }
            Err(coffer_storage::Error::BucketAlreadyExists { owner: o, .. }) if o == owner => {
                Err(Error::BucketAlreadyOwnedByYou(name.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The bucket's record. Served from memory after the first lookup: every request
    /// needs it (authorization asks for its owner) and it changes only when the bucket is
    /// created, deleted or has its versioning changed through this process.
    pub async fn bucket(&self, name: &str) -> Result<BucketRecord> {
        let generation = {
            let cache = self.buckets.lock();
            if let Some(b) = cache.records.get(name) {
                return Ok(b.clone());
            }
            cache.generation
        };
        let record = self
            .meta
            .get_bucket(name)
            .await?
            .ok_or_else(|| Error::NoSuchBucket(name.to_owned()))?;
        let mut cache = self.buckets.lock();
        // A delete since our read may have made the record stale: then do not cache it.
        if cache.generation == generation {
            cache.records.insert(name.to_owned(), record.clone());
        }
        Ok(record)
    }

    /// Drops a bucket's cached record after it changed (or went).
    pub(crate) fn forget_bucket(&self, name: &str) {
        let mut cache = self.buckets.lock();
        cache.generation += 1;
        cache.records.remove(name);
    }

    /// Drops what this node caches of a bucket (its record and its settings) after
    /// another node changed it (a change notice of a shared metadata store).
    pub fn forget_bucket_state(&self, name: &str) {
        self.forget_bucket(name);
        self.settings.forget(name);
    }

    /// Drops this node's cached settings of an account after another node changed them.
    pub fn forget_account_state(&self, account: &str) {
        self.account_settings.forget(Some(account));
    }

    /// Drops every cached bucket record and setting: after this node could not hear of
    /// other nodes' changes for a while.
    pub fn forget_all_state(&self) {
        {
            let mut cache = self.buckets.lock();
            cache.generation += 1;
            cache.records.clear();
        }
        self.settings.forget_all();
        self.account_settings.forget(None);
    }

    /// Every bucket of every account, by name.
    pub async fn all_buckets(&self) -> Result<Vec<BucketRecord>> {
        Ok(self.meta.list_buckets().await?)
    }

    /// The buckets `owner` owns, by name.
    pub async fn list_buckets(&self, owner: &str) -> Result<Vec<BucketRecord>> {
        let mut all = self.meta.list_buckets().await?;
        all.retain(|b| b.owner == owner);
        Ok(all)
    }

    /// What each bucket holds (current objects, noncurrent versions, delete markers and
    /// their bytes), by name: counted by a scan of each bucket's versions, at most once
    /// per [`USAGE_TTL`] (the metrics endpoint is unauthenticated; a scraper hammering it
    /// must not make the server scan every bucket per request).
    pub async fn usage(&self) -> Result<Vec<(String, coffer_storage::BucketUsage)>> {
        if let Some((at, u)) = self
            .usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && at.elapsed() < USAGE_TTL
        {
            return Ok(u.clone());
        }
        let out = self.count_usage().await?;
        *self.usage.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), out.clone()));
        Ok(out)
    }

    async fn count_usage(&self) -> Result<Vec<(String, coffer_storage::BucketUsage)>> {
        let mut out = Vec::new();
        for b in self.meta.list_buckets().await? {
            match self.meta.bucket_usage(&b.name).await {
                Ok(u) => out.push((b.name, u)),
                // Deleted since it was listed.
                Err(coffer_storage::Error::NoSuchBucket(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Deletes an empty bucket (no versions, no delete markers); multipart uploads in
    /// progress are aborted with it, as on S3, and their parts' data is freed.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.meta.delete_bucket(name).await?;
        // Aborted uploads' parts: blobs to collect, and (for plaintext parts kept inline)
        // freed pages to scrub.
        self.garbage_queued();
        self.meta.scrub_freed();
        self.forget_bucket(name);
        self.settings.forget(name);
        Ok(())
    }
}

/// How long counted usage is reused.
pub const USAGE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The last usage counted, and when.
pub(crate) type UsageCache = std::sync::Mutex<
    Option<(
        std::time::Instant,
        Vec<(String, coffer_storage::BucketUsage)>,
    )>,
>;

/// Bucket records known to exist. `generation` counts deletes, so that a lookup racing a
/// delete never caches the deleted bucket.
#[derive(Default)]
pub(crate) struct BucketCache {
    records: std::collections::HashMap<String, BucketRecord>,
    generation: u64,
}

#[derive(Default)]
pub(crate) struct Buckets(std::sync::Mutex<BucketCache>);

impl Buckets {
    fn lock(&self) -> std::sync::MutexGuard<'_, BucketCache> {
        // The cache holds no invariant a panic could break mid-update.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `t` plus `days` days of `day` each, or the last representable moment if that is
/// beyond what dates can hold (a rule's or a restore's days come from clients): never
/// panics.
pub(crate) fn days_after(t: OffsetDateTime, day: time::Duration, days: u32) -> OffsetDateTime {
    let last = time::PrimitiveDateTime::MAX.assume_utc();
    i32::try_from(days)
        .ok()
        .and_then(|n| day.checked_mul(n))
        .and_then(|d| t.checked_add(d))
        .unwrap_or(last)
}

impl Objects {
    /// Now on the business clock (`Config::clock`), at the millisecond precision records
    /// keep.
    pub fn now(&self) -> OffsetDateTime {
        to_ms(self.config.clock.now())
    }
}

/// `t` at the millisecond precision records keep.
pub(crate) fn to_ms(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .expect("a truncated nanosecond is in range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_arithmetic_saturates_instead_of_panicking() {
        let t = time::macros::datetime!(2026-01-01 0:00 UTC);
        assert_eq!(
            days_after(t, time::Duration::DAY, 2),
            time::macros::datetime!(2026-01-03 0:00 UTC)
        );
        let last = time::PrimitiveDateTime::MAX.assume_utc();
        assert_eq!(days_after(t, time::Duration::DAY, u32::MAX), last);
        assert_eq!(days_after(t, time::Duration::DAY, i32::MAX as u32), last);
        assert_eq!(days_after(last, time::Duration::SECOND, 1), last);
    }
}
