//! Bucket operations.

use s3s::dto::*;
use s3s::{S3Request, S3Response, s3_error};

use coffer_objects::Versioning;

use super::{R, owner, principal};
use crate::S3Api;
use crate::convert::timestamp;
use crate::error::to_s3_error;

pub async fn create(api: &S3Api, req: S3Request<CreateBucketInput>) -> R<CreateBucketOutput> {
    let p = principal(&req)?;
    let location = req
        .input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .map(|l| l.as_str().to_owned());
    let i = &req.input;
    let ownership = super::acl::ownership_header(i.object_ownership.as_ref())?;
    let acl = super::acl::create_bucket_acl(api, i, &p.account.canonical_id, ownership)?;
    let b = api
        .objects
        .create_bucket(
            &p.account.id,
            &i.bucket,
            location.as_deref(),
            i.object_lock_enabled_for_bucket.unwrap_or(false),
            ownership,
            acl.as_ref(),
        )
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", b.name)),
    }))
}

pub async fn head(api: &S3Api, req: S3Request<HeadBucketInput>) -> R<HeadBucketOutput> {
    let b = api
        .objects
        .bucket(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(b.region),
        ..HeadBucketOutput::default()
    }))
}

pub async fn delete(api: &S3Api, req: S3Request<DeleteBucketInput>) -> R<DeleteBucketOutput> {
    api.objects
        .delete_bucket(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(DeleteBucketOutput::default()))
}

pub async fn list(api: &S3Api, req: S3Request<ListBucketsInput>) -> R<ListBucketsOutput> {
    let p = principal(&req)?;
    let mut all = api
        .objects
        .list_buckets(&p.account.id)
        .await
        .map_err(to_s3_error)?;
    if let Some(prefix) = &req.input.prefix {
        all.retain(|b| b.name.starts_with(prefix.as_str()));
    }
    if let Some(after) = &req.input.continuation_token {
        all.retain(|b| b.name.as_str() > after.as_str());
    }
    let max = req
        .input
        .max_buckets
        .and_then(|m| usize::try_from(m).ok())
        .filter(|m| (1..=10_000).contains(m))
        .unwrap_or(10_000);
    let next = (all.len() > max).then(|| all[max - 1].name.clone());
    all.truncate(max);
    let buckets = all
        .into_iter()
        .map(|b| Bucket {
            bucket_region: Some(b.region),
            creation_date: Some(timestamp(b.created)),
            name: Some(b.name),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        continuation_token: next,
        owner: Some(owner(p)),
        prefix: req.input.prefix,
    }))
}

pub async fn location(
    api: &S3Api,
    req: S3Request<GetBucketLocationInput>,
) -> R<GetBucketLocationOutput> {
    let b = api
        .objects
        .bucket(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    // us-east-1 is reported as an empty LocationConstraint, as AWS does.
    let location_constraint =
        (b.region != "us-east-1").then(|| BucketLocationConstraint::from(b.region));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint,
    }))
}

pub async fn versioning(
    api: &S3Api,
    req: S3Request<GetBucketVersioningInput>,
) -> R<GetBucketVersioningOutput> {
    let b = api
        .objects
        .bucket(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    // A bucket that was never versioned answers with no Status, as on AWS.
    let status = match b.versioning {
        Versioning::Unversioned => None,
        v => Some(BucketVersioningStatus::from(v.as_str().to_owned())),
    };
    Ok(S3Response::new(GetBucketVersioningOutput {
        status,
        ..GetBucketVersioningOutput::default()
    }))
}

pub async fn put_versioning(
    api: &S3Api,
    req: S3Request<PutBucketVersioningInput>,
) -> R<PutBucketVersioningOutput> {
    let i = req.input;
    let c = i.versioning_configuration;
    if c.mfa_delete
        .as_ref()
        .is_some_and(|m| m.as_str() == "Enabled")
    {
        // MFA delete needs MFA devices, which this server does not have.
        return Err(s3_error!(
            NotImplemented,
            "MFA Delete is not supported by this server: it has no MFA devices."
        ));
    }
    let malformed = || {
        s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        )
    };
    let status = c.status.ok_or_else(malformed)?;
    let versioning = match Versioning::parse(status.as_str()) {
        Some(v @ (Versioning::Enabled | Versioning::Suspended)) => v,
        _ => return Err(malformed()),
    };
    api.objects
        .put_bucket_versioning(&i.bucket, versioning)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutBucketVersioningOutput::default()))
}

pub async fn delete_encryption(
    api: &S3Api,
    req: S3Request<DeleteBucketEncryptionInput>,
) -> R<DeleteBucketEncryptionOutput> {
    api.objects
        .delete_bucket_encryption(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::with_status(
        DeleteBucketEncryptionOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

pub async fn put_tagging(
    api: &S3Api,
    req: S3Request<PutBucketTaggingInput>,
) -> R<PutBucketTaggingOutput> {
    super::lock::integrity_required(&req.headers)?;
    let i = req.input;
    let mut tags = Vec::with_capacity(i.tagging.tag_set.len());
    for t in i.tagging.tag_set {
        match (t.key, t.value) {
            (Some(k), Some(v)) => tags.push((k, v)),
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema"
                ));
            }
        }
    }
    api.objects
        .put_bucket_tagging(&i.bucket, &tags)
        .await
        .map_err(to_s3_error)?;
    // AWS answers 204; s3s writes 200 for this operation.
    let mut resp = S3Response::new(PutBucketTaggingOutput::default());
    resp.extensions
        .insert(crate::front::Status(http::StatusCode::NO_CONTENT));
    Ok(resp)
}

pub async fn get_tagging(
    api: &S3Api,
    req: S3Request<GetBucketTaggingInput>,
) -> R<GetBucketTaggingOutput> {
    let Some(tags) = api
        .objects
        .get_bucket_tagging(&req.input.bucket)
        .await
        .map_err(to_s3_error)?
    else {
        let mut e = s3_error!(NoSuchTagSet, "The TagSet does not exist");
        e.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(e);
    };
    Ok(S3Response::new(GetBucketTaggingOutput {
        tag_set: tags
            .into_iter()
            .map(|(key, value)| Tag {
                key: Some(key),
                value: Some(value),
            })
            .collect(),
    }))
}

pub async fn delete_tagging(
    api: &S3Api,
    req: S3Request<DeleteBucketTaggingInput>,
) -> R<DeleteBucketTaggingOutput> {
    api.objects
        .delete_bucket_tagging(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
}
