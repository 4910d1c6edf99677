//! Object Ownership (Put/Get/DeleteBucketOwnershipControls) and ACLs (Get/PutBucketAcl,
//! Get/PutObjectAcl, and the `x-amz-acl` / `x-amz-grant-*` headers of writes), between
//! S3's wire forms and the domain's [`Acl`], checked as S3 checks them (AWS's replies as
//! recorded in LocalStack's AWS-validated snapshots: `InvalidArgument` with the argument
//! named, `MissingSecurityHeader`, `UnexpectedContent`, `MalformedACLError`).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use coffer_objects::{Acl, Canned, Grant, Grantee as DomainGrantee, Ownership, Permission as P};

use super::R;
use crate::S3Api;
use crate::error::to_s3_error;

/// The `x-amz-grant-*` headers of an input that has them (`write`: its
/// `x-amz-grant-write`, which only bucket inputs carry).
macro_rules! grant_headers {
    ($i:expr, $write:expr) => {
        crate::ops::acl::GrantHeaders {
            full_control: $i.grant_full_control.as_deref(),
            read: $i.grant_read.as_deref(),
            read_acp: $i.grant_read_acp.as_deref(),
            write: $write,
            write_acp: $i.grant_write_acp.as_deref(),
        }
    };
}
pub(crate) use grant_headers;

/// The ACL an object write's input asks for ([`write_acl`]), for the inputs that carry
/// `acl` and the object grant headers (PutObject, CopyObject, CreateMultipartUpload,
/// PostObject).
macro_rules! object_write_acl {
    ($api:expr, $writer:expr, $i:expr) => {
        crate::ops::acl::write_acl(
            $api,
            $writer,
            &$i.bucket,
            $i.acl.as_ref().map(|a| a.as_str()),
            // Objects have no WRITE permission to grant.
            &crate::ops::acl::grant_headers!($i, None),
        )
        .await
    };
}
pub(crate) use object_write_acl;

fn malformed_xml() -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

/// An error s3s has no code for: 400 unless said otherwise.
fn custom(code: &'static str, message: &str) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into()), message.to_owned());
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

fn malformed_acl() -> S3Error {
    custom(
        "MalformedACLError",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

fn invalid_argument(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.to_owned())
}

/// The canonical id of a bucket's owner.
fn owner_canonical_id(api: &S3Api, owner_account: &str) -> S3Result<String> {
    api.access
        .credentials
        .find_account(owner_account)
        .map(|a| a.canonical_id)
        .ok_or_else(|| s3_error!(InternalError, "the bucket's owner is unknown"))
}

pub(crate) async fn bucket_owner(api: &S3Api, bucket: &str) -> S3Result<String> {
    let owner = api.objects.bucket(bucket).await.map_err(to_s3_error)?.owner;
    owner_canonical_id(api, &owner)
}

// --- Object Ownership ---------------------------------------------------------------

pub async fn put_ownership(
    api: &S3Api,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> R<PutBucketOwnershipControlsOutput> {
    super::lock::integrity_required(&req.headers)?;
    let i = req.input;
    let [rule] = i.ownership_controls.rules.as_slice() else {
        return Err(malformed_xml());
    };
    let o = Ownership::parse(rule.object_ownership.as_str()).ok_or_else(malformed_xml)?;
    api.objects
        .set_bucket_ownership(&i.bucket, Some(o))
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
}

pub async fn get_ownership(
    api: &S3Api,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> R<GetBucketOwnershipControlsOutput> {
    let Some(o) = api
        .objects
        .get_bucket_ownership(&req.input.bucket)
        .await
        .map_err(to_s3_error)?
    else {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("OwnershipControlsNotFoundError".into()),
            "The bucket ownership controls were not found",
        );
        e.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(e);
    };
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from(o.as_str().to_owned()),
            }],
        }),
    }))
}

pub async fn delete_ownership(
    api: &S3Api,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> R<DeleteBucketOwnershipControlsOutput> {
    api.objects
        .set_bucket_ownership(&req.input.bucket, None)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(
        DeleteBucketOwnershipControlsOutput::default(),
    ))
}

/// `x-amz-object-ownership` on CreateBucket (absent: `BucketOwnerEnforced`).
pub fn ownership_header(o: Option<&ObjectOwnership>) -> S3Result<Ownership> {
    match o {
        None => Ok(Ownership::BucketOwnerEnforced),
        Some(o) => Ownership::parse(o.as_str()).ok_or_else(|| {
            invalid_argument(&format!(
                "Invalid x-amz-object-ownership header: {}",
                o.as_str()
            ))
        }),
    }
}

