//! PutBucketLogging and GetBucketLogging: a bucket's server access logging between S3's
//! XML and the domain's [`LoggingConfiguration`]. The records are written by
//! `crate::access_log`.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, s3_error};

use coffer_objects::{DateSource, KeyFormat, LoggingConfiguration};

use super::R;
use crate::S3Api;
use crate::error::to_s3_error;

pub async fn put(api: &S3Api, req: S3Request<PutBucketLoggingInput>) -> R<PutBucketLoggingOutput> {
    let i = req.input;
    let Some(e) = i.bucket_logging_status.logging_enabled else {
        api.objects
            .put_bucket_logging(&i.bucket, None)
            .await
            .map_err(to_s3_error)?;
        return Ok(S3Response::new(PutBucketLoggingOutput::default()));
    };
    let key_format = match e.target_object_key_format {
        None => KeyFormat::Simple,
        Some(f) => match (f.simple_prefix, f.partitioned_prefix) {
            (Some(_), None) => KeyFormat::Simple,
            (None, Some(p)) => {
                KeyFormat::Partitioned(match p.partition_date_source.as_ref().map(|s| s.as_str()) {
                    None | Some("EventTime") => DateSource::EventTime,
                    Some("DeliveryTime") => DateSource::DeliveryTime,
                    Some(_) => return Err(malformed()),
                })
            }
            _ => return Err(malformed()),
        },
    };
    // Grants on the log objects are an ACL: a target whose ownership is enforced refuses
    // them, as on AWS. Elsewhere the objects get the target's owner's full control only.
    if e.target_grants.as_ref().is_some_and(|g| !g.is_empty())
        && !api
            .objects
            .acls_enabled(&e.target_bucket)
            .await
            .unwrap_or(true)
    {
        let mut err = S3Error::with_message(
            S3ErrorCode::Custom("AccessControlListNotSupported".into()),
            "Target grants not allowed for bucket owner enforced buckets",
        );
        err.set_status_code(http::StatusCode::BAD_REQUEST);
        return Err(err);
    }
    let cfg = LoggingConfiguration {
        target_bucket: e.target_bucket,
        target_prefix: e.target_prefix,
        key_format,
    };
    api.objects
        .put_bucket_logging(&i.bucket, Some(&cfg))
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutBucketLoggingOutput::default()))
}

fn malformed() -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

pub async fn get(api: &S3Api, req: S3Request<GetBucketLoggingInput>) -> R<GetBucketLoggingOutput> {
    let cfg = api
        .objects
        .get_bucket_logging(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(GetBucketLoggingOutput {
        logging_enabled: cfg.map(|c| LoggingEnabled {
            target_bucket: c.target_bucket,
            target_prefix: c.target_prefix,
            target_grants: None,
            target_object_key_format: Some(match c.key_format {
                KeyFormat::Simple => TargetObjectKeyFormat {
                    simple_prefix: Some(SimplePrefix {}),
                    partitioned_prefix: None,
                },
                KeyFormat::Partitioned(source) => TargetObjectKeyFormat {
                    simple_prefix: None,
                    partitioned_prefix: Some(PartitionedPrefix {
                        partition_date_source: Some(PartitionDateSource::from_static(
                            match source {
                                DateSource::EventTime => PartitionDateSource::EVENT_TIME,
                                DateSource::DeliveryTime => PartitionDateSource::DELIVERY_TIME,
                            },
                        )),
                    }),
                },
            }),
        }),
    }))
}
