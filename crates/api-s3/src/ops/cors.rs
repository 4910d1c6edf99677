//! PutBucketCors, GetBucketCors, DeleteBucketCors: the bucket's CORS rules between S3's XML
//! and the domain's [`CorsConfiguration`]. The rules are applied to browsers' requests in
//! `crate::cors`.

use s3s::dto::*;
use s3s::{S3Request, S3Response, s3_error};

use coffer_objects::{CorsConfiguration, CorsRule};

use super::R;
use crate::S3Api;
use crate::error::to_s3_error;

pub async fn put(api: &S3Api, req: S3Request<PutBucketCorsInput>) -> R<PutBucketCorsOutput> {
    super::lock::integrity_required(&req.headers)?;
    let i = req.input;
    let cfg = CorsConfiguration {
        rules: i
            .cors_configuration
            .cors_rules
            .into_iter()
            .map(|r| CorsRule {
                id: r.id,
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers.unwrap_or_default(),
                expose_headers: r.expose_headers.unwrap_or_default(),
                max_age_seconds: r.max_age_seconds,
            })
            .collect(),
    };
    api.objects
        .put_bucket_cors(&i.bucket, &cfg)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutBucketCorsOutput::default()))
}

pub async fn get(api: &S3Api, req: S3Request<GetBucketCorsInput>) -> R<GetBucketCorsOutput> {
    let Some(cfg) = api
        .objects
        .get_bucket_cors(&req.input.bucket)
        .await
        .map_err(to_s3_error)?
    else {
        let mut e = s3_error!(
            NoSuchCORSConfiguration,
            "The CORS configuration does not exist"
        );
        e.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(e);
    };
    let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
    Ok(S3Response::new(GetBucketCorsOutput {
        cors_rules: Some(
            cfg.rules
                .into_iter()
                .map(|r| CORSRule {
                    id: r.id,
                    allowed_origins: r.allowed_origins,
                    allowed_methods: r.allowed_methods,
                    allowed_headers: some(r.allowed_headers),
                    expose_headers: some(r.expose_headers),
                    max_age_seconds: r.max_age_seconds,
                })
                .collect(),
        ),
    }))
}

pub async fn delete(
    api: &S3Api,
    req: S3Request<DeleteBucketCorsInput>,
) -> R<DeleteBucketCorsOutput> {
    api.objects
        .delete_bucket_cors(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(DeleteBucketCorsOutput::default()))
}
