//! The lifecycle worker: one pass scans each bucket with rules in key order and acts on
//! what the rules select, through `MetaStore::expire` (see the module above).

use std::sync::Arc;

use futures::StreamExt;
use time::OffsetDateTime;

use coffer_storage::{
    Authority, Listed, ListedVersion, UploadListQuery, VersionListQuery, VersionRef, VersionStart,
    VersionSummary,
};

use super::LifecycleConfiguration;
use crate::versions::new_version_id;
use crate::{Error, Objects, Result};

/// What the worker did to one version or upload, for the audit trail and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// A current object expired: a delete marker written (versioned bucket) or the
    /// object removed (unversioned).
    Expire,
    /// A noncurrent version removed for good.
    ExpireNoncurrent,
    /// A delete marker that was its key's only version removed.
    RemoveDeleteMarker,
    /// An incomplete multipart upload aborted.
    AbortUpload,
    /// A version moved to another storage class (into the archive tier for GLACIER and
    /// DEEP_ARCHIVE).
    Transition(&'static str),
}

impl ActionKind {
    /// The operation name S3's server access logs give the action: a current object's
    /// expiration writes a delete marker in a versioned bucket (`marker_written`) and
    /// removes the object otherwise.
    pub fn name(self, marker_written: bool) -> &'static str {
        match self {
            ActionKind::Expire if marker_written => "S3.CREATE.DELETEMARKER",
            ActionKind::Expire | ActionKind::ExpireNoncurrent | ActionKind::RemoveDeleteMarker => {
                "S3.EXPIRE.OBJECT"
            }
            ActionKind::AbortUpload => "S3.DELETE.UPLOAD",
            ActionKind::Transition(class) => match class {
                "STANDARD_IA" => "S3.TRANSITION_SIA.OBJECT",
                "ONEZONE_IA" => "S3.TRANSITION_ZIA.OBJECT",
                "INTELLIGENT_TIERING" => "S3.TRANSITION_INT.OBJECT",
                "GLACIER_IR" => "S3.TRANSITION_GIR.OBJECT",
                "DEEP_ARCHIVE" => "S3.TRANSITION_GDA.OBJECT",
                _ => "S3.TRANSITION.OBJECT",
            },
        }
    }

    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Expire => "expire",
            ActionKind::ExpireNoncurrent => "expire_noncurrent",
            ActionKind::RemoveDeleteMarker => "remove_delete_marker",
            ActionKind::AbortUpload => "abort_upload",
            ActionKind::Transition(_) => "transition",
        }
    }
}

/// One action the worker took.
#[derive(Debug, Clone)]
pub struct LifecycleAction {
    pub bucket: String,
    /// The bucket owner's account id.
    pub owner: String,
    pub rule_id: String,
    pub kind: ActionKind,
    pub key: String,
    /// The version removed or the upload aborted (`None`: the null version).
    pub version_id: Option<String>,
    /// For `Expire` in a versioned bucket: the delete marker written.
    pub marker_version_id: Option<String>,
}

/// Told of every action as it is taken (the binary records each in the audit trail and
/// counts it in the metrics).
pub trait LifecycleSink: Send + Sync {
    fn acted(&self, action: &LifecycleAction);
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub actions: u64,
    /// Versions a rule applied to that Object Lock kept.
    pub locked: u64,
    /// Versions that changed between the listing and the action (left for the next pass).
    pub raced: u64,
    /// Actions that failed (logged; retried at the next pass).
    pub failed: u64,
}

/// How many versions one listing page reads.
const PAGE: usize = 1000;
/// How many actions of a page run at once (they share group commits).
const PARALLEL: usize = 32;

/// A planned action on a version.
struct Planned {
    rule: usize,
    kind: ActionKind,
    key: String,
    version_id: Option<String>,
    last_modified: OffsetDateTime,
    current: bool,
    /// What the listing showed of it (empty for a delete marker): the store acts only
    /// if the version still has them.
    etag: String,
    tags: std::collections::BTreeMap<String, String>,
}

