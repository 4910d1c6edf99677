//! The grant operations on the wire: CreateGrant, ListGrants, ListRetirableGrants,
//! RetireGrant, RevokeGrant.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use coffer_kms::{Caller, CreateGrant, Grant, Kms};

use crate::error::{WireError, to_wire};
use crate::operation::Grants;
use crate::ops::dry_run;
use crate::request::{Answer, Request};
use crate::wire::epoch;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Constraints {
    encryption_context_equals: Option<BTreeMap<String, String>>,
    encryption_context_subset: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrantReq {
    key_id: String,
    grantee_principal: String,
    retiring_principal: Option<String>,
    operations: Vec<String>,
    constraints: Option<Constraints>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    name: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrantsReq {
    key_id: String,
    grant_id: Option<String>,
    grantee_principal: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRetirableReq {
    retiring_principal: String,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RetireReq {
    grant_token: Option<String>,
    key_id: Option<String>,
    grant_id: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RevokeReq {
    key_id: String,
    grant_id: String,
    dry_run: Option<bool>,
}

fn grant(g: &Grant) -> Value {
    let mut v = json!({
        "KeyId": g.key_arn,
        "GrantId": g.grant_id,
        "CreationDate": epoch(g.created),
        "GranteePrincipal": g.grantee,
        "IssuingAccount": g.issuing_account,
        "Operations": g.operations,
    });
    if let Some(n) = &g.name {
        v["Name"] = json!(n);
    }
    if let Some(r) = &g.retiring {
        v["RetiringPrincipal"] = json!(r);
    }
    if let Some(c) = &g.context_equals {
        v["Constraints"] = json!({ "EncryptionContextEquals": c });
    }
    if let Some(c) = &g.context_subset {
        v["Constraints"] = json!({ "EncryptionContextSubset": c });
    }
    v
}

/// One page of grants (ordered by grant id): `Limit` 1-100 (default 50), `Marker` is the
/// last grant id of the previous page.
fn page(
    mut grants: Vec<Grant>,
    limit: Option<i64>,
    marker: Option<&str>,
) -> Result<Value, WireError> {
    let limit = match limit {
        None => 50,
        Some(n) if (1..=100).contains(&n) => usize::try_from(n).unwrap_or(50),
        Some(n) => {
            return Err(WireError::validation(format!(
                "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100"
            )));
        }
    };
    grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
    if let Some(m) = marker {
        if !grants.iter().any(|g| g.grant_id == m) && !m.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(WireError::new("InvalidMarkerException", "Invalid marker."));
        }
        grants.retain(|g| g.grant_id.as_str() > m);
    }
    let truncated = grants.len() > limit;
    grants.truncate(limit);
    let mut v = json!({
        "Grants": grants.iter().map(grant).collect::<Vec<_>>(),
        "Truncated": truncated,
    });
    if truncated && let Some(last) = grants.last() {
        v["NextMarker"] = json!(last.grant_id);
    }
    Ok(v)
}

pub async fn run(
    kms: &Kms,
    op: Grants,
    req: &Request<'_>,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<Answer, WireError> {
    let mut shown = None;
    let v = match op {
        Grants::CreateGrant => {
            let r: CreateGrantReq = req.input()?;
            let c = r.constraints.unwrap_or_default();
            if r.dry_run == Some(true) {
                // Authorize and check the key's state, then stop.
                let op = coffer_kms::Op::CreateGrant;
                kms.authorize_use(caller, &r.key_id, op.action(), op, &BTreeMap::new())
                    .await
                    .map_err(to_wire)?;
                dry_run(r.dry_run)?;
            }
            let (id, token) = kms
                .create_grant(
                    caller,
                    &CreateGrant {
                        key_id: &r.key_id,
                        grantee: &r.grantee_principal,
                        retiring: r.retiring_principal.as_deref(),
                        operations: r.operations,
                        context_equals: c.encryption_context_equals,
                        context_subset: c.encryption_context_subset,
                        name: r.name.as_deref(),
                    },
                    now,
                )
                .await
                .map_err(to_wire)?;
            // The trail shows the grant's id, never its token (a credential).
            shown = Some(json!({ "grantId": id }));
            json!({ "GrantId": id, "GrantToken": token })
        }
        Grants::ListGrants => {
            let r: ListGrantsReq = req.input()?;
            let grants = kms
                .list_grants(
                    caller,
                    &r.key_id,
                    r.grant_id.as_deref(),
                    r.grantee_principal.as_deref(),
                )
                .await
                .map_err(to_wire)?;
            page(grants, r.limit, r.marker.as_deref())?
        }
        Grants::ListRetirableGrants => {
            let r: ListRetirableReq = req.input()?;
            let grants = kms
                .list_retirable_grants(&r.retiring_principal)
                .map_err(to_wire)?;
            page(grants, r.limit, r.marker.as_deref())?
        }
        Grants::RetireGrant => {
            let r: RetireReq = req.input()?;
            dry_run(r.dry_run)?;
            kms.retire_grant(
                caller,
                r.grant_token.as_deref(),
                r.key_id.as_deref(),
                r.grant_id.as_deref(),
            )
            .await
            .map_err(to_wire)?;
            json!({})
        }
        Grants::RevokeGrant => {
            let r: RevokeReq = req.input()?;
            dry_run(r.dry_run)?;
            kms.revoke_grant(caller, &r.key_id, &r.grant_id)
                .await
                .map_err(to_wire)?;
            json!({})
        }
    };
    // A listing is about the key of its first grant, as the trail records it.
    let about = v["Grants"][0]["KeyId"].as_str().map(str::to_owned);
    let answer = Answer::render(&v, None).about(about);
    Ok(match shown {
        Some(shown) => answer.showing(shown),
        None => answer,
    })
}
