//! Lifecycle rules: a bucket's configuration (AWS's rule grammar, validated as S3
//! validates it), the expiry a rule gives an object (`x-amz-expiration`), and the worker
//! pass that applies the rules in batches.
//!
//! The worker (`worker.rs`): the pass scans each bucket's versions in key order, newest first within a key, so the
//! facts a rule needs are at hand without another read: whether a version is current,
//! when it became noncurrent (its successor's time), how many newer noncurrent versions
//! its key has, and whether a current delete marker is its key's only version (one item
//! of look-ahead). Every action is one store transaction (`MetaStore::expire`) that acts
//! only on the version as listed, so a write racing the pass is never expired by it and a
//! crash leaves each version either untouched or fully processed; Object Lock is enforced
//! inside it. A day is `Config::day` long.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

mod worker;

pub use worker::{ActionKind, LifecycleAction, LifecycleSink, PassReport};

use crate::settings::LIFECYCLE;
use crate::versions::new_version_id;
use crate::{Error, Objects, Result};

/// A bucket's lifecycle configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfiguration {
    pub rules: Vec<Rule>,
    /// S3's `x-amz-transition-default-minimum-object-size: varies_by_storage_class`:
    /// objects under 128 KiB may still go to GLACIER and DEEP_ARCHIVE (by default
    /// `all_storage_classes_128K`: they go nowhere).
    #[serde(default)]
    pub small_objects_to_archive: bool,
}

/// One rule, kept as it was written (so that reading it back shows the same shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    pub expiration: Option<Expiration>,
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    pub abort_incomplete_days: Option<u32>,
    pub transitions: Vec<Transition>,
    pub noncurrent_transitions: Vec<NoncurrentTransition>,
}

