//! An in-memory backend: the reference model the contract suite is checked against, and a
//! fast store for unit tests of the object domain. Not durable, by design. One store a
//! file: metadata here, blobs in `blobs.rs`, IAM in `iam.rs`, the KMS in `kms.rs`.

mod blobs;
mod iam;
mod kms;

pub use blobs::MemoryBlobs;
pub use iam::MemoryIam;
pub use kms::MemoryKms;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::{
    Authority, BlobId, BucketRecord, DeleteMarker, Deleted, Entry, Error, Extent, Fate, ListPage,
    Listed, ListedVersion, LockChange, MetaStore, NewVersion, ObjectRecord, ObjectSummary,
    PartRecord, Precondition, Result, SseRecord, UploadListQuery, UploadRecord, VersionListQuery,
    VersionRef, VersionStart, VersionSummary, Versioning, Written,
};

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, BucketRecord>,
    settings: BTreeMap<(String, String), String>,
    account_settings: BTreeMap<(String, String), String>,
    /// Every version of every key, newest first: the first is the current version.
    objects: BTreeMap<(String, String), Vec<Entry>>,
    uploads: BTreeMap<String, UploadRecord>,
    parts: BTreeMap<(String, u32), PartRecord>,
    garbage: BTreeSet<BlobId>,
}

fn position(versions: &[Entry], version: VersionRef<'_>) -> Option<usize> {
    match version {
        VersionRef::Latest => (!versions.is_empty()).then_some(0),
        named => versions.iter().position(|e| named.names(e.version_id())),
    }
}

impl State {
    fn garbage_replaced(&mut self, old: &Entry, new: Option<&Entry>) {
        let keep: BTreeSet<&BlobId> = new
            .map(|n| n.blob_ids().into_iter().collect())
            .unwrap_or_default();
        let gone: Vec<BlobId> = old
            .blob_ids()
            .into_iter()
            .filter(|id| !keep.contains(id))
            .cloned()
            .collect();
        self.garbage.extend(gone);
    }

    fn versioning(&self, bucket: &str) -> Result<Versioning> {
        self.buckets
            .get(bucket)
            .map(|b| b.versioning)
            .ok_or_else(|| Error::NoSuchBucket(bucket.into()))
    }

    /// The current version of a key, if it is an object.
    fn current_object(&self, bucket: &str, key: &str) -> Option<&ObjectRecord> {
        match self
            .objects
            .get(&(bucket.to_owned(), key.to_owned()))?
            .first()?
        {
            Entry::Object(o) => Some(o),
            Entry::Marker(_) => None,
        }
    }

    /// Adds a new current version to a key, by [`NewVersion::plan`].
    fn add_version(&mut self, entry: Entry, candidate: &str) -> Result<Written> {
        let by = Authority::at(match &entry {
            Entry::Object(o) => o.last_modified,
            Entry::Marker(m) => m.last_modified,
        });
        self.add_version_as(entry, candidate, &by)
    }

    /// [`Self::add_version`], replacing only versions Object Lock lets `by` remove.
    fn add_version_as(
        &mut self,
        mut entry: Entry,
        candidate: &str,
        by: &Authority,
    ) -> Result<Written> {
        let (bucket, key) = match &entry {
            Entry::Object(o) => (o.bucket.clone(), o.key.clone()),
            Entry::Marker(m) => (m.bucket.clone(), m.key.clone()),
        };
        let versioning = self.versioning(&bucket)?;
        let versions = self.objects.entry((bucket, key)).or_default();
        let plan = NewVersion::plan(
            versioning,
            candidate,
            versions.first().map(Entry::version_id),
        );
        entry.set_version_id(plan.version_id.clone());
        // Which versions the write replaces, checked against Object Lock before any goes.
        let mut doomed = Vec::new();
        if plan.current == Fate::Replaced && !versions.is_empty() {
            doomed.push(0);
        }
        if plan.replaces_noncurrent_null
            && let Some(i) = versions.iter().position(|e| e.version_id().is_none())
            && !doomed.contains(&i)
        {
            doomed.push(i);
        }
        for &i in &doomed {
            versions[i].check_removal(by)?;
        }
        let mut replaced = None;
        for i in doomed.into_iter().rev() {
            replaced = Some(versions.remove(i));
        }
        versions.insert(0, entry.clone());
        if let Some(old) = &replaced {
            self.garbage_replaced(old, Some(&entry));
        }
        Ok(Written {
            version_id: plan.version_id,
            versioning,
            replaced,
        })
    }

