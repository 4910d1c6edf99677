//! Bucket lifecycle configuration (Put/Get/DeleteBucketLifecycleConfiguration) and the
//! `x-amz-expiration` header: S3's XML shapes to and from the domain's rules, which check
//! themselves (`coffer_objects::lifecycle`).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use time::OffsetDateTime;

use coffer_objects::lifecycle as lc;

use super::R;
use crate::S3Api;
use crate::convert::timestamp;
use crate::error::to_s3_error;

fn malformed() -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

/// A count S3 requires to be positive: negative ones are refused here, zero by the
/// domain's checks (with the action's own message).
fn count(n: Option<i32>, message: &str) -> S3Result<Option<u32>> {
    n.map(|n| {
        u32::try_from(n)
            .map_err(|_| S3Error::with_message(S3ErrorCode::InvalidArgument, message.to_owned()))
    })
    .transpose()
}

fn size(n: Option<i64>) -> S3Result<Option<u64>> {
    n.map(|n| {
        u64::try_from(n).map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "'ObjectSize' must be a non-negative integer".to_owned(),
            )
        })
    })
    .transpose()
}

fn tag(t: Tag) -> S3Result<(String, String)> {
    match (t.key, t.value) {
        (Some(k), Some(v)) => Ok((k, v)),
        _ => Err(malformed()),
    }
}

fn filter(rule_prefix: Option<String>, f: Option<LifecycleRuleFilter>) -> S3Result<lc::Filter> {
    let f = match (rule_prefix, f) {
        (Some(_), Some(_)) => return Err(malformed()),
        (Some(p), None) => return Ok(lc::Filter::Legacy(p)),
        (None, None) => return Err(malformed()),
        (None, Some(f)) => f,
    };
    let given = usize::from(f.prefix.is_some())
        + usize::from(f.tag.is_some())
        + usize::from(f.object_size_greater_than.is_some())
        + usize::from(f.object_size_less_than.is_some())
        + usize::from(f.and.is_some());
    if given > 1 {
        return Err(malformed());
    }
    Ok(if let Some(p) = f.prefix {
        lc::Filter::Prefix(p)
    } else if let Some(t) = f.tag {
        let (k, v) = tag(t)?;
        lc::Filter::Tag(k, v)
    } else if let Some(n) = size(f.object_size_greater_than)? {
        lc::Filter::SizeGreaterThan(n)
    } else if let Some(n) = size(f.object_size_less_than)? {
        lc::Filter::SizeLessThan(n)
    } else if let Some(a) = f.and {
        lc::Filter::And {
            prefix: a.prefix,
            tags: a
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(tag)
                .collect::<S3Result<_>>()?,
            size_greater_than: size(a.object_size_greater_than)?,
            size_less_than: size(a.object_size_less_than)?,
        }
    } else {
        lc::Filter::All
    })
}

fn date(d: Option<Timestamp>) -> Option<OffsetDateTime> {
    d.map(OffsetDateTime::from)
}

