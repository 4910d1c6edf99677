//! Identities, for those allowed to see them: users, groups, roles and customer managed
//! policies; a user's access keys (a new key's secret is shown once, on the page that
//! created it, and kept nowhere), groups, inline and attached policies; a role's trust
//! policy and policies; a group's members and policies; and the policy simulator
//! (`SimulatePrincipalPolicy`). Everything is an IAM call as the signed-in principal.

use http::{Response, StatusCode};
use maud::{Markup, html};

use coffer_api::Body;

use crate::call::{ApiError, Xml};
use crate::page::{Nav, csrf, error_box, notice, q};
use crate::{Cx, PREFIX};

fn status(e: &ApiError) -> StatusCode {
    e.http_status()
}

/// The `member`s of a reply's list element `list`.
fn members<'a>(x: &'a Xml, list: &str) -> Vec<&'a Xml> {
    x.find(list)
        .map(|l| l.children.iter().filter(|c| c.name == "member").collect())
        .unwrap_or_default()
}

/// A URL-encoded policy document as IAM returns it, pretty-printed when it is JSON.
fn policy_text(encoded: &str) -> String {
    let text = crate::form::decode_percent(encoded);
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text)
}

async fn iam(cx: &Cx<'_>, params: &[(&str, &str)]) -> Result<Xml, ApiError> {
    cx.caller().query("iam", params).await
}

/// Users, groups, roles and policies of the account.
pub async fn overview(cx: &Cx<'_>) -> Response<Body> {
    let users = iam(cx, &[("Action", "ListUsers")]).await;
    let groups = iam(cx, &[("Action", "ListGroups")]).await;
    let roles = iam(cx, &[("Action", "ListRoles")]).await;
    let policies = iam(cx, &[("Action", "ListPolicies"), ("Scope", "Local")]).await;
    // Someone who may see none of them sees why, once.
    if let (Err(e), Err(_), Err(_), Err(_)) = (&users, &groups, &roles, &policies) {
        return cx.page(status(e), "Identities", Nav::Identities, error_box(e));
    }
    let base = format!("{PREFIX}/identities");
    cx.page(
        StatusCode::OK,
        "Identities",
        Nav::Identities,
        html! {
            p { a href={ (base) "/simulate" } { "Policy simulator" } }
            section aria-labelledby="users-h" {
                h2 id="users-h" { "Users" }
                @match &users {
                    Ok(x) => {
                        table.users { thead { tr { th scope="col" { "Name" } th scope="col" { "ARN" } th scope="col" { "Created" } } }
                            tbody { @for u in members(x, "Users") { tr {
                                td { a href={ (base) "/users/" (q(u.get("UserName"))) } { (u.get("UserName")) } }
                                td { code { (u.get("Arn")) } }
                                td { (u.get("CreateDate")) }
                            } } }
                        }
                    }
                    Err(e) => (error_box(e)),
                }
                form method="post" action={ (base) "/users" } {
                    (csrf(&cx.session))
                    label for="new-user" { "New user name" }
                    input id="new-user" name="name" required spellcheck="false";
                    button type="submit" { "Create user" }
                }
            }
            section aria-labelledby="groups-h" {
                h2 id="groups-h" { "Groups" }
                @match &groups {
                    Ok(x) => ul { @for g in members(x, "Groups") {
                        li { a href={ (base) "/groups/" (q(g.get("GroupName"))) } { (g.get("GroupName")) } }
                    } }
                    Err(e) => (error_box(e)),
                }
            }
            section aria-labelledby="roles-h" {
                h2 id="roles-h" { "Roles" }
                @match &roles {
                    Ok(x) => ul { @for r in members(x, "Roles") {
                        li { a href={ (base) "/roles/" (q(r.get("RoleName"))) } { (r.get("RoleName")) } }
                    } }
                    Err(e) => (error_box(e)),
                }
            }
            section aria-labelledby="policies-h" {
                h2 id="policies-h" { "Customer managed policies" }
                @match &policies {
                    Ok(x) => {
                        table { thead { tr { th scope="col" { "Name" } th scope="col" { "ARN" } th scope="col" { "Attached to" } th scope="col" { "Default version" } } }
                            tbody { @for p in members(x, "Policies") { tr {
                                td { (p.get("PolicyName")) }
                                td { code { (p.get("Arn")) } }
                                td { (p.get("AttachmentCount")) }
                                td { (p.get("DefaultVersionId")) }
                            } } }
                        }
                    }
                    Err(e) => (error_box(e)),
                }
            }
        },
    )
}

