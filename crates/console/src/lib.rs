//! The web console, at `/_coffer/console/`: buckets and objects, KMS keys with the impact
//! report, and the audit trail, as server-rendered pages.
//!
//! The console holds no privilege of its own. Signing in checks the access key and secret
//! with STS `GetCallerIdentity` and keeps them on the server, in the session (the browser
//! holds only an HttpOnly cookie); every page then makes ordinary AWS calls signed with
//! those credentials and handed to the server's own dispatcher through the [`Loopback`],
//! so the same authorizer decides, the same errors come back, and the same trail records
//! each call, with the console's user agent. The one thing it computes itself, the
//! impact report of a key (`keys.rs`), it shows only to a caller the KMS lets describe
//! that key.

mod audit;
mod buckets;
mod call;
mod chart;
mod form;
mod identities;
mod keys;
mod object;
mod page;
mod session;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use maud::html;

use coffer_api::Body;
use coffer_objects::Objects;

use crate::call::Caller;
use crate::page::{Nav, layout, respond, see_other};
use crate::session::{Credentials, Session, Sessions};

pub use call::ApiError;

/// Where the console lives.
pub const PREFIX: &str = "/_coffer/console";

/// The user agent of the console's calls, as the trail records it.
pub const USER_AGENT: &str = concat!("coffer-console/", env!("CARGO_PKG_VERSION"));

/// The server's dispatcher, as the console calls it: a request in, its answer out, with
/// everything the dispatcher does for any client (authentication, authorization,
/// metrics, the audit record).
#[async_trait::async_trait]
pub trait Loopback: Send + Sync {
    async fn call(&self, req: Request<Body>) -> Response<Body>;
}

/// How the console is set up.
#[derive(Debug, Clone)]
pub struct Config {
    pub region: String,
    /// A session unused this long is signed out.
    pub idle: Duration,
    /// The operator's account: its root sees every account's usage.
    pub operator_account: String,
}

/// One sample of a bucket's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Seconds since the epoch.
    pub time: i64,
    pub account: String,
    pub bucket: String,
    pub objects: u64,
    pub bytes: u64,
}

/// One audited call, as the usage charts count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub time: i64,
    /// The account whose trail holds it.
    pub account: String,
    /// `s3.amazonaws.com`, `kms.amazonaws.com`, ...
    pub source: String,
    pub operation: String,
    /// The KMS key's ARN, for KMS calls.
    pub key: Option<String>,
}

/// Where the usage charts come from (the binary keeps the samples and the trail).
#[async_trait::async_trait]
pub trait History: Send + Sync {
    /// Bucket usage samples taken at or after `since` (epoch seconds).
    async fn samples(&self, since: i64) -> Vec<Sample>;
    /// Audited calls made at or after `since`.
    async fn calls(&self, since: i64) -> Vec<Call>;
}

pub struct Console {
    config: Config,
    sessions: Sessions,
    objects: Arc<Objects>,
    history: Arc<dyn History>,
    /// Impact reports by key ARN, reused for [`IMPACT_TTL`]; held while one is counted,
    /// so that the server scans for one report at a time however many are asked for.
    impacts: tokio::sync::Mutex<ImpactCache>,
    /// The trail's calls by period, reused for [`USAGE_TTL`]: the usage page reads the
    /// whole trail, and a reload must not read it again.
    calls: tokio::sync::Mutex<CallCache>,
}

/// The trail's calls by period, and when they were read.
type CallCache = std::collections::HashMap<&'static str, (std::time::Instant, Arc<Vec<Call>>)>;

/// How long the usage page's counts are reused.
const USAGE_TTL: Duration = Duration::from_secs(10);

type ImpactCache =
    std::collections::HashMap<String, (std::time::Instant, Vec<coffer_objects::BucketImpact>)>;

/// How long an impact report is reused.
const IMPACT_TTL: Duration = Duration::from_secs(5);

/// One browser request, for a page: who asks, what it asked, how to call the APIs.
pub(crate) struct Cx<'a> {
    pub console: &'a Console,
    pub session: Arc<Session>,
    pub loopback: &'a dyn Loopback,
    pub host: String,
    pub query: Vec<(String, String)>,
}

impl Cx<'_> {
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            session: &self.session,
            region: &self.console.config.region,
            host: self.host.clone(),
            user_agent: USER_AGENT.into(),
            loopback: self.loopback,
        }
    }

    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn objects(&self) -> &Objects {
        &self.console.objects
    }

    /// A page for this session.
    pub fn page(
        &self,
        status: StatusCode,
        title: &str,
        nav: Nav,
        body: maud::Markup,
    ) -> Response<Body> {
        respond(status, layout(title, Some(&self.session), nav, body))
    }
}

