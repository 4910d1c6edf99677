//! Object Ownership and access control lists, in S3's terms (AWS's "Controlling ownership
//! of objects and disabling ACLs" and "Access control list (ACL) overview"): the bucket's
//! ownership setting (`BucketOwnerEnforced` for new buckets, as on AWS since April 2023:
//! ACLs are disabled and the bucket owner owns every object), canned ACLs and grants, and
//! the bucket's ACL where ACLs are enabled.

use serde::{Deserialize, Serialize};

use crate::settings::{ACL, OWNERSHIP};
use crate::{Error, Objects, Result};

/// `ObjectOwnership`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ownership {
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl Ownership {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BucketOwnerEnforced" => Some(Self::BucketOwnerEnforced),
            "BucketOwnerPreferred" => Some(Self::BucketOwnerPreferred),
            "ObjectWriter" => Some(Self::ObjectWriter),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BucketOwnerEnforced => "BucketOwnerEnforced",
            Self::BucketOwnerPreferred => "BucketOwnerPreferred",
            Self::ObjectWriter => "ObjectWriter",
        }
    }
}

/// The groups a grant can name.
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// An account, by its canonical user id.
    CanonicalUser(String),
    /// One of the predefined groups, by URI.
    Group(String),
}

/// An ACL permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

impl Permission {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "FULL_CONTROL" => Some(Self::FullControl),
            "READ" => Some(Self::Read),
            "WRITE" => Some(Self::Write),
            "READ_ACP" => Some(Self::ReadAcp),
            "WRITE_ACP" => Some(Self::WriteAcp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullControl => "FULL_CONTROL",
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::ReadAcp => "READ_ACP",
            Self::WriteAcp => "WRITE_ACP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// An access control list: its owner (canonical id) and grants, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub owner: String,
    pub grants: Vec<Grant>,
}

/// S3's canned ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canned {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
    LogDeliveryWrite,
}

impl Canned {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Self::Private),
            "public-read" => Some(Self::PublicRead),
            "public-read-write" => Some(Self::PublicReadWrite),
            "authenticated-read" => Some(Self::AuthenticatedRead),
            "bucket-owner-read" => Some(Self::BucketOwnerRead),
            "bucket-owner-full-control" => Some(Self::BucketOwnerFullControl),
            "log-delivery-write" => Some(Self::LogDeliveryWrite),
            _ => None,
        }
    }

    /// The ACL it stands for: the owner has FULL_CONTROL, plus the canned grants.
    /// `bucket_owner` is the owner of the bucket an object is in (the bucket-owner-* ACLs
    /// name it; on a bucket they add nothing).
    pub fn expand(self, owner: &str, bucket_owner: &str) -> Acl {
        let mut grants = vec![Grant {
            grantee: Grantee::CanonicalUser(owner.to_owned()),
            permission: Permission::FullControl,
        }];
        let group = |uri: &str, permission| Grant {
            grantee: Grantee::Group(uri.to_owned()),
            permission,
        };
        match self {
            Self::Private => {}
            Self::PublicRead => grants.push(group(ALL_USERS, Permission::Read)),
            Self::PublicReadWrite => {
                grants.push(group(ALL_USERS, Permission::Read));
                grants.push(group(ALL_USERS, Permission::Write));
            }
            Self::AuthenticatedRead => grants.push(group(AUTHENTICATED_USERS, Permission::Read)),
            Self::BucketOwnerRead | Self::BucketOwnerFullControl if bucket_owner != owner => {
                grants.push(Grant {
                    grantee: Grantee::CanonicalUser(bucket_owner.to_owned()),
                    permission: if self == Self::BucketOwnerRead {
                        Permission::Read
                    } else {
                        Permission::FullControl
                    },
                });
            }
            Self::BucketOwnerRead | Self::BucketOwnerFullControl => {}
            Self::LogDeliveryWrite => {
                grants.push(group(LOG_DELIVERY, Permission::Write));
                grants.push(group(LOG_DELIVERY, Permission::ReadAcp));
            }
        }
        Acl {
            owner: owner.to_owned(),
            grants,
        }
    }
}

impl Acl {
    /// The owner alone, with FULL_CONTROL: what every ACL reads as where ACLs are disabled.
    pub fn private(owner: &str) -> Self {
        Canned::Private.expand(owner, owner)
    }

    /// Whether it grants anything to everyone or to every authenticated caller (Block
    /// Public Access's definition of a public ACL).
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|g| {
            matches!(&g.grantee, Grantee::Group(u) if u == ALL_USERS || u == AUTHENTICATED_USERS)
        })
    }

    /// Whether it gives anyone but `owner` any access (S3 refuses such an ACL on a
    /// bucket whose ownership is enforced).
    pub fn grants_others(&self, owner: &str) -> bool {
        self.grants
            .iter()
            .any(|g| !matches!(&g.grantee, Grantee::CanonicalUser(id) if id == owner))
    }

    /// Whether a caller (by canonical id; `None` for an anonymous caller) holds
    /// `permission` (or FULL_CONTROL). `ignore_public` drops the grants to everyone and to
    /// all authenticated callers (Block Public Access's `IgnorePublicAcls`).
    pub fn allows(
        &self,
        caller: Option<&str>,
        permission: Permission,
        ignore_public: bool,
    ) -> bool {
        self.grants.iter().any(|g| {
            (g.permission == permission || g.permission == Permission::FullControl)
                && match &g.grantee {
                    Grantee::CanonicalUser(id) => caller == Some(id.as_str()),
                    Grantee::Group(u) if u == ALL_USERS => !ignore_public,
                    Grantee::Group(u) if u == AUTHENTICATED_USERS => {
                        !ignore_public && caller.is_some()
                    }
                    Grantee::Group(_) => false,
                }
        })
    }
}

