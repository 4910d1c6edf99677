//! Versioning: a bucket's state, version ids, reading and deleting a version, and listing
//! versions with prefix, delimiter and markers.
//!
//! Version ids are opaque and URL-safe: 32 lower-case hex digits of a random UUID. Every
//! write proposes a fresh one; the store uses it only if the bucket is versioning-enabled
//! (otherwise the version is the null one, `null` on the wire). Order among a key's
//! versions is kept by the store, not read from the ids. A `versionId` that is neither
//! `null` nor shaped like an id is refused before any lookup, as S3 does.

use coffer_storage::{
    Authority, DeleteMarker, Entry, ListedVersion, ObjectRecord, Precondition, VersionListQuery,
    VersionRef, VersionStart, Versioning,
};

use crate::list::{Cursor, common_prefix};
use crate::{Error, Objects, Result};

/// A fresh version id.
pub(crate) fn new_version_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// S3's `versionId` as the version it names: `null` is the null version; anything else
/// must be an id this server could have given out (`InvalidArgument` otherwise).
pub fn version_ref(version_id: Option<&str>) -> Result<VersionRef<'_>> {
    match version_id {
        None => Ok(VersionRef::Latest),
        Some("null") => Ok(VersionRef::Null),
        Some(id) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(VersionRef::Id(id))
        }
        Some(_) => Err(Error::InvalidArgument(
            "Invalid version id specified".into(),
        )),
    }
}

/// The version id S3 reports for a version: none in a bucket that was never versioned,
/// `null` for the null version of a versioned one.
pub fn wire_version(versioning: Versioning, version_id: Option<&str>) -> Option<String> {
    match (versioning, version_id) {
        (_, Some(id)) => Some(id.to_owned()),
        (Versioning::Unversioned, None) => None,
        (_, None) => Some("null".to_owned()),
    }
}

/// The version a write reports (`x-amz-version-id`): the id it got in a versioning-enabled
/// bucket; nothing otherwise — a write in a suspended bucket makes the null version, and
/// S3 answers it without the header (reads and deletes of it say `null`).
pub(crate) fn written_version(written: &coffer_storage::Written) -> Option<String> {
    written.version_id.clone()
}

/// What a DeleteObject did: the version it wrote (a delete marker) or removed, as S3
/// reports it, and whether that version is a delete marker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// Which versions to list (ListObjectVersions).
#[derive(Debug, Clone, Default)]
pub struct VersionQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub version_id_marker: Option<String>,
    pub max_keys: usize,
}

/// One page of versions and delete markers in order, with the common prefixes met, and
/// where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct VersionListing {
    pub versions: Vec<ListedVersion>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
}

impl Objects {
    /// PutBucketVersioning: `Enabled` or `Suspended` (a bucket never returns to
    /// unversioned; the caller refuses any other status).
    pub async fn put_bucket_versioning(&self, bucket: &str, versioning: Versioning) -> Result<()> {
        if versioning == Versioning::Unversioned {
            return Err(Error::MalformedXml(
                "a bucket's versioning is Enabled or Suspended".into(),
            ));
        }
        self.bucket(bucket).await?;
        if versioning == Versioning::Suspended
            && self.get_object_lock_configuration(bucket).await?.is_some()
        {
            return Err(Error::InvalidBucketState(
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
                    .into(),
            ));
        }
        self.meta.set_versioning(bucket, versioning).await?;
        self.forget_bucket(bucket);
        Ok(())
    }

    /// A version of a key that is an object. A key whose latest version is a delete
    /// marker is `DeletedKey` (S3's 404 with the marker's headers); a delete marker named
    /// by id is `IsDeleteMarker` (405).
    pub(crate) async fn object_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectRecord> {
        let version = version_ref(version_id)?;
        match self.meta.get_entry(bucket, key, version).await? {
            Some(Entry::Object(o)) => Ok(o),
            Some(Entry::Marker(m)) => Err(self.marker_error(bucket, key, version, &m).await),
            None => {
                self.bucket(bucket).await?;
                Err(match version {
                    VersionRef::Latest => Error::NoSuchKey(key.to_owned()),
                    _ => Error::NoSuchVersion {
                        key: key.to_owned(),
                        version_id: version_id.unwrap_or("null").to_owned(),
                    },
                })
            }
        }
    }