impl Console {
    pub fn new(config: Config, objects: Arc<Objects>, history: Arc<dyn History>) -> Self {
        Self {
            sessions: Sessions::new(config.idle),
            config,
            objects,
            history,
            impacts: tokio::sync::Mutex::new(ImpactCache::new()),
            calls: tokio::sync::Mutex::new(CallCache::new()),
        }
    }

    /// The trail's calls since `since`, for the period `range`, read at most once per
    /// [`USAGE_TTL`] and one reading at a time.
    pub(crate) async fn calls(&self, since: i64, range: &'static str) -> Arc<Vec<Call>> {
        let mut cache = self.calls.lock().await;
        if let Some((at, calls)) = cache.get(range)
            && at.elapsed() < USAGE_TTL
        {
            return calls.clone();
        }
        let calls = Arc::new(self.history.calls(since).await);
        cache.insert(range, (std::time::Instant::now(), calls.clone()));
        calls
    }

    /// Whether a request's path is the console's.
    pub fn claims(path: &str) -> bool {
        path == PREFIX || path.starts_with("/_coffer/console/")
    }

    /// Answers one browser request.
    pub async fn handle(
        &self,
        req: Request<Body>,
        loopback: &dyn Loopback,
        tls: bool,
    ) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let rest = path.strip_prefix(PREFIX).unwrap_or("");
        let segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(form::decode_percent)
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = req.method().clone();
        let writes = !(method == Method::GET || method == Method::HEAD);
        if writes && cross_site(req.headers(), tls) {
            return sign_in_page(
                Some("The request came from another site, and was refused."),
                StatusCode::FORBIDDEN,
            );
        }
        // Buckets are named in paths: a segment that is no bucket name names none.
        if let ["buckets", b, ..] = segs.as_slice()
            && !bucket_name(b)
        {
            return sign_in_page(Some("That is not a bucket name."), StatusCode::BAD_REQUEST);
        }
        match (&method, segs.as_slice()) {
            (&Method::GET, ["assets", name]) => return asset(name),
            (&Method::GET, ["sign-in"]) => return sign_in_page(None, StatusCode::OK),
            (&Method::POST, ["sign-in"]) => return self.sign_in(req, loopback, tls).await,
            _ => {}
        }
        let host = host_of(&req);
        let token = session::cookie_token(req.headers());
        let Some(session) = token.as_deref().and_then(|t| self.sessions.find(t)) else {
            if method == Method::GET {
                return see_other(&format!("{PREFIX}/sign-in"));
            }
            return sign_in_page(
                Some("Your session has ended: sign in again."),
                StatusCode::UNAUTHORIZED,
            );
        };
        let cx = Cx {
            console: self,
            session,
            loopback,
            host,
            query: form::parse(req.uri().query().unwrap_or("")),
        };
        // Every request that changes something must carry this session's CSRF token:
        // uploads in a header, forms in a field (checked where the form is read).
        let header_csrf = req
            .headers()
            .get("x-coffer-csrf")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (form, req) = if writes {
            let is_form = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| {
                    v.as_bytes()
                        .starts_with(b"application/x-www-form-urlencoded")
                });
            if is_form {
                match form::read(req).await {
                    Ok(f) => (f, None),
                    Err(r) => return r,
                }
            } else {
                (Vec::new(), Some(req))
            }
        } else {
            (Vec::new(), Some(req))
        };
        if writes {
            let sent = form::field(&form, "csrf")
                .map(str::to_owned)
                .or(header_csrf);
            if !sent.is_some_and(|t| cx.session.csrf_ok(&t)) {
                return cx.page(
                    StatusCode::FORBIDDEN,
                    "Request refused",
                    Nav::None,
                    page::error_box(&ApiError {
                        status: 403,
                        code: "InvalidCsrfToken".into(),
                        message: "The request did not carry this session's CSRF token; \
                                  reload the page and try again."
                            .into(),
                    }),
                );
            }
        }
        match (&method, segs.as_slice(), req) {
            (&Method::GET, [], _) => see_other(&format!("{PREFIX}/buckets")),
            (&Method::POST, ["sign-out"], _) => {
                if let Some(t) = token.as_deref() {
                    self.sessions.end(t);
                }
                let mut r = see_other(&format!("{PREFIX}/sign-in"));
                if let Ok(v) =
                    http::HeaderValue::from_str(&session::set_cookie(None, tls, self.config.idle))
                {
                    r.headers_mut().insert(http::header::SET_COOKIE, v);
                }
                r
            }
            (&Method::GET, ["buckets"], _) => buckets::list(&cx).await,
            (&Method::POST, ["buckets"], _) => buckets::create(&cx, &form).await,
            (&Method::GET, ["buckets", b], _) => buckets::objects(&cx, b).await,
            (&Method::POST, ["buckets", b, "delete"], _) => buckets::delete(&cx, b).await,
            (&Method::GET, ["buckets", b, "settings"], _) => buckets::settings(&cx, b, None).await,
            (&Method::POST, ["buckets", b, "settings"], _) => {
                buckets::change_settings(&cx, b, &form).await
            }
            (&Method::GET, ["buckets", b, "object"], _) => object::object(&cx, b).await,
            (&Method::GET, ["buckets", b, "download"], _) => object::download(&cx, b).await,
            (&Method::POST, ["buckets", b, "delete-object"], _) => {
                object::delete_object(&cx, b, &form).await
            }
            (&Method::PUT, ["buckets", b, "upload"], Some(req)) => {
                object::upload(&cx, b, req).await
            }
            (&Method::POST, ["buckets", b, "multipart"], _) => {
                object::multipart_create(&cx, b).await
            }
            (&Method::PUT, ["buckets", b, "multipart"], Some(req)) => {
                object::multipart_part(&cx, b, req).await
            }
            (&Method::POST, ["buckets", b, "multipart", "complete"], Some(req)) => {
                object::multipart_complete(&cx, b, req).await
            }
            (&Method::DELETE, ["buckets", b, "multipart"], _) => {
                object::multipart_abort(&cx, b).await
            }
            (&Method::GET, ["keys"], _) => keys::list(&cx).await,
            (&Method::POST, ["keys"], _) => keys::create(&cx, &form).await,
            (&Method::GET, ["keys", id], _) => keys::key(&cx, id, None).await,
            (&Method::GET, ["keys", id, "impact"], _) => keys::impact_json(&cx, id).await,
            (&Method::GET, ["keys", id, "confirm"], _) => keys::confirm(&cx, id).await,
            (&Method::POST, ["keys", id], _) => keys::act(&cx, id, &form).await,
            (&Method::GET, ["identities"], _) => identities::overview(&cx).await,
            (&Method::POST, ["identities", "users"], _) => {
                identities::create_user(&cx, &form).await
            }
            (&Method::GET, ["identities", "users", name], _) => {
                identities::user(&cx, name, None).await
            }
            (&Method::POST, ["identities", "users", name], _) => {
                identities::user_action(&cx, name, &form).await
            }
            (&Method::GET, ["identities", "groups", name], _) => identities::group(&cx, name).await,
            (&Method::GET, ["identities", "roles", name], _) => identities::role(&cx, name).await,
            (&Method::GET, ["identities", "simulate"], _) => identities::simulate(&cx).await,
            (&Method::GET, ["usage"], _) => usage::page(&cx).await,
            (&Method::GET, ["audit"], _) => audit::events(&cx).await,
            (&Method::GET, ["audit", "event"], _) => audit::event(&cx).await,
            _ => cx.page(
                StatusCode::NOT_FOUND,
                "Not found",
                Nav::None,
                html! { p { "There is no such page in the console." } },
            ),
        }
    }

    /// Checks the credentials with STS `GetCallerIdentity` (through the same
    /// authentication as any client) and starts a session.
    async fn sign_in(
        &self,
        req: Request<Body>,
        loopback: &dyn Loopback,
        tls: bool,
    ) -> Response<Body> {
        // Signing in again ends the session the browser had.
        if let Some(old) = session::cookie_token(req.headers()) {
            self.sessions.end(&old);
        }
        let host = host_of(&req);
        let form = match form::read(req).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        let access_key_id = form::field(&form, "access_key_id")
            .unwrap_or("")
            .trim()
            .to_owned();
        let secret = zeroize::Zeroizing::new(
            form::field(&form, "secret_access_key")
                .unwrap_or("")
                .trim()
                .to_owned(),
        );
        let session_token = form::field(&form, "session_token")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| zeroize::Zeroizing::new(t.to_owned()));
        if access_key_id.is_empty() || secret.is_empty() {
            return sign_in_page(
                Some("Enter an access key id and its secret."),
                StatusCode::BAD_REQUEST,
            );
        }
        let trial = Session::trial(Credentials {
            access_key_id: access_key_id.clone(),
            secret: secret.clone(),
            session_token: session_token.clone(),
        });
        let caller = Caller {
            session: &trial,
            region: &self.config.region,
            host,
            user_agent: USER_AGENT.into(),
            loopback,
        };
        let who = match caller
            .query("sts", &[("Action", "GetCallerIdentity")])
            .await
        {
            Ok(x) => x,
            Err(e) => {
                return sign_in_page(
                    Some(&format!("{}: {}", e.code, e.message)),
                    StatusCode::UNAUTHORIZED,
                );
            }
        };
        let arn = who.find("Arn").map(|n| n.text.clone()).unwrap_or_default();
        let account = who
            .find("Account")
            .map(|n| n.text.clone())
            .unwrap_or_default();
        let Some(token) = self.sessions.start(
            Credentials {
                access_key_id,
                secret,
                session_token,
            },
            arn,
            account,
        ) else {
            return sign_in_page(
                Some("Too many console sessions are open; try again later."),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        };
        let mut r = see_other(&format!("{PREFIX}/buckets"));
        if let Ok(v) = http::HeaderValue::from_str(&session::set_cookie(
            Some(&token),
            tls,
            self.sessions.idle(),
        )) {
            r.headers_mut().insert(http::header::SET_COOKIE, v);
        }
        r
    }
}