// --- ACLs on the wire -------------------------------------------------------------------

/// The grant headers of a request, by permission.
pub struct GrantHeaders<'a> {
    pub full_control: Option<&'a str>,
    pub read: Option<&'a str>,
    pub read_acp: Option<&'a str>,
    pub write: Option<&'a str>,
    pub write_acp: Option<&'a str>,
}

impl GrantHeaders<'_> {
    fn any(&self) -> bool {
        self.full_control.is_some()
            || self.read.is_some()
            || self.read_acp.is_some()
            || self.write.is_some()
            || self.write_acp.is_some()
    }
}

/// A canonical id an ACL names must be an account's.
fn known_id(api: &S3Api, id: &str) -> bool {
    api.access.credentials.account_by_canonical_id(id).is_some()
}

fn known_group(uri: &str) -> bool {
    [
        coffer_objects::ALL_USERS,
        coffer_objects::AUTHENTICATED_USERS,
        coffer_objects::LOG_DELIVERY,
    ]
    .contains(&uri)
}

/// `x-amz-grant-*: id="...", uri="..."` lists.
fn header_grants(api: &S3Api, h: &GrantHeaders<'_>, owner: &str) -> S3Result<Acl> {
    let mut grants = Vec::new();
    for (header, value, permission) in [
        ("x-amz-grant-full-control", h.full_control, P::FullControl),
        ("x-amz-grant-read", h.read, P::Read),
        ("x-amz-grant-read-acp", h.read_acp, P::ReadAcp),
        ("x-amz-grant-write", h.write, P::Write),
        ("x-amz-grant-write-acp", h.write_acp, P::WriteAcp),
    ] {
        let Some(value) = value else { continue };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .ok_or_else(|| {
                    invalid_argument(&format!(
                        "Argument format not recognized ({header}: {value})"
                    ))
                })?;
            let grantee = match k {
                "id" if known_id(api, v) => DomainGrantee::CanonicalUser(v.to_owned()),
                "id" => return Err(invalid_argument("Invalid id")),
                "uri" if known_group(v) => DomainGrantee::Group(v.to_owned()),
                "uri" => return Err(invalid_argument("Invalid group uri")),
                "emailAddress" => return Err(unresolvable_email()),
                _ => return Err(invalid_argument("Argument format not recognized")),
            };
            grants.push(Grant {
                grantee,
                permission,
            });
        }
    }
    Ok(Acl {
        owner: owner.to_owned(),
        grants,
    })
}

fn unresolvable_email() -> S3Error {
    custom(
        "UnresolvableGrantByEmailAddress",
        "The e-mail address you provided does not match any account on record.",
    )
}

/// An `AccessControlPolicy` body.
fn body_acl(api: &S3Api, p: &AccessControlPolicy) -> S3Result<Acl> {
    let owner = p
        .owner
        .as_ref()
        .and_then(|o| o.id.clone())
        .ok_or_else(malformed_acl)?;
    if !known_id(api, &owner) {
        return Err(invalid_argument("Invalid id"));
    }
    let mut grants = Vec::new();
    for g in p.grants.iter().flatten() {
        let (Some(grantee), Some(permission)) = (&g.grantee, &g.permission) else {
            return Err(malformed_acl());
        };
        let permission = P::parse(permission.as_str()).ok_or_else(malformed_acl)?;
        let grantee = match grantee.type_.as_str() {
            "CanonicalUser" => match &grantee.id {
                Some(id) if known_id(api, id) => DomainGrantee::CanonicalUser(id.clone()),
                _ => return Err(invalid_argument("Invalid id")),
            },
            "Group" => match &grantee.uri {
                Some(u) if known_group(u) => DomainGrantee::Group(u.clone()),
                _ => return Err(invalid_argument("Invalid group uri")),
            },
            "AmazonCustomerByEmail" => return Err(unresolvable_email()),
            _ => return Err(malformed_acl()),
        };
        grants.push(Grant {
            grantee,
            permission,
        });
    }
    Ok(Acl { owner, grants })
}

