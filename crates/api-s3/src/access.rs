//! Authentication (secret lookup for s3s's SigV4 check), authorization (the one policy
//! decision point) and virtual-host parsing.

use std::sync::Arc;

use coffer_audit::RequestContext;
use coffer_iam::{Credentials, Principal};
use coffer_objects::Objects;
use coffer_policy::{Ask, Authorizer, Decision};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{S3Host, VirtualHost};
use s3s::{S3Result, s3_error};

pub struct Auth {
    pub credentials: Arc<dyn Credentials>,
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.credentials.lookup(access_key) {
            Some((secret, _)) => Ok(SecretKey::from(secret.expose())),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

#[derive(Clone)]
pub struct Access {
    pub objects: Arc<Objects>,
    pub credentials: Arc<dyn Credentials>,
    pub authorizer: Arc<Authorizer>,
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        let operation = operation_name(cx.s3_op().name());
        let bucket = cx.s3_path().get_bucket_name().map(str::to_owned);
        let key = cx.s3_path().get_object_key().map(str::to_owned);
        self.authorize(
            access_key.as_deref(),
            operation,
            bucket,
            key,
            cx.extensions_mut(),
        )
        .await
    }
}

impl Access {
    /// The one S3 access decision, for s3s's operations and Coffer's own routes alike:
    /// records the principal and operation in the request context, asks the policy
    /// engine, and on Allow attaches the [`Principal`] to the request.
    pub async fn authorize(
        &self,
        access_key: Option<&str>,
        operation: &'static str,
        bucket: Option<String>,
        key: Option<String>,
        extensions: &mut http::Extensions,
    ) -> S3Result<()> {
        let principal: Option<Principal> = access_key
            .and_then(|k| self.credentials.lookup(k))
            .map(|(_, p)| p);
        if let Some(rc) = extensions.get::<Arc<RequestContext>>() {
            rc.fill(|f| {
                f.service = Some("s3.amazonaws.com");
                f.operation = Some(operation);
                f.bucket.clone_from(&bucket);
                f.key.clone_from(&key);
                if let Some(p) = &principal {
                    f.principal_arn = Some(p.arn());
                    f.account_id = Some(p.account.id.clone());
                    f.access_key_id = Some(p.access_key_id.clone());
                }
            });
        }
        let Some(p) = principal else {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        };
        let owner = match &bucket {
            Some(b) => self.objects.bucket(b).await.ok().map(|r| r.owner),
            None => None,
        };
        let resource = match (&bucket, &key) {
            (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
            // DeleteObjects names its keys in the body: asked as any object of the bucket.
            (Some(b), None) if operation == "DeleteObjects" => format!("arn:aws:s3:::{b}/*"),
            (Some(b), None) => format!("arn:aws:s3:::{b}"),
            _ => "*".to_owned(),
        };
        let (tls, source) = extensions
            .get::<Arc<RequestContext>>()
            .map(|rc| (rc.tls, rc.source.map(|s| s.ip())))
            .unwrap_or((false, None));
        let decision = self.authorizer.check(&Ask {
            principal: &p,
            action: iam_action(operation),
            resource: &resource,
            resource_account: owner.as_deref(),
            resource_policy: None,
            context: self.authorizer.base_context(&p, tls, source),
        });
        let principal = Some(p);
        match decision {
            Decision::Allow => {
                if let Some(p) = principal {
                    extensions.insert(p);
                }
                Ok(())
            }
            Decision::Deny(why) => Err(s3_error!(AccessDenied, "Access Denied: {}", why)),
        }
    }
}

/// The IAM action a policy must allow for an S3 operation (AWS's "Actions, resources and
/// condition keys for Amazon S3" table).
pub fn iam_action(operation: &str) -> &'static str {
    match operation {
        "GetObject" | "HeadObject" | "GetObjectAttributes" => "s3:GetObject",
        "PutObject"
        | "CopyObject"
        | "PostObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => "s3:PutObject",
        "AbortMultipartUpload" => "s3:AbortMultipartUpload",
        "ListParts" => "s3:ListMultipartUploadParts",
        "ListMultipartUploads" => "s3:ListBucketMultipartUploads",
        "DeleteObject" | "DeleteObjects" => "s3:DeleteObject",
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => "s3:ListBucket",
        "ListObjectVersions" => "s3:ListBucketVersions",
        "ListBuckets" => "s3:ListAllMyBuckets",
        "CreateBucket" => "s3:CreateBucket",
        "DeleteBucket" => "s3:DeleteBucket",
        "GetBucketLocation" => "s3:GetBucketLocation",
        "GetBucketVersioning" => "s3:GetBucketVersioning",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "s3:PutEncryptionConfiguration",
        "GetBucketEncryption" => "s3:GetEncryptionConfiguration",
        "GetObjectTagging" => "s3:GetObjectTagging",
        "PutObjectTagging" => "s3:PutObjectTagging",
        "DeleteObjectTagging" => "s3:DeleteObjectTagging",
        "UpdateObjectEncryption" => "s3:UpdateObjectEncryption",
        _ => "s3:Unknown",
    }
}

/// s3s names operations with `&str` borrowed from a static table; keep a `'static` copy
/// for the request context.
pub fn operation_name(name: &str) -> &'static str {
    OPERATIONS
        .iter()
        .copied()
        .find(|op| *op == name)
        .unwrap_or("Unknown")
}

const OPERATIONS: &[&str] = &[
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateBucket",
    "CreateMultipartUpload",
    "DeleteBucket",
    "DeleteBucketEncryption",
    "DeleteObject",
    "DeleteObjectTagging",
    "DeleteObjects",
    "GetBucketEncryption",
    "GetBucketLocation",
    "GetBucketVersioning",
    "GetObject",
    "GetObjectAttributes",
    "GetObjectTagging",
    "HeadBucket",
    "HeadObject",
    "ListBuckets",
    "ListMultipartUploads",
    "ListObjectVersions",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "PostObject",
    "PutBucketEncryption",
    "PutObject",
    "PutObjectTagging",
    "UpdateObjectEncryption",
    "UploadPart",
    "UploadPartCopy",
];

/// Virtual-hosted-style addressing: `bucket.DOMAIN[:port]`. Any other host is path-style.
pub struct Domain {
    domain: String,
}

impl Domain {
    pub fn new(domain: &str) -> Self {
        Self {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
        }
    }
}

impl S3Host for Domain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        if let Some(bucket) = name
            .strip_suffix(self.domain.as_str())
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty())
        {
            return Ok(
                VirtualHost::new(self.domain.as_str()).with_bucket(bucket.to_ascii_lowercase())
            );
        }
        Ok(VirtualHost::new(name))
    }
}
