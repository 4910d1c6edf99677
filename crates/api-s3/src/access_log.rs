//! S3 server access logging: one record per request on a bucket whose logging is on
//! (PutBucketLogging), in AWS's log line format ("Amazon S3 server access log format": 26
//! space-separated fields, `-` for what does not apply), buffered per bucket and delivered
//! as objects into the target bucket under the configured key format. Delivery is
//! best-effort, as on AWS: it happens only where the target bucket's policy lets the
//! logging service (`logging.s3.amazonaws.com`) write, or its ACL lets the LogDelivery
//! group; records of a bucket whose target refuses them are dropped and logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, Uri};
use time::OffsetDateTime;

use coffer_audit::RequestContext;
use coffer_objects::{ChecksumRequest, Objects, PutObject, SseRequest};
use coffer_policy::Decision;

use crate::access::Access;
use crate::operation::Operation;

/// Records waiting for delivery, by source bucket.
#[derive(Default)]
struct Pending {
    first: Option<OffsetDateTime>,
    lines: String,
}

/// Largest buffer per bucket before an early delivery is due (AWS delivers log objects
/// of a few MiB at most).
const MAX_BUFFER: usize = 4 * 1024 * 1024;

pub struct AccessLogs {
    objects: Arc<Objects>,
    access: Access,
    pending: Mutex<HashMap<String, Pending>>,
}

/// What a log record needs of the request, taken before s3s consumes it.
pub(crate) struct Seen {
    bucket: String,
    method: Method,
    uri: Uri,
    host: Option<String>,
    referer: Option<String>,
    user_agent: Option<String>,
    request_len: Option<u64>,
    signed: Signed,
}