/// The ACL a PutBucketAcl / PutObjectAcl asks for: exactly one of a canned ACL, grant
/// headers or a body, as S3 requires.
fn requested_acl(
    api: &S3Api,
    canned: Option<&str>,
    grants: &GrantHeaders<'_>,
    body: Option<&AccessControlPolicy>,
    owner: &str,
    bucket_owner: &str,
) -> S3Result<Acl> {
    match (canned, grants.any(), body) {
        (Some(_), true, _) => Err(s3_error!(
            InvalidRequest,
            "Specifying both Canned ACLs and Header Grants is not allowed"
        )),
        (Some(_), false, Some(_)) => Err(custom(
            "UnexpectedContent",
            "This request does not support content",
        )),
        (Some(c), false, None) => Ok(canned_acl(c)?.expand(owner, bucket_owner)),
        (None, true, _) => header_grants(api, grants, owner),
        (None, false, Some(p)) => body_acl(api, p),
        (None, false, None) => Err(custom(
            "MissingSecurityHeader",
            "Your request was missing a required header",
        )),
    }
}

fn canned_acl(c: &str) -> S3Result<Canned> {
    Canned::parse(c).ok_or_else(|| S3Error::new(S3ErrorCode::InvalidArgument))
}

/// The domain ACL as S3's `Owner` and `Grants`.
fn wire(acl: &Acl) -> (Owner, Vec<Grant_>) {
    let owner = Owner {
        display_name: None,
        id: Some(acl.owner.clone()),
    };
    let grants = acl
        .grants
        .iter()
        .map(|g| s3s::dto::Grant {
            grantee: Some(match &g.grantee {
                DomainGrantee::CanonicalUser(id) => s3s::dto::Grantee {
                    display_name: None,
                    email_address: None,
                    id: Some(id.clone()),
                    type_: Type::from_static(Type::CANONICAL_USER),
                    uri: None,
                },
                DomainGrantee::Group(uri) => s3s::dto::Grantee {
                    display_name: None,
                    email_address: None,
                    id: None,
                    type_: Type::from_static(Type::GROUP),
                    uri: Some(uri.clone()),
                },
            }),
            permission: Some(Permission::from(g.permission.as_str().to_owned())),
        })
        .collect();
    (owner, grants)
}

type Grant_ = s3s::dto::Grant;

/// `AccessControlListNotSupported` where the bucket enforces its owner's ownership: checked
/// after the request's own validity, before Block Public Access, as S3 orders them.
async fn acls_enabled(api: &S3Api, bucket: &str) -> S3Result<()> {
    if api
        .objects
        .acls_enabled(bucket)
        .await
        .map_err(to_s3_error)?
    {
        Ok(())
    } else {
        Err(to_s3_error(
            coffer_objects::Error::AccessControlListNotSupported,
        ))
    }
}

/// Refuses a public ACL where Block Public Access (the bucket's or its account's)
/// says `BlockPublicAcls`.
async fn block_public(api: &S3Api, bucket: &str, acl: &Acl) -> S3Result<()> {
    if !acl.is_public() {
        return Ok(());
    }
    let owner = api.objects.bucket(bucket).await.map_err(to_s3_error)?.owner;
    let pab = api
        .objects
        .public_access_block_in_force(bucket, &owner)
        .await
        .map_err(to_s3_error)?;
    if pab.block_public_acls {
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    Ok(())
}

pub async fn get_bucket_acl(
    api: &S3Api,
    req: S3Request<GetBucketAclInput>,
) -> R<GetBucketAclOutput> {
    let b = &req.input.bucket;
    let owner = bucket_owner(api, b).await?;
    let acl = api
        .objects
        .get_bucket_acl(b, &owner)
        .await
        .map_err(to_s3_error)?;
    let (owner, grants) = wire(&acl);
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(grants),
        owner: Some(owner),
    }))
}

pub async fn put_bucket_acl(
    api: &S3Api,
    req: S3Request<PutBucketAclInput>,
) -> R<PutBucketAclOutput> {
    let i = &req.input;
    let owner = bucket_owner(api, &i.bucket).await?;
    let grants = grant_headers!(i, i.grant_write.as_deref());
    let acl = requested_acl(
        api,
        i.acl.as_ref().map(|a| a.as_str()),
        &grants,
        i.access_control_policy.as_ref(),
        &owner,
        &owner,
    )?;
    acls_enabled(api, &i.bucket).await?;
    block_public(api, &i.bucket, &acl).await?;
    api.objects
        .put_bucket_acl(&i.bucket, &acl)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub async fn get_object_acl(
    api: &S3Api,
    req: S3Request<GetObjectAclInput>,
) -> R<GetObjectAclOutput> {
    let i = &req.input;
    let owner = bucket_owner(api, &i.bucket).await?;
    let (acl, _version) = api
        .objects
        .get_object_acl(&i.bucket, &i.key, i.version_id.as_deref(), &owner)
        .await
        .map_err(to_s3_error)?;
    let (owner, grants) = wire(&acl);
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(grants),
        owner: Some(owner),
        request_charged: None,
    }))
}

