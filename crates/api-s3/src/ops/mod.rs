//! The S3 operations Coffer serves: one `match`-like table (the trait impl below) that
//! hands each operation to the function that implements it. Operations not listed answer
//! `NotImplemented`, as s3s's default.

pub(crate) mod acl;
mod archive;
mod bucket;
mod cors;
mod lifecycle;
mod list;
mod lock;
mod logging;
pub(crate) mod multipart;
mod object;
pub(crate) mod policy;
mod sse;

use coffer_iam::Principal;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use crate::S3Api;

/// The principal the access check attached to the request.
/// What the access step resolved for the request (every operation passes it first).
fn resolved<T>(req: &S3Request<T>) -> S3Result<&crate::access::Resolved> {
    req.extensions
        .get::<crate::access::Resolved>()
        .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))
}

fn principal<T>(req: &S3Request<T>) -> S3Result<&Principal> {
    resolved(req).map(|r| &r.principal)
}

/// The KMS caller of the request's key uses ([`crate::access::Resolved::caller`]).
pub(crate) fn caller<T>(req: &S3Request<T>) -> S3Result<coffer_objects::Caller> {
    resolved(req).map(|r| r.caller.clone())
}

fn owner(p: &Principal) -> Owner {
    Owner {
        display_name: Some(p.account.name.clone()),
        id: Some(p.account.canonical_id.clone()),
    }
}

type R<T> = S3Result<S3Response<T>>;

