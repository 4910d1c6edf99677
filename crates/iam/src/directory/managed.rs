//! Managed policies (customer managed, with versions, and a few AWS managed ones built
//! in), their attachment to users and groups, and groups with their members and inline
//! policies. Documents are stored as the caller sent them; the caller validates them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    Directory, Error, Result, State, UPPER_DIGITS, check_name, internal, random_string, record,
    unix_ms,
};

pub(super) const KIND_POLICY: &str = "managed-policy";
pub(super) const KIND_GROUP: &str = "group";
/// AWS keeps at most five versions of a managed policy.
const MAX_VERSIONS: usize = 5;
/// AWS allows ten managed policies per user, group or role.
const MAX_ATTACHED: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct VersionDoc {
    document: String,
    #[serde(with = "unix_ms")]
    created: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PolicyDoc {
    policy_id: String,
    path: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(with = "unix_ms")]
    created: OffsetDateTime,
    #[serde(with = "unix_ms")]
    updated: OffsetDateTime,
    default_version: u32,
    next_version: u32,
    versions: BTreeMap<u32, VersionDoc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct GroupDoc {
    group_id: String,
    path: String,
    #[serde(with = "unix_ms")]
    created: OffsetDateTime,
    #[serde(default)]
    pub(super) policies: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) attached: BTreeSet<String>,
    #[serde(default)]
    pub(super) members: BTreeSet<String>,
}

/// A managed policy as IAM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub name: String,
    pub policy_id: String,
    pub arn: String,
    pub path: String,
    pub default_version: String,
    pub attachment_count: usize,
    pub description: Option<String>,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    /// AWS managed (`arn:aws:iam::aws:policy/...`), not the account's own.
    pub aws_managed: bool,
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version_id: String,
    pub document: String,
    pub is_default: bool,
    pub created: OffsetDateTime,
}

/// A group as IAM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    pub group_id: String,
    pub arn: String,
    pub path: String,
    pub created: OffsetDateTime,
}

/// An attached policy: (name, ARN).
pub type Attached = (String, String);

/// The AWS managed policies Coffer knows: name, id, document.
const AWS_MANAGED: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        "ANPAIWMBCKSKIEE64ZLYK",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ),
    (
        "AmazonS3FullAccess",
        "ANPAIFIR6V6BVTRAHWINE",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonS3ReadOnlyAccess",
        "ANPAIZTJ4DXE7G6AGAE6M",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*","s3-object-lambda:Get*","s3-object-lambda:List*"],"Resource":"*"}]}"#,
    ),
    (
        "AWSKeyManagementServicePowerUser",
        "ANPAJNPP7PPPPMJRV2SA4",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:CreateAlias","kms:CreateKey","kms:DeleteAlias","kms:Describe*","kms:GenerateRandom","kms:Get*","kms:List*","kms:TagResource","kms:UntagResource","iam:ListGroups","iam:ListRoles","iam:ListUsers"],"Resource":"*"}]}"#,
    ),
];

const AWS_POLICY_PREFIX: &str = "arn:aws:iam::aws:policy/";

fn aws_managed(arn: &str) -> Option<(&'static str, &'static str, &'static str)> {
    let name = arn.strip_prefix(AWS_POLICY_PREFIX)?;
    AWS_MANAGED.iter().copied().find(|(n, _, _)| *n == name)
}

fn policy_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:policy{path}{name}")
}

fn no_such_policy(arn: &str) -> Error {
    Error::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
}

fn no_such_group(name: &str) -> Error {
    Error::NoSuchEntity(format!("The group with name {name} cannot be found."))
}

fn check_path(path: &str) -> Result<()> {
    if path.starts_with('/') && path.ends_with('/') && path.len() <= 512 {
        Ok(())
    } else {
        Err(Error::Invalid(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.".into(),
        ))
    }
}