/// Which objects a rule applies to, in the form it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    /// The rule's own `Prefix` (the form before `Filter` existed).
    Legacy(String),
    /// An empty `<Filter/>`: every object.
    #[default]
    All,
    Prefix(String),
    Tag(String, String),
    SizeGreaterThan(u64),
    SizeLessThan(u64),
    And {
        prefix: Option<String>,
        tags: Vec<(String, String)>,
        size_greater_than: Option<u64>,
        size_less_than: Option<u64>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiration {
    pub days: Option<u32>,
    pub date: Option<OffsetDateTime>,
    pub expired_object_delete_marker: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    pub noncurrent_days: Option<u32>,
    pub newer_noncurrent_versions: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub days: Option<u32>,
    pub date: Option<OffsetDateTime>,
    pub storage_class: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentTransition {
    pub noncurrent_days: Option<u32>,
    pub newer_noncurrent_versions: Option<u32>,
    pub storage_class: String,
}

impl Filter {
    fn prefix(&self) -> &str {
        match self {
            Filter::Legacy(p) | Filter::Prefix(p) => p,
            Filter::And {
                prefix: Some(p), ..
            } => p,
            _ => "",
        }
    }

    /// Whether the filter looks at tags or sizes (which delete markers and uploads lack).
    fn needs_object(&self) -> bool {
        match self {
            Filter::Tag(..) | Filter::SizeGreaterThan(_) | Filter::SizeLessThan(_) => true,
            Filter::And {
                tags,
                size_greater_than,
                size_less_than,
                ..
            } => !tags.is_empty() || size_greater_than.is_some() || size_less_than.is_some(),
            _ => false,
        }
    }

    fn has_size(&self) -> bool {
        match self {
            Filter::SizeGreaterThan(_) | Filter::SizeLessThan(_) => true,
            Filter::And {
                size_greater_than,
                size_less_than,
                ..
            } => size_greater_than.is_some() || size_less_than.is_some(),
            _ => false,
        }
    }

    fn has_tags(&self) -> bool {
        match self {
            Filter::Tag(..) => true,
            Filter::And { tags, .. } => !tags.is_empty(),
            _ => false,
        }
    }

    /// Whether an object (key, tags, size) is one the rule applies to.
    fn matches_object(&self, key: &str, meta: &coffer_storage::ObjectMeta, size: u64) -> bool {
        if !key.starts_with(self.prefix()) {
            return false;
        }
        let tag = |k: &str, v: &str| meta.tags.get(k).is_some_and(|have| have == v);
        match self {
            Filter::Tag(k, v) => tag(k, v),
            Filter::SizeGreaterThan(n) => size > *n,
            Filter::SizeLessThan(n) => size < *n,
            Filter::And {
                tags,
                size_greater_than,
                size_less_than,
                ..
            } => {
                tags.iter().all(|(k, v)| tag(k, v))
                    && size_greater_than.is_none_or(|n| size > n)
                    && size_less_than.is_none_or(|n| size < n)
            }
            _ => true,
        }
    }

    /// Whether a delete marker or an upload (a key alone) is one the rule applies to.
    fn matches_key(&self, key: &str) -> bool {
        !self.needs_object() && key.starts_with(self.prefix())
    }
}

/// Most rules S3 accepts in one configuration.
const MAX_RULES: usize = 1000;
/// Longest rule id.
const MAX_ID: usize = 255;

fn invalid(m: &str) -> Error {
    Error::InvalidArgument(m.to_owned())
}

fn positive(n: Option<u32>, message: &str) -> Result<()> {
    match n {
        Some(0) => Err(invalid(message)),
        _ => Ok(()),
    }
}

fn midnight(d: &OffsetDateTime) -> bool {
    d.offset().is_utc() && d.time() == time::Time::MIDNIGHT
}

/// Objects smaller than this are not transitioned by default (S3's
/// `all_storage_classes_128K`, since September 2024).
const MIN_TRANSITION_SIZE: u64 = 128 * 1024;

/// Storage classes a transition can move to.
const TRANSITION_CLASSES: &[&str] = &[
    "GLACIER",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

fn check_class(class: &str, days: Option<u32>, what: &str) -> Result<()> {
    if !TRANSITION_CLASSES.contains(&class) {
        return Err(Error::MalformedXml(format!("storage class {class:?}")));
    }
    if matches!(class, "STANDARD_IA" | "ONEZONE_IA") && days.is_some_and(|d| d < 30) {
        return Err(invalid(&format!(
            "'{what}' in {} action must be greater than or equal to 30 for storageClass '{class}'",
            if what == "Days" {
                "Transition"
            } else {
                "NoncurrentVersionTransition"
            }
        )));
    }
    Ok(())
}

impl LifecycleConfiguration {
    /// S3's checks of a configuration: `InvalidArgument`, `InvalidRequest` or
    /// `MalformedXML`, with AWS's messages.
    pub fn check(&self) -> Result<()> {
        if self.rules.is_empty() {
            return Err(Error::MalformedXml("no rules".into()));
        }
        if self.rules.len() > MAX_RULES {
            return Err(Error::InvalidRequest(
                "The number of lifecycle rules must not exceed the allowed limit of 1000 rules."
                    .into(),
            ));
        }
        // A configuration is of the old form (rules' own Prefix) or the new (Filter).
        let legacy = self
            .rules
            .iter()
            .filter(|r| matches!(r.filter, Filter::Legacy(_)))
            .count();
        if legacy != 0 && legacy != self.rules.len() {
            return Err(Error::InvalidRequest(
                "Filter element can only be used in Lifecycle V2.".into(),
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for r in &self.rules {
            if r.id.len() > MAX_ID {
                return Err(invalid("ID length should not exceed allowed limit of 255"));
            }
            if !ids.insert(r.id.as_str()) {
                return Err(invalid(
                    "Rule ID must be unique. Found same ID for more than one rule",
                ));
            }
            r.check()?;
        }
        Ok(())
    }
}

impl Rule {
    fn check(&self) -> Result<()> {
        if self.expiration.is_none()
            && self.noncurrent_expiration.is_none()
            && self.abort_incomplete_days.is_none()
            && self.transitions.is_empty()
            && self.noncurrent_transitions.is_empty()
        {
            return Err(Error::InvalidRequest(
                "At least one action needs to be specified in a rule".into(),
            ));
        }
        if let Filter::And {
            tags,
            size_greater_than,
            size_less_than,
            ..
        } = &self.filter
        {
            if let (Some(gt), Some(lt)) = (size_greater_than, size_less_than)
                && gt >= lt
            {
                return Err(Error::InvalidRequest(
                    "'ObjectSizeLessThan' has to be a value greater than 'ObjectSizeGreaterThan'."
                        .into(),
                ));
            }
            let mut keys = std::collections::BTreeSet::new();
            if !tags.iter().all(|(k, _)| keys.insert(k)) {
                return Err(Error::InvalidRequest(
                    "Duplicate Tag Keys are not allowed.".into(),
                ));
            }
        }
        if let Some(e) = &self.expiration {
            if e.days.is_none() && e.date.is_none() && e.expired_object_delete_marker.is_none() {
                return Err(Error::MalformedXml("empty Expiration".into()));
            }
            if e.expired_object_delete_marker.is_some() && (e.days.is_some() || e.date.is_some()) {
                return Err(Error::MalformedXml(
                    "ExpiredObjectDeleteMarker with Days or Date".into(),
                ));
            }
            if e.days.is_some() && e.date.is_some() {
                return Err(Error::MalformedXml("Expiration with Days and Date".into()));
            }
            positive(
                e.days,
                "'Days' for Expiration action must be a positive integer",
            )?;
            if e.date.is_some_and(|d| !midnight(&d)) {
                return Err(invalid("'Date' must be at midnight GMT"));
            }
            if e.expired_object_delete_marker.is_some() && self.filter.has_tags() {
                return Err(Error::InvalidRequest(
                    "ExpiredObjectDeleteMarker cannot be specified with Tags.".into(),
                ));
            }
        }
        if let Some(n) = &self.noncurrent_expiration {
            if n.noncurrent_days.is_none() && n.newer_noncurrent_versions.is_none() {
                return Err(Error::MalformedXml(
                    "empty NoncurrentVersionExpiration".into(),
                ));
            }
            // NoncurrentDays is required, and positive.
            if n.noncurrent_days.unwrap_or(0) == 0 {
                return Err(invalid(
                    "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
                ));
            }
            if n.newer_noncurrent_versions
                .is_some_and(|v| !(1..=100).contains(&v))
            {
                return Err(invalid(
                    "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a positive integer up to 100",
                ));
            }
        }
        if let Some(d) = self.abort_incomplete_days {
            if d == 0 {
                return Err(invalid(
                    "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
                ));
            }
            if self.filter.has_tags() {
                return Err(Error::InvalidRequest(
                    "AbortIncompleteMultipartUpload cannot be specified with Tags.".into(),
                ));
            }
            if self.filter.needs_object() {
                return Err(Error::InvalidRequest(
                    "AbortIncompleteMultipartUpload cannot be specified with Object Size.".into(),
                ));
            }
        }
        for t in &self.transitions {
            match (t.days, t.date) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(Error::MalformedXml("Transition needs Days or Date".into()));
                }
                _ => {}
            }
            if t.date.is_some_and(|d| !midnight(&d)) {
                return Err(invalid("'Date' must be at midnight GMT"));
            }
            check_class(&t.storage_class, t.days, "Days")?;
        }
        for t in &self.noncurrent_transitions {
            if t.noncurrent_days.is_none() {
                return Err(Error::MalformedXml(
                    "NoncurrentVersionTransition needs NoncurrentDays".into(),
                ));
            }
            check_class(&t.storage_class, t.noncurrent_days, "NoncurrentDays")?;
        }
        Ok(())
    }
}

impl Objects {
    pub async fn get_bucket_lifecycle(
        &self,
        bucket: &str,
    ) -> Result<Option<LifecycleConfiguration>> {
        match self.setting(bucket, LIFECYCLE).await? {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::Internal(format!("stored lifecycle configuration: {e}"))),
            None => Ok(None),
        }
    }

    /// PutBucketLifecycleConfiguration: a rule without an id gets one, as on S3.
    pub async fn put_bucket_lifecycle(
        &self,
        bucket: &str,
        cfg: &LifecycleConfiguration,
    ) -> Result<()> {
        let mut cfg = cfg.clone();
        for r in cfg.rules.iter_mut().filter(|r| r.id.is_empty()) {
            r.id = new_version_id();
        }
        cfg.check()?;
        let json = serde_json::to_string(&cfg).map_err(|e| Error::Internal(e.to_string()))?;
        self.set_setting(bucket, LIFECYCLE, Some(&json)).await
    }

    pub async fn delete_bucket_lifecycle(&self, bucket: &str) -> Result<()> {
        self.set_setting(bucket, LIFECYCLE, None).await
    }

    /// `t` plus `days` lifecycle days. With real days, rounded up to the next midnight
    /// UTC, as S3 does; shortened days (tests) are exact.
    fn after_days(&self, t: OffsetDateTime, days: u32) -> OffsetDateTime {
        let end = crate::bucket::days_after(t, self.config.day, days);
        if self.config.day != Duration::DAY {
            return end;
        }
        let end = end.to_offset(time::UtcOffset::UTC);
        if end.time() == time::Time::MIDNIGHT {
            end
        } else {
            end.replace_time(time::Time::MIDNIGHT)
                .checked_add(Duration::DAY)
                .unwrap_or(end)
        }
    }

    /// When a current object expires by the bucket's rules, and by which rule (the
    /// earliest; S3's `x-amz-expiration`).
    pub async fn expiration_of(
        &self,
        bucket: &str,
        key: &str,
        meta: &coffer_storage::ObjectMeta,
        size: u64,
        last_modified: OffsetDateTime,
    ) -> Result<Option<(OffsetDateTime, String)>> {
        let Some(cfg) = self.get_bucket_lifecycle(bucket).await? else {
            return Ok(None);
        };
        Ok(cfg
            .rules
            .iter()
            .filter(|r| r.enabled && r.filter.matches_object(key, meta, size))
            .filter_map(|r| {
                let e = r.expiration.as_ref()?;
                let at = match (e.days, e.date) {
                    (Some(d), _) => self.after_days(last_modified, d),
                    (None, Some(date)) => date,
                    (None, None) => return None,
                };
                Some((at, r.id.clone()))
            })
            .min_by_key(|(at, _)| *at))
    }

    /// When a rule aborts an upload of `key` begun at `initiated`, and the rule's id (S3's
    /// `x-amz-abort-date` and `x-amz-abort-rule-id`); the earliest if several apply.
    pub async fn abort_date_of(
        &self,
        bucket: &str,
        key: &str,
        initiated: OffsetDateTime,
    ) -> Result<Option<(OffsetDateTime, String)>> {
        let Some(cfg) = self.get_bucket_lifecycle(bucket).await? else {
            return Ok(None);
        };
        Ok(cfg
            .rules
            .iter()
            .filter(|r| r.enabled && r.filter.matches_key(key))
            .filter_map(|r| {
                Some((
                    self.after_days(initiated, r.abort_incomplete_days?),
                    r.id.clone(),
                ))
            })
            .min_by_key(|(at, _)| *at))
    }

    /// [`Objects::expiration_of`] for a version just written; a failure to read the rules
    /// (the write already succeeded) only leaves the header out.
    pub(crate) async fn expiration_of_record(
        &self,
        o: &coffer_storage::ObjectRecord,
    ) -> Option<(OffsetDateTime, String)> {
        self.expiration_of(&o.bucket, &o.key, &o.meta, o.size, o.last_modified)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "reading lifecycle rules for x-amz-expiration");
                None
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
    fn configurations_are_checked_as_s3_checks_them() {
        let ok = LifecycleConfiguration {
            rules: vec![rule("a"), rule("b")],
            ..Default::default()
        };
        assert!(ok.check().is_ok());
        let bad = |f: &dyn Fn(&mut Rule)| {
            let mut r = rule("a");
            f(&mut r);
            LifecycleConfiguration {
                rules: vec![r],
                ..Default::default()
            }
            .check()
            .is_err()
        };
        assert!(bad(&|r| r.expiration = None));
        assert!(bad(&|r| r.expiration = Some(Expiration {
            days: Some(0),
            ..Default::default()
        })));
        assert!(bad(&|r| r.expiration = Some(Expiration {
            days: Some(1),
            expired_object_delete_marker: Some(true),
            ..Default::default()
        })));
        assert!(bad(&|r| r.expiration = Some(Expiration {
            date: Some(OffsetDateTime::UNIX_EPOCH + Duration::hours(1)),
            ..Default::default()
        })));
        assert!(bad(&|r| {
            r.abort_incomplete_days = Some(1);
            r.filter = Filter::Tag("k".into(), "v".into());
        }));
        assert!(bad(&|r| r.transitions = vec![Transition {
            days: Some(10),
            date: None,
            storage_class: "STANDARD_IA".into(),
        }]));
        assert!(bad(&|r| r.transitions = vec![Transition {
            days: Some(10),
            date: None,
            storage_class: "STANDARD".into(),
        }]));
        assert!(bad(&|r| r.noncurrent_expiration =
            Some(NoncurrentExpiration {
                noncurrent_days: None,
                newer_noncurrent_versions: Some(101),
            })));
        let dup = LifecycleConfiguration {
            rules: vec![rule("a"), rule("a")],
            ..Default::default()
        };
        assert!(dup.check().is_err());
        assert!(LifecycleConfiguration::default().check().is_err());
    }

    #[test]
    fn filters_match_prefix_tags_and_sizes() {
        let mut meta = coffer_storage::ObjectMeta::default();
        meta.tags.insert("class".into(), "tmp".into());
        let f = Filter::And {
            prefix: Some("logs/".into()),
            tags: vec![("class".into(), "tmp".into())],
            size_greater_than: Some(10),
            size_less_than: Some(100),
        };
        assert!(f.matches_object("logs/a", &meta, 50));
        assert!(!f.matches_object("logs/a", &meta, 5));
        assert!(!f.matches_object("data/a", &meta, 50));
        assert!(!f.matches_object("logs/a", &coffer_storage::ObjectMeta::default(), 50));
        assert!(!f.matches_key("logs/a"), "markers and uploads have no tags");
        assert!(Filter::Prefix("logs/".into()).matches_key("logs/a"));
        assert!(Filter::All.matches_key("anything"));
    }

    #[test]
    fn real_days_round_up_to_midnight_utc() {
        let o = Objects::new(
            Arc::new(coffer_storage::memory::MemoryMeta::default()),
            Arc::new(coffer_storage::memory::MemoryBlobs::default()),
            crate::Config::default(),
        );
        let t = time::macros::datetime!(2026-01-15 10:30 UTC);
        assert_eq!(
            o.after_days(t, 3),
            time::macros::datetime!(2026-01-19 0:00 UTC)
        );
        let m = time::macros::datetime!(2026-01-15 0:00 UTC);
        assert_eq!(
            o.after_days(m, 1),
            time::macros::datetime!(2026-01-16 0:00 UTC)
        );
    }
}
