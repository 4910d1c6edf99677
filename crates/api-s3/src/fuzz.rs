//! Entry points for `coffer-fuzz` (not an API): the XML documents this crate reads itself
//! (s3s has no model for them), and one whole request through the S3 front end as the
//! server runs it, body in memory instead of on a connection.

use std::sync::Arc;

use bytes::Bytes;
use coffer_audit::RequestContext;
use http_body_util::BodyExt;

use crate::S3Front;

/// Reads `body` as each document this crate parses itself; what parses is checked as the
/// operation would check it. Nothing may panic.
pub fn documents(body: &[u8]) {
    if let Some(doc) = crate::xml::parse(body) {
        let _ = crate::route::fuzz_documents(&doc);
    }
    let _ = crate::route::fuzz_completed(body);
}

/// What the front end answered.
pub struct Outcome {
    pub status: u16,
    pub code: Option<String>,
    pub headers: http::HeaderMap,
    /// The body, read whole (at most `limit` bytes are kept).
    pub body: Vec<u8>,
    /// The body's stream failed after the status went out.
    pub body_failed: bool,
}

/// Runs one request through `front` and reads its reply (keeping at most `limit` bytes).
pub async fn call(front: &S3Front, req: http::Request<Bytes>, limit: usize) -> Outcome {
    let (parts, body) = req.into_parts();
    let cx = Arc::new(RequestContext::new("FUZZ".into(), None, None, false));
    let reply = front.answer(parts, s3s::Body::from(body), &cx).await;
    let (head, mut body) = reply.response.into_parts();
    let mut out = Vec::new();
    let mut body_failed = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data()
                    && out.len() < limit
                {
                    out.extend_from_slice(&data[..data.len().min(limit - out.len())]);
                }
            }
            Err(_) => {
                body_failed = true;
                break;
            }
        }
    }
    Outcome {
        status: head.status.as_u16(),
        code: reply.error_code,
        headers: head.headers,
        body: out,
        body_failed,
    }
}