pub async fn create_user(cx: &Cx<'_>, form: &[(String, String)]) -> Response<Body> {
    let name = crate::form::field(form, "name")
        .unwrap_or("")
        .trim()
        .to_owned();
    match iam(cx, &[("Action", "CreateUser"), ("UserName", &name)]).await {
        Ok(_) => crate::page::see_other(&format!("{PREFIX}/identities/users/{}", q(&name))),
        Err(e) => cx.page(
            status(&e),
            "Identities",
            Nav::Identities,
            html! { (error_box(&e)) p { a href={ (PREFIX) "/identities" } { "Back" } } },
        ),
    }
}

/// Inline policies of a user, group or role, each with its document.
async fn inline(cx: &Cx<'_>, kind: &str, name: &str) -> Result<Vec<(String, String)>, ApiError> {
    let (list, get, param) = match kind {
        "user" => ("ListUserPolicies", "GetUserPolicy", "UserName"),
        "group" => ("ListGroupPolicies", "GetGroupPolicy", "GroupName"),
        _ => ("ListRolePolicies", "GetRolePolicy", "RoleName"),
    };
    let names = iam(cx, &[("Action", list), (param, name)]).await?;
    let mut out = Vec::new();
    for n in members(&names, "PolicyNames") {
        let doc = iam(
            cx,
            &[("Action", get), (param, name), ("PolicyName", &n.text)],
        )
        .await?;
        out.push((
            n.text.clone(),
            policy_text(
                doc.find("PolicyDocument")
                    .map(|d| d.text.as_str())
                    .unwrap_or(""),
            ),
        ));
    }
    Ok(out)
}

async fn attached(cx: &Cx<'_>, kind: &str, name: &str) -> Result<Vec<(String, String)>, ApiError> {
    let (action, param) = match kind {
        "user" => ("ListAttachedUserPolicies", "UserName"),
        "group" => ("ListAttachedGroupPolicies", "GroupName"),
        _ => ("ListAttachedRolePolicies", "RoleName"),
    };
    let x = iam(cx, &[("Action", action), (param, name)]).await?;
    Ok(members(&x, "AttachedPolicies")
        .iter()
        .map(|p| {
            (
                p.get("PolicyName").to_owned(),
                p.get("PolicyArn").to_owned(),
            )
        })
        .collect())
}

fn policies_section(
    inline: &Result<Vec<(String, String)>, ApiError>,
    attached: &Result<Vec<(String, String)>, ApiError>,
) -> Markup {
    html! {
        section aria-labelledby="inline-h" {
            h2 id="inline-h" { "Inline policies" }
            @match inline {
                Ok(list) if list.is_empty() => p { "None." },
                Ok(list) => @for (n, doc) in list { h3 { (n) } pre.policy { (doc) } },
                Err(e) => (error_box(e)),
            }
        }
        section aria-labelledby="attached-h" {
            h2 id="attached-h" { "Attached managed policies" }
            @match attached {
                Ok(list) if list.is_empty() => p { "None." },
                Ok(list) => ul { @for (n, arn) in list { li { (n) " " code { (arn) } } } },
                Err(e) => (error_box(e)),
            }
        }
    }
}

