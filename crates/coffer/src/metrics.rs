//! `GET /_coffer/metrics`: the Prometheus text format. Requests by API, operation and
//! status; latency histograms; bytes in and out; KMS operations by key (direct calls and
//! those S3 made for callers); the audit trail's write lag. Counted in the dispatcher from
//! each call's audit event, so the metrics and the trail never disagree on what happened.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use coffer_audit::Event;

/// Latency bucket bounds, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; 13],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<(&'static str, &'static str), Histogram>,
    bytes_in: BTreeMap<&'static str, u64>,
    bytes_out: BTreeMap<&'static str, u64>,
    kms: BTreeMap<(String, &'static str), u64>,
    /// Lifecycle actions by bucket, rule and action.
    lifecycle: BTreeMap<(String, String, &'static str), u64>,
    /// Finished passes of background work, by kind.
    passes: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn api(service: Option<&'static str>) -> &'static str {
    match service {
        Some("s3.amazonaws.com") => "s3",
        Some("kms.amazonaws.com") => "kms",
        Some("iam.amazonaws.com") => "iam",
        Some("sts.amazonaws.com") => "sts",
        Some("cloudtrail.amazonaws.com") => "cloudtrail",
        _ => "unknown",
    }
}

/// Prometheus label values escape `\`, `"` and newlines.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one finished pass of background work (`lifecycle`, `access_logs`): what a
    /// test waits for instead of sleeping.
    pub fn pass(&self, work: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.passes.entry(work).or_default() += 1;
    }

    /// Counts one action of the lifecycle worker.
    pub fn lifecycle_action(&self, bucket: &str, rule: &str, action: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.lifecycle
            .entry((bucket.to_owned(), rule.to_owned(), action))
            .or_default() += 1;
    }

    /// Counts one finished call.
    pub fn observe(&self, e: &Event, elapsed: Duration, bytes_in: u64, bytes_out: u64) {
        let a = api(e.who.service);
        let op = e.who.operation.unwrap_or("Unknown");
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.requests.entry((a, op, e.status)).or_default() += 1;
        let h = m.latency.entry((a, op)).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
        *m.bytes_in.entry(a).or_default() += bytes_in;
        *m.bytes_out.entry(a).or_default() += bytes_out;
        if a == "kms" && e.status < 400 {
            for r in &e.who.resources {
                *m.kms.entry((r.arn.clone(), op)).or_default() += 1;
            }
        }
        for u in &e.who.kms_uses {
            if u.error_code.is_none() {
                *m.kms.entry((u.key_arn.clone(), u.operation)).or_default() += 1;
            }
        }
    }

    /// The exposition text.
    /// The Prometheus text: the counters, and what each bucket holds (`usage`).
    pub fn render(
        &self,
        audit_lag: Duration,
        usage: &[(String, coffer_objects::BucketUsage)],
    ) -> String {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out += "# HELP coffer_requests_total API calls by API, operation and HTTP status.\n";
        out += "# TYPE coffer_requests_total counter\n";
        for ((a, op, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "coffer_requests_total{{api=\"{a}\",operation=\"{op}\",status=\"{status}\"}} {n}"
            );
        }
        out += "# HELP coffer_request_duration_seconds Time from request to response.\n";
        out += "# TYPE coffer_request_duration_seconds histogram\n";
        for ((a, op), h) in &m.latency {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "coffer_request_duration_seconds_bucket{{api=\"{a}\",operation=\"{op}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "coffer_request_duration_seconds_bucket{{api=\"{a}\",operation=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "coffer_request_duration_seconds_sum{{api=\"{a}\",operation=\"{op}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "coffer_request_duration_seconds_count{{api=\"{a}\",operation=\"{op}\"}} {}",
                h.count
            );
        }
        for (name, map, help) in [
            (
                "coffer_bytes_in_total",
                &m.bytes_in,
                "Request body bytes received.",
            ),
            (
                "coffer_bytes_out_total",
                &m.bytes_out,
                "Response body bytes sent.",
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (a, n) in map {
                let _ = writeln!(out, "{name}{{api=\"{a}\"}} {n}");
            }
        }
        out += "# HELP coffer_kms_operations_total Successful KMS operations by key (direct and on behalf of S3 callers).\n";
        out += "# TYPE coffer_kms_operations_total counter\n";
        for ((key, op), n) in &m.kms {
            let _ = writeln!(
                out,
                "coffer_kms_operations_total{{key=\"{}\",operation=\"{op}\"}} {n}",
                label(key)
            );
        }
        out +=
            "# HELP coffer_background_passes_total Finished passes of background work by kind.\n";
        out += "# TYPE coffer_background_passes_total counter\n";
        for (work, n) in &m.passes {
            out += &format!("coffer_background_passes_total{{work=\"{work}\"}} {n}\n");
        }
        out += "# HELP coffer_s3_lifecycle_actions_total Actions of the lifecycle worker by bucket, rule and action.\n";
        out += "# TYPE coffer_s3_lifecycle_actions_total counter\n";
        for ((bucket, rule, action), n) in &m.lifecycle {
            let _ = writeln!(
                out,
                "coffer_s3_lifecycle_actions_total{{bucket=\"{}\",rule=\"{}\",action=\"{action}\"}} {n}",
                label(bucket),
                label(rule)
            );
        }
        for (name, help, value) in [
            (
                "coffer_s3_objects",
                "Current objects (latest versions that are not delete markers) by bucket.",
                (|u: &coffer_objects::BucketUsage| u.objects)
                    as fn(&coffer_objects::BucketUsage) -> u64,
            ),
            (
                "coffer_s3_object_bytes",
                "Bytes of current objects by bucket.",
                |u| u.object_bytes,
            ),
            (
                "coffer_s3_noncurrent_versions",
                "Noncurrent object versions by bucket.",
                |u| u.noncurrent_versions,
            ),
            (
                "coffer_s3_noncurrent_version_bytes",
                "Bytes of noncurrent object versions by bucket.",
                |u| u.noncurrent_bytes,
            ),
            (
                "coffer_s3_delete_markers",
                "Delete markers (current or not) by bucket.",
                |u| u.delete_markers,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (bucket, u) in usage {
                let _ = writeln!(out, "{name}{{bucket=\"{}\"}} {}", label(bucket), value(u));
            }
        }
        out += "# HELP coffer_audit_write_lag_seconds How long the newest audit batch waited before it was written.\n";
        out += "# TYPE coffer_audit_write_lag_seconds gauge\n";
        let _ = writeln!(
            out,
            "coffer_audit_write_lag_seconds {}",
            audit_lag.as_secs_f64()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_audit::RequestContext;

    #[test]
    fn calls_are_counted_and_rendered() {
        let m = Metrics::default();
        let cx = RequestContext::new("R".into(), None, None, false);
        cx.fill(|f| {
            f.service = Some("kms.amazonaws.com");
            f.operation = Some("Encrypt");
            f.resources.push(coffer_audit::record::Resource {
                arn: "arn:aws:kms:us-east-1:1:key/k".into(),
                account_id: None,
                kind: "AWS::KMS::Key".into(),
            });
        });
        let e = Event::from_context(&cx, 200, None);
        m.observe(&e, Duration::from_millis(3), 10, 20);
        m.observe(&e, Duration::from_millis(30), 10, 20);
        let text = m.render(Duration::from_millis(1), &[]);
        assert!(
            text.contains(
                "coffer_requests_total{api=\"kms\",operation=\"Encrypt\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("coffer_request_duration_seconds_bucket{api=\"kms\",operation=\"Encrypt\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("coffer_kms_operations_total{key=\"arn:aws:kms:us-east-1:1:key/k\",operation=\"Encrypt\"} 2"), "{text}");
        assert!(
            text.contains("coffer_bytes_in_total{api=\"kms\"} 20"),
            "{text}"
        );
        assert!(
            text.contains("coffer_audit_write_lag_seconds 0.001"),
            "{text}"
        );
    }
}