/// The `Host` the browser used: the console's calls are addressed to it.
fn host_of(req: &Request<Body>) -> String {
    req.headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned()
}

/// Whether a browser says a request comes from another site: its `Sec-Fetch-Site`, or an
/// `Origin` that is not the console's own. (Clients that send neither are no browser's
/// forms; the CSRF token still guards them.)
fn cross_site(headers: &http::HeaderMap, tls: bool) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if get("sec-fetch-site").is_some_and(|s| s != "same-origin" && s != "none") {
        return true;
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => {
            let scheme = if tls { "https" } else { "http" };
            origin != format!("{scheme}://{host}")
        }
        (Some(_), None) => true,
        _ => false,
    }
}

/// S3's bucket naming rules, as far as a path segment needs them: 3 to 63 lower-case
/// letters, digits, dots and hyphens.
fn bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
}

fn sign_in_page(message: Option<&str>, status: StatusCode) -> Response<Body> {
    respond(
        status,
        layout(
            "Sign in",
            None,
            Nav::None,
            html! {
                @if let Some(m) = message { div.error role="alert" { (m) } }
                form.signin method="post" action={ (PREFIX) "/sign-in" } autocomplete="off" {
                    label for="access_key_id" { "Access key ID" }
                    input id="access_key_id" name="access_key_id" required autofocus spellcheck="false";
                    label for="secret_access_key" { "Secret access key" }
                    input id="secret_access_key" name="secret_access_key" type="password" required;
                    label for="session_token" { "Session token (temporary credentials only)" }
                    input id="session_token" name="session_token" type="password";
                    button type="submit" { "Sign in" }
                }
                p.hint { "Any account root, IAM user or role session (with its session token), or the operator." }
            },
        ),
    )
}