/// The (account, name) a customer managed policy ARN names, if it is one of `account`'s.
fn parse_arn<'a>(account: &str, arn: &'a str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (acct, res) = rest.split_once(':')?;
    if acct != account {
        return None;
    }
    let path_name = res.strip_prefix("policy")?;
    path_name.rsplit('/').next().filter(|n| !n.is_empty())
}

/// The default-version documents of attached policies (unknown ARNs are skipped).
pub(super) fn documents<'a>(
    st: &'a State,
    account: &'a str,
    attached: &'a BTreeSet<String>,
) -> impl Iterator<Item = String> + 'a {
    attached.iter().filter_map(move |arn| {
        if let Some((_, _, doc)) = aws_managed(arn) {
            return Some(doc.to_owned());
        }
        let name = parse_arn(account, arn)?;
        let p = st.policies.get(&(account.to_owned(), name.to_owned()))?;
        p.versions
            .get(&p.default_version)
            .map(|v| v.document.clone())
    })
}

fn attachment_count(st: &State, account: &str, arn: &str) -> usize {
    st.users
        .iter()
        .filter(|((a, _), u)| a == account && u.attached.contains(arn))
        .count()
        + st.groups
            .iter()
            .filter(|((a, _), g)| a == account && g.attached.contains(arn))
            .count()
        + st.roles
            .iter()
            .filter(|((a, _), r)| a == account && r.attached.contains(arn))
            .count()
}

fn info(st: &State, account: &str, name: &str, p: &PolicyDoc) -> PolicyInfo {
    let arn = policy_arn(account, &p.path, name);
    PolicyInfo {
        name: name.to_owned(),
        policy_id: p.policy_id.clone(),
        attachment_count: attachment_count(st, account, &arn),
        arn,
        path: p.path.clone(),
        default_version: format!("v{}", p.default_version),
        description: p.description.clone(),
        created: p.created,
        updated: p.updated,
        aws_managed: false,
    }
}

fn aws_info(st: &State, account: &str, name: &str, id: &str) -> PolicyInfo {
    let arn = format!("{AWS_POLICY_PREFIX}{name}");
    PolicyInfo {
        name: name.to_owned(),
        policy_id: id.to_owned(),
        attachment_count: attachment_count(st, account, &arn),
        arn,
        path: "/".into(),
        default_version: "v1".into(),
        description: None,
        created: OffsetDateTime::UNIX_EPOCH,
        updated: OffsetDateTime::UNIX_EPOCH,
        aws_managed: true,
    }
}