impl Objects {
    /// The bucket's Object Ownership, `None` if it has none (buckets created before
    /// Coffer had them, or after DeleteBucketOwnershipControls: ACLs are enabled, and the
    /// writer owns what it writes, as `ObjectWriter`).
    pub async fn get_bucket_ownership(&self, bucket: &str) -> Result<Option<Ownership>> {
        match self.setting(bucket, OWNERSHIP).await? {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::Internal(format!("stored ownership controls: {e}"))),
            None => Ok(None),
        }
    }

    /// PutBucketOwnershipControls (`None`: DeleteBucketOwnershipControls). Enforcing the
    /// bucket owner's ownership is refused while the bucket's ACL grants others access.
    pub async fn set_bucket_ownership(&self, bucket: &str, o: Option<Ownership>) -> Result<()> {
        match o {
            Some(o) => {
                if o == Ownership::BucketOwnerEnforced
                    && let Some(acl) = self.get_bucket_acl_stored(bucket).await?
                    && acl.grants_others(&acl.owner)
                {
                    return Err(Error::InvalidBucketAclWithObjectOwnership);
                }
                let json = serde_json::to_string(&o).map_err(|e| Error::Internal(e.to_string()))?;
                self.set_setting(bucket, OWNERSHIP, Some(&json)).await
            }
            None => self.set_setting(bucket, OWNERSHIP, None).await,
        }
    }

    /// Whether the bucket's ACLs take part in access decisions (they do not under
    /// `BucketOwnerEnforced`).
    pub async fn acls_enabled(&self, bucket: &str) -> Result<bool> {
        Ok(self.get_bucket_ownership(bucket).await? != Some(Ownership::BucketOwnerEnforced))
    }

    async fn get_bucket_acl_stored(&self, bucket: &str) -> Result<Option<Acl>> {
        match self.setting(bucket, ACL).await? {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::Internal(format!("stored bucket ACL: {e}"))),
            None => Ok(None),
        }
    }

    /// The bucket's ACL as S3 reports it: the stored one where ACLs are enabled, else the
    /// owner's full control (`owner_canonical_id`).
    pub async fn get_bucket_acl(&self, bucket: &str, owner_canonical_id: &str) -> Result<Acl> {
        if !self.acls_enabled(bucket).await? {
            return Ok(Acl::private(owner_canonical_id));
        }
        Ok(self
            .get_bucket_acl_stored(bucket)
            .await?
            .unwrap_or_else(|| Acl::private(owner_canonical_id)))
    }

    /// The bucket's ACL where ACLs take part in decisions; `None` where they do not.
    pub async fn bucket_acl_in_force(&self, bucket: &str) -> Result<Option<Acl>> {
        if !self.acls_enabled(bucket).await? {
            return Ok(None);
        }
        self.get_bucket_acl_stored(bucket).await
    }

    /// PutBucketAcl: refused on a bucket whose ownership is enforced (unless it asks for
    /// nothing beyond the owner's full control, which changes nothing).
    pub async fn put_bucket_acl(&self, bucket: &str, acl: &Acl) -> Result<()> {
        if !self.acls_enabled(bucket).await? {
            return Err(Error::AccessControlListNotSupported);
        }
        let json = serde_json::to_string(acl).map_err(|e| Error::Internal(e.to_string()))?;
        self.set_setting(bucket, ACL, Some(&json)).await
    }
}

impl Objects {
    /// Who owns a new object written by `writer` (a canonical id) into a bucket of
    /// `bucket_owner`: `None` for the bucket's owner, `Some(writer)` where the writer keeps
    /// ownership — ACLs enabled, `ObjectWriter` (or no ownership controls), or
    /// `BucketOwnerPreferred` without `bucket-owner-full-control` — as on AWS.
    pub async fn new_object_owner(
        &self,
        bucket: &str,
        writer: &str,
        bucket_owner: &str,
        bucket_owner_full_control: bool,
    ) -> Result<Option<String>> {
        if writer == bucket_owner {
            return Ok(None);
        }
        Ok(match self.get_bucket_ownership(bucket).await? {
            Some(Ownership::BucketOwnerEnforced) => None,
            Some(Ownership::BucketOwnerPreferred) if bucket_owner_full_control => None,
            _ => Some(writer.to_owned()),
        })
    }

