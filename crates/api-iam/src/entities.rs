//! IAM operations on managed policies, groups and roles. Policy documents are validated by
//! the policy grammar before they are stored: permission policies as identity policies,
//! trust policies as resource policies.

use coffer_iam::{Directory, Entity};
use coffer_policy::document::{Document, Kind};

use crate::operation::Entities;
use crate::wire::{self, Xml, member_list};
use crate::{Call, Fail, fail};

fn identity_doc(doc: &str) -> Result<(), Fail> {
    Document::parse(doc, Kind::Identity)
        .map(|_| ())
        .map_err(|e| fail("MalformedPolicyDocument", 400, e.0))
}

fn trust_doc(doc: &str) -> Result<(), Fail> {
    Document::parse(doc, Kind::Resource)
        .map(|_| ())
        .map_err(|e| fail("MalformedPolicyDocument", 400, e.0))
}

/// The user, group or role an inline-policy operation names (by its `User`/`Group`/`Role`
/// part).
fn entity<'a>(call: &'a Call<'_>, operation: &str) -> Result<Entity<'a>, Fail> {
    Ok(if operation.contains("Group") {
        Entity::Group(call.need("GroupName")?)
    } else if operation.contains("Role") {
        Entity::Role(call.need("RoleName")?)
    } else {
        Entity::User(call.need("UserName")?)
    })
}

fn truncated(name: &str, items: &[String]) -> String {
    Xml::new()
        .raw(name, &member_list(items))
        .text("IsTruncated", "false")
        .done()
}