/// Which entity a policy is attached to.
#[derive(Debug, Clone, Copy)]
pub enum Entity<'a> {
    User(&'a str),
    Group(&'a str),
    Role(&'a str),
}

/// A managed policy's document is at most 6,144 characters other than white space (IAM's
/// quota, counted as IAM counts it).
fn check_managed_size(document: &str) -> Result<()> {
    const QUOTA: usize = 6_144;
    if document.chars().filter(|c| !c.is_whitespace()).count() > QUOTA {
        return Err(Error::LimitExceeded(format!(
            "Cannot exceed quota for PolicySize: {QUOTA}"
        )));
    }
    Ok(())
}

impl Directory {
    // --- managed policies ---

    pub async fn create_policy(
        &self,
        account: &str,
        name: &str,
        path: Option<&str>,
        document: &str,
        description: Option<&str>,
    ) -> Result<PolicyInfo> {
        check_name("policyName", name)?;
        let path = path.unwrap_or("/");
        check_path(path)?;
        check_managed_size(document)?;
        let _w = self.writing.lock().await;
        if self
            .read()
            .policies
            .keys()
            .any(|(a, n)| a == account && n.eq_ignore_ascii_case(name))
        {
            return Err(Error::AlreadyExists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            )));
        }
        let now = OffsetDateTime::now_utc();
        let doc = PolicyDoc {
            policy_id: format!("ANPA{}", random_string(UPPER_DIGITS, 17)?),
            path: path.to_owned(),
            description: description.map(str::to_owned),
            created: now,
            updated: now,
            default_version: 1,
            next_version: 2,
            versions: [(
                1,
                VersionDoc {
                    document: document.to_owned(),
                    created: now,
                },
            )]
            .into(),
        };
        self.store
            .iam_create(&record(account, KIND_POLICY, name, &doc)?)
            .await
            .map_err(internal)?;
        let mut st = self.write();
        st.policies
            .insert((account.to_owned(), name.to_owned()), doc.clone());
        Ok(info(&st, account, name, &doc))
    }

    fn policy_doc(&self, account: &str, arn: &str) -> Result<(String, PolicyDoc)> {
        let name = parse_arn(account, arn).ok_or_else(|| no_such_policy(arn))?;
        let st = self.read();
        let p = st
            .policies
            .get(&(account.to_owned(), name.to_owned()))
            .filter(|p| policy_arn(account, &p.path, name) == arn)
            .ok_or_else(|| no_such_policy(arn))?;
        Ok((name.to_owned(), p.clone()))
    }

    pub fn get_policy(&self, account: &str, arn: &str) -> Result<PolicyInfo> {
        if let Some((name, id, _)) = aws_managed(arn) {
            return Ok(aws_info(&self.read(), account, name, id));
        }
        let (name, p) = self.policy_doc(account, arn)?;
        Ok(info(&self.read(), account, &name, &p))
    }

    pub fn get_policy_version(
        &self,
        account: &str,
        arn: &str,
        version_id: &str,
    ) -> Result<PolicyVersion> {
        let no_version = || {
            Error::NoSuchEntity(format!(
                "Policy {arn} version {version_id} does not exist or is not attachable."
            ))
        };
        if let Some((_, _, doc)) = aws_managed(arn) {
            if version_id != "v1" {
                return Err(no_version());
            }
            return Ok(PolicyVersion {
                version_id: "v1".into(),
                document: doc.to_owned(),
                is_default: true,
                created: OffsetDateTime::UNIX_EPOCH,
            });
        }
        let (_, p) = self.policy_doc(account, arn)?;
        let n: u32 = version_id
            .strip_prefix('v')
            .and_then(|v| v.parse().ok())
            .ok_or_else(no_version)?;
        let v = p.versions.get(&n).ok_or_else(no_version)?;
        Ok(PolicyVersion {
            version_id: format!("v{n}"),
            document: v.document.clone(),
            is_default: n == p.default_version,
            created: v.created,
        })
    }

    pub fn list_policy_versions(&self, account: &str, arn: &str) -> Result<Vec<PolicyVersion>> {
        if aws_managed(arn).is_some() {
            return Ok(vec![self.get_policy_version(account, arn, "v1")?]);
        }
        let (_, p) = self.policy_doc(account, arn)?;
        Ok(p.versions
            .iter()
            .rev()
            .map(|(n, v)| PolicyVersion {
                version_id: format!("v{n}"),
                document: v.document.clone(),
                is_default: *n == p.default_version,
                created: v.created,
            })
            .collect())
    }

    /// `scope`: `All`, `AWS` or `Local`; `only_attached` as IAM's `OnlyAttached`.
    pub fn list_policies(
        &self,
        account: &str,
        scope: &str,
        only_attached: bool,
    ) -> Vec<PolicyInfo> {
        let st = self.read();
        let mut out = Vec::new();
        if scope != "Local" {
            out.extend(
                AWS_MANAGED
                    .iter()
                    .map(|(n, id, _)| aws_info(&st, account, n, id)),
            );
        }
        if scope != "AWS" {
            out.extend(
                st.policies
                    .iter()
                    .filter(|((a, _), _)| a == account)
                    .map(|((_, n), p)| info(&st, account, n, p)),
            );
        }
        out.retain(|p| !only_attached || p.attachment_count > 0);
        out
    }

    pub async fn create_policy_version(
        &self,
        account: &str,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion> {
        check_managed_size(document)?;
        let _w = self.writing.lock().await;
        let (name, mut p) = self.policy_doc(account, arn)?;
        if p.versions.len() >= MAX_VERSIONS {
            return Err(Error::LimitExceeded(format!(
                "A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new version, you must delete an existing version."
            )));
        }
        let now = OffsetDateTime::now_utc();
        let n = p.next_version;
        p.next_version += 1;
        p.versions.insert(
            n,
            VersionDoc {
                document: document.to_owned(),
                created: now,
            },
        );
        if set_as_default {
            p.default_version = n;
        }
        p.updated = now;
        self.save_policy(account, &name, p).await?;
        Ok(PolicyVersion {
            version_id: format!("v{n}"),
            document: document.to_owned(),
            is_default: set_as_default,
            created: now,
        })
    }

    async fn save_policy(&self, account: &str, name: &str, p: PolicyDoc) -> Result<()> {
        self.store
            .iam_update(&record(account, KIND_POLICY, name, &p)?)
            .await
            .map_err(internal)?;
        self.write()
            .policies
            .insert((account.to_owned(), name.to_owned()), p);
        Ok(())
    }

    /// As on AWS, an attached policy cannot be deleted (`DeleteConflict`).
    pub async fn delete_policy(&self, account: &str, arn: &str) -> Result<()> {
        if aws_managed(arn).is_some() {
            return Err(Error::Invalid(
                "AWS managed policies cannot be deleted.".into(),
            ));
        }
        let _w = self.writing.lock().await;
        let (name, _) = self.policy_doc(account, arn)?;
        if attachment_count(&self.read(), account, arn) > 0 {
            return Err(Error::DeleteConflict(
                "Cannot delete a policy attached to entities.".into(),
            ));
        }
        self.store
            .iam_delete(&[(account.to_owned(), KIND_POLICY.into(), name.clone())])
            .await
            .map_err(internal)?;
        self.write().policies.remove(&(account.to_owned(), name));
        Ok(())
    }

    /// Attaches (`attach`) or detaches a managed policy.
    pub async fn set_attached(
        &self,
        account: &str,
        to: Entity<'_>,
        arn: &str,
        attach: bool,
    ) -> Result<()> {
        let _w = self.writing.lock().await;
        if aws_managed(arn).is_none() {
            self.policy_doc(account, arn)?;
        }
        let change = |set: &mut BTreeSet<String>| -> Result<()> {
            if attach {
                if !set.contains(arn) && set.len() >= MAX_ATTACHED {
                    return Err(Error::LimitExceeded(format!(
                        "Cannot exceed quota for PoliciesPerEntity: {MAX_ATTACHED}"
                    )));
                }
                set.insert(arn.to_owned());
            } else if !set.remove(arn) {
                return Err(Error::NoSuchEntity(format!("Policy {arn} was not found.")));
            }
            Ok(())
        };
        match to {
            Entity::User(u) => {
                let mut d = self.user_doc(account, u)?;
                change(&mut d.attached)?;
                self.save_user(account, u, d).await
            }
            Entity::Group(g) => {
                let mut d = self.group_doc(account, g)?;
                change(&mut d.attached)?;
                self.save_group(account, g, d).await
            }
            Entity::Role(r) => {
                let mut d = self.role_doc(account, r)?;
                change(&mut d.attached)?;
                self.save_role(account, r, d).await
            }
        }
    }

    pub fn list_attached(&self, account: &str, of: Entity<'_>) -> Result<Vec<Attached>> {
        let set = match of {
            Entity::User(u) => self.user_doc(account, u)?.attached,
            Entity::Group(g) => self.group_doc(account, g)?.attached,
            Entity::Role(r) => self.role_doc(account, r)?.attached,
        };
        Ok(set
            .into_iter()
            .map(|arn| {
                let name = arn.rsplit('/').next().unwrap_or(&arn).to_owned();
                (name, arn)
            })
            .collect())
    }

    // --- groups ---

    fn group_info(account: &str, name: &str, g: &GroupDoc) -> GroupInfo {
        GroupInfo {
            name: name.to_owned(),
            group_id: g.group_id.clone(),
            arn: format!("arn:aws:iam::{account}:group{}{name}", g.path),
            path: g.path.clone(),
            created: g.created,
        }
    }

    pub async fn create_group(
        &self,
        account: &str,
        name: &str,
        path: Option<&str>,
    ) -> Result<GroupInfo> {
        check_name("groupName", name)?;
        let path = path.unwrap_or("/");
        check_path(path)?;
        let _w = self.writing.lock().await;
        if self
            .read()
            .groups
            .keys()
            .any(|(a, n)| a == account && n.eq_ignore_ascii_case(name))
        {
            return Err(Error::AlreadyExists(format!(
                "Group with name {name} already exists."
            )));
        }
        let doc = GroupDoc {
            group_id: format!("AGPA{}", random_string(UPPER_DIGITS, 17)?),
            path: path.to_owned(),
            created: OffsetDateTime::now_utc(),
            policies: BTreeMap::new(),
            attached: BTreeSet::new(),
            members: BTreeSet::new(),
        };
        self.store
            .iam_create(&record(account, KIND_GROUP, name, &doc)?)
            .await
            .map_err(internal)?;
        let info = Self::group_info(account, name, &doc);
        self.write()
            .groups
            .insert((account.to_owned(), name.to_owned()), doc);
        Ok(info)
    }

    pub(super) fn group_doc(&self, account: &str, name: &str) -> Result<GroupDoc> {
        self.read()
            .groups
            .get(&(account.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| no_such_group(name))
    }

    pub(super) async fn save_group(&self, account: &str, name: &str, g: GroupDoc) -> Result<()> {
        self.store
            .iam_update(&record(account, KIND_GROUP, name, &g)?)
            .await
            .map_err(internal)?;
        self.write()
            .groups
            .insert((account.to_owned(), name.to_owned()), g);
        Ok(())
    }

    /// The group and its members (user names).
    pub fn get_group(&self, account: &str, name: &str) -> Result<(GroupInfo, Vec<String>)> {
        let g = self.group_doc(account, name)?;
        Ok((
            Self::group_info(account, name, &g),
            g.members.into_iter().collect(),
        ))
    }

    pub fn list_groups(&self, account: &str, user: Option<&str>) -> Result<Vec<GroupInfo>> {
        if let Some(u) = user {
            self.user_doc(account, u)?;
        }
        Ok(self
            .read()
            .groups
            .iter()
            .filter(|((a, _), g)| a == account && user.is_none_or(|u| g.members.contains(u)))
            .map(|((a, n), g)| Self::group_info(a, n, g))
            .collect())
    }

    pub async fn delete_group(&self, account: &str, name: &str) -> Result<()> {
        let _w = self.writing.lock().await;
        let g = self.group_doc(account, name)?;
        if !g.members.is_empty() {
            return Err(Error::DeleteConflict(
                "Cannot delete entity, must remove users from group first.".into(),
            ));
        }
        if !g.policies.is_empty() || !g.attached.is_empty() {
            return Err(Error::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        self.store
            .iam_delete(&[(account.to_owned(), KIND_GROUP.into(), name.to_owned())])
            .await
            .map_err(internal)?;
        self.write()
            .groups
            .remove(&(account.to_owned(), name.to_owned()));
        Ok(())
    }

    pub async fn set_membership(
        &self,
        account: &str,
        group: &str,
        user: &str,
        member: bool,
    ) -> Result<()> {
        let _w = self.writing.lock().await;
        let mut g = self.group_doc(account, group)?;
        self.user_doc(account, user)?;
        if member {
            g.members.insert(user.to_owned());
        } else if !g.members.remove(user) {
            return Err(Error::NoSuchEntity(format!(
                "User {user} is not in group {group}."
            )));
        }
        self.save_group(account, group, g).await
    }
}