    async fn marker_error(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        m: &DeleteMarker,
    ) -> Error {
        let versioning = match self.bucket(bucket).await {
            Ok(b) => b.versioning,
            Err(e) => return e,
        };
        let version_id =
            wire_version(versioning, m.version_id.as_deref()).unwrap_or_else(|| "null".into());
        match version {
            VersionRef::Latest => Error::DeletedKey {
                key: key.to_owned(),
                version_id,
            },
            _ => Error::IsDeleteMarker {
                key: key.to_owned(),
                version_id,
                last_modified: Some(m.last_modified),
            },
        }
    }

    /// [`Objects::object_version`], with the version's id as S3 reports it.
    pub(crate) async fn object_version_reported(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectRecord, Option<String>)> {
        let o = self.object_version(bucket, key, version_id).await?;
        let reported = self
            .reported_version(bucket, o.version_id.as_deref())
            .await?;
        Ok((o, reported))
    }

    /// The version id to report for `version_id` of an object in `bucket`.
    pub(crate) async fn reported_version(
        &self,
        bucket: &str,
        version_id: Option<&str>,
    ) -> Result<Option<String>> {
        if let Some(id) = version_id {
            return Ok(Some(id.to_owned()));
        }
        Ok(wire_version(self.bucket(bucket).await?.versioning, None))
    }

    /// DeleteObject: without a version id, deletes the key (a delete marker in a
    /// versioned bucket); with one, removes that version for good (no error if there is
    /// none, as on S3), unless Object Lock protects it (`ObjectLocked`; GOVERNANCE gives
    /// way to `bypass_governance`: asked for and permitted). A missing bucket is an error.
    /// `if_match` (S3's conditional delete) must be the ETag of the version deleted: of
    /// the current one, checked in the delete's transaction, or of the version named.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
        if_match: Option<&str>,
    ) -> Result<Removal> {
        let version = version_ref(version_id)?;
        let versioning = self.bucket(bucket).await?.versioning;
        let by = Authority {
            now: self.now(),
            bypass_governance,
        };
        let precondition = match if_match {
            Some(e) => Precondition::EtagMatches(e.trim().trim_matches('"').to_owned()),
            None => Precondition::None,
        };
        if version == VersionRef::Latest {
            let deleted = self
                .meta
                .delete_object(bucket, key, &new_version_id(), &by, &precondition)
                .await?;
            self.dropped(deleted.removed.as_ref());
            return Ok(match deleted.marker {
                Some(m) => Removal {
                    version_id: wire_version(versioning, m.version_id.as_deref()),
                    delete_marker: true,
                },
                None => Removal::default(),
            });
        }
        if precondition != Precondition::None {
            let etag = match self.meta.get_entry(bucket, key, version).await? {
                Some(Entry::Object(o)) => Some(o.etag),
                _ => None,
            };
            precondition.check(etag.as_deref(), bucket, key)?;
        }
        let removed = self.meta.delete_version(bucket, key, version, &by).await?;
        self.dropped(removed.as_ref());
        Ok(Removal {
            version_id: version_id.map(str::to_owned),
            delete_marker: matches!(removed, Some(Entry::Marker(_))),
        })
    }

    /// ListObjectVersions: every version and delete marker of the keys under `prefix`,
    /// keys in bytewise order and each key's versions newest first; keys containing the
    /// delimiter after the prefix roll up into common prefixes (each counts as one entry),
    /// skipped with one seek each.
    pub async fn list_versions(&self, bucket: &str, q: &VersionQuery) -> Result<VersionListing> {
        self.bucket(bucket).await?;
        // Zero keys asked for: an empty, complete page, as S3.
        if q.max_keys == 0 {
            return Ok(VersionListing::default());
        }
        let delimiter = q.delimiter.as_deref();
        let mut resume = match (&q.key_marker, q.version_id_marker.as_deref()) {
            (None, Some(v)) if !v.is_empty() => {
                return Err(Error::InvalidArgument(
                    "A version-id marker cannot be specified without a key marker.".into(),
                ));
            }
            (None, _) => Resume::Start,
            (Some(k), Some(v)) if !v.is_empty() => {
                let id = match version_ref(Some(v))? {
                    VersionRef::Id(id) => Some(id.to_owned()),
                    _ => None,
                };
                Resume::AfterVersion(k.clone(), id)
            }
            (Some(k), _) => match common_prefix(k, &q.prefix, delimiter) {
                Some(cp) if cp == k => Resume::past_prefix(cp),
                _ => Resume::AfterKey(k.clone()),
            },
        };
        let mut out = VersionListing::default();
        let mut count = 0usize;
        'scan: loop {
            let want = q.max_keys.saturating_sub(count).saturating_add(1).min(1001);
            let page = match self
                .meta
                .list_versions(
                    bucket,
                    &VersionListQuery {
                        prefix: &q.prefix,
                        start: resume.start(),
                        limit: want,
                    },
                )
                .await
            {
                Err(coffer_storage::Error::NoSuchVersion { .. }) => {
                    return Err(Error::InvalidArgument(
                        "Invalid version id specified".into(),
                    ));
                }
                other => other?,
            };
            for v in page.items {
                let key = v.key().to_owned();
                let cp = common_prefix(&key, &q.prefix, delimiter).map(str::to_owned);
                if cp.is_some() && cp.as_deref() == out.common_prefixes.last().map(String::as_str) {
                    // Only when the prefix could not be jumped over: step past its keys.
                    resume = Resume::AfterKey(key);
                    continue;
                }
                if count == q.max_keys {
                    out.truncated = true;
                    break 'scan;
                }
                count += 1;
                if let Some(cp) = cp {
                    resume = Resume::past_prefix(&cp);
                    out.next_key_marker = Some(cp.clone());
                    out.next_version_id_marker = None;
                    out.common_prefixes.push(cp);
                    // Everything else under this prefix is skipped by a fresh scan.
                    continue 'scan;
                }
                let id = v.version_id().map(str::to_owned);
                out.next_key_marker = Some(key.clone());
                out.next_version_id_marker = Some(id.clone().unwrap_or_else(|| "null".into()));
                resume = Resume::AfterVersion(key, id);
                out.versions.push(v);
            }
            if !page.truncated {
                break;
            }
        }
        if !out.truncated {
            out.next_key_marker = None;
            out.next_version_id_marker = None;
        }
        Ok(out)
    }
}