    /// A version of an object, to change in place: `NoSuchKey`/`NoSuchVersion` if it is
    /// missing, `IsDeleteMarker` for a marker.
    fn object_mut(
        &mut self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
    ) -> Result<&mut ObjectRecord> {
        let entry = self
            .objects
            .get_mut(&(bucket.to_owned(), key.to_owned()))
            .and_then(|v| position(v, version).map(|i| &mut v[i]));
        match entry {
            Some(Entry::Object(o)) => Ok(o),
            Some(Entry::Marker(m)) => Err(Error::IsDeleteMarker {
                key: key.into(),
                version_id: m.version_id.clone().unwrap_or_else(|| "null".into()),
            }),
            None => Err(version.missing(bucket, key)),
        }
    }

    /// `MetaStore::delete_object`.
    fn delete_current(
        &mut self,
        bucket: &str,
        key: &str,
        marker_id: &str,
        by: &Authority,
    ) -> Result<Deleted> {
        if self.versioning(bucket)? == Versioning::Unversioned {
            let id = (bucket.to_owned(), key.to_owned());
            // An unversioned bucket holds one version per key.
            if let Some(current) = self.objects.get(&id).and_then(|v| v.first()) {
                current.check_removal(by)?;
            }
            let removed = self
                .objects
                .remove(&id)
                .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)));
            if let Some(old) = &removed {
                self.garbage_replaced(old, None);
            }
            return Ok(Deleted {
                marker: None,
                removed,
            });
        }
        let marker = DeleteMarker {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: None,
            last_modified: by.now,
        };
        let written = self.add_version_as(Entry::Marker(marker.clone()), marker_id, by)?;
        Ok(Deleted {
            marker: Some(DeleteMarker {
                version_id: written.version_id,
                ..marker
            }),
            removed: written.replaced,
        })
    }

    /// `MetaStore::delete_version`.
    fn delete_version(
        &mut self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        by: &Authority,
    ) -> Result<Option<Entry>> {
        self.versioning(bucket)?;
        let id = (bucket.to_owned(), key.to_owned());
        let Some(versions) = self.objects.get_mut(&id) else {
            return Ok(None);
        };
        let Some(i) = position(versions, version) else {
            return Ok(None);
        };
        versions[i].check_removal(by)?;
        let removed = versions.remove(i);
        if versions.is_empty() {
            self.objects.remove(&id);
        }
        self.garbage_replaced(&removed, None);
        Ok(Some(removed))
    }

    fn has_upload(&self, bucket: &str, upload_id: &str) -> bool {
        self.uploads
            .get(upload_id)
            .is_some_and(|u| u.bucket == bucket)
    }

    fn upload_parts(&self, upload_id: &str) -> Vec<PartRecord> {
        self.parts
            .range((upload_id.to_owned(), 0)..=(upload_id.to_owned(), u32::MAX))
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn remove_upload(&mut self, upload_id: &str) -> Vec<PartRecord> {
        self.uploads.remove(upload_id);
        let parts = self.upload_parts(upload_id);
        for p in &parts {
            self.parts.remove(&(upload_id.to_owned(), p.part_number));
        }
        parts
    }
}

/// In-memory [`MetaStore`].
#[derive(Default, Clone)]
pub struct MemoryMeta {
    state: Arc<Mutex<State>>,
}

impl MemoryMeta {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every method
        // validates before it mutates, so the state is usable after poisoning.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn in_bound(key: &str, start: Bound<&str>) -> bool {
    match start {
        Bound::Included(s) => key >= s,
        Bound::Excluded(s) => key > s,
        Bound::Unbounded => true,
    }
}

