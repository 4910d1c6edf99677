//! Object Lock: the bucket's lock configuration, retention and legal hold of a version,
//! and the `x-amz-object-lock-*` headers of writes and reads. S3's checks of the request's
//! shape live here; what a lock permits is the store's rule (see `coffer_objects::lock`).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use time::OffsetDateTime;

use coffer_objects::{
    DefaultRetention as DomainDefault, LockChange, LockConfiguration, LockMode, LockRequest,
    Period, Retention,
};

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

fn invalid_argument(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.to_owned())
}

/// S3 requires an integrity check on these configuration writes: `Content-MD5` or an
/// `x-amz-checksum-*` header (the SDKs send one by themselves).
pub(super) fn integrity_required(headers: &http::HeaderMap) -> S3Result<()> {
    let has = headers.contains_key("content-md5")
        || headers.contains_key("x-amz-sdk-checksum-algorithm")
        || headers
            .keys()
            .any(|k| k.as_str().starts_with("x-amz-checksum-"));
    if has {
        Ok(())
    } else {
        Err(s3_error!(
            InvalidRequest,
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"
        ))
    }
}

/// The Object Lock a write asks for with `x-amz-object-lock-mode`,
/// `x-amz-object-lock-retain-until-date` (both or neither) and
/// `x-amz-object-lock-legal-hold` (`ON` or `OFF`), checked as S3 checks them.
pub fn lock_request(
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    legal_hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<LockRequest> {
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid_argument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
        (Some(m), Some(t)) => {
            let mode = LockMode::parse(m.as_str())
                .ok_or_else(|| invalid_argument("Unknown wormMode directive."))?;
            Some(Retention {
                mode,
                until: OffsetDateTime::from(t.clone()),
            })
        }
    };
    let legal_hold = legal_hold
        .map(|s| {
            legal_hold_status(s.as_str())
                .ok_or_else(|| invalid_argument("Legal Hold must be either of 'ON' or 'OFF'"))
        })
        .transpose()?;
    Ok(LockRequest {
        retention,
        legal_hold,
    })
}

fn legal_hold_status(s: &str) -> Option<bool> {
    match s {
        "ON" => Some(true),
        "OFF" => Some(false),
        _ => None,
    }
}

fn hold_status(on: bool) -> ObjectLockLegalHoldStatus {
    ObjectLockLegalHoldStatus::from(if on { "ON" } else { "OFF" }.to_owned())
}

/// The lock headers GET and HEAD show of a version.
pub fn describe(
    meta: &coffer_objects::ObjectMeta,
) -> (
    Option<ObjectLockMode>,
    Option<Timestamp>,
    Option<ObjectLockLegalHoldStatus>,
) {
    (
        meta.retention
            .map(|r| ObjectLockMode::from(r.mode.as_str().to_owned())),
        meta.retention.map(|r| timestamp(r.until)),
        meta.legal_hold.map(hold_status),
    )
}

/// `ObjectLockConfiguration`: `ObjectLockEnabled` must say `Enabled`; a `Rule` holds a
/// `DefaultRetention` with a `Mode` and exactly one of `Days` and `Years`.
fn configuration(c: Option<ObjectLockConfiguration>) -> S3Result<LockConfiguration> {
    let c = c.ok_or_else(malformed)?;
    if c.object_lock_enabled.as_ref().map(|e| e.as_str()) != Some("Enabled") {
        return Err(malformed());
    }
    let Some(rule) = c.rule else {
        return Ok(LockConfiguration::default());
    };
    let d = rule.default_retention.ok_or_else(malformed)?;
    let mode = d
        .mode
        .as_ref()
        .and_then(|m| LockMode::parse(m.as_str()))
        .ok_or_else(malformed)?;
    let positive = |n: i32| {
        u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            invalid_argument("Default retention period must be a positive integer value.")
        })
    };
    let period = match (d.days, d.years) {
        (Some(days), None) => Period::Days(positive(days)?),
        (None, Some(years)) => Period::Years(positive(years)?),
        _ => return Err(malformed()),
    };
    Ok(LockConfiguration {
        default_retention: Some(DomainDefault { mode, period }),
    })
}

