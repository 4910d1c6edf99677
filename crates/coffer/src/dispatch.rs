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

use coffer_audit::{Event, RequestContext};
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
        let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
        let work = AssertUnwindSafe(self.route(req, cx.clone()).instrument(span)).catch_unwind();
        let mut resp = match work.await {
            Ok(r) => r,
            Err(_) => {
                tracing::error!("request handler panicked");
                internal_error()
            }
        };
        let error_code = finish(&mut resp, &id);
        self.app
            .audit
            .record(Event::from_context(&cx, resp.status().as_u16(), error_code));
        resp
    }

    async fn route(&self, req: Request<Incoming>, cx: Arc<RequestContext>) -> Response<Body> {
        if req.uri().path() == "/_coffer/health" {
            return health(&req);
        }
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(cx);
        let req = Request::from_parts(parts, Body::from(body));
        match self.app.s3.call(req).await {
            Ok(r) => r,
            Err(e) => {
                let e: s3s::StdError = e.into();
                tracing::error!(error = %e, "S3 service failed");
                internal_error()
            }
        }
    }
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

/// Stamps the request id on the response; for an XML error body, also inside it (AWS
/// clients show it in error messages). Returns the error code, if the response is an error.
fn finish(resp: &mut Response<Body>, id: &str) -> Option<String> {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-amz-request-id", v.clone());
        resp.headers_mut().insert("x-amz-id-2", v);
    }
    if !resp.status().is_client_error() && !resp.status().is_server_error() {
        return None;
    }
    let bytes = resp.body().bytes()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let code = between(text, "<Code>", "</Code>").map(str::to_owned);
    if !text.contains("<RequestId>")
        && let Some(pos) = text.rfind("</Error>")
    {
        let mut with_id = String::with_capacity(text.len() + 64);
        with_id.push_str(&text[..pos]);
        with_id.push_str("<RequestId>");
        with_id.push_str(id);
        with_id.push_str("</RequestId>");
        with_id.push_str(&text[pos..]);
        let len = with_id.len();
        *resp.body_mut() = Body::from(with_id);
        if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
            resp.headers_mut().insert(http::header::CONTENT_LENGTH, v);
        }
    }
    code
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}
