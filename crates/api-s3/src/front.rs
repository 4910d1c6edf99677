//! The S3 service as the dispatcher sees it: one call per request that returns the final
//! response, with the request id inside every XML error body and the few error shapes
//! where s3s differs from AWS corrected. s3s produces those errors before our code runs
//! (while parsing and authenticating), so this is the only place that can see them.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use s3s::Body;
use s3s::service::S3Service;

use coffer_api::Reply;
use coffer_audit::RequestContext;

pub struct S3Front {
    service: S3Service,
    cors: crate::cors::Cors,
    logs: Arc<crate::access_log::AccessLogs>,
    /// Set in development mode only (see `dev.rs`).
    dev: Option<Arc<dyn coffer_iam::Credentials>>,
}

/// The response as s3s made it (corrected), and the AWS error code if it failed.
pub(crate) struct Answer {
    pub response: Response<Body>,
    pub error_code: Option<String>,
}

impl S3Front {
    pub(crate) fn new(
        service: S3Service,
        cors: crate::cors::Cors,
        logs: Arc<crate::access_log::AccessLogs>,
        dev: Option<Arc<dyn coffer_iam::Credentials>>,
    ) -> Self {
        Self {
            service,
            cors,
            logs,
            dev,
        }
    }

    /// The final reply, once the request's access log record (if its bucket logs) is
    /// taken: every way out of `handle` passes here.
    async fn logged(
        &self,
        seen: Option<crate::access_log::Seen>,
        cx: &RequestContext,
        answer: Answer,
    ) -> Reply {
        if let Some(seen) = seen {
            self.logs
                .record(seen, cx, &answer.response, answer.error_code.as_deref())
                .await;
        }
        Reply {
            response: answer.response.map(http_body_util::BodyExt::boxed_unsync),
            error_code: answer.error_code,
        }
    }

    /// The server access log records waiting for delivery (the binary delivers them on a
    /// timer and at shutdown).
    pub fn access_logs(&self) -> Arc<crate::access_log::AccessLogs> {
        self.logs.clone()
    }

    /// One request, whatever carries its body: CORS preflights, AWS's answers to malformed
    /// authentication, then s3s; every way out is logged.
    pub(crate) async fn answer(
        &self,
        mut parts: http::request::Parts,
        body: Body,
        cx: &Arc<RequestContext>,
    ) -> Reply {
        let seen = self
            .logs
            .seen(
                self.cors.bucket_of(&parts.uri, &parts.headers).as_deref(),
                &parts.method,
                &parts.uri,
                &parts.headers,
            )
            .await;
        if parts.method == http::Method::OPTIONS {
            let resp = self
                .cors
                .preflight(&parts.method, &parts.uri, &parts.headers, cx)
                .await;
            return self.logged(seen, cx, finish(resp, &cx.request_id)).await;
        }
        let asked = self.cors.asked(&parts.method, &parts.uri, &parts.headers);
        let object_data = parts.method == http::Method::PUT
            && self.cors.names_key(&parts.uri, &parts.headers)
            && crate::precheck::object_data_query(parts.uri.query());
        let refusal = match crate::precheck::check(
            &parts.uri,
            &parts.headers,
            object_data,
            time::OffsetDateTime::now_utc(),
        ) {
            crate::precheck::Verdict::Pass => None,
            crate::precheck::Verdict::Anonymous => {
                parts.headers.remove(http::header::AUTHORIZATION);
                None
            }
            crate::precheck::Verdict::Refuse(status, code, message, extra) => {
                Some(error_response_with(status, code, &message, &extra))
            }
        };
        // A document body (every body but object data and browser forms) is read here,
        // whole: s3s reads it only after authentication and answers a body that does not
        // match its signed SHA-256, or that breaks off, with a 500.
        let document = if object_data {
            Document::No
        } else {
            document(&parts)
        };
        let (body, refusal, mismatch) = match (refusal, document) {
            (Some(r), _) => (body, Some(r), false),
            (None, Document::Small) => {
                match read_document(body, header_str(&parts.headers, "x-amz-content-sha256")).await
                {
                    Ok((bytes, mismatch)) => (Body::from(bytes), None, mismatch),
                    Err(r) => (Body::empty(), Some(r), false),
                }
            }
            (None, Document::TooLarge) => (Body::empty(), Some(too_big()), false),
            (None, Document::Large | Document::No) => (body, None, false),
        };
        if let Some(r) = refusal {
            let mut answer = finish(r, &cx.request_id);
            if let Some(a) = &asked {
                self.cors.decorate(a, &mut answer.response).await;
            }
            return self.logged(seen, cx, answer).await;
        }
        let sha256 = mismatch.then_some(());
        let mut body = body;
        if let Some(credentials) = &self.dev
            && let Some(chunks) = crate::dev::resign(credentials.as_ref(), &mut parts)
        {
            let stream: s3s::stream::DynByteStream =
                Box::pin(crate::dev::Resigned::new(body, chunks));
            body = Body::from(stream);
        }
        parts.extensions.insert(cx.clone());
        let notes = Arc::new(crate::access::Notes::default());
        parts.extensions.insert(notes.clone());
        let mut answer = self
            .call(Request::from_parts(parts, body), &cx.request_id)
            .await;
        // Authenticated, then failed reading the body s3s was given: its signed hash.
        if sha256.is_some() && answer.error_code.as_deref() == Some("InternalError") {
            answer = finish(
                error_response(
                    StatusCode::BAD_REQUEST,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ),
                &cx.request_id,
            );
        }
        if answer.response.status() == StatusCode::NOT_FOUND
            && answer
                .error_code
                .as_deref()
                .is_none_or(|c| c == "NoSuchKey")
            && notes
                .hide_missing
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            answer = hidden_missing(answer, &cx.request_id);
        }
        if let Some(a) = asked {
            self.cors.decorate(&a, &mut answer.response).await;
        }
        // The version a write made, as CloudTrail shows it among the response elements.
        if answer.error_code.is_none()
            && let Some(v) = answer
                .response
                .headers()
                .get("x-amz-version-id")
                .and_then(|v| v.to_str().ok())
        {
            let v = v.to_owned();
            cx.fill(|f| {
                if f.read_only == Some(false) {
                    f.response_elements = Some(serde_json::json!({ "x-amz-version-id": v }));
                }
            });
        }
        self.logged(seen, cx, answer).await
    }

    async fn call(&self, req: Request<Body>, request_id: &str) -> Answer {
        let response = match self.service.call(req).await {
            Ok(r) => r,
            Err(e) => {
                let e: s3s::StdError = e.into();
                tracing::error!(error = %e, "S3 service failed");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            }
        };
        finish(response, request_id)
    }
}

