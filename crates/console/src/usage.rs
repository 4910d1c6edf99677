//! Usage charts: requests over time and per operation, KMS calls per key, and bytes
//! stored per bucket over time, for the caller's account (the operator's root: every
//! account, or one it picks). Whoever may read the account's trail (CloudTrail's
//! `LookupEvents`, asked as the caller) may see them.

use std::collections::{BTreeMap, HashMap};

use http::{Response, StatusCode};
use maud::html;
use serde_json::json;

use coffer_api::Body;

use crate::chart::{bars, lines};
use crate::page::{Nav, error_box, size};
use crate::{Cx, PREFIX};

/// How far back each range looks, and the width of its time buckets.
fn range(name: &str) -> (&'static str, i64, i64) {
    match name {
        "24h" => ("24h", 86_400, 3_600),
        "30d" => ("30d", 30 * 86_400, 86_400),
        _ => ("7d", 7 * 86_400, 86_400 / 4),
    }
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn bytes(v: f64) -> String {
    size(v.max(0.0) as u64)
}

/// Most series drawn in one chart (the largest).
const MAX_SERIES: usize = 8;
/// Most bars in one chart.
const MAX_BARS: usize = 60;

pub async fn page(cx: &Cx<'_>) -> Response<Body> {
    // The trail's numbers are the trail's: whoever may not look it up sees why.
    if let Err(e) = cx
        .caller()
        .json(
            "cloudtrail",
            crate::audit::TARGET,
            &json!({"MaxResults": 1}),
        )
        .await
    {
        return cx.page(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::FORBIDDEN),
            "Usage",
            Nav::Usage,
            error_box(&e),
        );
    }
    let (name, span, step) = range(cx.param("range").unwrap_or("7d"));
    let operator = cx.session.arn.ends_with(":root")
        && cx.session.account == cx.console.config.operator_account;
    let account: Option<String> = if operator {
        cx.param("account")
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
    } else {
        Some(cx.session.account.clone())
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let since = now - span;
    let mine = |a: &str| account.as_deref().is_none_or(|x| x == a);
    let calls: Vec<crate::Call> = cx
        .console
        .calls(since, name)
        .await
        .iter()
        .filter(|c| c.time >= since && mine(&c.account))
        .cloned()
        .collect();
    let samples: Vec<crate::Sample> = cx
        .console
        .history
        .samples(since)
        .await
        .into_iter()
        .filter(|s| mine(&s.account))
        .collect();

    // Requests over time, one line per service, a point per step from the first step of
    // the period (which takes what came before it) to now, idle steps at 0.
    let first = since - since.rem_euclid(step) + step;
    let steps: Vec<i64> = (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= now)
        .collect();
    let mut per_source: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut per_op: HashMap<String, u64> = HashMap::new();
    let mut per_key: HashMap<String, u64> = HashMap::new();
    for c in &calls {
        let service = c.source.split('.').next().unwrap_or(&c.source).to_owned();
        let line = per_source
            .entry(service.clone())
            .or_insert_with(|| steps.iter().map(|t| (*t, 0.0)).collect());
        *line
            .entry((c.time - c.time.rem_euclid(step)).max(first))
            .or_default() += 1.0;
        *per_op
            .entry(format!("{service}:{}", c.operation))
            .or_default() += 1;
        if let Some(k) = &c.key {
            let short = k.rsplit('/').next().unwrap_or(k).to_owned();
            *per_key.entry(short).or_default() += 1;
        }
    }
    let series: Vec<(String, Vec<(i64, f64)>)> = per_source
        .into_iter()
        .map(|(s, points)| (s, points.into_iter().collect()))
        .collect();
    let top = |m: HashMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(MAX_BARS);
        v
    };
    // Bytes stored per bucket: each bucket's samples, the largest buckets first.
    let mut per_bucket: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for s in &samples {
        let label = if account.is_none() {
            format!("{} ({})", s.bucket, s.account)
        } else {
            s.bucket.clone()
        };
        per_bucket
            .entry(label)
            .or_default()
            .push((s.time, s.bytes as f64));
    }
    let mut stored: Vec<(String, Vec<(i64, f64)>)> = per_bucket.into_iter().collect();
    stored.sort_by(|a, b| {
        let last = |p: &Vec<(i64, f64)>| p.last().map(|x| x.1).unwrap_or(0.0);
        last(&b.1)
            .total_cmp(&last(&a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    stored.truncate(MAX_SERIES);
    let whose = match &account {
        Some(a) => format!("account {a}"),
        None => "every account".to_owned(),
    };
    cx.page(
        StatusCode::OK,
        "Usage",
        Nav::Usage,
        html! {
            form.filter method="get" action={ (PREFIX) "/usage" } {
                label for="range" { "Period" }
                select id="range" name="range" {
                    @for (v, l) in [("24h", "last 24 hours"), ("7d", "last 7 days"), ("30d", "last 30 days")] {
                        option value=(v) selected[v == name] { (l) }
                    }
                }
                @if operator {
                    label for="account" { "Account (empty for all)" }
                    input id="account" name="account" value=(account.clone().unwrap_or_default()) spellcheck="false";
                }
                button type="submit" { "Show" }
            }
            p.hint { (calls.len()) " audited calls of " (whose) " in this period." }
            (lines("requests", "Requests over time", &series, (since, now), count))
            (bars("operations", "Requests per operation", &top(per_op)))
            (bars("kms-keys", "KMS calls per key", &top(per_key)))
            (lines("stored", "Bytes stored per bucket", &stored, (since, now), bytes))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_have_their_steps() {
        assert_eq!(range("24h"), ("24h", 86_400, 3_600));
        assert_eq!(range("30d").2, 86_400);
        assert_eq!(range("nonsense").0, "7d");
    }
}