/// A user's page; `created` is a key just created, whose secret is shown this once.
pub async fn user(
    cx: &Cx<'_>,
    name: &str,
    outcome: Option<Result<Markup, ApiError>>,
) -> Response<Body> {
    let got = match iam(cx, &[("Action", "GetUser"), ("UserName", name)]).await {
        Ok(x) => x,
        Err(e) => return cx.page(status(&e), name, Nav::Identities, error_box(&e)),
    };
    let keys = iam(cx, &[("Action", "ListAccessKeys"), ("UserName", name)]).await;
    let groups = iam(cx, &[("Action", "ListGroupsForUser"), ("UserName", name)]).await;
    let inline = inline(cx, "user", name).await;
    let attached = attached(cx, "user", name).await;
    let base = format!("{PREFIX}/identities/users/{}", q(name));
    let (code, banner) = match outcome {
        None => (StatusCode::OK, html! {}),
        Some(Ok(m)) => (StatusCode::OK, m),
        Some(Err(e)) => (status(&e), error_box(&e)),
    };
    cx.page(
        code,
        &format!("User {name}"),
        Nav::Identities,
        html! {
            (banner)
            p { a href={ (PREFIX) "/identities" } { "All identities" } }
            dl.details {
                dt { "ARN" } dd { code { (got.find("Arn").map(|n| n.text.as_str()).unwrap_or("")) } }
                dt { "Created" } dd { (got.find("CreateDate").map(|n| n.text.as_str()).unwrap_or("")) }
            }
            section aria-labelledby="keys-h" {
                h2 id="keys-h" { "Access keys" }
                @match &keys {
                    Ok(x) => {
                        table.access-keys { thead { tr { th scope="col" { "Access key ID" } th scope="col" { "Status" } th scope="col" { "Created" } th scope="col" { "" } } }
                            tbody { @for k in members(x, "AccessKeyMetadata") { tr {
                                td { code { (k.get("AccessKeyId")) } }
                                td { (k.get("Status")) }
                                td { (k.get("CreateDate")) }
                                td {
                                    form.inline method="post" action=(base) {
                                        (csrf(&cx.session))
                                        input type="hidden" name="key" value=(k.get("AccessKeyId"));
                                        @if k.get("Status") == "Active" {
                                            input type="hidden" name="action" value="deactivate-key";
                                            button type="submit" { "Deactivate" }
                                        } @else {
                                            input type="hidden" name="action" value="delete-key";
                                            button.danger type="submit" { "Delete" }
                                        }
                                    }
                                }
                            } } }
                        }
                    }
                    Err(e) => (error_box(e)),
                }
                form method="post" action=(base) {
                    (csrf(&cx.session))
                    input type="hidden" name="action" value="create-key";
                    button type="submit" { "Create access key" }
                }
            }
            section aria-labelledby="groups-h" {
                h2 id="groups-h" { "Groups" }
                @match &groups {
                    Ok(x) => ul { @for g in members(x, "Groups") { li { (g.get("GroupName")) } } },
                    Err(e) => (error_box(e)),
                }
            }
            (policies_section(&inline, &attached))
            section aria-labelledby="put-h" {
                h2 id="put-h" { "Add or replace an inline policy" }
                form method="post" action=(base) {
                    (csrf(&cx.session))
                    input type="hidden" name="action" value="put-policy";
                    label for="policy-name" { "Policy name" }
                    input id="policy-name" name="policy_name" required spellcheck="false";
                    label for="policy" { "Policy document (JSON); checked by the server's own parser" }
                    textarea id="policy" name="policy" rows="12" spellcheck="false" {}
                    button type="submit" { "Save inline policy" }
                }
            }
        },
    )
}

pub async fn user_action(cx: &Cx<'_>, name: &str, form: &[(String, String)]) -> Response<Body> {
    let field = |n: &str| crate::form::field(form, n).unwrap_or("").to_owned();
    let outcome = match field("action").as_str() {
        "create-key" => iam(cx, &[("Action", "CreateAccessKey"), ("UserName", name)])
            .await
            .map(|x| {
                let id = x.find("AccessKeyId").map(|n| n.text.clone()).unwrap_or_default();
                let secret = x
                    .find("SecretAccessKey")
                    .map(|n| n.text.clone())
                    .unwrap_or_default();
                html! {
                    div.notice.secret role="status" {
                        p { strong { "New access key " code.key-id { (id) } } }
                        p { "Secret access key (shown this once; Coffer cannot show it again): " code.secret { (secret) } }
                    }
                }
            }),
        "deactivate-key" => iam(
            cx,
            &[
                ("Action", "UpdateAccessKey"),
                ("UserName", name),
                ("AccessKeyId", &field("key")),
                ("Status", "Inactive"),
            ],
        )
        .await
        .map(|_| notice("Access key deactivated.")),
        "delete-key" => iam(
            cx,
            &[
                ("Action", "DeleteAccessKey"),
                ("UserName", name),
                ("AccessKeyId", &field("key")),
            ],
        )
        .await
        .map(|_| notice("Access key deleted.")),
        "put-policy" => iam(
            cx,
            &[
                ("Action", "PutUserPolicy"),
                ("UserName", name),
                ("PolicyName", &field("policy_name")),
                ("PolicyDocument", &field("policy")),
            ],
        )
        .await
        .map(|_| notice("Inline policy saved.")),
        _ => Err(ApiError {
            status: 400,
            code: "InvalidAction".into(),
            message: "Unknown action.".into(),
        }),
    };
    user(cx, name, Some(outcome)).await
}

