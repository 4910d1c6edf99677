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
use hyper::body::{Body, Frame, SizeHint};

use crate::BoxError;

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

/// A request body that fails with [`Stalled`] once no frame has arrived for the client
/// timeout.
pub struct Watched<B> {
    inner: B,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> Watched<B> {
    pub fn new(inner: B) -> Self {
        let timeout = client_timeout();
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> Body for Watched<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.timeout;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Stalled)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