/// The console's script and style, compiled into the binary.
fn asset(name: &str) -> Response<Body> {
    let (body, kind): (&'static str, &'static str) = match name {
        "console.css" => (
            include_str!("assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (page::SCRIPT, "text/javascript; charset=utf-8"),
        _ => {
            let mut r = Response::new(coffer_api::full(bytes::Bytes::new()));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
    };
    let mut r = Response::new(coffer_api::full(bytes::Bytes::from_static(body.as_bytes())));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(kind),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("max-age=300"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        http::HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_other_sites_are_told_apart() {
        let mut h = http::HeaderMap::new();
        assert!(!cross_site(&h, false));
        h.insert("host", http::HeaderValue::from_static("127.0.0.1:7373"));
        h.insert(
            "origin",
            http::HeaderValue::from_static("http://127.0.0.1:7373"),
        );
        assert!(!cross_site(&h, false));
        assert!(cross_site(&h, true));
        h.insert(
            "origin",
            http::HeaderValue::from_static("http://evil.example"),
        );
        assert!(cross_site(&h, false));
        let mut h = http::HeaderMap::new();
        h.insert(
            "sec-fetch-site",
            http::HeaderValue::from_static("cross-site"),
        );
        assert!(cross_site(&h, false));
        h.insert(
            "sec-fetch-site",
            http::HeaderValue::from_static("same-origin"),
        );
        assert!(!cross_site(&h, false));
    }

    #[test]
    fn only_bucket_names_are_buckets() {
        assert!(bucket_name("my-bucket.2026"));
        assert!(!bucket_name("b/k"));
        assert!(!bucket_name("a b"));
        assert!(!bucket_name("Up"));
        assert!(!bucket_name("ab"));
    }
}
