//! Bucket operations.

use s3s::dto::*;
use s3s::{S3Request, S3Response};

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
    let b = api
        .objects
        .create_bucket(&p.account.id, &req.input.bucket, location.as_deref())
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
    api.objects
        .bucket(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    // Versioning is not enabled on any bucket yet: AWS answers with no Status.
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
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
