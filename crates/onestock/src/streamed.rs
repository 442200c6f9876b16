//! Answers written a piece at a time by a task of their own (a long report, a long
//! ledger): the task reads a page from storage, sends its bytes, and reads the next,
//! so the answer's memory is one page whatever its length.

use axum::body::Body;
use tokio::sync::mpsc;

/// Chunks a writing task sends, in order; an `Err` cuts the answer short, so a client
/// sees a broken answer rather than a short but well-formed one.
pub type Chunks = mpsc::Sender<Result<Vec<u8>, std::io::Error>>;

/// Chunks in flight at most: the writing task waits while the client is slow.
const CHUNKS_IN_FLIGHT: usize = 2;

/// A body and the sender that writes it. The sender's `send` fails once the client is
/// gone, which is the writing task's sign to stop.
pub fn body() -> (Chunks, Body) {
    let (send, mut recv) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let stream = futures_util::stream::poll_fn(move |cx| recv.poll_recv(cx));
    (send, Body::from_stream(stream))
}
