//! The archive tier: versions of the archive storage classes (GLACIER, DEEP_ARCHIVE) keep
//! their bytes in a second blob store (the operator's `--archive-dir`), as
//! `coffer_storage::is_archived` says, and cannot be read until restored. A restore is
//! recorded on the version and takes effect after a delay that depends on the retrieval
//! tier (in days of `Config::day`); the bytes are then readable where they are, until the
//! restore expires. Moving bytes between the tiers (lifecycle transitions) copies them as
//! stored, so encrypted objects stay encrypted.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use coffer_storage::{BlobId, BlobStore, ObjectMeta, ObjectRecord, Restore, is_archived};

use crate::versions::version_ref;
use crate::{Error, Objects, Result};

/// Longest restore asked for, in days (100 years; no client needs more, and dates stay
/// far from the calendar's end).
const MAX_RESTORE_DAYS: u32 = 36_500;

/// A restore's retrieval tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Expedited,
    Standard,
    Bulk,
}

impl Tier {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Expedited" => Some(Tier::Expedited),
            "Standard" => Some(Tier::Standard),
            "Bulk" => Some(Tier::Bulk),
            _ => None,
        }
    }

    /// How long the restore takes, in hours of a day, by class (AWS's documented
    /// upper bounds: GLACIER 5 minutes / 5 hours / 12 hours, DEEP_ARCHIVE — no expedited
    /// tier — 12 and 48 hours).
    fn hours(self, class: &str) -> Option<f64> {
        match (class, self) {
            ("DEEP_ARCHIVE", Tier::Expedited) => None,
            ("DEEP_ARCHIVE", Tier::Standard) => Some(12.0),
            ("DEEP_ARCHIVE", Tier::Bulk) => Some(48.0),
            (_, Tier::Expedited) => Some(5.0 / 60.0),
            (_, Tier::Standard) => Some(5.0),
            (_, Tier::Bulk) => Some(12.0),
        }
    }
}

/// Where a version's restore stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreStatus {
    Ongoing,
    /// Readable until `expires`.
    Done {
        expires: OffsetDateTime,
    },
}

/// What RestoreObject did: started a restore (S3's 202) or extended a finished one (200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    Started,
    Extended,
}

/// The status of a version's restore at `now` (`None`: none, or it expired).
pub fn restore_status(meta: &ObjectMeta, now: OffsetDateTime) -> Option<RestoreStatus> {
    if !is_archived(meta.storage_class.as_deref()) {
        return None;
    }
    let r = meta.restore?;
    if now < r.ready_at {
        Some(RestoreStatus::Ongoing)
    } else if now < r.expires {
        Some(RestoreStatus::Done { expires: r.expires })
    } else {
        None
    }
}

impl Objects {
    /// Keeps archived bytes in `archive` (by default they share the one blob store).
    pub fn with_archive(mut self, archive: Arc<dyn BlobStore>) -> Self {
        self.archive = archive;
        self
    }

    /// The blob store that holds the bytes of versions of `class`.
    pub(crate) fn store_for(&self, class: Option<&str>) -> &Arc<dyn BlobStore> {
        if is_archived(class) {
            &self.archive
        } else {
            &self.blobs
        }
    }

    /// Archived bytes never live inline in the metadata store: they go to the archive.
    pub(crate) fn inline_max_for(&self, class: Option<&str>) -> usize {
        if is_archived(class) {
            0
        } else {
            self.config.inline_max
        }
    }

    /// Each distinct blob store.
    pub(crate) fn stores(&self) -> Vec<&Arc<dyn BlobStore>> {
        if Arc::ptr_eq(&self.blobs, &self.archive) {
            vec![&self.blobs]
        } else {
            vec![&self.blobs, &self.archive]
        }
    }

    /// Deletes a blob wherever it is (ids are unique across stores; deleting a missing
    /// blob is no error): garbage carries no tier.
    pub(crate) async fn delete_blob(&self, id: &BlobId) -> Result<()> {
        for store in self.stores() {
            store.delete(id).await?;
        }
        Ok(())
    }

    /// `InvalidObjectState` for an archived version that is not restored now.
    pub(crate) fn check_readable(&self, o: &ObjectRecord) -> Result<()> {
        if !is_archived(o.meta.storage_class.as_deref()) {
            return Ok(());
        }
        match restore_status(&o.meta, self.now()) {
            Some(RestoreStatus::Done { .. }) => Ok(()),
            _ => Err(Error::InvalidObjectState(
                "The operation is not valid for the object's storage class".into(),
            )),
        }
    }

    /// RestoreObject: makes an archived version readable for `days` days once the
    /// tier's delay has passed; a finished restore is extended from now.
    pub async fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        days: u32,
        tier: Tier,
    ) -> Result<Restored> {
        let version = version_ref(version_id)?;
        if days == 0 {
            return Err(Error::InvalidArgument(
                "Restore Days must be a positive integer".into(),
            ));
        }
        let o = self.object_version(bucket, key, version_id).await?;
        let class = o.meta.storage_class.clone().unwrap_or_default();
        if !is_archived(Some(&class)) {
            return Err(Error::ObjectAlreadyInActiveTier);
        }
        let now = self.now();
        if days > MAX_RESTORE_DAYS {
            return Err(Error::InvalidArgument(format!(
                "Restore Days must not exceed {MAX_RESTORE_DAYS}"
            )));
        }
        let length = crate::bucket::days_after(now, self.config.day, days) - now;
        let (restore, outcome) = match restore_status(&o.meta, now) {
            Some(RestoreStatus::Ongoing) => return Err(Error::RestoreAlreadyInProgress),
            Some(RestoreStatus::Done { .. }) => (
                Restore {
                    ready_at: o.meta.restore.map_or(now, |r| r.ready_at),
                    expires: now + length,
                },
                Restored::Extended,
            ),
            None => {
                let hours = tier.hours(&class).ok_or_else(|| {
                    Error::InvalidArgument(
                        "Expedited retrieval is not supported for the DEEP_ARCHIVE storage class"
                            .into(),
                    )
                })?;
                let delay = Duration::seconds_f64(self.config.day.as_seconds_f64() * hours / 24.0);
                (
                    Restore {
                        ready_at: now + delay,
                        expires: now + delay + length,
                    },
                    Restored::Started,
                )
            }
        };
        // The version read, by its own id: a write racing the restore is not restored.
        let named = match version {
            coffer_storage::VersionRef::Latest => {
                coffer_storage::VersionRef::of(o.version_id.as_deref())
            }
            v => v,
        };
        self.meta
            .set_object_restore(bucket, key, named, &restore)
            .await?;
        Ok(outcome)
    }
}