#[async_trait]
impl MetaStore for MemoryMeta {
    async fn create_bucket_with_settings(
        &self,
        bucket: &BucketRecord,
        settings: &[(&str, &str)],
    ) -> Result<()> {
        let mut st = self.lock();
        if let Some(existing) = st.buckets.get(&bucket.name) {
            return Err(Error::BucketAlreadyExists {
                name: bucket.name.clone(),
                owner: existing.owner.clone(),
            });
        }
        st.buckets.insert(bucket.name.clone(), bucket.clone());
        for (name, value) in settings {
            st.settings.insert(
                (bucket.name.clone(), (*name).to_owned()),
                (*value).to_owned(),
            );
        }
        Ok(())
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        Ok(self.lock().buckets.get(name).cloned())
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        Ok(self.lock().buckets.values().cloned().collect())
    }

    async fn delete_bucket(&self, name: &str) -> Result<()> {
        let mut st = self.lock();
        if !st.buckets.contains_key(name) {
            return Err(Error::NoSuchBucket(name.into()));
        }
        if st.objects.keys().any(|(b, _)| b == name) {
            return Err(Error::BucketNotEmpty(name.into()));
        }
        let uploads: Vec<String> = st
            .uploads
            .values()
            .filter(|u| u.bucket == name)
            .map(|u| u.upload_id.clone())
            .collect();
        for id in uploads {
            let parts = st.remove_upload(&id);
            let blobs: Vec<BlobId> = parts
                .iter()
                .filter_map(|p| p.extent.blob_id().cloned())
                .collect();
            st.garbage.extend(blobs);
        }
        st.buckets.remove(name);
        st.settings.retain(|(b, _), _| b != name);
        Ok(())
    }

    async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<()> {
        let mut st = self.lock();
        match st.buckets.get_mut(bucket) {
            Some(b) => {
                b.versioning = versioning;
                Ok(())
            }
            None => Err(Error::NoSuchBucket(bucket.into())),
        }
    }