#[async_trait::async_trait]
impl S3 for S3Api {
    // --- buckets ---
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> R<CreateBucketOutput> {
        bucket::create(self, req).await
    }
    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> R<HeadBucketOutput> {
        bucket::head(self, req).await
    }
    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> R<DeleteBucketOutput> {
        bucket::delete(self, req).await
    }
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> R<ListBucketsOutput> {
        bucket::list(self, req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> R<GetBucketLocationOutput> {
        bucket::location(self, req).await
    }
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> R<GetBucketVersioningOutput> {
        bucket::versioning(self, req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> R<PutBucketVersioningOutput> {
        bucket::put_versioning(self, req).await
    }

    // PutBucketEncryption and GetBucketEncryption are served by `crate::route` (s3s's
    // model lacks BlockedEncryptionTypes).
    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> R<DeleteBucketEncryptionOutput> {
        bucket::delete_encryption(self, req).await
    }

    // --- bucket policy and public access block ---
    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> R<PutBucketPolicyOutput> {
        policy::put(self, req).await
    }
    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> R<GetBucketPolicyOutput> {
        policy::get(self, req).await
    }
    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> R<DeleteBucketPolicyOutput> {
        policy::delete(self, req).await
    }
    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> R<GetBucketPolicyStatusOutput> {
        policy::status(self, req).await
    }
    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> R<PutPublicAccessBlockOutput> {
        policy::put_public_access_block(self, req).await
    }
    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> R<GetPublicAccessBlockOutput> {
        policy::get_public_access_block(self, req).await
    }
    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> R<DeletePublicAccessBlockOutput> {
        policy::delete_public_access_block(self, req).await
    }

    // --- objects ---
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> R<PutObjectOutput> {
        object::put(self, req).await
    }
    async fn post_object(&self, req: S3Request<PostObjectInput>) -> R<PostObjectOutput> {
        object::post(self, req).await
    }
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> R<GetObjectOutput> {
        object::get(self, req).await
    }
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> R<HeadObjectOutput> {
        object::head(self, req).await
    }
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> R<DeleteObjectOutput> {
        object::delete(self, req).await
    }
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> R<DeleteObjectsOutput> {
        object::delete_many(self, req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> R<CopyObjectOutput> {
        object::copy(self, req).await
    }
    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> R<GetObjectAttributesOutput> {
        object::attributes(self, req).await
    }
    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> R<GetObjectTaggingOutput> {
        object::get_tags(self, req).await
    }
    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> R<PutObjectTaggingOutput> {
        object::put_tags(self, req).await
    }
    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> R<DeleteObjectTaggingOutput> {
        object::delete_tags(self, req).await
    }

    async fn restore_object(&self, req: S3Request<RestoreObjectInput>) -> R<RestoreObjectOutput> {
        archive::restore(self, req).await
    }

    // --- bucket tagging ---
    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> R<PutBucketTaggingOutput> {
        bucket::put_tagging(self, req).await
    }
    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> R<GetBucketTaggingOutput> {
        bucket::get_tagging(self, req).await
    }
    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> R<DeleteBucketTaggingOutput> {
        bucket::delete_tagging(self, req).await
    }

    // --- Object Ownership and ACLs ---
    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> R<PutBucketOwnershipControlsOutput> {
        acl::put_ownership(self, req).await
    }
    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> R<GetBucketOwnershipControlsOutput> {
        acl::get_ownership(self, req).await
    }
    async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> R<DeleteBucketOwnershipControlsOutput> {
        acl::delete_ownership(self, req).await
    }
    async fn get_bucket_acl(&self, req: S3Request<GetBucketAclInput>) -> R<GetBucketAclOutput> {
        acl::get_bucket_acl(self, req).await
    }
    async fn put_bucket_acl(&self, req: S3Request<PutBucketAclInput>) -> R<PutBucketAclOutput> {
        acl::put_bucket_acl(self, req).await
    }
    async fn get_object_acl(&self, req: S3Request<GetObjectAclInput>) -> R<GetObjectAclOutput> {
        acl::get_object_acl(self, req).await
    }
    async fn put_object_acl(&self, req: S3Request<PutObjectAclInput>) -> R<PutObjectAclOutput> {
        acl::put_object_acl(self, req).await
    }

    // --- server access logging ---
    async fn put_bucket_logging(
        &self,
        req: S3Request<PutBucketLoggingInput>,
    ) -> R<PutBucketLoggingOutput> {
        logging::put(self, req).await
    }
    async fn get_bucket_logging(
        &self,
        req: S3Request<GetBucketLoggingInput>,
    ) -> R<GetBucketLoggingOutput> {
        logging::get(self, req).await
    }

    // --- CORS ---
    async fn put_bucket_cors(&self, req: S3Request<PutBucketCorsInput>) -> R<PutBucketCorsOutput> {
        cors::put(self, req).await
    }
    async fn get_bucket_cors(&self, req: S3Request<GetBucketCorsInput>) -> R<GetBucketCorsOutput> {
        cors::get(self, req).await
    }
    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> R<DeleteBucketCorsOutput> {
        cors::delete(self, req).await
    }

    // --- lifecycle ---
    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> R<PutBucketLifecycleConfigurationOutput> {
        lifecycle::put(self, req).await
    }
    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> R<GetBucketLifecycleConfigurationOutput> {
        lifecycle::get(self, req).await
    }
    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> R<DeleteBucketLifecycleOutput> {
        lifecycle::delete(self, req).await
    }

    // --- Object Lock ---
    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> R<PutObjectLockConfigurationOutput> {
        lock::put_configuration(self, req).await
    }
    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> R<GetObjectLockConfigurationOutput> {
        lock::get_configuration(self, req).await
    }
    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> R<PutObjectRetentionOutput> {
        lock::put_retention(self, req).await
    }
    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> R<GetObjectRetentionOutput> {
        lock::get_retention(self, req).await
    }
    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> R<PutObjectLegalHoldOutput> {
        lock::put_legal_hold(self, req).await
    }
    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> R<GetObjectLegalHoldOutput> {
        lock::get_legal_hold(self, req).await
    }

    // --- listing ---
    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> R<ListObjectsV2Output> {
        list::objects_v2(self, req).await
    }
    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> R<ListObjectsOutput> {
        list::objects_v1(self, req).await
    }
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> R<ListObjectVersionsOutput> {
        list::versions(self, req).await
    }

    // --- multipart ---
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> R<CreateMultipartUploadOutput> {
        multipart::create(self, req).await
    }
    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> R<UploadPartOutput> {
        multipart::upload_part(self, req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> R<UploadPartCopyOutput> {
        multipart::upload_part_copy(self, req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> R<AbortMultipartUploadOutput> {
        multipart::abort(self, req).await
    }
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> R<ListPartsOutput> {
        multipart::list_parts(self, req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> R<ListMultipartUploadsOutput> {
        multipart::list_uploads(self, req).await
    }
}
