//! The front dispatcher: every request enters here.
//!
//! It gives the request an id and a [`RequestContext`], answers Coffer's own routes
//! (`/_coffer/health`), and hands everything else to the protocol it belongs to: today
//! S3; the KMS (`X-Amz-Target: TrentService.*`), IAM, STS and CloudTrail are routed here,
//! before s3s, as they arrive. On the way out it stamps `x-amz-request-id` on every
//! response (and into XML error bodies), turns a panic into a 500, and writes one audit
//! event.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use tracing::Instrument;

use coffer_audit::{Event, RequestContext, Sink};
use s3s::Body;

use crate::App;

#[derive(Clone)]
pub struct Dispatcher {
    app: Arc<App>,
    peer: SocketAddr,
    tls: bool,
}

impl Dispatcher {
    pub fn new(app: Arc<App>, peer: SocketAddr, tls: bool) -> Self {
        Self { app, peer, tls }
    }
}

/// AWS-style request ids: 16 upper-case hex digits.
fn request_id() -> String {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    hex_simd::encode_to_string(&b[..8], hex_simd::AsciiCase::Upper)
}

impl hyper::service::Service<Request<Incoming>> for Dispatcher {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

impl Dispatcher {
    async fn handle(self, req: Request<Incoming>) -> Response<Body> {
        let started = std::time::Instant::now();
        let bytes_in = content_length(req.headers());
        let id = request_id();
        let user_agent = req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let cx = Arc::new(RequestContext::new(
            id.clone(),
            Some(self.peer),
            user_agent,
            self.tls,
        ));
        // A client that sent `Expect: 100-continue` and gets a final error answer before
        // any 100 (the body was never asked for) does not send the body; the connection
        // must not be reused, or its next request would be read as this one's body.
        let expects_continue = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
        let work = AssertUnwindSafe(self.route(req, cx.clone()).instrument(span)).catch_unwind();
        let resp = match work.await {
            Ok(r) => r,
            Err(_) => {
                tracing::error!("request handler panicked");
                (internal_error(), Some("InternalError".to_owned()))
            }
        };
        let (mut resp, error_code) = resp;
        stamp_request_id(&mut resp, &id);
        if expects_continue && resp.status().as_u16() >= 400 {
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        let event = Event::from_context(&cx, resp.status().as_u16(), error_code);
        self.app.metrics.observe(
            &event,
            started.elapsed(),
            bytes_in,
            content_length(resp.headers()),
        );
        // Management calls are durable in the trail before they are answered.
        if let Some(durable) = self.app.audit.record(event) {
            let _ = durable.await;
        }
        resp
    }

    /// Picks the protocol. Returns the response and, for a failed call, its error code.
    async fn route(
        &self,
        req: Request<Incoming>,
        cx: Arc<RequestContext>,
    ) -> (Response<Body>, Option<String>) {
        if req.uri().path() == "/_coffer/health" {
            return (health(&req), None);
        }
        if req.uri().path() == "/_coffer/metrics" && req.method() == http::Method::GET {
            let text = self.app.metrics.render(self.app.audit.write_lag());
            let mut r = Response::new(Body::from(text));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return (r, None);
        }
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok());
        if coffer_api_kms::is_kms(target) {
            return self.kms(req, &cx).await;
        }
        if coffer_api_cloudtrail::is_cloudtrail(target) {
            return self.cloudtrail(req, &cx).await;
        }
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if coffer_api_iam::is_query_api(req.method().as_str(), req.uri().path(), authorization) {
            return self.iam(req, &cx).await;
        }
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(cx.clone());
        let req = Request::from_parts(parts, Body::from(body));
        let answer = self.app.s3.call(req, &cx.request_id).await;
        (answer.response, answer.error_code)
    }
}

/// Largest KMS, IAM or STS request body read (the largest legal one, a 32 KiB policy,
/// fits with room to spare, even URL-encoded).
const API_MAX_BODY: usize = 1 << 20;

impl Dispatcher {
    async fn kms(
        &self,
        req: Request<Incoming>,
        cx: &RequestContext,
    ) -> (Response<Body>, Option<String>) {
        let (parts, body) = match read_small(req).await {
            Ok(x) => x,
            Err(too_big) => {
                let msg = if too_big {
                    "The request body is too large"
                } else {
                    "The request body could not be read"
                };
                let w = coffer_api_kms::WireError::new("SerializationException", msg);
                return (
                    kms_response(w.status, bytes::Bytes::from(w.body()), &cx.request_id),
                    Some("SerializationException".to_owned()),
                );
            }
        };
        let r = self.app.kms_api.call(api_request(&parts, body), cx).await;
        (
            kms_response(r.status, r.body, &cx.request_id),
            r.error_code.map(str::to_owned),
        )
    }
}

impl Dispatcher {
    /// CloudTrail LookupEvents (awsJson1.1).
    async fn cloudtrail(
        &self,
        req: Request<Incoming>,
        cx: &RequestContext,
    ) -> (Response<Body>, Option<String>) {
        let (parts, body) = match read_small(req).await {
            Ok(x) => x,
            Err(_) => {
                let w = coffer_api_kms::WireError::new(
                    "SerializationException",
                    "The request body is too large or could not be read",
                );
                return (
                    json_response(400, Bytes::from(w.body()), &cx.request_id),
                    Some("SerializationException".to_owned()),
                );
            }
        };
        let r = self
            .app
            .cloudtrail_api
            .call(api_request(&parts, body), cx)
            .await;
        (
            json_response(r.status, r.body, &cx.request_id),
            r.error_code.map(str::to_owned),
        )
    }

