//! Audit: one [`Event`] per API call, built from the call's [`RequestContext`] and written
//! to a [`Sink`].
//!
//! The request context is created by the front dispatcher for every request (request id,
//! source IP, user agent, TLS) and filled in by the protocol layer once it knows the
//! principal and operation; the dispatcher turns it into an event when the response is
//! ready. Invariant: events carry identifiers and outcomes only (never secret keys,
//! plaintext or data keys); the types that hold those have no way to be formatted into an
//! event. The sink today discards events ([`NoopSink`]); the CloudTrail-format,
//! tamper-evident trail arrives with the audit issue behind the same trait.

use std::net::SocketAddr;
use std::sync::Mutex;

use time::OffsetDateTime;

/// Facts about one request, shared by every layer it passes through.
#[derive(Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub source: Option<SocketAddr>,
    pub user_agent: Option<String>,
    pub tls: bool,
    pub received: OffsetDateTime,
    filled: Mutex<Filled>,
}

/// What the protocol layer learns while handling the request.
#[derive(Debug, Default, Clone)]
pub struct Filled {
    /// `arn:aws:iam::ACCOUNT:root`, ...
    pub principal_arn: Option<String>,
    pub account_id: Option<String>,
    pub access_key_id: Option<String>,
    /// The API's event source (`s3.amazonaws.com`).
    pub service: Option<&'static str>,
    /// The operation name, as AWS spells it (`PutObject`).
    pub operation: Option<&'static str>,
    pub bucket: Option<String>,
    pub key: Option<String>,
}

impl RequestContext {
    pub fn new(
        request_id: String,
        source: Option<SocketAddr>,
        user_agent: Option<String>,
        tls: bool,
    ) -> Self {
        Self {
            request_id,
            source,
            user_agent,
            tls,
            received: OffsetDateTime::now_utc(),
            filled: Mutex::new(Filled::default()),
        }
    }

    /// Records what the protocol layer learned.
    pub fn fill(&self, f: impl FnOnce(&mut Filled)) {
        let mut g = self.filled.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }

    pub fn filled(&self) -> Filled {
        self.filled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One audited call.
#[derive(Debug, Clone)]
pub struct Event {
    pub request_id: String,
    pub time: OffsetDateTime,
    pub source: Option<SocketAddr>,
    pub user_agent: Option<String>,
    pub tls: bool,
    pub who: Filled,
    pub status: u16,
    /// The AWS error code, when the call failed.
    pub error_code: Option<String>,
}

impl Event {
    pub fn from_context(cx: &RequestContext, status: u16, error_code: Option<String>) -> Self {
        Self {
            request_id: cx.request_id.clone(),
            time: cx.received,
            source: cx.source,
            user_agent: cx.user_agent.clone(),
            tls: cx.tls,
            who: cx.filled(),
            status,
            error_code,
        }
    }
}

/// Where events go.
pub trait Sink: Send + Sync + 'static {
    fn record(&self, event: Event);
}

/// Discards events (until the audit trail lands).
#[derive(Debug, Default)]
pub struct NoopSink;

impl Sink for NoopSink {
    fn record(&self, _event: Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_fills_into_event() {
        let cx = RequestContext::new("REQ1".into(), None, Some("aws-cli".into()), false);
        cx.fill(|f| {
            f.operation = Some("PutObject");
            f.bucket = Some("b".into());
        });
        let e = Event::from_context(&cx, 200, None);
        assert_eq!(e.who.operation, Some("PutObject"));
        assert_eq!(e.request_id, "REQ1");
    }
}