/// S3 is the protocol of every request no other API claimed: it accepts them all.
#[async_trait::async_trait]
impl coffer_api::ApiHandler for S3Front {
    fn accepts(&self, _req: &Request<coffer_api::Body>) -> bool {
        true
    }

    async fn handle(&self, req: Request<coffer_api::Body>, cx: &Arc<RequestContext>) -> Reply {
        let (parts, body) = req.into_parts();
        // A client that stops sending its body fails the request after the client
        // timeout (`RequestTimeout`) instead of holding it for ever.
        let body = Body::http_body_unsync(coffer_api::Watched::new(body));
        self.answer(parts, body, cx).await
    }

    fn internal_error(&self, request_id: &str) -> Reply {
        let answer = finish(
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
            request_id,
        );
        Reply {
            response: answer.response.map(http_body_util::BodyExt::boxed_unsync),
            error_code: answer.error_code,
        }
    }

    fn unavailable(&self, request_id: &str) -> Reply {
        let answer = finish(
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Service is unable to handle request.",
            ),
            request_id,
        );
        Reply {
            response: answer.response.map(http_body_util::BodyExt::boxed_unsync),
            error_code: answer.error_code,
        }
    }
}

fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Largest document body read here, before the request is authenticated (a larger one is
/// left to s3s as it comes).
const MAX_DOCUMENT: usize = 2 * 1024 * 1024;

/// Largest document body taken at all (s3s's limit on XML bodies).
const MAX_XML: u64 = 20 * 1024 * 1024;

/// What a request's body is, for reading it here: a document is the body of a PUT or POST
/// that is not object data or a browser form upload, with its SHA-256 signed (an unsigned
/// body has nothing to check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Document {
    No,
    /// At most [`MAX_DOCUMENT`]: read here.
    Small,
    /// Larger, up to s3s's limit: left to s3s.
    Large,
    /// Declared longer than s3s would take: refused before it is read.
    TooLarge,
}

fn document(parts: &http::request::Parts) -> Document {
    let signed_hash = parts
        .headers
        .get("x-amz-content-sha256")
        .is_some_and(|v| v.len() == 64 && v.as_bytes().iter().all(u8::is_ascii_hexdigit));
    let form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"multipart/form-data"));
    if !(parts.method == http::Method::PUT || parts.method == http::Method::POST)
        || !signed_hash
        || form
    {
        return Document::No;
    }
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n <= MAX_DOCUMENT as u64 => Document::Small,
        Some(n) if n > MAX_XML => Document::TooLarge,
        _ => Document::Large,
    }
}