    async fn get_bucket_setting(&self, bucket: &str, name: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .settings
            .get(&(bucket.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn put_bucket_setting(&self, bucket: &str, name: &str, value: &str) -> Result<()> {
        let mut st = self.lock();
        if !st.buckets.contains_key(bucket) {
            return Err(Error::NoSuchBucket(bucket.into()));
        }
        st.settings
            .insert((bucket.to_owned(), name.to_owned()), value.to_owned());
        Ok(())
    }

    async fn delete_bucket_setting(&self, bucket: &str, name: &str) -> Result<()> {
        self.lock()
            .settings
            .remove(&(bucket.to_owned(), name.to_owned()));
        Ok(())
    }

    async fn get_account_setting(&self, account: &str, name: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .account_settings
            .get(&(account.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn put_account_setting(&self, account: &str, name: &str, value: &str) -> Result<()> {
        self.lock()
            .account_settings
            .insert((account.to_owned(), name.to_owned()), value.to_owned());
        Ok(())
    }

    async fn delete_account_setting(&self, account: &str, name: &str) -> Result<()> {
        self.lock()
            .account_settings
            .remove(&(account.to_owned(), name.to_owned()));
        Ok(())
    }

    async fn get_entry(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
    ) -> Result<Option<Entry>> {
        let st = self.lock();
        let Some(versions) = st.objects.get(&(bucket.to_owned(), key.to_owned())) else {
            return Ok(None);
        };
        Ok(position(versions, version).map(|i| versions[i].clone()))
    }

    async fn put_object(
        &self,
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Written> {
        let mut st = self.lock();
        st.versioning(&object.bucket)?;
        precondition.check(
            st.current_object(&object.bucket, &object.key)
                .map(|o| o.etag.as_str()),
            &object.bucket,
            &object.key,
        )?;
        let candidate = object.version_id.clone().unwrap_or_default();
        st.add_version(Entry::Object(object.clone()), &candidate)
    }

    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut st = self.lock();
        st.object_mut(bucket, key, version)?.meta.tags = tags.clone();
        Ok(())
    }

    async fn set_object_acl(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        acl: Option<&str>,
    ) -> Result<()> {
        let mut st = self.lock();
        st.object_mut(bucket, key, version)?.meta.acl = acl.map(str::to_owned);
        Ok(())
    }

    async fn set_object_sse(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        object_id: &[u8; 16],
        sse: &SseRecord,
    ) -> Result<()> {
        let mut st = self.lock();
        let entry = st
            .objects
            .get_mut(&(bucket.to_owned(), key.to_owned()))
            .and_then(|v| position(v, version).map(|i| &mut v[i]));
        match entry {
            Some(Entry::Object(o)) => {
                if o.meta.sse.as_ref().map(SseRecord::object_id).as_ref() != Some(object_id) {
                    return Err(Error::PreconditionFailed);
                }
                o.meta.sse = Some(sse.clone());
                Ok(())
            }
            // Another version than the one read (a marker written meanwhile).
            Some(Entry::Marker(_)) => Err(Error::PreconditionFailed),
            None => Err(version.missing(bucket, key)),
        }
    }

    async fn set_object_lock(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        change: LockChange,
        by: &Authority,
    ) -> Result<()> {
        let mut st = self.lock();
        let o = st.object_mut(bucket, key, version)?;
        o.meta
            .change_lock(change, by)
            .map_err(|refusal| Error::ObjectLocked {
                key: key.into(),
                version_id: o.version_id.clone().unwrap_or_else(|| "null".into()),
                refusal,
            })
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        marker_id: &str,
        by: &Authority,
        precondition: &Precondition,
    ) -> Result<Deleted> {
        let mut st = self.lock();
        st.versioning(bucket)?;
        precondition.check(
            st.current_object(bucket, key).map(|o| o.etag.as_str()),
            bucket,
            key,
        )?;
        st.delete_current(bucket, key, marker_id, by)
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        by: &Authority,
    ) -> Result<Option<Entry>> {
        self.lock().delete_version(bucket, key, version, by)
    }

    async fn expire(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        by: &Authority,
    ) -> Result<Option<Deleted>> {
        let mut st = self.lock();
        let Some(versions) = st.objects.get(&(bucket.to_owned(), key.to_owned())) else {
            return Ok(None);
        };
        let Some(i) = position(versions, listed.version) else {
            return Ok(None);
        };
        let empty = BTreeMap::new();
        let (last_modified, object, etag, tags) = match &versions[i] {
            Entry::Object(o) => (o.last_modified, true, o.etag.as_str(), &o.meta.tags),
            Entry::Marker(m) => (m.last_modified, false, "", &empty),
        };
        if last_modified != listed.last_modified
            || (i == 0) != listed.current
            || etag != listed.etag
            || tags != listed.tags
        {
            return Ok(None);
        }
        if listed.current && object {
            return st
                .delete_current(bucket, key, listed.marker_id, by)
                .map(Some);
        }
        let removed = st.delete_version(bucket, key, listed.version, by)?;
        Ok(Some(Deleted {
            marker: None,
            removed,
        }))
    }

    async fn bucket_usage(&self, bucket: &str) -> Result<crate::BucketUsage> {
        let st = self.lock();
        st.versioning(bucket)?;
        let mut u = crate::BucketUsage::default();
        let from = (bucket.to_owned(), String::new());
        for ((b, _), versions) in st.objects.range(from..) {
            if b != bucket {
                break;
            }
            for (i, e) in versions.iter().enumerate() {
                match (e, i == 0) {
                    (Entry::Marker(_), _) => u.delete_markers += 1,
                    (Entry::Object(o), true) => {
                        u.objects += 1;
                        u.object_bytes += o.size;
                    }
                    (Entry::Object(o), false) => {
                        u.noncurrent_versions += 1;
                        u.noncurrent_bytes += o.size;
                    }
                }
            }
        }
        Ok(u)
    }

    async fn transition(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        from: &[Extent],
        storage_class: &str,
        extents: &[Extent],
    ) -> Result<Option<Entry>> {
        let mut st = self.lock();
        let Some(versions) = st.objects.get_mut(&(bucket.to_owned(), key.to_owned())) else {
            return Ok(None);
        };
        let Some(i) = position(versions, listed.version) else {
            return Ok(None);
        };
        let Entry::Object(o) = &mut versions[i] else {
            return Ok(None);
        };
        if o.last_modified != listed.last_modified
            || (i == 0) != listed.current
            || o.etag != listed.etag
            || o.extents != from
        {
            return Ok(None);
        }
        let old = Entry::Object(o.clone());
        o.meta.storage_class = Some(storage_class.to_owned());
        o.extents = extents.to_vec();
        let new = Entry::Object(o.clone());
        st.garbage_replaced(&old, Some(&new));
        Ok(Some(old))
    }

    async fn set_object_restore(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        restore: &crate::Restore,
    ) -> Result<()> {
        let mut st = self.lock();
        st.object_mut(bucket, key, version)?.meta.restore = Some(*restore);
        Ok(())
    }

    async fn list_versions(
        &self,
        bucket: &str,
        query: &VersionListQuery<'_>,
    ) -> Result<ListPage<ListedVersion>> {
        let st = self.lock();
        // Where the listing resumes within the marker key: after the named version.
        let mut skip_in_marker_key = None;
        if let VersionStart::AfterVersion(k, v) = query.start {
            let versions = st
                .objects
                .get(&(bucket.to_owned(), k.to_owned()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            match position(versions, v) {
                Some(i) => skip_in_marker_key = Some(i + 1),
                None => return Err(v.missing(bucket, k)),
            }
        }
        let mut items = Vec::new();
        let keys = st
            .objects
            .range((bucket.to_owned(), query.prefix.to_owned())..)
            .take_while(|((b, k), _)| b == bucket && k.starts_with(query.prefix));
        for ((_, key), versions) in keys {
            let skip = match query.start {
                VersionStart::Beginning => 0,
                VersionStart::FromKey(m) if key.as_str() < m => continue,
                VersionStart::FromKey(_) => 0,
                VersionStart::AfterKey(m) if key.as_str() <= m => continue,
                VersionStart::AfterKey(_) => 0,
                VersionStart::AfterVersion(m, _) if key.as_str() < m => continue,
                VersionStart::AfterVersion(m, _) if key == m => skip_in_marker_key.unwrap_or(0),
                VersionStart::AfterVersion(..) => 0,
            };
            for (i, e) in versions.iter().enumerate().skip(skip) {
                if items.len() > query.limit {
                    break;
                }
                items.push(ListedVersion {
                    is_latest: i == 0,
                    version: match e {
                        Entry::Object(o) => VersionSummary::Object(o.summary()),
                        Entry::Marker(m) => VersionSummary::Marker(m.clone()),
                    },
                });
            }
            if items.len() > query.limit {
                break;
            }
        }
        Ok(ListPage::from_overfetch(items, query.limit))
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start: Bound<&str>,
        limit: usize,
    ) -> Result<ListPage<ObjectSummary>> {
        let st = self.lock();
        let mut items = Vec::new();
        let mut truncated = false;
        let matching = st
            .objects
            .range((bucket.to_owned(), prefix.to_owned())..)
            .take_while(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .filter(|((_, k), _)| in_bound(k, start))
            .filter_map(|(_, versions)| match versions.first() {
                Some(Entry::Object(o)) => Some(o),
                _ => None,
            });
        for o in matching {
            if items.len() == limit {
                truncated = true;
                break;
            }
            items.push(o.summary());
        }
        Ok(ListPage { items, truncated })
    }

    async fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        let mut st = self.lock();
        if !st.buckets.contains_key(&upload.bucket) {
            return Err(Error::NoSuchBucket(upload.bucket.clone()));
        }
        st.uploads.insert(upload.upload_id.clone(), upload.clone());
        Ok(())
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> Result<Option<UploadRecord>> {
        Ok(self
            .lock()
            .uploads
            .get(upload_id)
            .filter(|u| u.bucket == bucket)
            .cloned())
    }

    async fn put_part(&self, bucket: &str, upload_id: &str, part: &PartRecord) -> Result<()> {
        let mut st = self.lock();
        if !st.has_upload(bucket, upload_id) {
            return Err(Error::NoSuchUpload(upload_id.into()));
        }
        let old = st
            .parts
            .insert((upload_id.to_owned(), part.part_number), part.clone());
        if let Some(old) = old
            && let Some(id) = old.extent.blob_id()
            && Some(id) != part.extent.blob_id()
        {
            st.garbage.insert(id.clone());
        }
        Ok(())
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<ListPage<PartRecord>> {
        let st = self.lock();
        if !st.has_upload(bucket, upload_id) {
            return Err(Error::NoSuchUpload(upload_id.into()));
        }
        let mut parts: Vec<PartRecord> = st
            .upload_parts(upload_id)
            .into_iter()
            .filter(|p| p.part_number > after)
            .collect();
        let truncated = parts.len() > limit;
        parts.truncate(limit);
        Ok(ListPage {
            items: parts,
            truncated,
        })
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery<'_>,
    ) -> Result<ListPage<UploadRecord>> {
        let st = self.lock();
        let mut all: Vec<&UploadRecord> = st
            .uploads
            .values()
            .filter(|u| u.bucket == bucket && u.key.starts_with(query.prefix))
            .filter(|u| match (query.start, query.upload_id_marker) {
                (Bound::Excluded(k), Some(id)) if u.key == k => u.upload_id.as_str() > id,
                (start, _) => in_bound(&u.key, start),
            })
            .collect();
        all.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        let truncated = all.len() > query.limit;
        Ok(ListPage {
            items: all.into_iter().take(query.limit).cloned().collect(),
            truncated,
        })
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        used: &[(u32, String)],
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Written> {
        let mut st = self.lock();
        if !st
            .uploads
            .get(upload_id)
            .is_some_and(|u| u.bucket == object.bucket && u.key == object.key)
        {
            return Err(Error::NoSuchUpload(upload_id.into()));
        }
        if !st.buckets.contains_key(&object.bucket) {
            return Err(Error::NoSuchBucket(object.bucket.clone()));
        }
        for (number, etag) in used {
            match st.parts.get(&(upload_id.to_owned(), *number)) {
                Some(p) if &p.etag == etag => {}
                _ => return Err(Error::InvalidPart(*number)),
            }
        }
        precondition.check(
            st.current_object(&object.bucket, &object.key)
                .map(|o| o.etag.as_str()),
            &object.bucket,
            &object.key,
        )?;
        let parts = st.remove_upload(upload_id);
        let keep: BTreeSet<&BlobId> = object.blob_ids().collect();
        let unused: Vec<BlobId> = parts
            .iter()
            .filter_map(|p| p.extent.blob_id())
            .filter(|id| !keep.contains(id))
            .cloned()
            .collect();
        st.garbage.extend(unused);
        let candidate = object.version_id.clone().unwrap_or_default();
        st.add_version(Entry::Object(object.clone()), &candidate)
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> Result<()> {
        let mut st = self.lock();
        if !st.has_upload(bucket, upload_id) {
            return Err(Error::NoSuchUpload(upload_id.into()));
        }
        let parts = st.remove_upload(upload_id);
        let ids: Vec<BlobId> = parts
            .iter()
            .filter_map(|p| p.extent.blob_id().cloned())
            .collect();
        st.garbage.extend(ids);
        Ok(())
    }

    async fn blob_referenced(&self, id: &BlobId) -> Result<bool> {
        let st = self.lock();
        Ok(st
            .objects
            .values()
            .flatten()
            .any(|e| e.blob_ids().contains(&id))
            || st.parts.values().any(|p| p.extent.blob_id() == Some(id)))
    }

    async fn take_garbage(&self, limit: usize) -> Result<Vec<BlobId>> {
        Ok(self.lock().garbage.iter().take(limit).cloned().collect())
    }

    async fn forget_garbage(&self, ids: &[BlobId]) -> Result<()> {
        let mut st = self.lock();
        for id in ids {
            st.garbage.remove(id);
        }
        Ok(())
    }
}
