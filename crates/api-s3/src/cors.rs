//! CORS on the wire: browsers' preflight `OPTIONS` requests, answered from the bucket's
//! rules without authentication (s3s has no route for them), and the `Access-Control-*`
//! headers on actual requests that carry an `Origin`, errors included — as S3 answers them
//! (AWS's RESTOPTIONSobject page, and S3's replies as recorded in LocalStack's AWS-validated
//! snapshots: the `AccessForbidden` bodies, the lower-cased allowed headers, `Vary`).

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use s3s::Body;
use s3s::host::S3Host;

use coffer_audit::RequestContext;
use coffer_objects::{CorsRequest, CorsRule, Objects};

use crate::access::Domain;

/// What CORS needs to know of a request, read before s3s takes it.
pub(crate) struct Asked {
    origin: String,
    /// The actual method, or `Access-Control-Request-Method` when present (S3 matches
    /// on that one).
    method: String,
    /// `Access-Control-Request-Headers`, lower-cased, in the order sent.
    headers: Vec<String>,
    bucket: String,
    /// Whether the request names an object (the error's `ResourceType`).
    object: bool,
}

pub(crate) struct Cors {
    pub objects: Arc<Objects>,
    pub domain: Option<Domain>,
}

const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

impl Cors {
    /// What a request with an `Origin` header asks of CORS; `None` without one, or when it
    /// names no bucket.
    pub(crate) fn asked(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Option<Asked> {
        let origin = header(headers, "origin")?.to_owned();
        let (bucket, object) = self.target(uri, headers)?;
        Some(Asked {
            origin,
            method: header(headers, "access-control-request-method")
                .unwrap_or(method.as_str())
                .to_owned(),
            headers: header(headers, "access-control-request-headers")
                .map(|h| {
                    h.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            bucket: bucket.into_owned(),
            object,
        })
    }

    /// The bucket a request names (virtual-hosted or path style), if any.
    pub(crate) fn bucket_of<'a>(
        &self,
        uri: &'a http::Uri,
        headers: &HeaderMap,
    ) -> Option<Cow<'a, str>> {
        self.target(uri, headers).map(|(b, _)| b)
    }

    /// Whether a request names a key (not only a bucket, or nothing).
    pub(crate) fn names_key(&self, uri: &http::Uri, headers: &HeaderMap) -> bool {
        self.target(uri, headers).is_some_and(|(_, key)| key)
    }

    /// The bucket a request names (virtual-hosted or path style), and whether it names a key.
    /// (Borrowed from the path when it needs no decoding: every request asks.)
    fn target<'a>(&self, uri: &'a http::Uri, headers: &HeaderMap) -> Option<(Cow<'a, str>, bool)> {
        let path = uri.path().trim_start_matches('/');
        if let (Some(domain), Some(host)) = (&self.domain, header(headers, "host"))
            && let Ok(vh) = domain.parse_host_header(host)
            && let Some(b) = vh.bucket()
        {
            return Some((Cow::Owned(b.to_owned()), !path.is_empty()));
        }
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        let bucket = percent_encoding::percent_decode_str(bucket)
            .decode_utf8()
            .ok()?;
        (!bucket.is_empty()).then_some((bucket, !key.is_empty()))
    }

    /// The rule that allows the request, if the bucket has one.
    async fn rule(&self, a: &Asked) -> Result<Option<CorsRule>, coffer_objects::Error> {
        let Some(cfg) = self.objects.get_bucket_cors(&a.bucket).await? else {
            return Ok(None);
        };
        let headers: Vec<&str> = a.headers.iter().map(String::as_str).collect();
        Ok(cfg
            .matching(&CorsRequest {
                origin: &a.origin,
                method: &a.method,
                headers: &headers,
            })
            .cloned())
    }

