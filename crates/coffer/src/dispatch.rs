//! The front dispatcher: every request enters here.
//!
//! It gives the request an id and a [`RequestContext`], answers Coffer's own routes
//! (`/_coffer/health`, `/_coffer/metrics`, and the console's pages, whose API calls come
//! back in here as requests of their own), and hands everything else to the first
//! protocol ([`ApiHandler`]) that accepts it: the KMS, CloudTrail, IAM/STS, and S3 for
//! the rest. It knows no wire format: on the way out it stamps `x-amz-request-id` on every
//! response, answers a panic with the protocol's own 500, counts the call and writes one
//! audit event.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::Instrument;

use coffer_api::{Body, full};
use coffer_audit::{Event, RequestContext, Sink};

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
        let req = req.map(|b| {
            b.map_err(|e| Box::new(e) as coffer_api::BoxError)
                .boxed_unsync()
        });
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

/// The console's calls, made as the signed-in user, enter as any client's request does
/// (from the browser's address), and are counted and audited as theirs.
#[async_trait::async_trait]
impl coffer_console::Loopback for Dispatcher {
    async fn call(&self, req: Request<Body>) -> Response<Body> {
        self.clone().handle(req).await
    }
}

impl Dispatcher {
    async fn handle(self, req: Request<Body>) -> Response<Body> {
        // The console's pages are not API calls: only the calls they make are recorded.
        if let Some(console) = &self.app.console
            && coffer_console::Console::claims(req.uri().path())
        {
            let console = console.clone();
            return console.handle(req, &self, self.tls).await;
        }
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
        // A client that sent `Expect: 100-continue` and gets its final answer without a
        // 100 first — an error before the body was asked for, or any answer to an empty
        // body, which is never read — must not reuse the connection: after an error its
        // unsent body would be read as the next request, and botocore before 1.43.77
        // misreads the connection after such an answer and stalls its next request for a
        // minute (`aws s3 sync` of a tree with empty files).
        let expects_continue = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let empty_body = bytes_in == 0;
        let (mut resp, error_code, handler) = self.route(req, cx.clone()).await;
        stamp_request_id(&mut resp, &id);
        if self.app.console.is_some() {
            sandbox(&mut resp);
        }
        if expects_continue && (resp.status().as_u16() >= 400 || empty_body) {
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
        // Management calls are durable in the trail before they are answered; one whose
        // record could not be written (the trail's disk is full) is answered as the
        // protocol answers a call it cannot serve now. (Its record is kept and written
        // once the trail can be written again.)
        if let Some(durable) = self.app.audit.record(event)
            && durable.await.is_err()
            && let Some(h) = handler
        {
            let mut reply = h.unavailable(&id).response;
            stamp_request_id(&mut reply, &id);
            if let Some(close) = resp.headers().get(http::header::CONNECTION) {
                reply
                    .headers_mut()
                    .insert(http::header::CONNECTION, close.clone());
            }
            return reply;
        }
        resp
    }

    /// Coffer's own routes, else the protocol that accepts the request. Returns the
    /// response and, for a failed call, its error code.
    async fn route(
        &self,
        req: Request<Body>,
        cx: Arc<RequestContext>,
    ) -> (
        Response<Body>,
        Option<String>,
        Option<Arc<dyn coffer_api::ApiHandler>>,
    ) {
        let stale = self.app.is_stale();
        if req.uri().path() == "/_coffer/health" {
            // A load balancer takes a node that cannot vouch for its caches out of service.
            return (health(&req, stale), None, None);
        }
        if req.uri().path() == "/_coffer/metrics" && req.method() == http::Method::GET {
            let usage = self.app.objects.usage().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "counting bucket usage for the metrics failed");
                Vec::new()
            });
            let text = self.app.metrics.render(self.app.audit.write_lag(), &usage);
            let mut r = Response::new(full(text));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return (r, None, None);
        }
        if let Some(dev) = &self.app.dev {
            dev.adopt(req.headers(), req.uri().query()).await;
        }
        let Some(handler) = self.app.protocols.iter().find(|h| h.accepts(&req)) else {
            // S3 accepts every request; this cannot happen.
            return (not_found(), None, None);
        };
        // While the trail cannot be written (a full disk), only reads are served: their
        // records wait in memory, up to a bound; a call that changes something must be
        // recorded before it is answered, so it is refused before it runs.
        let read = req.method() == http::Method::GET || req.method() == http::Method::HEAD;
        let refuse = match self.app.audit.writable() {
            coffer_audit::trail::Writable::Yes => false,
            coffer_audit::trail::Writable::Failing => !read,
            coffer_audit::trail::Writable::Full => true,
        };
        if stale || refuse {
            // This node cannot hear other nodes' changes (keys disabled, policies changed),
            // or cannot record: it answers nothing rather than something stale or unrecorded.
            let reply = handler.unavailable(&cx.request_id);
            return (reply.response, reply.error_code, Some(handler.clone()));
        }
        let span = tracing::info_span!("request", id = %cx.request_id, method = %req.method(), path = %req.uri().path());
        let work = AssertUnwindSafe(handler.handle(req, &cx).instrument(span)).catch_unwind();
        let reply = match work.await {
            Ok(r) => r,
            Err(_) => {
                tracing::error!(id = %cx.request_id, "request handler panicked");
                handler.internal_error(&cx.request_id)
            }
        };
        (reply.response, reply.error_code, Some(handler.clone()))
    }
}

fn health(req: &Request<Body>, stale: bool) -> Response<Body> {
    let text: &'static [u8] = if stale {
        b"unavailable: not hearing the shared metadata store's changes\n"
    } else {
        b"ok\n"
    };
    let mut r = Response::new(if req.method() == http::Method::HEAD {
        full(Bytes::new())
    } else {
        full(Bytes::from_static(text))
    });
    if stale {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
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

fn not_found() -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// While the console shares this origin, nothing the APIs serve may act as it: an object
/// opened in a browser (HTML or SVG uploaded by anyone, or a presigned GET asking for
/// `text/html`) runs sandboxed, in an origin of its own, so it can neither read the
/// console's pages nor send its cookie. Scripts, forms and downloads still work there.
fn sandbox(resp: &mut Response<Body>) {
    resp.headers_mut()
        .entry(http::header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads",
        ));
}

/// Every response carries the request id, as AWS's do.
fn stamp_request_id(resp: &mut Response<Body>, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-amz-request-id", v.clone());
        resp.headers_mut().insert("x-amz-id-2", v);
    }
}