pub async fn put_object_acl(
    api: &S3Api,
    req: S3Request<PutObjectAclInput>,
) -> R<PutObjectAclOutput> {
    let i = &req.input;
    let bucket_owner_id = bucket_owner(api, &i.bucket).await?;
    let grants = grant_headers!(i, i.grant_write.as_deref());
    // A canned ACL is expanded for the object's owner: its writer where the writer kept
    // ownership, else the bucket's owner.
    let (current, _) = api
        .objects
        .get_object_acl(&i.bucket, &i.key, i.version_id.as_deref(), &bucket_owner_id)
        .await
        .map_err(to_s3_error)?;
    let acl = requested_acl(
        api,
        i.acl.as_ref().map(|a| a.as_str()),
        &grants,
        i.access_control_policy.as_ref(),
        &current.owner,
        &bucket_owner_id,
    )?;
    acls_enabled(api, &i.bucket).await?;
    block_public(api, &i.bucket, &acl).await?;
    api.objects
        .put_object_acl(&i.bucket, &i.key, i.version_id.as_deref(), &acl)
        .await
        .map_err(to_s3_error)?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

/// What a write (PutObject, CopyObject, CreateMultipartUpload, a POST form) stores about
/// its new object's owner and ACL.
#[derive(Default)]
pub struct Written {
    /// The ACL the write asks for (`x-amz-acl` or `x-amz-grant-*`), as stored; `None` if it
    /// asks for none (or, where the bucket enforces its owner's ownership, only for the
    /// owner's full control).
    pub acl: Option<String>,
    /// The writer's canonical id where the writer keeps ownership of the object.
    pub owner: Option<String>,
}

pub async fn write_acl(
    api: &S3Api,
    writer: &coffer_iam::Principal,
    bucket: &str,
    canned: Option<&str>,
    grants: &GrantHeaders<'_>,
) -> S3Result<Written> {
    let bucket_account = api.objects.bucket(bucket).await.map_err(to_s3_error)?.owner;
    if canned.is_none() && !grants.any() && writer.account.id == bucket_account {
        return Ok(Written::default());
    }
    let bucket_owner = owner_canonical_id(api, &bucket_account)?;
    let owner_full_control = canned == Some("bucket-owner-full-control");
    let owner = api
        .objects
        .new_object_owner(
            bucket,
            &writer.account.canonical_id,
            &bucket_owner,
            owner_full_control,
        )
        .await
        .map_err(to_s3_error)?;
    if canned.is_none() && !grants.any() {
        return Ok(Written { acl: None, owner });
    }
    let acl_owner = owner.as_deref().unwrap_or(&bucket_owner);
    let acl = requested_acl(api, canned, grants, None, acl_owner, &bucket_owner)?;
    let owner_full_control =
        owner_full_control || (canned.is_none() && !acl.grants_others(&bucket_owner));
    if api
        .objects
        .acls_enabled(bucket)
        .await
        .map_err(to_s3_error)?
    {
        block_public(api, bucket, &acl).await?;
    }
    let acl = api
        .objects
        .acl_for_write(bucket, Some(&acl), owner_full_control)
        .await
        .map_err(to_s3_error)?;
    Ok(Written { acl, owner })
}

/// The ACL a CreateBucket asks for (`x-amz-acl`, `x-amz-grant-*`), to set once the bucket
/// exists; `None` if it asks for none, or only for the owner's own full control. Refused
/// before anything is created where the ownership asked for disables ACLs
/// (`InvalidBucketAclWithObjectOwnership`) or the new bucket's Block Public Access (all
/// on) forbids a public ACL.
pub fn create_bucket_acl(
    api: &S3Api,
    i: &CreateBucketInput,
    owner: &str,
    ownership: Ownership,
) -> S3Result<Option<Acl>> {
    let grants = grant_headers!(i, i.grant_write.as_deref());
    let canned = i.acl.as_ref().map(|a| a.as_str());
    if canned.is_none() && !grants.any() {
        return Ok(None);
    }
    let acl = requested_acl(api, canned, &grants, None, owner, owner)?;
    if !acl.grants_others(owner) {
        return Ok(None);
    }
    if ownership == Ownership::BucketOwnerEnforced {
        return Err(to_s3_error(
            coffer_objects::Error::InvalidBucketAclWithObjectOwnership,
        ));
    }
    if acl.is_public() {
        return Err(custom(
            "InvalidBucketAclWithBlockPublicAccessError",
            "Bucket cannot have public ACLs set with BlockPublicAccess enabled",
        ));
    }
    Ok(Some(acl))
}