pub async fn put_configuration(
    api: &S3Api,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> R<PutObjectLockConfigurationOutput> {
    integrity_required(&req.headers)?;
    let i = req.input;
    let cfg = configuration(i.object_lock_configuration)?;
    api.objects
        .put_object_lock_configuration(&i.bucket, &cfg)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub async fn get_configuration(
    api: &S3Api,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> R<GetObjectLockConfigurationOutput> {
    let Some(cfg) = api
        .objects
        .get_object_lock_configuration(&req.input.bucket)
        .await
        .map_err(to_s3_error)?
    else {
        let mut e = s3_error!(
            ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket"
        );
        e.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(e);
    };
    let rule = cfg.default_retention.map(|d| {
        let (days, years) = match d.period {
            Period::Days(n) => (Some(i32::try_from(n).unwrap_or(i32::MAX)), None),
            Period::Years(n) => (None, Some(i32::try_from(n).unwrap_or(i32::MAX))),
        };
        ObjectLockRule {
            default_retention: Some(DefaultRetention {
                mode: Some(ObjectLockRetentionMode::from(d.mode.as_str().to_owned())),
                days,
                years,
            }),
        }
    });
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from("Enabled".to_owned())),
            rule,
        }),
    }))
}

pub async fn put_retention(
    api: &S3Api,
    req: S3Request<PutObjectRetentionInput>,
) -> R<PutObjectRetentionOutput> {
    integrity_required(&req.headers)?;
    let i = req.input;
    // An empty `Retention` removes it (with the bypass, for GOVERNANCE).
    let retention = match i.retention {
        None
        | Some(ObjectLockRetention {
            mode: None,
            retain_until_date: None,
        }) => None,
        Some(ObjectLockRetention {
            mode: Some(m),
            retain_until_date: Some(t),
        }) => Some(Retention {
            mode: LockMode::parse(m.as_str()).ok_or_else(malformed)?,
            until: OffsetDateTime::from(t),
        }),
        Some(_) => return Err(malformed()),
    };
    api.objects
        .change_object_lock(
            &i.bucket,
            &i.key,
            i.version_id.as_deref(),
            LockChange::Retention(retention),
            i.bypass_governance_retention.unwrap_or(false),
        )
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub async fn get_retention(
    api: &S3Api,
    req: S3Request<GetObjectRetentionInput>,
) -> R<GetObjectRetentionOutput> {
    let i = req.input;
    let r = api
        .objects
        .get_object_retention(&i.bucket, &i.key, i.version_id.as_deref())
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from(r.mode.as_str().to_owned())),
            retain_until_date: Some(timestamp(r.until)),
        }),
    }))
}

pub async fn put_legal_hold(
    api: &S3Api,
    req: S3Request<PutObjectLegalHoldInput>,
) -> R<PutObjectLegalHoldOutput> {
    integrity_required(&req.headers)?;
    let i = req.input;
    let on = i
        .legal_hold
        .and_then(|h| h.status)
        .and_then(|s| legal_hold_status(s.as_str()))
        .ok_or_else(malformed)?;
    api.objects
        .change_object_lock(
            &i.bucket,
            &i.key,
            i.version_id.as_deref(),
            LockChange::LegalHold(on),
            false,
        )
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub async fn get_legal_hold(
    api: &S3Api,
    req: S3Request<GetObjectLegalHoldInput>,
) -> R<GetObjectLegalHoldOutput> {
    let i = req.input;
    let on = api
        .objects
        .get_object_legal_hold(&i.bucket, &i.key, i.version_id.as_deref())
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(hold_status(on)),
        }),
    }))
}

/// `x-amz-bypass-governance-retention` on a delete: S3 refuses it outright in a bucket
/// without Object Lock. (That the caller holds `s3:BypassGovernanceRetention` was checked
/// with the request's access.)
pub async fn bypass(api: &S3Api, bucket: &str, header: Option<bool>) -> S3Result<bool> {
    let Some(asked) = header else {
        return Ok(false);
    };
    let locked = api
        .objects
        .get_object_lock_configuration(bucket)
        .await
        .map_err(to_s3_error)?
        .is_some();
    if !locked {
        return Err(invalid_argument(
            "x-amz-bypass-governance-retention is only applicable to Object Lock enabled buckets.",
        ));
    }
    Ok(asked)
}
