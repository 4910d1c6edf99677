//! KMS keys: the list (state, spec, usage, aliases, rotation), a key's page (material
//! versions, policy, grants, tags) and its actions, and the impact report shown before a
//! key is disabled or scheduled for deletion.

use http::{Response, StatusCode};
use maud::{Markup, html};
use serde_json::{Value, json};

use coffer_api::Body;
use coffer_objects::{BucketImpact, KeyNames};

use crate::call::ApiError;
use crate::page::epoch_time as when;
use crate::page::{Nav, csrf, error_box, notice, size};
use crate::{Cx, PREFIX};

fn status(e: &ApiError) -> StatusCode {
    e.http_status()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The aliases of every key (or of one), by key id.
async fn aliases(cx: &Cx<'_>, key: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut input = json!({"Limit": 100});
        if let Some(k) = key {
            input["KeyId"] = json!(k);
        }
        if let Some(m) = &marker {
            input["Marker"] = json!(m);
        }
        let Ok(v) = cx.caller().kms("ListAliases", input).await else {
            break;
        };
        for a in v["Aliases"].as_array().into_iter().flatten() {
            if let (Some(n), Some(k)) = (a["AliasName"].as_str(), a["TargetKeyId"].as_str()) {
                out.push((k.to_owned(), n.to_owned()));
            }
        }
        match v["NextMarker"].as_str() {
            Some(m) if v["Truncated"].as_bool() == Some(true) => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    out
}

pub async fn list(cx: &Cx<'_>) -> Response<Body> {
    let caller = cx.caller();
    let mut keys = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut input = json!({"Limit": 1000});
        if let Some(m) = &marker {
            input["Marker"] = json!(m);
        }
        match caller.kms("ListKeys", input).await {
            Ok(v) => {
                keys.extend(
                    v["Keys"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|k| k["KeyId"].as_str().map(str::to_owned)),
                );
                match v["NextMarker"].as_str() {
                    Some(m) if v["Truncated"].as_bool() == Some(true) => {
                        marker = Some(m.to_owned())
                    }
                    _ => break,
                }
            }
            Err(e) => {
                return cx.page(
                    status(&e),
                    "Keys",
                    Nav::Keys,
                    html! { (error_box(&e)) (create_form(cx)) },
                );
            }
        }
    }
    let names = aliases(cx, None).await;
    let mut rows = Vec::new();
    for id in &keys {
        let meta = caller
            .kms("DescribeKey", json!({"KeyId": id}))
            .await
            .map(|v| v["KeyMetadata"].clone());
        let rotation = match &meta {
            Ok(m) if s(&m["KeySpec"]) == "SYMMETRIC_DEFAULT" && s(&m["Origin"]) == "AWS_KMS" => {
                caller
                    .kms("GetKeyRotationStatus", json!({"KeyId": id}))
                    .await
                    .ok()
            }
            _ => None,
        };
        rows.push((id.clone(), meta, rotation));
    }
    cx.page(
        StatusCode::OK,
        "Keys",
        Nav::Keys,
        html! {
            table.keys {
                caption { (rows.len()) " keys" }
                thead { tr {
                    th scope="col" { "Aliases" } th scope="col" { "Key ID" } th scope="col" { "State" }
                    th scope="col" { "Spec" } th scope="col" { "Usage" } th scope="col" { "Rotation" }
                } }
                tbody {
                    @for (id, meta, rotation) in &rows {
                        tr {
                            td { @for (_, a) in names.iter().filter(|(k, _)| k == id) { (a) br; } }
                            td { a href={ (PREFIX) "/keys/" (id) } { code { (id) } } }
                            @match meta {
                                Ok(m) => {
                                    td.state { (s(&m["KeyState"])) @if !m["DeletionDate"].is_null() { " (" (when(&m["DeletionDate"])) ")" } }
                                    td { (s(&m["KeySpec"])) }
                                    td { (s(&m["KeyUsage"])) }
                                    td { @match rotation {
                                        Some(r) if r["KeyRotationEnabled"].as_bool() == Some(true) => {
                                            "every " (r["RotationPeriodInDays"].as_u64().unwrap_or(365)) " days, next " (when(&r["NextRotationDate"]))
                                        }
                                        Some(_) => "off",
                                        None => "—",
                                    } }
                                }
                                Err(e) => td colspan="4" { (error_box(e)) }
                            }
                        }
                    }
                }
            }
            (create_form(cx))
        },
    )
}

fn create_form(cx: &Cx<'_>) -> Markup {
    html! {
        details {
            summary { "Create a key" }
            form method="post" action={ (PREFIX) "/keys" } {
                (csrf(&cx.session))
                label for="key-alias" { "Alias (optional, without alias/)" }
                input id="key-alias" name="alias" spellcheck="false";
                label for="key-description" { "Description" }
                input id="key-description" name="description";
                label for="key-spec" { "Key spec" }
                select id="key-spec" name="spec" {
                    option value="SYMMETRIC_DEFAULT" selected { "SYMMETRIC_DEFAULT (encrypt/decrypt)" }
                    option value="HMAC_256" { "HMAC_256 (generate/verify MAC)" }
                    option value="RSA_2048" { "RSA_2048 (sign/verify)" }
                    option value="ECC_NIST_P256" { "ECC_NIST_P256 (sign/verify)" }
                }
                button type="submit" { "Create key" }
            }
        }
    }
}

pub async fn create(cx: &Cx<'_>, form: &[(String, String)]) -> Response<Body> {
    let field = |n: &str| crate::form::field(form, n).unwrap_or("").trim().to_owned();
    let spec = field("spec");
    let usage = match spec.as_str() {
        "HMAC_256" => "GENERATE_VERIFY_MAC",
        "RSA_2048" | "ECC_NIST_P256" => "SIGN_VERIFY",
        _ => "ENCRYPT_DECRYPT",
    };
    let caller = cx.caller();
    let created = caller
        .kms(
            "CreateKey",
            json!({"KeySpec": spec, "KeyUsage": usage, "Description": field("description")}),
        )
        .await;
    let id = match created {
        Ok(v) => s(&v["KeyMetadata"]["KeyId"]).to_owned(),
        Err(e) => {
            return cx.page(
                status(&e),
                "Keys",
                Nav::Keys,
                html! { (error_box(&e)) (create_form(cx)) },
            );
        }
    };
    let alias = field("alias");
    if !alias.is_empty()
        && let Err(e) = caller
            .kms(
                "CreateAlias",
                json!({"AliasName": format!("alias/{alias}"), "TargetKeyId": id}),
            )
            .await
    {
        return key(cx, &id, Some(Err(e))).await;
    }
    crate::page::see_other(&format!("{PREFIX}/keys/{id}"))
}

/// A key's page, with the outcome of an action if one was just taken.
pub async fn key(
    cx: &Cx<'_>,
    id: &str,
    outcome: Option<Result<String, ApiError>>,
) -> Response<Body> {
    let caller = cx.caller();
    let meta = match caller.kms("DescribeKey", json!({"KeyId": id})).await {
        Ok(v) => v["KeyMetadata"].clone(),
        Err(e) => return cx.page(status(&e), id, Nav::Keys, error_box(&e)),
    };
    let key_id = s(&meta["KeyId"]).to_owned();
    let names = aliases(cx, Some(&key_id)).await;
    let symmetric = s(&meta["KeySpec"]) == "SYMMETRIC_DEFAULT" && s(&meta["Origin"]) == "AWS_KMS";
    let rotation = if symmetric {
        Some(
            caller
                .kms("GetKeyRotationStatus", json!({"KeyId": key_id}))
                .await,
        )
    } else {
        None
    };
    let rotations = if symmetric {
        Some(
            caller
                .kms("ListKeyRotations", json!({"KeyId": key_id}))
                .await,
        )
    } else {
        None
    };
    let policy = caller
        .kms(
            "GetKeyPolicy",
            json!({"KeyId": key_id, "PolicyName": "default"}),
        )
        .await;
    let grants = caller.kms("ListGrants", json!({"KeyId": key_id})).await;
    let tags = caller
        .kms("ListResourceTags", json!({"KeyId": key_id}))
        .await;
    let state = s(&meta["KeyState"]).to_owned();
    let (code, banner) = match &outcome {
        None => (StatusCode::OK, html! {}),
        Some(Ok(m)) => (StatusCode::OK, notice(m)),
        Some(Err(e)) => (status(e), error_box(e)),
    };
    let base = format!("{PREFIX}/keys/{key_id}");
    let title = names
        .first()
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| key_id.clone());
    cx.page(
        code,
        &title,
        Nav::Keys,
        html! {
            (banner)
            dl.details {
                dt { "Key ID" } dd { code { (key_id) } }
                dt { "ARN" } dd { code { (s(&meta["Arn"])) } }
                dt { "State" } dd.state { (state) }
                @if !meta["DeletionDate"].is_null() {
                    dt { "Deletion" } dd {
                        "on " time.countdown datetime=(when(&meta["DeletionDate"])) { (when(&meta["DeletionDate"])) }
                        " " span.remaining data-deadline=(meta["DeletionDate"].as_f64().unwrap_or(0.0)) {}
                    }
                }
                dt { "Aliases" } dd { @for (_, a) in &names { (a) " " } }
                dt { "Description" } dd { (s(&meta["Description"])) }
                dt { "Spec" } dd { (s(&meta["KeySpec"])) }
                dt { "Usage" } dd { (s(&meta["KeyUsage"])) }
                dt { "Origin" } dd { (s(&meta["Origin"])) }
                dt { "Created" } dd { (when(&meta["CreationDate"])) }
                @if let Some(Ok(r)) = &rotation {
                    dt { "Automatic rotation" } dd {
                        @if r["KeyRotationEnabled"].as_bool() == Some(true) {
                            "every " (r["RotationPeriodInDays"].as_u64().unwrap_or(365)) " days; next on " (when(&r["NextRotationDate"]))
                        } @else { "off" }
                    }
                }
            }
            section aria-labelledby="actions-h" {
                h2 id="actions-h" { "Actions" }
                div.actions {
                    @if state == "Disabled" { (action(cx, &base, "enable", "Enable key")) }
                    @if state == "Enabled" {
                        a.button.danger href={ (base) "/confirm?action=disable" } { "Disable key…" }
                    }
                    @if symmetric && state == "Enabled" { (action(cx, &base, "rotate", "Rotate now")) }
                    @if symmetric {
                        @if let Some(Ok(r)) = &rotation {
                            @if r["KeyRotationEnabled"].as_bool() == Some(true) {
                                (action(cx, &base, "rotation-off", "Turn off automatic rotation"))
                            } @else if state == "Enabled" {
                                (action(cx, &base, "rotation-on", "Turn on automatic rotation"))
                            }
                        }
                    }
                    @if state == "PendingDeletion" { (action(cx, &base, "cancel", "Cancel deletion")) }
                    @else {
                        a.button.danger href={ (base) "/confirm?action=delete" } { "Schedule deletion…" }
                    }
                }
            }
            @if let Some(list) = &rotations {
                section aria-labelledby="mat-h" {
                    h2 id="mat-h" { "Key material" }
                    @match list {
                        Ok(v) => {
                            @let items = v["Rotations"].as_array().cloned().unwrap_or_default();
                            p { "Original material from " (when(&meta["CreationDate"])) "; " (items.len()) " rotations." }
                            @if !items.is_empty() {
                                table { thead { tr { th scope="col" { "Rotated on" } th scope="col" { "Type" } } }
                                    tbody { @for r in &items { tr { td { (when(&r["RotationDate"])) } td { (s(&r["RotationType"])) } } } } }
                            }
                        }
                        Err(e) => (error_box(e)),
                    }
                }
            }
            section aria-labelledby="pol-h" {
                h2 id="pol-h" { "Key policy" }
                @match &policy {
                    Ok(v) => {
                        @let text = serde_json::from_str::<Value>(s(&v["Policy"])).ok().and_then(|p| serde_json::to_string_pretty(&p).ok()).unwrap_or_else(|| s(&v["Policy"]).to_owned());
                        pre.policy { (text) }
                    }
                    Err(e) => (error_box(e)),
                }
            }
            section aria-labelledby="grants-h" {
                h2 id="grants-h" { "Grants" }
                @match &grants {
                    Ok(v) => {
                        @let list = v["Grants"].as_array().cloned().unwrap_or_default();
                        @if list.is_empty() { p { "None." } } @else {
                            table { thead { tr { th scope="col" { "Grant" } th scope="col" { "Grantee" } th scope="col" { "Operations" } } }
                                tbody { @for g in &list { tr {
                                    td { code { (s(&g["GrantId"])) } }
                                    td { (s(&g["GranteePrincipal"])) }
                                    td { (g["Operations"].as_array().map(|o| o.iter().map(s).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                } } }
                            }
                        }
                    }
                    Err(e) => (error_box(e)),
                }
            }
            section aria-labelledby="tags-h" {
                h2 id="tags-h" { "Tags" }
                @match &tags {
                    Ok(v) => {
                        @let list = v["Tags"].as_array().cloned().unwrap_or_default();
                        @if list.is_empty() { p { "None." } } @else {
                            table { tbody { @for t in &list { tr { th scope="row" { (s(&t["TagKey"])) } td { (s(&t["TagValue"])) } } } } }
                        }
                    }
                    Err(e) => (error_box(e)),
                }
            }
        },
    )
}

fn action(cx: &Cx<'_>, base: &str, what: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(base) {
            (csrf(&cx.session))
            input type="hidden" name="action" value=(what);
            button type="submit" { (label) }
        }
    }
}

/// What the impact report found: the caller's own buckets by name, other accounts'
/// only counted.
struct Impact {
    key_id: String,
    key_arn: String,
    own: Vec<BucketImpact>,
    others: BucketImpact,
    elapsed: std::time::Duration,
}

impl Impact {
    fn objects(&self) -> u64 {
        self.own.iter().map(|b| b.objects).sum::<u64>() + self.others.objects
    }
    fn bytes(&self) -> u64 {
        self.own.iter().map(|b| b.bytes).sum::<u64>() + self.others.bytes
    }
}

/// Counts what the key protects, for a caller the KMS lets describe it.
async fn impact(cx: &Cx<'_>, id: &str) -> Result<Impact, ApiError> {
    let meta = cx.caller().kms("DescribeKey", json!({"KeyId": id})).await?;
    let names = KeyNames {
        key_id: s(&meta["KeyMetadata"]["KeyId"]).to_owned(),
        key_arn: s(&meta["KeyMetadata"]["Arn"]).to_owned(),
        aliases: aliases(cx, Some(s(&meta["KeyMetadata"]["KeyId"])))
            .await
            .into_iter()
            .map(|(_, a)| a)
            .collect(),
    };
    let started = std::time::Instant::now();
    let all = {
        let mut cache = cx.console.impacts.lock().await;
        cache.retain(|_, (at, _)| at.elapsed() < crate::IMPACT_TTL);
        // The aliases are the caller's view of the key: part of what was counted.
        let mut aliases = names.aliases.clone();
        aliases.sort();
        let id = format!("{}|{}", names.key_arn, aliases.join(","));
        match cache.get(&id) {
            Some((_, found)) => found.clone(),
            None => {
                let found = cx.objects().key_impact(&names).await.map_err(|e| {
                    tracing::warn!(error = %e, "counting a key's impact failed");
                    ApiError {
                        status: 500,
                        code: "InternalError".into(),
                        message: "The impact report could not be computed.".into(),
                    }
                })?;
                cache.insert(
                    names.key_arn.clone(),
                    (std::time::Instant::now(), found.clone()),
                );
                found
            }
        }
    };
    // The caller's own buckets by name; other accounts' only counted, and only for the
    // key's own account (a caller of another account learns nothing of third parties).
    let key_account = names.key_arn.split(':').nth(4).unwrap_or("");
    let mut own = Vec::new();
    let mut others = BucketImpact::default();
    for b in all {
        if b.owner == cx.session.account {
            own.push(b);
        } else if key_account == cx.session.account {
            others.objects += b.objects;
            others.bytes += b.bytes;
            others.default_key |= b.default_key;
        }
    }
    Ok(Impact {
        key_id: names.key_id,
        key_arn: names.key_arn,
        own,
        others,
        elapsed: started.elapsed(),
    })
}

pub async fn impact_json(cx: &Cx<'_>, id: &str) -> Response<Body> {
    match impact(cx, id).await {
        Ok(i) => crate::page::json(
            StatusCode::OK,
            &json!({
                "keyId": i.key_id,
                "keyArn": i.key_arn,
                "objects": i.objects(),
                "bytes": i.bytes(),
                "buckets": i.own.iter().map(|b| json!({
                    "bucket": b.bucket, "objects": b.objects, "bytes": b.bytes, "defaultKey": b.default_key,
                })).collect::<Vec<_>>(),
                "otherAccounts": {"objects": i.others.objects, "bytes": i.others.bytes},
                "elapsedMs": i.elapsed.as_secs_f64() * 1000.0,
            }),
        ),
        Err(e) => crate::page::json_error(&e),
    }
}

/// The impact report, then the form that disables the key or schedules its deletion.
pub async fn confirm(cx: &Cx<'_>, id: &str) -> Response<Body> {
    let what = cx.param("action").unwrap_or("disable");
    let i = match impact(cx, id).await {
        Ok(i) => i,
        Err(e) => return cx.page(status(&e), id, Nav::Keys, error_box(&e)),
    };
    let base = format!("{PREFIX}/keys/{}", i.key_id);
    let (title, verb) = if what == "delete" {
        (
            "Schedule deletion",
            "made unreadable for ever once the key is deleted",
        )
    } else {
        ("Disable key", "unreadable while the key is disabled")
    };
    cx.page(
        StatusCode::OK,
        &format!("{title}: {}", i.key_id),
        Nav::Keys,
        html! {
            section.impact aria-labelledby="impact-h" {
                h2 id="impact-h" { "Impact report" }
                p.summary {
                    strong.objects { (i.objects()) } " objects (" strong.bytes { (size(i.bytes())) } ") are encrypted under this key and would be " (verb) "."
                }
                table.impact {
                    thead { tr { th scope="col" { "Bucket" } th scope="col" { "Objects" } th scope="col" { "Bytes" } th scope="col" { "Default key of the bucket" } } }
                    tbody {
                        @for b in &i.own {
                            tr {
                                td { a href={ (PREFIX) "/buckets/" (b.bucket) } { (b.bucket) } }
                                td.count { (b.objects) }
                                td { (size(b.bytes)) }
                                td { @if b.default_key { "yes: new writes would fail" } @else { "no" } }
                            }
                        }
                        @if i.others.objects > 0 || i.others.default_key {
                            tr { td { "other accounts' buckets" } td.count { (i.others.objects) } td { (size(i.others.bytes)) } td { @if i.others.default_key { "yes" } @else { "no" } } }
                        }
                    }
                }
                p.hint { "Counted over every version, by the server, in " (format!("{:.0}", i.elapsed.as_secs_f64() * 1000.0)) " ms." }
            }
            form method="post" action=(base) {
                (csrf(&cx.session))
                @if what == "delete" {
                    input type="hidden" name="action" value="schedule";
                    label for="days" { "Waiting period (days, 7–30)" }
                    input id="days" name="days" type="number" min="7" max="30" value="30" required;
                    button.danger type="submit" { "Schedule deletion" }
                } @else {
                    input type="hidden" name="action" value="disable";
                    button.danger type="submit" { "Disable key" }
                }
                " " a href=(base) { "Cancel" }
            }
        },
    )
}

pub async fn act(cx: &Cx<'_>, id: &str, form: &[(String, String)]) -> Response<Body> {
    let caller = cx.caller();
    let what = crate::form::field(form, "action").unwrap_or("");
    let result = match what {
        "enable" => caller
            .kms("EnableKey", json!({"KeyId": id}))
            .await
            .map(|_| "Key enabled.".to_owned()),
        "disable" => caller
            .kms("DisableKey", json!({"KeyId": id}))
            .await
            .map(|_| "Key disabled.".to_owned()),
        "rotate" => caller
            .kms("RotateKeyOnDemand", json!({"KeyId": id}))
            .await
            .map(|_| "Rotation started.".to_owned()),
        "rotation-on" => caller
            .kms("EnableKeyRotation", json!({"KeyId": id}))
            .await
            .map(|_| "Automatic rotation on.".to_owned()),
        "rotation-off" => caller
            .kms("DisableKeyRotation", json!({"KeyId": id}))
            .await
            .map(|_| "Automatic rotation off.".to_owned()),
        "cancel" => caller
            .kms("CancelKeyDeletion", json!({"KeyId": id}))
            .await
            .map(|_| "Deletion cancelled; the key is disabled until you enable it.".to_owned()),
        "schedule" => {
            let days: u64 = crate::form::field(form, "days")
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or(30);
            caller
                .kms(
                    "ScheduleKeyDeletion",
                    json!({"KeyId": id, "PendingWindowInDays": days}),
                )
                .await
                .map(|v| format!("Deletion scheduled for {}.", when(&v["DeletionDate"])))
        }
        _ => Err(ApiError {
            status: 400,
            code: "ValidationException".into(),
            message: "Unknown action.".into(),
        }),
    };
    key(cx, id, Some(result)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_times_read_as_rfc3339() {
        assert_eq!(when(&json!(0.0)), "1970-01-01T00:00:00Z");
        assert_eq!(when(&json!(1_700_000_000.5)), "2023-11-14T22:13:20Z");
        assert_eq!(when(&Value::Null), "");
    }
}
