//! Bucket policies and the public access block: PutBucketPolicy validates a document as S3
//! does (the policy grammar, then S3's own rules: every statement names resources of this
//! bucket and S3 actions) before storing it; with BlockPublicPolicy set, a policy granting
//! public access is refused.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, s3_error};

use coffer_objects::PublicAccessBlock;
use coffer_policy::document::{Document, Effect, Kind, Negatable, Principal};

use super::R;
use crate::S3Api;
use crate::error::to_s3_error;

/// S3 refuses bucket policies above 20 KiB.
const MAX_POLICY: usize = 20 * 1024;

fn malformed(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, msg.into())
}

/// Parses a bucket policy and applies S3's rules on top of the grammar.
pub fn validate(text: &str, bucket: &str) -> Result<Document, S3Error> {
    if text.len() > MAX_POLICY {
        return Err(malformed("Policies must be at most 20 KB."));
    }
    let doc = Document::parse(text, Kind::Resource).map_err(|e| malformed(e.0))?;
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    for st in &doc.statements {
        let resources = match &st.resource {
            Some(Negatable::Is(r) | Negatable::Not(r)) => r,
            None => return Err(malformed("Missing required field Resource")),
        };
        for r in resources {
            let ours = r == &bucket_arn
                || r.strip_prefix(&bucket_arn)
                    .is_some_and(|rest| rest.starts_with('/'));
            if !ours {
                return Err(malformed("Policy has invalid resource"));
            }
        }
        let (Negatable::Is(actions) | Negatable::Not(actions)) = &st.action;
        for a in actions {
            if a != "*" && !a.to_ascii_lowercase().starts_with("s3:") {
                return Err(malformed("Policy has invalid action"));
            }
        }
    }
    Ok(doc)
}

/// Condition keys that, as S3's "The meaning of public" says, make a statement
/// non-public by fixing who or where the caller is.
const LIMITING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceowner",
    "aws:sourceaccount",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:userid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
];

/// Whether a policy grants access to everyone: an Allow with principal `*` (or
/// `{"AWS": "*"}`), or a NotPrincipal Allow, not narrowed by a limiting condition.
pub fn is_public(doc: &Document) -> bool {
    doc.statements.iter().any(statement_is_public)
}

/// Whether one statement grants access to everyone (see [`is_public`]).
pub fn statement_is_public(st: &coffer_policy::document::Statement) -> bool {
    {
        if st.effect != Effect::Allow {
            return false;
        }
        let wildcard = match &st.principal {
            Some(Negatable::Is(Principal::Any)) | Some(Negatable::Not(_)) => true,
            Some(Negatable::Is(Principal::Typed(t))) => t
                .iter()
                .any(|(kind, vals)| kind == "AWS" && vals.iter().any(|v| v == "*")),
            None => false,
        };
        let limited = st.condition.iter().any(|(op, keys)| {
            !op.to_ascii_lowercase().contains("notequals")
                && !op.to_ascii_lowercase().starts_with("not")
                && keys.iter().any(|(k, v)| {
                    LIMITING_KEYS.contains(&k.to_ascii_lowercase().as_str())
                        && !v.iter().any(|x| x.contains('*'))
                })
        });
        wildcard && !limited
    }
}

pub async fn put(api: &S3Api, req: S3Request<PutBucketPolicyInput>) -> R<PutBucketPolicyOutput> {
    let bucket = &req.input.bucket;
    let doc = validate(&req.input.policy, bucket)?;
    let owner = api.objects.bucket(bucket).await.map_err(to_s3_error)?.owner;
    let pab = api
        .objects
        .public_access_block_in_force(bucket, &owner)
        .await
        .map_err(to_s3_error)?;
    if pab.block_public_policy && is_public(&doc) {
        let who = super::principal(&req)?.arn();
        return Err(s3_error!(
            AccessDenied,
            "User: {who} is not authorized to perform: s3:PutBucketPolicy on resource: \"arn:aws:s3:::{bucket}\" because public policies are blocked by the BlockPublicPolicy block public access setting."
        ));
    }
    api.objects
        .put_bucket_policy(bucket, &req.input.policy)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::with_status(
        PutBucketPolicyOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

pub async fn get(api: &S3Api, req: S3Request<GetBucketPolicyInput>) -> R<GetBucketPolicyOutput> {
    match api
        .objects
        .get_bucket_policy(&req.input.bucket)
        .await
        .map_err(to_s3_error)?
    {
        Some(p) => Ok(S3Response::new(GetBucketPolicyOutput {
            policy: Some(p.to_string()),
        })),
        None => Err(s3_error!(
            NoSuchBucketPolicy,
            "The bucket policy does not exist"
        )),
    }
}

pub async fn delete(
    api: &S3Api,
    req: S3Request<DeleteBucketPolicyInput>,
) -> R<DeleteBucketPolicyOutput> {
    api.objects
        .delete_bucket_policy(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::with_status(
        DeleteBucketPolicyOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

pub async fn status(
    api: &S3Api,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> R<GetBucketPolicyStatusOutput> {
    let bucket = &req.input.bucket;
    let Some(text) = api
        .objects
        .get_bucket_policy(bucket)
        .await
        .map_err(to_s3_error)?
    else {
        return Err(s3_error!(
            NoSuchBucketPolicy,
            "The bucket policy does not exist"
        ));
    };
    let public = validate(&text, bucket).is_ok_and(|d| is_public(&d));
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(public),
        }),
    }))
}

pub async fn put_public_access_block(
    api: &S3Api,
    req: S3Request<PutPublicAccessBlockInput>,
) -> R<PutPublicAccessBlockOutput> {
    let c = &req.input.public_access_block_configuration;
    let cfg = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    api.objects
        .put_public_access_block(&req.input.bucket, &cfg)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
}

pub(crate) fn no_such_pab() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
        "The public access block configuration was not found",
    );
    e.set_status_code(http::StatusCode::NOT_FOUND);
    e
}

pub async fn get_public_access_block(
    api: &S3Api,
    req: S3Request<GetPublicAccessBlockInput>,
) -> R<GetPublicAccessBlockOutput> {
    let cfg = api
        .objects
        .get_public_access_block(&req.input.bucket)
        .await
        .map_err(to_s3_error)?
        .ok_or_else(no_such_pab)?;
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(cfg.block_public_acls),
            ignore_public_acls: Some(cfg.ignore_public_acls),
            block_public_policy: Some(cfg.block_public_policy),
            restrict_public_buckets: Some(cfg.restrict_public_buckets),
        }),
    }))
}

pub async fn delete_public_access_block(
    api: &S3Api,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> R<DeletePublicAccessBlockOutput> {
    api.objects
        .delete_public_access_block(&req.input.bucket)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::with_status(
        DeletePublicAccessBlockOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(statement: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
    }

    #[test]
    fn bucket_policies_must_stay_inside_their_bucket() {
        let ok = policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}"#,
        );
        assert!(validate(&ok, "b").is_ok());
        for bad in [
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bb/*"}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"arn:aws:s3:::b/*"}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}"#,
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#,
        ] {
            let e = validate(&policy(bad), "b").expect_err(bad);
            assert_eq!(e.code(), &S3ErrorCode::MalformedPolicy, "{bad}");
        }
        assert!(validate("{not json", "b").is_err());
    }

    #[test]
    fn public_means_everyone_without_a_limiting_condition() {
        let public = |s: &str| is_public(&validate(&policy(s), "b").expect(s));
        assert!(public(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#
        ));
        assert!(public(
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#
        ));
        assert!(!public(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#
        ));
        assert!(!public(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#
        ));
        assert!(!public(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#
        ));
    }
}