    /// A version's ACL as S3 reports it (GetObjectAcl), and the version as S3 reports it:
    /// the one set where ACLs are enabled, else the bucket owner's full control
    /// (`bucket_owner`: its canonical id).
    pub async fn get_object_acl(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        bucket_owner: &str,
    ) -> Result<(Acl, Option<String>)> {
        let (o, reported) = self
            .object_version_reported(bucket, key, version_id)
            .await?;
        if !self.acls_enabled(bucket).await? {
            return Ok((Acl::private(bucket_owner), reported));
        }
        let acl = match (&o.meta.acl, &o.meta.owner) {
            (Some(j), _) => decode(j)?,
            // An object its writer owns reads as the writer's private ACL.
            (None, Some(writer)) => Acl::private(writer),
            (None, None) => Acl::private(bucket_owner),
        };
        Ok((acl, reported))
    }

    /// The ACL of the version a read names, where ACLs take part in decisions; `None`
    /// where they do not, or the version has none (or does not exist: the operation will
    /// say so).
    pub async fn object_acl_in_force(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<Acl>> {
        if !self.acls_enabled(bucket).await? {
            return Ok(None);
        }
        match self.object_version(bucket, key, version_id).await {
            // An object its writer owns gives that writer full control, as a private
            // ACL of its own does.
            Ok(o) => match (o.meta.acl.as_deref(), o.meta.owner.as_deref()) {
                (Some(j), _) => decode(j).map(Some),
                (None, Some(writer)) => Ok(Some(Acl::private(writer))),
                (None, None) => Ok(None),
            },
            Err(_) => Ok(None),
        }
    }

    /// PutObjectAcl: refused where ACLs are disabled; returns the version as S3 reports it.
    pub async fn put_object_acl(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        acl: &Acl,
    ) -> Result<Option<String>> {
        if !self.acls_enabled(bucket).await? {
            return Err(Error::AccessControlListNotSupported);
        }
        let o = self.object_version(bucket, key, version_id).await?;
        let version = coffer_storage::VersionRef::of(o.version_id.as_deref());
        let json = encode(acl)?;
        match self
            .meta
            .set_object_acl(bucket, key, version, Some(&json))
            .await
        {
            Err(
                coffer_storage::Error::NoSuchKey { .. }
                | coffer_storage::Error::NoSuchVersion { .. },
            ) => return Err(Error::NoSuchKey(key.to_owned())),
            other => other?,
        }
        self.reported_version(bucket, o.version_id.as_deref()).await
    }

    /// The ACL a write's `x-amz-acl` / `x-amz-grant-*` headers give the new object, as
    /// stored with it. Where the bucket enforces its owner's ownership, only
    /// `bucket-owner-full-control` is accepted (and stores nothing):
    /// `AccessControlListNotSupported` for anything else, as on AWS.
    pub async fn acl_for_write(
        &self,
        bucket: &str,
        acl: Option<&Acl>,
        bucket_owner_full_control: bool,
    ) -> Result<Option<String>> {
        let Some(acl) = acl else {
            return Ok(None);
        };
        if !self.acls_enabled(bucket).await? {
            return if bucket_owner_full_control {
                Ok(None)
            } else {
                Err(Error::AccessControlListNotSupported)
            };
        }
        encode(acl).map(Some)
    }
}

fn encode(acl: &Acl) -> Result<String> {
    serde_json::to_string(acl).map_err(|e| Error::Internal(e.to_string()))
}

fn decode(j: &str) -> Result<Acl> {
    serde_json::from_str(j).map_err(|e| Error::Internal(format!("stored object ACL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_expand_as_s3_documents() {
        let a = Canned::PublicRead.expand("o", "o");
        assert_eq!(a.grants.len(), 2);
        assert!(a.is_public() && a.grants_others("o"));
        assert!(a.allows(None, Permission::Read, false));
        assert!(!a.allows(None, Permission::Read, true), "IgnorePublicAcls");
        assert!(!a.allows(None, Permission::Write, false));
        assert!(
            a.allows(Some("o"), Permission::WriteAcp, false),
            "the owner has FULL_CONTROL"
        );
        let rw = Canned::PublicReadWrite.expand("o", "o");
        assert!(rw.allows(None, Permission::Write, false));
        let auth = Canned::AuthenticatedRead.expand("o", "o");
        assert!(auth.allows(Some("x"), Permission::Read, false));
        assert!(
            !auth.allows(None, Permission::Read, false),
            "not for anonymous callers"
        );
        let p = Canned::Private.expand("o", "o");
        assert!(!p.is_public() && !p.grants_others("o"));
        let bofc = Canned::BucketOwnerFullControl.expand("writer", "bucket-owner");
        assert!(bofc.allows(Some("bucket-owner"), Permission::Read, false));
        assert!(
            !Canned::BucketOwnerFullControl
                .expand("o", "o")
                .grants_others("o")
        );
        let logs = Canned::LogDeliveryWrite.expand("o", "o");
        assert!(!logs.is_public() && logs.grants_others("o"));
        assert_eq!(Canned::parse("fake-acl"), None);
        assert_eq!(Ownership::parse("RandomValue"), None);
    }
}