fn too_big() -> Response<Body> {
    error_response(
        StatusCode::BAD_REQUEST,
        "MaxMessageLengthExceeded",
        "Your request was too big.",
    )
}

/// Reads a document body whole: the bytes and whether they differ from the signed hash,
/// or the error to answer (too long, cut short, or its client went silent).
async fn read_document(body: Body, signed: &str) -> Result<(Bytes, bool), Response<Body>> {
    let limited = http_body_util::Limited::new(body, MAX_DOCUMENT);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(c) => {
            use sha2::Digest as _;
            let bytes = c.to_bytes();
            let hash = hex_simd::encode_to_string(
                sha2::Sha256::digest(&bytes),
                hex_simd::AsciiCase::Lower,
            );
            Ok((bytes, !hash.eq_ignore_ascii_case(signed)))
        }
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_big())
        }
        Err(e) => {
            let e = crate::error::to_s3_error(coffer_objects::Error::Body(e));
            Err(error_response(
                e.status_code().unwrap_or(StatusCode::BAD_REQUEST),
                e.code().as_str(),
                e.message().unwrap_or_default(),
            ))
        }
    }
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    error_response_with(status, code, message, &[])
}

/// An error with elements of its own after `Message` (as `RequestTimeTooSkewed` has).
pub(crate) fn error_response_with(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: &[(&str, String)],
) -> Response<Body> {
    let extra: String = extra
        .iter()
        .map(|(k, v)| format!("<{k}>{}</{k}>", xml_escape(v)))
        .collect();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>{extra}</Error>",
        xml_escape(code),
        xml_escape(message)
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

/// AWS's messages for errors s3s raises without one (while parsing the request), so that
/// clients show more than "Unknown".
const STANDARD_MESSAGES: &[(&str, &str)] = &[
    ("InvalidBucketName", "The specified bucket is not valid."),
    ("KeyTooLongError", "Your key is too long."),
    ("InvalidURI", "Couldn't parse the specified URI."),
    (
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
    ),
    (
        "NotImplemented",
        "A header you provided implies functionality that is not implemented.",
    ),
    (
        "MissingContentLength",
        "You must provide the Content-Length HTTP header.",
    ),
    (
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema.",
    ),
    ("AccessDenied", "Access Denied"),
    (
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    ),
    ("NoSuchBucket", "The specified bucket does not exist."),
    ("NoSuchKey", "The specified key does not exist."),
];

/// AWS's answer where s3s gives a different one.
fn aws_shape(
    status: StatusCode,
    code: &str,
    message: &str,
) -> Option<(StatusCode, &'static str, String)> {
    if message.is_empty()
        && let Some((code, m)) = STANDARD_MESSAGES.iter().find(|(c, _)| *c == code)
    {
        return Some((status, code, (*m).to_owned()));
    }
    match code {
        // A POST whose form violates its signed policy.
        "InvalidPolicyDocument" if message.starts_with("Policy condition") => Some((
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("Invalid according to Policy: Policy Condition failed: {message}"),
        )),
        _ => None,
    }
}

/// A missing key, answered to a caller that may not list the bucket: 403 AccessDenied,
/// as S3 answers, so that the caller learns nothing about which keys exist. The response
/// keeps its headers but for the body's.
fn hidden_missing(answer: Answer, request_id: &str) -> Answer {
    let mut headers = answer.response.headers().clone();
    headers.remove(http::header::CONTENT_LENGTH);
    headers.remove(http::header::CONTENT_TYPE);
    let mut a = finish(
        error_response(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"),
        request_id,
    );
    for (k, v) in &headers {
        a.response.headers_mut().insert(k.clone(), v.clone());
    }
    a
}

/// A success status an operation answers with where s3s's serializer writes a fixed one
/// (RestoreObject's 202): put in the response's extensions by the operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status(pub StatusCode);

/// Put in a response's extensions by GetObjectAttributes: AWS writes that reply's `ETag`
/// without the quotes s3s puts around every ETag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnquotedEtag;

/// The body with its first `<ETag>"…"</ETag>` unquoted.
fn unquote_etag(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<ETag>\"")? + "<ETag>".len();
    let end = start + 1 + text[start + 1..].find("\"</ETag>")?;
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.push_str(&text[start + 1..end]);
    out.push_str(&text[end + 1..]);
    Some(out.into_bytes())
}

fn is_xml(resp: &Response<Body>) -> bool {
    resp.headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().ends_with(b"xml"))
}