    /// IAM and STS (form-encoded Query API).
    async fn iam(
        &self,
        req: Request<Incoming>,
        cx: &RequestContext,
    ) -> (Response<Body>, Option<String>) {
        let (parts, body) = match read_small(req).await {
            Ok(x) => x,
            Err(_) => {
                let mut r = Response::new(Body::from(Bytes::from_static(
                    b"<ErrorResponse><Error><Type>Sender</Type><Code>MalformedInput</Code><Message>The request body is too large or could not be read</Message></Error></ErrorResponse>",
                )));
                *r.status_mut() = StatusCode::BAD_REQUEST;
                return (r, Some("MalformedInput".to_owned()));
            }
        };
        let r = self.app.iam_api.call(api_request(&parts, body), cx).await;
        let mut resp = Response::new(Body::from(r.body));
        *resp.status_mut() =
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(coffer_api_iam::CONTENT_TYPE),
        );
        if let Ok(v) = HeaderValue::from_str(&cx.request_id) {
            resp.headers_mut().insert("x-amzn-requestid", v);
        }
        (resp, r.error_code)
    }
}

/// Reads a JSON/Query API body (at most [`API_MAX_BODY`]); `Err(true)` if it is too large,
/// `Err(false)` if it could not be read.
async fn read_small(req: Request<Incoming>) -> Result<(http::request::Parts, Bytes), bool> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    match http_body_util::Limited::new(body, API_MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => Ok((parts, b.to_bytes())),
        Err(e) => Err(e
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()),
    }
}

/// Headers as (name, value) pairs for the SigV4 verifier (non-UTF-8 values are dropped:
/// they cannot have been signed by an AWS client).
/// A KMS, IAM/STS or CloudTrail request with its body read, as those APIs take it.
fn api_request(parts: &http::request::Parts, body: Bytes) -> coffer_iam::auth::ApiRequest<'_> {
    coffer_iam::auth::ApiRequest {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_owned(), v.to_owned()))
            })
            .collect(),
        body,
    }
}

fn kms_response(status: u16, body: bytes::Bytes, request_id: &str) -> Response<Body> {
    json_response(status, body, request_id)
}

/// An awsJson1.1 reply (KMS, CloudTrail).
fn json_response(status: u16, body: bytes::Bytes, request_id: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(coffer_api_kms::CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

fn health(req: &Request<Incoming>) -> Response<Body> {
    let mut r = Response::new(if req.method() == http::Method::HEAD {
        Body::empty()
    } else {
        Body::from(Bytes::from_static(b"ok\n"))
    });
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

/// A message's declared body size (the decoded size for aws-chunked uploads).
fn content_length(h: &http::HeaderMap) -> u64 {
    h.get("x-amz-decoded-content-length")
        .or_else(|| h.get(http::header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn internal_error() -> Response<Body> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";
    let mut r = Response::new(Body::from(body.to_owned()));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// Every response carries the request id, as AWS's do.
fn stamp_request_id(resp: &mut Response<Body>, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-amz-request-id", v.clone());
        resp.headers_mut().insert("x-amz-id-2", v);
    }
}