pub async fn group(cx: &Cx<'_>, name: &str) -> Response<Body> {
    let got = match iam(cx, &[("Action", "GetGroup"), ("GroupName", name)]).await {
        Ok(x) => x,
        Err(e) => return cx.page(status(&e), name, Nav::Identities, error_box(&e)),
    };
    let inline = inline(cx, "group", name).await;
    let attached = attached(cx, "group", name).await;
    cx.page(
        StatusCode::OK,
        &format!("Group {name}"),
        Nav::Identities,
        html! {
            p { a href={ (PREFIX) "/identities" } { "All identities" } }
            h2 { "Members" }
            ul { @for u in members(&got, "Users") {
                li { a href={ (PREFIX) "/identities/users/" (q(u.get("UserName"))) } { (u.get("UserName")) } }
            } }
            (policies_section(&inline, &attached))
        },
    )
}

pub async fn role(cx: &Cx<'_>, name: &str) -> Response<Body> {
    let got = match iam(cx, &[("Action", "GetRole"), ("RoleName", name)]).await {
        Ok(x) => x,
        Err(e) => return cx.page(status(&e), name, Nav::Identities, error_box(&e)),
    };
    let inline = inline(cx, "role", name).await;
    let attached = attached(cx, "role", name).await;
    let trust = got
        .find("AssumeRolePolicyDocument")
        .map(|d| policy_text(&d.text))
        .unwrap_or_default();
    cx.page(
        StatusCode::OK,
        &format!("Role {name}"),
        Nav::Identities,
        html! {
            p { a href={ (PREFIX) "/identities" } { "All identities" } }
            dl.details {
                dt { "ARN" } dd { code { (got.find("Arn").map(|n| n.text.as_str()).unwrap_or("")) } }
                dt { "Maximum session" } dd { (got.find("MaxSessionDuration").map(|n| n.text.as_str()).unwrap_or("")) " s" }
            }
            h2 { "Trust policy" }
            pre.policy { (trust) }
            (policies_section(&inline, &attached))
        },
    )
}

/// The policy simulator: `SimulatePrincipalPolicy` for a user or role, actions and
/// resources given in the form (GET: it changes nothing).
pub async fn simulate(cx: &Cx<'_>) -> Response<Body> {
    let principal = cx.param("principal").unwrap_or("").trim().to_owned();
    let actions = cx.param("actions").unwrap_or("").to_owned();
    let resources = cx.param("resources").unwrap_or("").to_owned();
    let split = |s: &str| -> Vec<String> {
        s.split([',', '\n', ' '])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let result = if principal.is_empty() || split(&actions).is_empty() {
        None
    } else {
        let mut params: Vec<(String, String)> = vec![
            ("Action".into(), "SimulatePrincipalPolicy".into()),
            ("PolicySourceArn".into(), principal.clone()),
        ];
        for (i, a) in split(&actions).iter().enumerate() {
            params.push((format!("ActionNames.member.{}", i + 1), a.clone()));
        }
        for (i, r) in split(&resources).iter().enumerate() {
            params.push((format!("ResourceArns.member.{}", i + 1), r.clone()));
        }
        let borrowed: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Some(iam(cx, &borrowed).await)
    };
    let code = match &result {
        Some(Err(e)) => status(e),
        _ => StatusCode::OK,
    };
    cx.page(
        code,
        "Policy simulator",
        Nav::Identities,
        html! {
            form method="get" action={ (PREFIX) "/identities/simulate" } {
                label for="principal" { "User or role ARN" }
                input id="principal" name="principal" value=(principal) required spellcheck="false";
                label for="actions" { "Actions (comma-separated, e.g. s3:GetObject, kms:Decrypt)" }
                input id="actions" name="actions" value=(actions) required spellcheck="false";
                label for="resources" { "Resource ARNs (comma-separated; empty for *)" }
                input id="resources" name="resources" value=(resources) spellcheck="false";
                button type="submit" { "Simulate" }
            }
            @match &result {
                None => {}
                Some(Err(e)) => (error_box(e)),
                Some(Ok(x)) => {
                    table.simulation { thead { tr { th scope="col" { "Action" } th scope="col" { "Resource" } th scope="col" { "Decision" } } }
                        tbody { @for r in members(x, "EvaluationResults") { tr {
                            td { (r.get("EvalActionName")) }
                            td { (r.get("EvalResourceName")) }
                            td.decision { (r.get("EvalDecision")) }
                        } } }
                    }
                }
            }
        },
    )
}
