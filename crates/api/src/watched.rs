//! Request bodies a client stops sending. A client that declares a body and then sends no
//! more of it would hold its connection, its handler and whatever that handler holds for
//! ever; S3 ends such a request with `RequestTimeout` once the socket has been idle for a
//! while. [`Watched`] fails the body once no bytes have come for the client timeout
//! ([`client_timeout`], set once by the binary from `--client-timeout-seconds`).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::{Body, BoxError};

static CLIENT_TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// The timeout when none was set: S3's is about 20 seconds of silence.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Sets how long a client may leave its request idle. The first call wins.
pub fn set_client_timeout(timeout: Duration) {
    let _ = CLIENT_TIMEOUT.set(timeout);
}

/// How long a client may leave its request idle before the request fails.
pub fn client_timeout() -> Duration {
    CLIENT_TIMEOUT
        .get()
        .copied()
        .unwrap_or(DEFAULT_CLIENT_TIMEOUT)
}

/// The error of a body whose client went silent. Its text starts with S3's error code,
/// which the S3 error mapping reads.
#[derive(Debug)]
pub struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestTimeout: no request body bytes arrived within the client timeout")
    }
}

impl std::error::Error for Stalled {}

/// A request body that fails with [`Stalled`] once a read has waited the client timeout
/// for a frame. The wait is timed only while the body is being read, so a handler that
/// reads it late (after other work, or a client waiting for `100 Continue`) is not cut off.
pub struct Watched {
    inner: Body,
    timeout: Duration,
    /// Set while a read waits for the client.
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Watched {
    pub fn new(inner: Body) -> Self {
        Self {
            inner,
            timeout: client_timeout(),
            waiting: None,
        }
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = None;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Stalled)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