fn rule(r: LifecycleRule) -> S3Result<lc::Rule> {
    let enabled = match r.status.as_str() {
        "Enabled" => true,
        "Disabled" => false,
        _ => return Err(malformed()),
    };
    let expiration = match r.expiration {
        None => None,
        Some(e) => Some(lc::Expiration {
            days: count(
                e.days,
                "'Days' for Expiration action must be a positive integer",
            )?,
            date: date(e.date),
            expired_object_delete_marker: e.expired_object_delete_marker,
        }),
    };
    let noncurrent_expiration = match r.noncurrent_version_expiration {
        None => None,
        Some(n) => Some(lc::NoncurrentExpiration {
            noncurrent_days: count(
                n.noncurrent_days,
                "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
            )?,
            newer_noncurrent_versions: count(
                n.newer_noncurrent_versions,
                "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a positive integer up to 100",
            )?,
        }),
    };
    let abort_incomplete_days = match r.abort_incomplete_multipart_upload {
        None => None,
        Some(a) => Some(
            count(
                a.days_after_initiation,
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
            )?
            .ok_or_else(malformed)?,
        ),
    };
    let transitions = r
        .transitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            Ok(lc::Transition {
                days: count(t.days, "'Days' in Transition action must be nonnegative")?,
                date: date(t.date),
                storage_class: t.storage_class.ok_or_else(malformed)?.as_str().to_owned(),
            })
        })
        .collect::<S3Result<_>>()?;
    let noncurrent_transitions = r
        .noncurrent_version_transitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            Ok(lc::NoncurrentTransition {
                noncurrent_days: count(
                    t.noncurrent_days,
                    "'NoncurrentDays' in NoncurrentVersionTransition action must be nonnegative",
                )?,
                newer_noncurrent_versions: count(
                    t.newer_noncurrent_versions,
                    "'NewerNoncurrentVersions' in NoncurrentVersionTransition action must be a positive integer up to 100",
                )?,
                storage_class: t.storage_class.ok_or_else(malformed)?.as_str().to_owned(),
            })
        })
        .collect::<S3Result<_>>()?;
    Ok(lc::Rule {
        id: r.id.unwrap_or_default(),
        enabled,
        filter: filter(r.prefix, r.filter)?,
        expiration,
        noncurrent_expiration,
        abort_incomplete_days,
        transitions,
        noncurrent_transitions,
    })
}

fn i32_of(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn s3_tag((key, value): &(String, String)) -> Tag {
    Tag {
        key: Some(key.clone()),
        value: Some(value.clone()),
    }
}

/// A rule as S3 shows it back: the shape it was written in.
fn wire_rule(r: &lc::Rule) -> LifecycleRule {
    let (prefix, filter) = match &r.filter {
        lc::Filter::Legacy(p) => (Some(p.clone()), None),
        lc::Filter::All => (None, Some(LifecycleRuleFilter::default())),
        lc::Filter::Prefix(p) => (
            None,
            Some(LifecycleRuleFilter {
                prefix: Some(p.clone()),
                ..LifecycleRuleFilter::default()
            }),
        ),
        lc::Filter::Tag(k, v) => (
            None,
            Some(LifecycleRuleFilter {
                tag: Some(s3_tag(&(k.clone(), v.clone()))),
                ..LifecycleRuleFilter::default()
            }),
        ),
        lc::Filter::SizeGreaterThan(n) => (
            None,
            Some(LifecycleRuleFilter {
                object_size_greater_than: Some(i64_of(*n)),
                ..LifecycleRuleFilter::default()
            }),
        ),
        lc::Filter::SizeLessThan(n) => (
            None,
            Some(LifecycleRuleFilter {
                object_size_less_than: Some(i64_of(*n)),
                ..LifecycleRuleFilter::default()
            }),
        ),
        lc::Filter::And {
            prefix,
            tags,
            size_greater_than,
            size_less_than,
        } => (
            None,
            Some(LifecycleRuleFilter {
                and: Some(LifecycleRuleAndOperator {
                    prefix: prefix.clone(),
                    tags: (!tags.is_empty()).then(|| tags.iter().map(s3_tag).collect()),
                    object_size_greater_than: size_greater_than.map(i64_of),
                    object_size_less_than: size_less_than.map(i64_of),
                }),
                ..LifecycleRuleFilter::default()
            }),
        ),
    };
    LifecycleRule {
        id: Some(r.id.clone()),
        status: ExpirationStatus::from(if r.enabled { "Enabled" } else { "Disabled" }.to_owned()),
        prefix,
        filter,
        expiration: r.expiration.as_ref().map(|e| LifecycleExpiration {
            days: e.days.map(i32_of),
            date: e.date.map(timestamp),
            expired_object_delete_marker: e.expired_object_delete_marker,
        }),
        noncurrent_version_expiration: r.noncurrent_expiration.as_ref().map(|n| {
            NoncurrentVersionExpiration {
                noncurrent_days: n.noncurrent_days.map(i32_of),
                newer_noncurrent_versions: n.newer_noncurrent_versions.map(i32_of),
            }
        }),
        abort_incomplete_multipart_upload: r.abort_incomplete_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: Some(i32_of(d)),
            }
        }),
        transitions: (!r.transitions.is_empty()).then(|| {
            r.transitions
                .iter()
                .map(|t| Transition {
                    days: t.days.map(i32_of),
                    date: t.date.map(timestamp),
                    storage_class: Some(TransitionStorageClass::from(t.storage_class.clone())),
                })
                .collect()
        }),
        noncurrent_version_transitions: (!r.noncurrent_transitions.is_empty()).then(|| {
            r.noncurrent_transitions
                .iter()
                .map(|t| NoncurrentVersionTransition {
                    noncurrent_days: t.noncurrent_days.map(i32_of),
                    newer_noncurrent_versions: t.newer_noncurrent_versions.map(i32_of),
                    storage_class: Some(TransitionStorageClass::from(t.storage_class.clone())),
                })
                .collect()
        }),
    }
}

