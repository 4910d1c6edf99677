//! The protocol seam (Garage's `ApiHandler` is the model). Every wire protocol Coffer
//! speaks (S3 REST, KMS JSON, IAM/STS Query, CloudTrail JSON) implements [`ApiHandler`]:
//! it says which requests are its own, answers them with a [`Reply`] (the one reply type:
//! an HTTP response with a [`Body`], and the AWS error code for the audit record), and
//! knows what a panic inside it answers in its own format. The dispatcher routes, counts
//! and audits, and knows no wire format.
//!
//! The request arrives with its body boxed as a [`Body`] (hyper's from a socket, or one
//! the console built to call an API on its signed-in user's behalf); [`read_small`] and [`api_request`] serve the
//! protocols whose requests are small documents (every one but S3).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;

use coffer_audit::RequestContext;

mod watched;
pub use watched::{DEFAULT_CLIENT_TIMEOUT, Stalled, Watched, client_timeout, set_client_timeout};

/// An error inside a response body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body: a whole document, or an object streamed in chunks.
/// (Not `Sync`: hyper needs only `Send`, and s3s's streaming bodies are not `Sync`.)
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body that is one buffer.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An answer to one request.
pub struct Reply {
    pub response: Response<Body>,
    /// The AWS error code of a failed call (for the audit record and metrics).
    pub error_code: Option<String>,
}

impl Reply {
    /// A reply of `status` with a whole-document body of `content_type`, and the request
    /// id in `x-amzn-requestid` (the JSON and Query protocols' header).
    pub fn document(
        status: u16,
        content_type: &'static str,
        body: impl Into<Bytes>,
        request_id: &str,
        error_code: Option<String>,
    ) -> Self {
        let mut response = Response::new(full(body));
        *response.status_mut() =
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-amzn-requestid", v);
        }
        Self {
            response,
            error_code,
        }
    }
}

/// A request header's value, if it is text.
pub fn header<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Declares one group of a protocol's operations: the enum, its `ALL` and `name`, so that
/// each operation's name is written once. (Variants are AWS's names, whatever they share
/// with the group's.)
#[macro_export]
macro_rules! operation_group {
    ($(#[$doc:meta])* $group:ident { $($op:ident),* $(,)? }) => {
        $(#[$doc])*
        #[allow(clippy::enum_variant_names)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $group {
            $($op),*
        }

        impl $group {
            pub const ALL: &'static [$group] = &[$($group::$op),*];

            pub fn name(self) -> &'static str {
                match self {
                    $($group::$op => stringify!($op),)*
                }
            }

            /// The operation of this group called `name`.
            pub fn find(name: &str) -> Option<$group> {
                Self::ALL.iter().copied().find(|o| o.name() == name)
            }
        }
    };
}

/// One wire protocol.
#[async_trait::async_trait]
pub trait ApiHandler: Send + Sync {
    /// Whether this protocol takes the request, from its head alone.
    fn accepts(&self, req: &Request<Body>) -> bool;

    /// Answers the request. `cx` is filled with what the audit record needs.
    async fn handle(&self, req: Request<Body>, cx: &Arc<RequestContext>) -> Reply;

    /// What a panic inside [`ApiHandler::handle`] answers: a 500 in this protocol's shape.
    fn internal_error(&self, request_id: &str) -> Reply;

    /// What a request answers while the node cannot vouch for what it would serve (it
    /// lost its shared metadata store's change notices): by default the protocol's 500;
    /// protocols with a retryable "unavailable" error answer that.
    fn unavailable(&self, request_id: &str) -> Reply {
        self.internal_error(request_id)
    }
}

/// Largest KMS, IAM/STS or CloudTrail request body read (the largest legal one, a 32 KiB
/// policy, fits with room to spare, even URL-encoded).
pub const MAX_DOCUMENT: usize = 1 << 20;

/// Why a document body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Longer than [`MAX_DOCUMENT`].
    TooLarge,
    /// The connection failed while it was read.
    Broken,
}

/// Reads a request body of at most [`MAX_DOCUMENT`] bytes; a client silent for the client
/// timeout leaves it [`Unreadable::Broken`].
pub async fn read_small(req: Request<Body>) -> Result<(http::request::Parts, Bytes), Unreadable> {
    let (parts, body) = req.into_parts();
    match http_body_util::Limited::new(Watched::new(body), MAX_DOCUMENT)
        .collect()
        .await
    {
        Ok(b) => Ok((parts, b.to_bytes())),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Unreadable::TooLarge)
        }
        Err(_) => Err(Unreadable::Broken),
    }
}

/// Reads a body of at most `limit` bytes whole (a longer one is [`Unreadable::TooLarge`]
/// as soon as it passes the limit; one that fails is [`Unreadable::Broken`]).
pub async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, Unreadable> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(Unreadable::Broken);
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(Unreadable::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// A request with its body read, as the JSON and Query APIs authenticate and parse it
/// (header values that are not UTF-8 are dropped: no AWS client signs such a value).
pub fn api_request(parts: &http::request::Parts, body: Bytes) -> coffer_iam::auth::ApiRequest<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn documents_are_read_up_to_the_limit() {
        let ok = Request::new(full(vec![1u8; MAX_DOCUMENT]));
        assert_eq!(
            read_small(ok).await.expect("at the limit").1.len(),
            MAX_DOCUMENT
        );
        let big = Request::new(full(vec![1u8; MAX_DOCUMENT + 1]));
        assert_eq!(read_small(big).await.err(), Some(Unreadable::TooLarge));
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_their_limit() {
        assert_eq!(
            read_body(full(vec![1u8; 10]), 10).await.map(|b| b.len()),
            Ok(10)
        );
        assert_eq!(
            read_body(full(vec![1u8; 11]), 10).await,
            Err(Unreadable::TooLarge)
        );
    }

    #[test]
    fn a_document_reply_carries_type_status_and_request_id() {
        let r = Reply::document(
            400,
            "application/x-amz-json-1.1",
            "{}",
            "ABC",
            Some("X".into()),
        );
        assert_eq!(r.response.status(), 400);
        assert_eq!(
            r.response.headers()["content-type"],
            "application/x-amz-json-1.1"
        );
        assert_eq!(r.response.headers()["x-amzn-requestid"], "ABC");
        assert_eq!(r.error_code.as_deref(), Some("X"));
    }
}
