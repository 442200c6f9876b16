//! What happens to a request body a handler did not read: a refusal answered before the
//! body (an upload without a token, an unknown feed-document URL, a declared length
//! over the limit).
//!
//! hyper closes such a connection after the answer, without saying so in the answer and
//! with the body's bytes still arriving. Two failures follow at the client: the kernel
//! answers the arriving bytes with a reset, so a client still sending sees "broken pipe"
//! instead of the refusal; and a pooling client that got the answer reuses the closing
//! connection, so its *next* request fails ("connection closed before message
//! completed"). So, as HTTP servers usually do: a small rest of the body is read and
//! thrown away before the answer goes (bounded by [`DRAIN_BYTES_MAX`] and
//! [`DRAIN_TIME_MAX`]), and the connection stays usable; a larger one is not read, and
//! the answer carries `connection: close`.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};

/// The largest unread rest of a body read and thrown away so that the client gets its
/// answer on a connection that stays open: a feed document or a small upload file.
/// Beyond that the connection is closed rather than spend the bandwidth.
pub const DRAIN_BYTES_MAX: u64 = 8 * 1024 * 1024;
/// The longest time spent reading an unread rest before answering; a client that sends
/// slowly gets its answer and a closed connection instead.
pub const DRAIN_TIME_MAX: Duration = Duration::from_secs(2);

/// One connection's watch over the body of the request it is serving (HTTP/1 serves one
/// request at a time on a connection).
#[derive(Default)]
pub struct Unread {
    /// The body of the current request is not all read.
    left: AtomicBool,
    /// Some of it was asked for: after `Expect: 100-continue`, the client is sending.
    polled: AtomicBool,
    /// The body, handed back when a handler dropped it unread before the answer.
    parked: Mutex<Parked>,
}

#[derive(Default)]
struct Parked {
    /// The answer has gone to [`Unread::settle`]: a body dropped later is dropped, not
    /// kept for a drain that will not come (hyper could not close the connection
    /// while it is held).
    settled: bool,
    body: Option<Incoming>,
}

impl Unread {
    /// The request as the router takes it: a body with something to read is watched.
    pub fn watch(self: &Arc<Self>, req: Request<Incoming>) -> Request<Body> {
        *self.parked.lock().unwrap_or_else(|e| e.into_inner()) = Parked::default();
        self.polled.store(false, Ordering::Release);
        if req.body().is_end_stream() {
            self.left.store(false, Ordering::Release);
            return req.map(Body::new);
        }
        self.left.store(true, Ordering::Release);
        let unread = self.clone();
        req.map(|body| {
            Body::new(Watched {
                body: Some(body),
                unread,
            })
        })
    }

    /// After the router answered: reads away a small unread rest of the body, or marks
    /// the answer `connection: close`.
    pub async fn settle(
        &self,
        expects_continue: bool,
        mut response: Response<Body>,
    ) -> Response<Body> {
        let parked = {
            let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            parked.settled = true;
            parked.body.take()
        };
        if !self.left.load(Ordering::Acquire) {
            return response;
        }
        // A client waiting for `100 Continue` that was never asked for the body has sent
        // nothing: reading would ask for the body the answer refuses.
        let unasked = expects_continue && !self.polled.load(Ordering::Acquire);
        let drained = match parked {
            Some(body) if !unasked => drain(body).await,
            _ => false,
        };
        if !drained {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Reads `body` to its end within the bounds; true when it ended.
async fn drain(mut body: Incoming) -> bool {
    if body.size_hint().lower() > DRAIN_BYTES_MAX {
        return false;
    }
    let read = async {
        let mut bytes: u64 = 0;
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return true,
                Some(Ok(frame)) => {
                    bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if bytes > DRAIN_BYTES_MAX {
                        return false;
                    }
                }
                Some(Err(_)) => return false,
            }
        }
    };
    tokio::time::timeout(DRAIN_TIME_MAX, read)
        .await
        .unwrap_or(false)
}

/// A request body that tells its connection's [`Unread`] when it is all read, and hands
/// itself back when dropped before that.
struct Watched {
    body: Option<Incoming>,
    unread: Arc<Unread>,
}

impl HttpBody for Watched {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.unread.polled.store(true, Ordering::Release);
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = Pin::new(&mut *body).poll_frame(cx);
        let ended = matches!(frame, Poll::Ready(None)) || body.is_end_stream();
        if ended {
            self.unread.left.store(false, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(body) = self.body.take()
            && self.unread.left.load(Ordering::Acquire)
        {
            let mut parked = self.unread.parked.lock().unwrap_or_else(|e| e.into_inner());
            if !parked.settled {
                parked.body = Some(body);
            }
        }
    }
}