/// Where a listing of versions goes on from.
enum Resume {
    Start,
    From(String),
    AfterKey(String),
    /// After this version (`None`: the null version) of this key.
    AfterVersion(String, Option<String>),
}

impl Resume {
    fn past_prefix(cp: &str) -> Self {
        match Cursor::past_prefix(cp) {
            Cursor::From(k) => Resume::From(k),
            Cursor::After(k) => Resume::AfterKey(k),
            Cursor::Start => Resume::Start,
        }
    }

    fn start(&self) -> VersionStart<'_> {
        match self {
            Resume::Start => VersionStart::Beginning,
            Resume::From(k) => VersionStart::FromKey(k),
            Resume::AfterKey(k) => VersionStart::AfterKey(k),
            Resume::AfterVersion(k, id) => {
                VersionStart::AfterVersion(k, VersionRef::of(id.as_deref()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_unique_url_safe_and_accepted() {
        let a = new_version_id();
        let b = new_version_id();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
            assert_eq!(version_ref(Some(id)).ok(), Some(VersionRef::Id(id)));
        }
        assert_eq!(version_ref(None).ok(), Some(VersionRef::Latest));
        assert_eq!(version_ref(Some("null")).ok(), Some(VersionRef::Null));
        for bad in [
            "",
            "nope",
            "NULL",
            &a[..31],
            &format!("{a}0"),
            &"z".repeat(32),
        ] {
            assert!(
                matches!(version_ref(Some(bad)), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn version_ids_are_reported_as_s3_does() {
        assert_eq!(wire_version(Versioning::Unversioned, None), None);
        assert_eq!(
            wire_version(Versioning::Enabled, None).as_deref(),
            Some("null")
        );
        assert_eq!(
            wire_version(Versioning::Suspended, None).as_deref(),
            Some("null")
        );
        assert_eq!(
            wire_version(Versioning::Enabled, Some("v")).as_deref(),
            Some("v")
        );
    }
}