/// S3's default since September 2024: objects under 128 KiB are not transitioned.
const ALL_CLASSES_128K: &str = "all_storage_classes_128K";
/// ... except to the archive classes.
const VARIES_BY_CLASS: &str = "varies_by_storage_class";

fn minimum_size(small_objects_to_archive: bool) -> TransitionDefaultMinimumObjectSize {
    TransitionDefaultMinimumObjectSize::from(
        if small_objects_to_archive {
            VARIES_BY_CLASS
        } else {
            ALL_CLASSES_128K
        }
        .to_owned(),
    )
}

pub async fn put(
    api: &S3Api,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> R<PutBucketLifecycleConfigurationOutput> {
    super::lock::integrity_required(&req.headers)?;
    let i = req.input;
    let cfg = i.lifecycle_configuration.ok_or_else(malformed)?;
    let rules = cfg
        .rules
        .into_iter()
        .map(rule)
        .collect::<S3Result<Vec<_>>>()?;
    let small_objects_to_archive = match i
        .transition_default_minimum_object_size
        .as_ref()
        .map(|m| m.as_str())
    {
        None | Some(ALL_CLASSES_128K) => false,
        Some(VARIES_BY_CLASS) => true,
        Some(other) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("Invalid TransitionDefaultMinimumObjectSize found: {other}"),
            ));
        }
    };
    api.objects
        .put_bucket_lifecycle(
            &i.bucket,
            &lc::LifecycleConfiguration {
                rules,
                small_objects_to_archive,
            },
        )
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutBucketLifecycleConfigurationOutput {
        transition_default_minimum_object_size: Some(minimum_size(small_objects_to_archive)),
    }))
}

pub async fn get(
    api: &S3Api,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> R<GetBucketLifecycleConfigurationOutput> {
    let Some(cfg) = api
        .objects
        .get_bucket_lifecycle(&req.input.bucket)
        .await
        .map_err(to_s3_error)?
    else {
        let mut e = s3_error!(
            NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist"
        );
        e.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(e);
    };
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(cfg.rules.iter().map(wire_rule).collect()),
        transition_default_minimum_object_size: Some(minimum_size(cfg.small_objects_to_archive)),
    }))
}

pub async fn delete(
    api: &S3Api,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> R<DeleteBucketLifecycleOutput> {
    api.objects
        .delete_bucket_lifecycle(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::with_status(
        DeleteBucketLifecycleOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

/// `x-amz-expiration`: `expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="..."`.
pub fn expiration_header(e: Option<&(OffsetDateTime, String)>) -> Option<String> {
    let (at, rule) = e?;
    let date = crate::convert::http_date(&timestamp(*at))?;
    Some(format!(
        "expiry-date=\"{date}\", rule-id=\"{}\"",
        rule.replace('"', "\\\"")
    ))
}

/// `x-amz-expiration` of an object read without a version id (S3 sends none for a read
/// that names a version).
pub async fn read_expiration(
    api: &S3Api,
    bucket: &str,
    version_id: Option<&str>,
    object: &coffer_objects::ObjectRecord,
) -> S3Result<Option<String>> {
    if version_id.is_some() {
        return Ok(None);
    }
    let at = api
        .objects
        .expiration_of(
            bucket,
            &object.key,
            &object.meta,
            object.size,
            object.last_modified,
        )
        .await
        .map_err(to_s3_error)?;
    Ok(expiration_header(at.as_ref()))
}