/// Serves one of this module's operations.
pub(crate) async fn dispatch(d: &Directory, call: &Call<'_>, op: Entities) -> Result<String, Fail> {
    let acct = call.account();
    let operation = op.name();
    Ok(match op {
        // --- inline policies of users, groups and roles ---
        Entities::PutUserPolicy | Entities::PutGroupPolicy | Entities::PutRolePolicy => {
            let doc = call.need("PolicyDocument")?;
            identity_doc(doc)?;
            d.put_inline_policy(
                acct,
                entity(call, operation)?,
                call.need("PolicyName")?,
                doc,
            )
            .await?;
            String::new()
        }
        Entities::GetUserPolicy | Entities::GetGroupPolicy | Entities::GetRolePolicy => {
            let of = entity(call, operation)?;
            let name = call.need("PolicyName")?;
            let doc = d.get_inline_policy(acct, of, name)?;
            let (element, who) = match of {
                Entity::User(n) => ("UserName", n),
                Entity::Group(n) => ("GroupName", n),
                Entity::Role(n) => ("RoleName", n),
            };
            Xml::new()
                .text(element, who)
                .text("PolicyName", name)
                .text("PolicyDocument", &wire::url_encode(&doc))
                .done()
        }
        Entities::ListUserPolicies | Entities::ListGroupPolicies | Entities::ListRolePolicies => {
            wire::names(&d.list_inline_policies(acct, entity(call, operation)?)?)
        }
        Entities::DeleteUserPolicy | Entities::DeleteGroupPolicy | Entities::DeleteRolePolicy => {
            d.delete_inline_policy(acct, entity(call, operation)?, call.need("PolicyName")?)
                .await?;
            String::new()
        }

        // --- managed policies ---
        Entities::CreatePolicy => {
            let doc = call.need("PolicyDocument")?;
            identity_doc(doc)?;
            let p = d
                .create_policy(
                    acct,
                    call.need("PolicyName")?,
                    call.get("Path"),
                    doc,
                    call.get("Description"),
                )
                .await?;
            Xml::new().raw("Policy", &wire::policy(&p)).done()
        }
        Entities::GetPolicy => {
            let p = d.get_policy(acct, call.need("PolicyArn")?)?;
            Xml::new().raw("Policy", &wire::policy(&p)).done()
        }
        Entities::GetPolicyVersion => {
            let v = d.get_policy_version(acct, call.need("PolicyArn")?, call.need("VersionId")?)?;
            Xml::new()
                .raw("PolicyVersion", &wire::policy_version(&v))
                .done()
        }
        Entities::ListPolicyVersions => {
            let items: Vec<String> = d
                .list_policy_versions(acct, call.need("PolicyArn")?)?
                .iter()
                .map(|v| {
                    // ListPolicyVersions omits the document, as AWS does.
                    Xml::new()
                        .text("VersionId", &v.version_id)
                        .text(
                            "IsDefaultVersion",
                            if v.is_default { "true" } else { "false" },
                        )
                        .text("CreateDate", &wire::iso(v.created))
                        .done()
                })
                .collect();
            truncated("Versions", &items)
        }
        Entities::CreatePolicyVersion => {
            let doc = call.need("PolicyDocument")?;
            identity_doc(doc)?;
            let v = d
                .create_policy_version(
                    acct,
                    call.need("PolicyArn")?,
                    doc,
                    call.get("SetAsDefault") == Some("true"),
                )
                .await?;
            Xml::new()
                .raw("PolicyVersion", &wire::policy_version(&v))
                .done()
        }
        Entities::ListPolicies => {
            let scope = call.get("Scope").unwrap_or("All");
            if !matches!(scope, "All" | "AWS" | "Local") {
                return Err(fail(
                    "ValidationError",
                    400,
                    format!(
                        "1 validation error detected: Value '{scope}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
                    ),
                ));
            }
            let items: Vec<String> = d
                .list_policies(acct, scope, call.get("OnlyAttached") == Some("true"))
                .iter()
                .map(wire::policy)
                .collect();
            truncated("Policies", &items)
        }
        Entities::DeletePolicy => {
            d.delete_policy(acct, call.need("PolicyArn")?).await?;
            String::new()
        }
        Entities::AttachUserPolicy | Entities::DetachUserPolicy => {
            let to = Entity::User(call.need("UserName")?);
            let attach = operation.starts_with("Attach");
            d.set_attached(acct, to, call.need("PolicyArn")?, attach)
                .await?;
            String::new()
        }
        Entities::AttachGroupPolicy | Entities::DetachGroupPolicy => {
            let to = Entity::Group(call.need("GroupName")?);
            let attach = operation.starts_with("Attach");
            d.set_attached(acct, to, call.need("PolicyArn")?, attach)
                .await?;
            String::new()
        }
        Entities::AttachRolePolicy | Entities::DetachRolePolicy => {
            let to = Entity::Role(call.need("RoleName")?);
            let attach = operation.starts_with("Attach");
            d.set_attached(acct, to, call.need("PolicyArn")?, attach)
                .await?;
            String::new()
        }
        Entities::ListAttachedUserPolicies => {
            wire::attached(&d.list_attached(acct, Entity::User(call.need("UserName")?))?)
        }
        Entities::ListAttachedGroupPolicies => {
            wire::attached(&d.list_attached(acct, Entity::Group(call.need("GroupName")?))?)
        }
        Entities::ListAttachedRolePolicies => {
            wire::attached(&d.list_attached(acct, Entity::Role(call.need("RoleName")?))?)
        }

        // --- groups ---
        Entities::CreateGroup => {
            let g = d
                .create_group(acct, call.need("GroupName")?, call.get("Path"))
                .await?;
            Xml::new().raw("Group", &wire::group(&g)).done()
        }
        Entities::GetGroup => {
            let (g, members) = d.get_group(acct, call.need("GroupName")?)?;
            let users: Vec<String> = members
                .iter()
                .filter_map(|u| d.get_user(acct, u).ok())
                .map(|u| wire::user(&u))
                .collect();
            Xml::new()
                .raw("Group", &wire::group(&g))
                .raw("Users", &member_list(&users))
                .text("IsTruncated", "false")
                .done()
        }
        Entities::ListGroups => {
            let items: Vec<String> = d.list_groups(acct, None)?.iter().map(wire::group).collect();
            truncated("Groups", &items)
        }
        Entities::ListGroupsForUser => {
            let items: Vec<String> = d
                .list_groups(acct, Some(call.need("UserName")?))?
                .iter()
                .map(wire::group)
                .collect();
            truncated("Groups", &items)
        }
        Entities::DeleteGroup => {
            d.delete_group(acct, call.need("GroupName")?).await?;
            String::new()
        }
        Entities::AddUserToGroup | Entities::RemoveUserFromGroup => {
            d.set_membership(
                acct,
                call.need("GroupName")?,
                call.need("UserName")?,
                op == Entities::AddUserToGroup,
            )
            .await?;
            String::new()
        }

        // --- roles ---
        Entities::CreateRole => {
            let trust = call.need("AssumeRolePolicyDocument")?;
            trust_doc(trust)?;
            let max = match call.get("MaxSessionDuration") {
                Some(v) => Some(v.parse::<i64>().map_err(|_| {
                    fail(
                        "ValidationError",
                        400,
                        "MaxSessionDuration must be a number",
                    )
                })?),
                None => None,
            };
            let r = d
                .create_role(
                    acct,
                    call.need("RoleName")?,
                    call.get("Path"),
                    trust,
                    call.get("Description"),
                    max,
                )
                .await?;
            Xml::new().raw("Role", &wire::role(&r)).done()
        }
        Entities::GetRole => {
            let r = d.get_role(acct, call.need("RoleName")?)?;
            Xml::new().raw("Role", &wire::role(&r)).done()
        }
        Entities::ListRoles => {
            let items: Vec<String> = d.list_roles(acct).iter().map(wire::role).collect();
            truncated("Roles", &items)
        }
        Entities::DeleteRole => {
            d.delete_role(acct, call.need("RoleName")?).await?;
            String::new()
        }
        Entities::UpdateAssumeRolePolicy => {
            let trust = call.need("PolicyDocument")?;
            trust_doc(trust)?;
            d.update_trust_policy(acct, call.need("RoleName")?, trust)
                .await?;
            String::new()
        }
    })
}
