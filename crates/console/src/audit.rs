//! The audit trail: a filterable table of events (CloudTrail's `LookupEvents`, asked as
//! the signed-in user, so a tenant sees its own account's events and the operator every
//! account's), and an event's whole CloudTrail record, linked to the KMS calls S3 made
//! for it and back.

use http::{Response, StatusCode};
use maud::html;
use serde_json::{Value, json};

use coffer_api::Body;

use crate::call::ApiError;
use crate::page::epoch_time as rfc3339;
use crate::page::{Nav, error_box, q};
use crate::{Cx, PREFIX};

pub(crate) const TARGET: &str =
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";

/// The attributes LookupEvents filters by.
const ATTRIBUTES: &[&str] = &[
    "EventName",
    "EventSource",
    "Username",
    "ResourceName",
    "ResourceType",
    "AccessKeyId",
    "ReadOnly",
    "EventId",
];

fn status(e: &ApiError) -> StatusCode {
    e.http_status()
}

/// `2026-12-05T10:00` (an HTML datetime-local value, UTC) as epoch seconds.
fn epoch(v: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let fmt_s = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(v, &fmt)
        .or_else(|_| time::PrimitiveDateTime::parse(v, &fmt_s))
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

async fn lookup(cx: &Cx<'_>, input: Value) -> Result<Value, ApiError> {
    cx.caller().json("cloudtrail", TARGET, &input).await
}

pub async fn events(cx: &Cx<'_>) -> Response<Body> {
    let attr = cx.param("attr").unwrap_or("EventName").to_owned();
    let value = cx.param("value").unwrap_or("").trim().to_owned();
    let start = cx.param("start").unwrap_or("").to_owned();
    let end = cx.param("end").unwrap_or("").to_owned();
    let token = cx.param("token").unwrap_or("").to_owned();
    let mut input = json!({"MaxResults": 50});
    if !value.is_empty() {
        input["LookupAttributes"] = json!([{"AttributeKey": attr, "AttributeValue": value}]);
    }
    if let Some(s) = epoch(&start) {
        input["StartTime"] = json!(s);
    }
    if let Some(e) = epoch(&end) {
        input["EndTime"] = json!(e);
    }
    if !token.is_empty() {
        input["NextToken"] = json!(token);
    }
    let result = lookup(cx, input).await;
    let (code, list, next, refusal) = match result {
        Ok(v) => (
            StatusCode::OK,
            v["Events"].as_array().cloned().unwrap_or_default(),
            v["NextToken"].as_str().map(str::to_owned),
            None,
        ),
        Err(e) => (status(&e), Vec::new(), None, Some(e)),
    };
    let here = format!(
        "{PREFIX}/audit?attr={}&value={}&start={}&end={}",
        q(&attr),
        q(&value),
        q(&start),
        q(&end)
    );
    cx.page(
        code,
        "Audit",
        Nav::Audit,
        html! {
            form.filter method="get" action={ (PREFIX) "/audit" } {
                label for="attr" { "Attribute" }
                select id="attr" name="attr" {
                    @for a in ATTRIBUTES { option value=(a) selected[*a == attr] { (a) } }
                }
                label for="value" { "Value" }
                input id="value" name="value" value=(value) spellcheck="false";
                label for="start" { "From (UTC)" }
                input id="start" name="start" type="datetime-local" value=(start);
                label for="end" { "To (UTC)" }
                input id="end" name="end" type="datetime-local" value=(end);
                button type="submit" { "Filter" }
            }
            @if let Some(e) = &refusal { (error_box(e)) }
            table.events {
                caption { (list.len()) " events" }
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Source" }
                    th scope="col" { "User" } th scope="col" { "User agent" } th scope="col" { "Error" } th scope="col" { "Resources" }
                } }
                tbody {
                    @for ev in &list {
                        @let record: Value = serde_json::from_str(ev["CloudTrailEvent"].as_str().unwrap_or("{}")).unwrap_or_default();
                        tr {
                            td { a href={ (PREFIX) "/audit/event?id=" (q(ev["EventId"].as_str().unwrap_or(""))) } { (rfc3339(&ev["EventTime"])) } }
                            td.name { (ev["EventName"].as_str().unwrap_or("")) }
                            td { (ev["EventSource"].as_str().unwrap_or("")) }
                            td { (ev["Username"].as_str().unwrap_or("")) }
                            td.agent { (record["userAgent"].as_str().unwrap_or("")) }
                            td.errcode { (record["errorCode"].as_str().unwrap_or("")) }
                            td { @for r in ev["Resources"].as_array().cloned().unwrap_or_default() { (r["ResourceName"].as_str().unwrap_or("")) br; } }
                        }
                    }
                }
            }
            @if let Some(n) = &next {
                p { a rel="next" href={ (here) "&token=" (q(n)) } { "Older events" } }
            }
        },
    )
}