#[derive(Clone, Copy)]
enum Signed {
    Header,
    Query,
    No,
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

impl AccessLogs {
    pub(crate) fn new(objects: Arc<Objects>, access: Access) -> Self {
        Self {
            objects,
            access,
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to keep of a request on `bucket` if the bucket's logging is on (one cached
    /// setting lookup otherwise).
    pub(crate) async fn seen(
        &self,
        bucket: Option<&str>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<Seen> {
        let bucket = bucket?;
        match self.objects.get_bucket_logging(bucket).await {
            Ok(Some(_)) => {}
            _ => return None,
        }
        let query = uri.query().unwrap_or("");
        let signed = if headers.contains_key(http::header::AUTHORIZATION) {
            Signed::Header
        } else if query.contains("X-Amz-Signature=") || query.contains("Signature=") {
            Signed::Query
        } else {
            Signed::No
        };
        Some(Seen {
            bucket: bucket.to_owned(),
            method: method.clone(),
            uri: uri.clone(),
            host: header(headers, "host"),
            referer: header(headers, "referer"),
            user_agent: header(headers, "user-agent"),
            request_len: header(headers, "content-length").and_then(|v| v.parse().ok()),
            signed,
        })
    }

    /// Appends the request's record to its bucket's buffer.
    pub(crate) async fn record<B>(
        &self,
        seen: Seen,
        cx: &RequestContext,
        response: &Response<B>,
        error_code: Option<&str>,
    ) {
        let Ok(b) = self.objects.bucket(&seen.bucket).await else {
            return;
        };
        let owner = self
            .access
            .credentials
            .find_account(&b.owner)
            .map(|a| a.canonical_id)
            .unwrap_or_else(|| "-".to_owned());
        let f = cx.filled();
        let operation = match f.operation {
            Some("PreflightRequest") => "REST.OPTIONS.PREFLIGHT".to_owned(),
            Some(name) => Operation::from_name(name).log_name(seen.method.as_str()),
            None => format!("REST.{}.UNKNOWN", seen.method),
        };
        // AWS's Requester: the canonical id of an account's root user, the ARN of an IAM
        // user or role session, `-` for anonymous callers.
        let requester = match &f.identity {
            Some(i) if i.kind == "Root" => self
                .access
                .credentials
                .find_account(&i.account_id)
                .map_or_else(|| i.arn.clone(), |a| a.canonical_id),
            Some(i) if !i.arn.is_empty() => i.arn.clone(),
            _ => "-".to_owned(),
        };
        let response_len = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let object_size = match seen.method {
            Method::PUT | Method::POST => seen.request_len,
            Method::GET | Method::HEAD if response.status() == StatusCode::OK => response_len,
            _ => None,
        };
        let version = response
            .headers()
            .get("x-amz-version-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or(f.version_id.clone());
        let elapsed = (OffsetDateTime::now_utc() - cx.received)
            .whole_milliseconds()
            .max(0);
        let line = Line {
            owner: &owner,
            bucket: &seen.bucket,
            time: cx.received,
            remote: cx.source.map(|s| s.ip()),
            requester: &requester,
            request_id: &cx.request_id,
            operation: &operation,
            key: f.key.as_deref(),
            request_uri: &format!("{} {} HTTP/1.1", seen.method, redacted(&seen.uri)),
            status: response.status().as_u16(),
            error_code,
            bytes_sent: response_len.filter(|n| *n > 0 && seen.method != Method::HEAD),
            object_size,
            total_ms: elapsed,
            referer: seen.referer.as_deref(),
            user_agent: seen.user_agent.as_deref(),
            version_id: version.as_deref(),
            signed: seen.signed,
            tls: cx.tls,
            host: seen.host.as_deref(),
        }
        .to_string();
        let full = {
            let mut p = self.lock();
            let e = p.entry(seen.bucket.clone()).or_default();
            e.first.get_or_insert(cx.received);
            e.lines.push_str(&line);
            e.lines.push('\n');
            e.lines.len() >= MAX_BUFFER
        };
        if full {
            self.deliver_bucket(&seen.bucket).await;
        }
    }

    /// Delivers every bucket's buffered records.
    pub async fn deliver(&self) {
        let buckets: Vec<String> = self.lock().keys().cloned().collect();
        for b in buckets {
            self.deliver_bucket(&b).await;
        }
    }

    async fn deliver_bucket(&self, source: &str) {
        let Some(p) = self.lock().remove(source) else {
            return;
        };
        if p.lines.is_empty() {
            return;
        }
        if let Err(e) = self.deliver_records(source, p).await {
            tracing::warn!(bucket = source, error = %e, "server access log records were not delivered");
        }
    }

    async fn deliver_records(&self, source: &str, p: Pending) -> Result<(), String> {
        let err = |e: coffer_objects::Error| e.to_string();
        let Some(cfg) = self.objects.get_bucket_logging(source).await.map_err(err)? else {
            return Ok(());
        };
        let src = self.objects.bucket(source).await.map_err(err)?;
        let now = OffsetDateTime::now_utc();
        let unique: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase()
            .chars()
            .take(16)
            .collect();
        let key = cfg.object_key(
            &src.owner,
            &self.objects.config().region,
            source,
            p.first.unwrap_or(now),
            now,
            &unique,
        );
        let target = self.objects.bucket(&cfg.target_bucket).await.map_err(err)?;
        if !self
            .access
            .log_delivery_allowed(&cfg.target_bucket, &key, source, &src.owner)
            .await
        {
            return Err(format!(
                "the target bucket {} does not let logging.s3.amazonaws.com write {key}",
                cfg.target_bucket
            ));
        }
        let body = Bytes::from(p.lines.into_bytes());
        let len = body.len() as u64;
        let stream: coffer_objects::BodyStream =
            Box::pin(futures::stream::once(async move { Ok(body) }));
        self.objects
            .put_object(
                PutObject {
                    caller: coffer_objects::Caller::trusted(target.owner.clone(), "s3-access-logs"),
                    bucket: cfg.target_bucket.clone(),
                    key,
                    meta: coffer_objects::ObjectMeta {
                        content_type: Some("text/plain".into()),
                        ..coffer_objects::ObjectMeta::default()
                    },
                    tags: Vec::new(),
                    declared_len: Some(len),
                    // A checksum of its own, so that a target under Object Lock takes it.
                    checksums: ChecksumRequest {
                        algorithm: Some(coffer_objects::ChecksumAlgorithm::Sha256),
                        ..ChecksumRequest::default()
                    },
                    precondition: coffer_objects::Precondition::None,
                    sse: SseRequest::Default,
                    lock: Default::default(),
                },
                stream,
            )
            .await
            .map_err(err)?;
        Ok(())
    }
}

/// The request's path and query as a record shows it: the values of query parameters
/// that act as credentials (a presigned URL's signature, a session token) are replaced, so
/// that a log reader cannot replay the request (AWS logs them; Coffer's logs carry no
/// secrets).
fn redacted(uri: &Uri) -> String {
    const SECRET: [&str; 3] = ["X-Amz-Signature", "Signature", "X-Amz-Security-Token"];
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if SECRET.contains(&k) => format!("{k}=REDACTED"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

/// One log record, AWS's fields in AWS's order.
struct Line<'a> {
    owner: &'a str,
    bucket: &'a str,
    time: OffsetDateTime,
    remote: Option<IpAddr>,
    requester: &'a str,
    request_id: &'a str,
    operation: &'a str,
    key: Option<&'a str>,
    request_uri: &'a str,
    status: u16,
    error_code: Option<&'a str>,
    bytes_sent: Option<u64>,
    object_size: Option<u64>,
    total_ms: i128,
    referer: Option<&'a str>,
    user_agent: Option<&'a str>,
    version_id: Option<&'a str>,
    signed: Signed,
    tls: bool,
    host: Option<&'a str>,
}

/// How a key is URL-encoded in a record: everything but unreserved characters and `/`.
const KEY_ENCODING: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A token without spaces: `-` when absent or empty.
fn token(s: Option<&str>) -> String {
    match s {
        Some(v) if !v.is_empty() => v.replace(' ', "%20"),
        _ => "-".to_owned(),
    }
}

/// A quoted field: `"..."` without inner quotes, or `"-"`.
fn quoted(s: Option<&str>) -> String {
    match s {
        Some(v) if !v.is_empty() => format!("\"{}\"", v.replace('"', "%22")),
        _ => "\"-\"".to_owned(),
    }
}

fn number(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

impl std::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.time;
        let key = self
            .key
            .map(|k| percent_encoding::utf8_percent_encode(k, KEY_ENCODING).to_string());
        let (sigv, auth) = match self.signed {
            Signed::Header => ("SigV4", "AuthHeader"),
            Signed::Query => ("SigV4", "QueryString"),
            Signed::No => ("-", "-"),
        };
        let (cipher, tls) = if self.tls {
            ("TLS_AES_128_GCM_SHA256", "TLSv1.3")
        } else {
            ("-", "-")
        };
        write!(
            f,
            "{} {} [{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000] {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} - {} {} {} {} {} - -",
            self.owner,
            self.bucket,
            t.day(),
            MONTHS[usize::from(u8::from(t.month())) - 1],
            t.year(),
            t.hour(),
            t.minute(),
            t.second(),
            self.remote
                .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
            token(Some(self.requester)),
            token(Some(self.request_id)),
            self.operation,
            token(key.as_deref()),
            quoted(Some(self.request_uri)),
            self.status,
            token(self.error_code),
            number(self.bytes_sent),
            number(self.object_size),
            self.total_ms,
            self.total_ms,
            quoted(self.referer),
            quoted(self.user_agent),
            token(self.version_id),
            sigv,
            cipher,
            auth,
            token(self.host),
            tls,
        )
    }
}

impl Access {
    /// Whether the logging service may write `key` into `target` for `source` (of
    /// `source_owner`): the target's bucket policy allows the service principal
    /// `logging.s3.amazonaws.com` `s3:PutObject` (with `aws:SourceArn` and
    /// `aws:SourceAccount` as AWS sets them), or, where ACLs are enabled, its ACL lets the
    /// LogDelivery group write.
    pub(crate) async fn log_delivery_allowed(
        &self,
        target: &str,
        key: &str,
        source: &str,
        source_owner: &str,
    ) -> bool {
        if let Ok(Some(acl)) = self.objects.bucket_acl_in_force(target).await
            && acl.grants.iter().any(|g| {
                matches!(&g.grantee, coffer_objects::Grantee::Group(u) if u == coffer_objects::LOG_DELIVERY)
                    && matches!(
                        g.permission,
                        coffer_objects::Permission::Write | coffer_objects::Permission::FullControl
                    )
            })
        {
            return true;
        }
        let Ok(t) = self.objects.bucket(target).await else {
            return false;
        };
        let Some(policy) = self.bucket_policy(target).await else {
            return false;
        };
        let service = coffer_iam::Principal::anonymous();
        let mut context = coffer_policy::eval::Context::new();
        context.set_one("aws:PrincipalServiceName", "logging.s3.amazonaws.com");
        context.set_one("aws:SourceArn", format!("arn:aws:s3:::{source}"));
        context.set_one("aws:SourceAccount", source_owner);
        context.set_one("aws:SecureTransport", "true");
        matches!(
            self.authorizer.check(&coffer_authz::Ask {
                principal: &service,
                action: "s3:PutObject",
                resource: &format!("arn:aws:s3:::{target}/{key}"),
                resource_account: Some(&t.owner),
                resource_policy: Some(&policy),
                context,
            }),
            Decision::Allow
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_query_are_not_logged() {
        let uri: Uri =
            "/b/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&X-Amz-Security-Token=tok&versionId=1"
                .parse()
                .expect("uri");
        assert_eq!(
            redacted(&uri),
            "/b/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&versionId=1"
        );
        let plain: Uri = "/b/k".parse().expect("uri");
        assert_eq!(redacted(&plain), "/b/k");
    }

    #[test]
    fn a_record_has_aws_s_fields_in_aws_s_order() {
        let line = Line {
            owner: "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
            bucket: "photos",
            time: time::macros::datetime!(2019-02-06 00:00:38 UTC),
            remote: Some("192.0.2.3".parse().expect("ip")),
            requester: "arn:aws:iam::111122223333:user/mark",
            request_id: "3E57427F3EXAMPLE",
            operation: "REST.GET.OBJECT",
            key: Some("a b/c.txt"),
            request_uri: "GET /photos/a%20b/c.txt HTTP/1.1",
            status: 200,
            error_code: None,
            bytes_sent: Some(113),
            object_size: Some(113),
            total_ms: 7,
            referer: None,
            user_agent: Some("aws-cli/2 \"quoted\""),
            version_id: None,
            signed: Signed::Header,
            tls: false,
            host: Some("127.0.0.1:9000"),
        }
        .to_string();
        assert_eq!(
            line,
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be photos [06/Feb/2019:00:00:38 +0000] 192.0.2.3 arn:aws:iam::111122223333:user/mark 3E57427F3EXAMPLE REST.GET.OBJECT a%20b/c.txt \"GET /photos/a%20b/c.txt HTTP/1.1\" 200 - 113 113 7 7 \"-\" \"aws-cli/2 %22quoted%22\" - - SigV4 - AuthHeader 127.0.0.1:9000 - - -"
        );
        // 26 fields; the time has one space inside its brackets, the quoted request line
        // two, the quoted user agent one.
        assert_eq!(line.split(' ').count(), 26 + 1 + 2 + 1);
    }
}