fn finish(mut resp: Response<Body>, request_id: &str) -> Answer {
    if let Some(Status(s)) = resp.extensions_mut().remove::<Status>() {
        *resp.status_mut() = s;
    }
    crate::wide_checksum::restore_headers(resp.headers_mut());
    if is_xml(&resp)
        && let Some(fixed) = resp
            .body()
            .bytes()
            .and_then(|b| crate::wide_checksum::restore_xml(&b))
    {
        resp.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(fixed.len()),
        );
        *resp.body_mut() = Body::from(fixed);
    }
    if resp.extensions_mut().remove::<UnquotedEtag>().is_some()
        && let Some(fixed) = resp.body().bytes().and_then(|b| unquote_etag(&b))
    {
        resp.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(fixed.len()),
        );
        *resp.body_mut() = Body::from(Bytes::from(fixed));
    }
    if !resp.status().is_client_error() && !resp.status().is_server_error() {
        return Answer {
            response: resp,
            error_code: None,
        };
    }
    let Some(bytes) = resp.body().bytes() else {
        return Answer {
            response: resp,
            error_code: None,
        };
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Answer {
            response: resp,
            error_code: None,
        };
    };
    let mut code = between(text, "<Code>", "</Code>").map(str::to_owned);
    let message = between(text, "<Message>", "</Message>")
        .unwrap_or("")
        .to_owned();
    if let Some((status, new_code, new_message)) = code
        .as_deref()
        .and_then(|c| aws_shape(resp.status(), c, &message))
    {
        let headers = std::mem::take(resp.headers_mut());
        resp = error_response(status, new_code, &new_message);
        for (k, v) in &headers {
            if k != http::header::CONTENT_LENGTH && k != http::header::CONTENT_TYPE {
                resp.headers_mut().insert(k.clone(), v.clone());
            }
        }
        code = Some(new_code.to_owned());
    }
    let Some(text) = resp.body().bytes() else {
        return Answer {
            response: resp,
            error_code: code,
        };
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    if !text.contains("<RequestId>")
        && let Some(pos) = text.rfind("</Error>")
    {
        let with_id = format!(
            "{}<RequestId>{}</RequestId>{}",
            &text[..pos],
            xml_escape(request_id),
            &text[pos..]
        );
        if let Ok(v) = HeaderValue::from_str(&with_id.len().to_string()) {
            resp.headers_mut().insert(http::header::CONTENT_LENGTH, v);
        }
        *resp.body_mut() = Body::from(Bytes::from(with_id));
    }
    Answer {
        response: resp,
        error_code: code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_object_attributes_etags_lose_their_quotes() {
        let body = b"<GetObjectAttributesResponse><ETag>\"abc\"</ETag><ObjectSize>1</ObjectSize></GetObjectAttributesResponse>";
        assert_eq!(
            unquote_etag(body).as_deref(),
            Some(&b"<GetObjectAttributesResponse><ETag>abc</ETag><ObjectSize>1</ObjectSize></GetObjectAttributesResponse>"[..])
        );
        assert_eq!(unquote_etag(b"<X><ObjectSize>1</ObjectSize></X>"), None);
    }

    #[test]
    fn request_id_goes_into_error_bodies() {
        let r = error_response(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
        let a = finish(r, "ABC123");
        assert_eq!(a.error_code.as_deref(), Some("NoSuchKey"));
        let body = a.response.body().bytes().expect("full body");
        let body = std::str::from_utf8(&body).expect("utf-8");
        assert!(
            body.contains("<RequestId>ABC123</RequestId></Error>"),
            "{body}"
        );
    }

    #[test]
    fn post_policy_violations_are_access_denied() {
        let r = error_response(
            StatusCode::BAD_REQUEST,
            "InvalidPolicyDocument",
            "Policy condition 'eq' failed",
        );
        let a = finish(r, "X");
        assert_eq!(a.response.status(), StatusCode::FORBIDDEN);
        assert_eq!(a.error_code.as_deref(), Some("AccessDenied"));
    }

    #[test]
    fn errors_s3s_raises_without_a_message_get_aws_s_message() {
        let mut r = Response::new(Body::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidBucketName</Code></Error>"
                .to_owned(),
        ));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        let a = finish(r, "R1");
        assert_eq!(a.response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(a.error_code.as_deref(), Some("InvalidBucketName"));
        let body = a.response.body().bytes().expect("full body");
        let body = std::str::from_utf8(&body).expect("utf-8");
        assert!(
            body.contains("<Message>The specified bucket is not valid.</Message>")
                && body.contains("<RequestId>R1</RequestId>"),
            "{body}"
        );
        // A message s3s did give is kept.
        let r = error_response(StatusCode::BAD_REQUEST, "InvalidBucketName", "too short");
        let body = finish(r, "R2").response.body().bytes().expect("body");
        assert!(
            std::str::from_utf8(&body)
                .expect("utf-8")
                .contains("too short")
        );
    }
}