/// One event's CloudTrail record, with its links: the request a KMS call was made for,
/// and the KMS calls a request caused.
pub async fn event(cx: &Cx<'_>) -> Response<Body> {
    let id = cx.param("id").unwrap_or("").to_owned();
    let found = lookup(
        cx,
        json!({"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": id}]}),
    )
    .await;
    let ev = match found {
        Ok(v) => match v["Events"].as_array().and_then(|a| a.first()).cloned() {
            Some(e) => e,
            None => {
                let e = ApiError {
                    status: 404,
                    code: "NotFound".into(),
                    message: format!("No event {id} is in the trail, or you may not see it."),
                };
                return cx.page(StatusCode::NOT_FOUND, "Event", Nav::Audit, error_box(&e));
            }
        },
        Err(e) => return cx.page(status(&e), "Event", Nav::Audit, error_box(&e)),
    };
    let record: Value =
        serde_json::from_str(ev["CloudTrailEvent"].as_str().unwrap_or("{}")).unwrap_or_default();
    let caused_by = record["additionalEventData"]["causedByEventId"]
        .as_str()
        .map(str::to_owned);
    // The KMS calls this request caused are recorded with it, within the same second or
    // so: look at KMS events around its time.
    let mut caused = Vec::new();
    if caused_by.is_none()
        && let Some(t) = ev["EventTime"].as_f64()
    {
        let mut token: Option<String> = None;
        for _ in 0..10 {
            let mut input = json!({
                "LookupAttributes": [{"AttributeKey": "EventSource", "AttributeValue": "kms.amazonaws.com"}],
                "StartTime": t - 5.0,
                "EndTime": t + 60.0,
                "MaxResults": 50,
            });
            if let Some(n) = &token {
                input["NextToken"] = json!(n);
            }
            let Ok(page) = lookup(cx, input).await else {
                break;
            };
            for k in page["Events"].as_array().cloned().unwrap_or_default() {
                let r: Value = serde_json::from_str(k["CloudTrailEvent"].as_str().unwrap_or("{}"))
                    .unwrap_or_default();
                if r["additionalEventData"]["causedByEventId"].as_str() == Some(id.as_str()) {
                    caused.push(k);
                }
            }
            match page["NextToken"].as_str() {
                Some(n) => token = Some(n.to_owned()),
                None => break,
            }
        }
    }
    let pretty = serde_json::to_string_pretty(&record).unwrap_or_default();
    cx.page(
        StatusCode::OK,
        &format!(
            "{} · {}",
            ev["EventName"].as_str().unwrap_or(""),
            rfc3339(&ev["EventTime"])
        ),
        Nav::Audit,
        html! {
            @if let Some(parent) = &caused_by {
                p.link { "A KMS call made by " (record["invokedBy"].as_str().unwrap_or("a service")) " for "
                    a.caused-by href={ (PREFIX) "/audit/event?id=" (q(parent)) } { "this request" } "." }
            }
            @if !caused.is_empty() {
                section aria-labelledby="kms-h" {
                    h2 id="kms-h" { "What S3 asked the KMS for this request" }
                    ul.caused { @for k in &caused {
                        li { a href={ (PREFIX) "/audit/event?id=" (q(k["EventId"].as_str().unwrap_or(""))) } { (k["EventName"].as_str().unwrap_or("")) } }
                    } }
                }
            }
            h2 { "CloudTrail record" }
            pre.record { (pretty) }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_utc_epochs() {
        assert_eq!(epoch("1970-01-01T00:01"), Some(60));
        assert_eq!(epoch("1970-01-01T00:01:30"), Some(90));
        assert_eq!(epoch("yesterday"), None);
    }
}