    /// A browser's preflight: 200 with the matching rule's headers, or S3's refusal.
    pub(crate) async fn preflight(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        cx: &RequestContext,
    ) -> Response<Body> {
        let target = self.target(uri, headers);
        cx.fill(|f| {
            f.service = Some("s3.amazonaws.com");
            f.operation = Some("PreflightRequest");
            f.read_only = Some(true);
            f.data_event = true;
            f.bucket = target.as_ref().map(|(b, _)| b.to_string());
        });
        if header(headers, "origin").is_none() {
            return refusal(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Insufficient information. Origin request header needed.",
                None,
            );
        }
        let Some(a) = self.asked(method, uri, headers) else {
            return refusal(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: Bucket not found",
                Some((method_of(headers), "BUCKET")),
            );
        };
        let cfg = match self.objects.get_bucket_cors(&a.bucket).await {
            Ok(Some(cfg)) => cfg,
            Ok(None) => {
                return refusal(
                    StatusCode::FORBIDDEN,
                    "AccessForbidden",
                    "CORSResponse: CORS is not enabled for this bucket.",
                    Some((method_of(headers), "BUCKET")),
                );
            }
            Err(coffer_objects::Error::NoSuchBucket(_)) => {
                return refusal(
                    StatusCode::FORBIDDEN,
                    "AccessForbidden",
                    "CORSResponse: Bucket not found",
                    Some((method_of(headers), "BUCKET")),
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "reading a bucket's CORS configuration");
                return crate::front::error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                );
            }
        };
        if header(headers, "access-control-request-method").is_none() {
            return refusal(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid Access-Control-Request-Method: null",
                None,
            );
        }
        let names: Vec<&str> = a.headers.iter().map(String::as_str).collect();
        let Some(rule) = cfg.matching(&CorsRequest {
            origin: &a.origin,
            method: &a.method,
            headers: &names,
        }) else {
            return refusal(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
                Some((
                    method_of(headers),
                    if a.object { "OBJECT" } else { "BUCKET" },
                )),
            );
        };
        let mut resp = Response::new(Body::empty());
        allow(resp.headers_mut(), rule, &a);
        if !a.headers.is_empty()
            && let Ok(v) = HeaderValue::from_str(&a.headers.join(", "))
        {
            resp.headers_mut().insert("access-control-allow-headers", v);
        }
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
        resp
    }

    /// Adds the `Access-Control-*` headers to the response of an actual request whose
    /// origin and method a rule of the bucket allows (also to errors, as S3 does).
    pub(crate) async fn decorate(&self, a: &Asked, resp: &mut Response<Body>) {
        // A configuration that cannot be read adds nothing: the answer itself stands.
        if let Ok(Some(rule)) = self.rule(a).await {
            allow(resp.headers_mut(), &rule, a);
        }
    }
}

/// The headers of an allowed request.
fn allow(h: &mut HeaderMap, rule: &CorsRule, a: &Asked) {
    let any = rule.any_origin();
    let origin = if any { "*" } else { a.origin.as_str() };
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("access-control-allow-origin", origin);
    if !any {
        set("access-control-allow-credentials", "true");
    }
    set(
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        set(
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        set("access-control-max-age", &age.to_string());
    }
    set("vary", VARY);
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The method a refusal names: the one the preflight asked about, else `OPTIONS`.
fn method_of(h: &HeaderMap) -> String {
    header(h, "access-control-request-method")
        .unwrap_or("OPTIONS")
        .to_owned()
}

/// S3's preflight refusal; `CORSResponse` refusals name the method and resource type.
fn refusal(
    status: StatusCode,
    code: &str,
    message: &str,
    detail: Option<(String, &str)>,
) -> Response<Body> {
    let extra = detail
        .map(|(m, t)| {
            format!(
                "<Method>{}</Method><ResourceType>{t}</ResourceType>",
                crate::front::xml_escape(&m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>{extra}</Error>",
        crate::front::xml_escape(message)
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_s3_s_shape() {
        let r = refusal(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            "CORSResponse: CORS is not enabled for this bucket.",
            Some(("PUT".into(), "BUCKET")),
        );
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body = r.body().bytes().expect("full body");
        let body = std::str::from_utf8(&body).expect("utf-8");
        assert!(
            body.contains("<Code>AccessForbidden</Code><Message>CORSResponse: CORS is not enabled for this bucket.</Message><Method>PUT</Method><ResourceType>BUCKET</ResourceType></Error>"),
            "{body}"
        );
    }
}