/// Where the scan of a key is: what the rules need from the versions already seen.
#[derive(Default)]
struct KeyState {
    key: String,
    /// Noncurrent versions seen so far (the next one is the `noncurrent + 1`th newest).
    noncurrent: u32,
    /// When the last version seen was written: the time the next one became noncurrent.
    successor: Option<OffsetDateTime>,
    /// A current delete marker waiting to learn whether its key has other versions.
    pending_marker: Option<(usize, String, Option<String>, OffsetDateTime)>,
}

impl KeyState {
    /// The removal of the waiting current delete marker, once its key turned out to have
    /// no other version.
    fn lone_marker(&mut self) -> Option<Planned> {
        let (rule, key, version_id, last_modified) = self.pending_marker.take()?;
        Some(Planned {
            rule,
            kind: ActionKind::RemoveDeleteMarker,
            key,
            version_id,
            last_modified,
            current: true,
            etag: String::new(),
            tags: Default::default(),
        })
    }
}

impl Objects {
    /// One pass of the lifecycle worker over every bucket with rules, at `now`.
    pub async fn lifecycle_pass(
        &self,
        now: OffsetDateTime,
        sink: &dyn LifecycleSink,
    ) -> Result<PassReport> {
        let mut report = PassReport::default();
        for b in self.meta.list_buckets().await? {
            let cfg = match self.get_bucket_lifecycle(&b.name).await {
                Ok(Some(c)) => c,
                Ok(None) | Err(Error::NoSuchBucket(_)) => continue,
                Err(e) => return Err(e),
            };
            if !cfg.rules.iter().any(|r| r.enabled) {
                continue;
            }
            self.lifecycle_versions(&b.name, &b.owner, &cfg, now, sink, &mut report)
                .await?;
            self.lifecycle_uploads(&b.name, &b.owner, &cfg, now, sink, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Which action, if any, the rules take on a version.
    fn plan_version(
        &self,
        cfg: &LifecycleConfiguration,
        st: &KeyState,
        v: &ListedVersion,
        now: OffsetDateTime,
    ) -> Option<(usize, ActionKind)> {
        let key = v.key();
        for (i, r) in cfg.rules.iter().enumerate().filter(|(_, r)| r.enabled) {
            match (&v.version, v.is_latest) {
                (VersionSummary::Object(o), true) => {
                    let Some(e) = &r.expiration else { continue };
                    if !r.filter.matches_object(key, &o.meta, o.size) {
                        continue;
                    }
                    let due = match (e.days, e.date) {
                        (Some(d), _) => self.after_days(o.last_modified, d) <= now,
                        (None, Some(date)) => date <= now,
                        (None, None) => false,
                    };
                    if due {
                        return Some((i, ActionKind::Expire));
                    }
                }
                (VersionSummary::Marker(_), true) => {}
                (version, false) => {
                    let Some(n) = &r.noncurrent_expiration else {
                        continue;
                    };
                    let matches = match version {
                        VersionSummary::Object(o) => r.filter.matches_object(key, &o.meta, o.size),
                        VersionSummary::Marker(_) => r.filter.matches_key(key),
                    };
                    let Some(since) = st.successor else { continue };
                    let old_enough = n
                        .noncurrent_days
                        .is_none_or(|d| self.after_days(since, d) <= now);
                    let beyond_kept = n
                        .newer_noncurrent_versions
                        .is_none_or(|keep| st.noncurrent > keep);
                    if matches && old_enough && beyond_kept {
                        return Some((i, ActionKind::ExpireNoncurrent));
                    }
                }
            }
        }
        self.plan_transition(cfg, st, v, now)
    }

    /// The deepest transition the rules have made due for an object version (S3 moves
    /// objects one way only, down its waterfall of classes), if any.
    fn plan_transition(
        &self,
        cfg: &LifecycleConfiguration,
        st: &KeyState,
        v: &ListedVersion,
        now: OffsetDateTime,
    ) -> Option<(usize, ActionKind)> {
        let VersionSummary::Object(o) = &v.version else {
            return None;
        };
        let here = rank(o.meta.storage_class.as_deref());
        let mut best: Option<(usize, &'static str)> = None;
        for (i, r) in cfg.rules.iter().enumerate().filter(|(_, r)| r.enabled) {
            if !r.filter.matches_object(&o.key, &o.meta, o.size) {
                continue;
            }
            let due: Vec<&str> = if v.is_latest {
                r.transitions
                    .iter()
                    .filter(|t| match (t.days, t.date) {
                        (Some(d), _) => self.after_days(o.last_modified, d) <= now,
                        (None, Some(date)) => date <= now,
                        (None, None) => false,
                    })
                    .map(|t| t.storage_class.as_str())
                    .collect()
            } else {
                let Some(since) = st.successor else { continue };
                r.noncurrent_transitions
                    .iter()
                    .filter(|t| {
                        t.noncurrent_days
                            .is_none_or(|d| self.after_days(since, d) <= now)
                            && t.newer_noncurrent_versions
                                .is_none_or(|keep| st.noncurrent > keep)
                    })
                    .map(|t| t.storage_class.as_str())
                    .collect()
            };
            for class in due {
                let Some(class) = super::TRANSITION_CLASSES
                    .iter()
                    .copied()
                    .find(|c| *c == class)
                else {
                    continue;
                };
                // Small objects stay put unless the rule filters by size, or the bucket
                // lets them go to the archive classes (S3's default since 2024).
                let small_ok = r.filter.has_size()
                    || (cfg.small_objects_to_archive && coffer_storage::is_archived(Some(class)));
                if o.size < super::MIN_TRANSITION_SIZE && !small_ok {
                    continue;
                }
                if rank(Some(class)) > here
                    && best.is_none_or(|(_, b)| rank(Some(class)) > rank(Some(b)))
                {
                    best = Some((i, class));
                }
            }
        }
        best.map(|(i, class)| (i, ActionKind::Transition(class)))
    }

    /// The rule that removes a current delete marker once it is its key's only version:
    /// one with `ExpiredObjectDeleteMarker`, or an expiration in days the marker is old
    /// enough for (S3 cleans such markers up with `Days` too).
    fn marker_rule(
        &self,
        cfg: &LifecycleConfiguration,
        key: &str,
        written: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<usize> {
        cfg.rules.iter().position(|r| {
            r.enabled
                && r.filter.matches_key(key)
                && r.expiration.as_ref().is_some_and(|e| {
                    e.expired_object_delete_marker == Some(true)
                        || e.days.is_some_and(|d| self.after_days(written, d) <= now)
                })
        })
    }

    async fn lifecycle_versions(
        &self,
        bucket: &str,
        owner: &str,
        cfg: &LifecycleConfiguration,
        now: OffsetDateTime,
        sink: &dyn LifecycleSink,
        report: &mut PassReport,
    ) -> Result<()> {
        let prefix = common_rule_prefix(cfg);
        let mut resume: Option<(String, Option<String>)> = None;
        let mut st = KeyState::default();
        loop {
            let start = match &resume {
                None => VersionStart::Beginning,
                Some((k, v)) => VersionStart::AfterVersion(k, VersionRef::of(v.as_deref())),
            };
            let page = match self
                .meta
                .list_versions(
                    bucket,
                    &VersionListQuery {
                        prefix: &prefix,
                        start,
                        limit: PAGE,
                    },
                )
                .await
            {
                Ok(p) => p,
                // The version the page resumes after was removed (by this pass): go on
                // with the next key; the rest of this one waits for the next pass.
                Err(coffer_storage::Error::NoSuchVersion { .. }) => {
                    let Some((k, _)) = resume.take() else {
                        return Ok(());
                    };
                    st = KeyState::default();
                    match self
                        .meta
                        .list_versions(
                            bucket,
                            &VersionListQuery {
                                prefix: &prefix,
                                start: VersionStart::AfterKey(&k),
                                limit: PAGE,
                            },
                        )
                        .await
                    {
                        Ok(p) => p,
                        Err(coffer_storage::Error::NoSuchBucket(_)) => return Ok(()),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(coffer_storage::Error::NoSuchBucket(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let mut planned = Vec::new();
            for v in &page.items {
                let key = v.key();
                if key != st.key {
                    // The previous key ended: a current marker waiting there was its only
                    // version.
                    planned.extend(st.lone_marker());
                    st = KeyState {
                        key: key.to_owned(),
                        ..KeyState::default()
                    };
                } else {
                    st.pending_marker = None;
                }
                let last_modified = match &v.version {
                    VersionSummary::Object(o) => o.last_modified,
                    VersionSummary::Marker(m) => m.last_modified,
                };
                // Noncurrent delete markers do not count as newer noncurrent versions.
                if !v.is_latest && matches!(v.version, VersionSummary::Object(_)) {
                    st.noncurrent += 1;
                }
                if v.is_latest
                    && matches!(v.version, VersionSummary::Marker(_))
                    && let Some(rule) = self.marker_rule(cfg, key, last_modified, now)
                {
                    st.pending_marker = Some((
                        rule,
                        key.to_owned(),
                        v.version_id().map(str::to_owned),
                        last_modified,
                    ));
                } else if let Some((rule, kind)) = self.plan_version(cfg, &st, v, now) {
                    let (etag, tags) = match &v.version {
                        VersionSummary::Object(o) => (o.etag.clone(), o.meta.tags.clone()),
                        VersionSummary::Marker(_) => (String::new(), Default::default()),
                    };
                    planned.push(Planned {
                        rule,
                        kind,
                        key: key.to_owned(),
                        version_id: v.version_id().map(str::to_owned),
                        last_modified,
                        current: v.is_latest,
                        etag,
                        tags,
                    });
                }
                st.successor = Some(last_modified);
            }
            if !page.truncated {
                planned.extend(st.lone_marker());
            }
            resume = page
                .items
                .last()
                .map(|v| (v.key().to_owned(), v.version_id().map(str::to_owned)));
            let busy = std::time::Instant::now();
            let acted = !planned.is_empty();
            self.apply(bucket, owner, cfg, planned, now, sink, report)
                .await?;
            if acted {
                // Rest as long as the page's actions took: the worker keeps to half of
                // the store's write capacity, leaving the rest to foreground requests
                // (scripts/bench-lifecycle measures what it costs them).
                tokio::time::sleep(busy.elapsed()).await;
            }
            if !page.truncated {
                return Ok(());
            }
        }
    }

    /// Runs a page's planned actions, a few at a time, as of `now`.
    // The pass's context as `lifecycle_versions` has it, and the page's plan.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        bucket: &str,
        owner: &str,
        cfg: &LifecycleConfiguration,
        planned: Vec<Planned>,
        now: OffsetDateTime,
        sink: &dyn LifecycleSink,
        report: &mut PassReport,
    ) -> Result<()> {
        let by = Authority::at(now);
        let mut done = futures::stream::iter(planned.into_iter().map(|p| async move {
            let marker_id = new_version_id();
            let listed = Listed {
                version: VersionRef::of(p.version_id.as_deref()),
                last_modified: p.last_modified,
                current: p.current,
                etag: &p.etag,
                tags: &p.tags,
                marker_id: &marker_id,
            };
            let r = match p.kind {
                ActionKind::Transition(class) => self
                    .transition_version(bucket, &p.key, &listed, class)
                    .await
                    .map(|moved| {
                        moved.map(|_| coffer_storage::Deleted {
                            marker: None,
                            removed: None,
                        })
                    }),
                _ => self
                    .meta
                    .expire(bucket, &p.key, &listed, &by)
                    .await
                    .map_err(Error::from),
            };
            (p, r)
        }))
        .buffer_unordered(PARALLEL);
        while let Some((p, r)) = done.next().await {
            match r {
                Ok(Some(deleted)) => {
                    self.dropped(deleted.removed.as_ref());
                    report.actions += 1;
                    sink.acted(&LifecycleAction {
                        bucket: bucket.to_owned(),
                        owner: owner.to_owned(),
                        rule_id: cfg.rules[p.rule].id.clone(),
                        kind: p.kind,
                        key: p.key,
                        version_id: match (&deleted.marker, &deleted.removed) {
                            (_, Some(e)) => e.version_id().map(str::to_owned),
                            _ => p.version_id,
                        },
                        marker_version_id: deleted.marker.and_then(|m| m.version_id),
                    });
                }
                Ok(None) => report.raced += 1,
                Err(Error::ObjectLocked { .. }) => report.locked += 1,
                // One version that cannot be acted on (its blob unreadable, the archive
                // directory full) must not stop the rules for every key after it: it is
                // logged, counted, and tried again at the next pass.
                Err(e) => {
                    tracing::warn!(bucket, key = %p.key, error = %e, "lifecycle action failed; will retry");
                    report.failed += 1;
                }
            }
        }
        Ok(())
    }

    /// Moves a version to `class`: into the archive tier, its bytes are copied as stored
    /// (ciphertext stays ciphertext), one archive blob per extent so that part boundaries
    /// hold, made durable before the record changes; within a tier only the class
    /// changes. `None` if the version changed meanwhile (the copies are then deleted).
    async fn transition_version(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        class: &'static str,
    ) -> Result<Option<coffer_storage::Entry>> {
        let Some(coffer_storage::Entry::Object(o)) =
            self.meta.get_entry(bucket, key, listed.version).await?
        else {
            return Ok(None);
        };
        if o.last_modified != listed.last_modified {
            return Ok(None);
        }
        let from = o.meta.storage_class.as_deref();
        let moves = !Arc::ptr_eq(self.store_for(from), self.store_for(Some(class)))
            || (coffer_storage::is_archived(Some(class)) && !coffer_storage::is_archived(from));
        let extents = if moves {
            self.copy_extents(&o, class).await?
        } else {
            o.extents.clone()
        };
        match self
            .meta
            .transition(bucket, key, listed, &o.extents, class, &extents)
            .await
        {
            Ok(Some(old)) => {
                if moves {
                    for id in extents.iter().filter_map(coffer_storage::Extent::blob_id) {
                        if let Err(e) = self.store_for(Some(class)).publish(id).await {
                            tracing::warn!(blob = id.as_str(), error = %e, "publishing an archived blob failed");
                        }
                    }
                }
                self.dropped(Some(&old));
                Ok(Some(old))
            }
            other => {
                if moves {
                    self.discard(&extents).await;
                }
                Ok(other?)
            }
        }
    }

    /// Copies an object's extents, as stored, into new blobs of the store `class` uses.
    async fn copy_extents(
        &self,
        o: &coffer_storage::ObjectRecord,
        class: &str,
    ) -> Result<Vec<coffer_storage::Extent>> {
        let from = self.store_for(o.meta.storage_class.as_deref());
        let to = self.store_for(Some(class));
        let mut out = Vec::with_capacity(o.extents.len());
        for e in &o.extents {
            match copy_extent(from.as_ref(), to.as_ref(), e).await {
                Ok(copy) => out.push(copy),
                Err(err) => {
                    // The copies finished so far are nobody's: remove them now.
                    self.discard(&out).await;
                    return Err(err);
                }
            }
        }
        Ok(out)
    }

    async fn lifecycle_uploads(
        &self,
        bucket: &str,
        owner: &str,
        cfg: &LifecycleConfiguration,
        now: OffsetDateTime,
        sink: &dyn LifecycleSink,
        report: &mut PassReport,
    ) -> Result<()> {
        if !cfg
            .rules
            .iter()
            .any(|r| r.enabled && r.abort_incomplete_days.is_some())
        {
            return Ok(());
        }
        let mut after: Option<(String, String)> = None;
        loop {
            let query = UploadListQuery {
                prefix: "",
                start: match &after {
                    None => std::ops::Bound::Unbounded,
                    Some((k, _)) => std::ops::Bound::Excluded(k.as_str()),
                },
                upload_id_marker: after.as_ref().map(|(_, u)| u.as_str()),
                limit: PAGE,
            };
            let page = match self.meta.list_uploads(bucket, &query).await {
                Ok(p) => p,
                Err(coffer_storage::Error::NoSuchBucket(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            for u in &page.items {
                let rule = cfg.rules.iter().position(|r| {
                    r.enabled
                        && r.filter.matches_key(&u.key)
                        && r.abort_incomplete_days
                            .is_some_and(|d| self.after_days(u.initiated, d) <= now)
                });
                let Some(rule) = rule else { continue };
                match self.meta.abort_upload(bucket, &u.upload_id).await {
                    Ok(()) => {
                        self.garbage_queued();
                        if u.meta.sse.is_none() {
                            self.meta.scrub_freed();
                        }
                        report.actions += 1;
                        sink.acted(&LifecycleAction {
                            bucket: bucket.to_owned(),
                            owner: owner.to_owned(),
                            rule_id: cfg.rules[rule].id.clone(),
                            kind: ActionKind::AbortUpload,
                            key: u.key.clone(),
                            version_id: Some(u.upload_id.clone()),
                            marker_version_id: None,
                        });
                    }
                    // Completed or aborted meanwhile.
                    Err(coffer_storage::Error::NoSuchUpload(_)) => report.raced += 1,
                    Err(e) => return Err(e.into()),
                }
            }
            after = page
                .items
                .last()
                .map(|u| (u.key.clone(), u.upload_id.clone()));
            if !page.truncated {
                return Ok(());
            }
        }
    }
}

/// Copies one extent, as stored, into a new durable blob of `to` (an unfinished writer
/// is discarded when dropped).
async fn copy_extent(
    from: &dyn coffer_storage::BlobStore,
    to: &dyn coffer_storage::BlobStore,
    e: &coffer_storage::Extent,
) -> Result<coffer_storage::Extent> {
    let mut w = to.create().await?;
    match e {
        coffer_storage::Extent::Inline(b) => w.write(b.clone()).await?,
        coffer_storage::Extent::Blob { id, len } => {
            let mut r = from.read(id, 0, *len).await?;
            while let Some(chunk) = r.next().await {
                w.write(chunk?).await?;
            }
        }
    }
    let id = w.id().clone();
    let len = w.finish().await?;
    Ok(coffer_storage::Extent::Blob { id, len })
}

/// A storage class's place in S3's transition waterfall.
fn rank(class: Option<&str>) -> u8 {
    match class {
        Some("STANDARD_IA") => 1,
        Some("INTELLIGENT_TIERING") => 2,
        Some("ONEZONE_IA") => 3,
        Some("GLACIER_IR") => 4,
        Some("GLACIER") => 5,
        Some("DEEP_ARCHIVE") => 6,
        _ => 0,
    }
}

/// The longest prefix every enabled rule's filter starts with: the scan reads no key
/// outside it.
fn common_rule_prefix(cfg: &LifecycleConfiguration) -> String {
    let mut prefixes = cfg
        .rules
        .iter()
        .filter(|r| r.enabled)
        .map(|r| r.filter.prefix());
    let Some(first) = prefixes.next() else {
        return String::new();
    };
    let mut common = first.to_owned();
    for p in prefixes {
        let n = common
            .char_indices()
            .zip(p.chars())
            .take_while(|((_, a), b)| a == b)
            .count();
        let end = common
            .char_indices()
            .nth(n)
            .map_or(common.len(), |(i, _)| i);
        common.truncate(end);
    }
    common
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Expiration, Filter, Rule};

    fn rule(id: &str) -> Rule {
        Rule {
            id: id.into(),
            enabled: true,
            expiration: Some(Expiration {
                days: Some(1),
                ..Expiration::default()
            }),
            ..Rule::default()
        }
    }

    #[test]
    fn the_scan_is_bounded_by_the_rules_common_prefix() {
        let with = |ps: &[&str]| LifecycleConfiguration {
            rules: ps
                .iter()
                .map(|p| Rule {
                    filter: Filter::Prefix((*p).into()),
                    ..rule(p)
                })
                .collect(),
            ..Default::default()
        };
        assert_eq!(common_rule_prefix(&with(&["logs/a", "logs/b"])), "logs/");
        assert_eq!(common_rule_prefix(&with(&["logs/", "data/"])), "");
        assert_eq!(common_rule_prefix(&with(&["é1", "é2"])), "é");
    }
}
