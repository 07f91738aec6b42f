//! HTTP bodies of unary calls: at most one data frame, then optional trailers.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

/// A body of one message frame followed by trailers (either may be absent).
///
/// Responses of unary calls are `Unary::new(frame, trailers)`; trailers-only error responses
/// and request bodies use the halves.
#[derive(Debug, Default)]
pub struct Unary {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Unary {
    /// A body of `data` then `trailers`.
    pub fn new(data: Bytes, trailers: HeaderMap) -> Unary {
        Unary {
            data: Some(data),
            trailers: Some(trailers),
        }
    }

    /// A body of `data` only (a request).
    pub fn data(data: Bytes) -> Unary {
        Unary {
            data: Some(data),
            trailers: None,
        }
    }

    /// No body at all (a trailers-only response: the status is in the headers).
    pub fn empty() -> Unary {
        Unary::default()
    }
}

impl Body for Unary {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

impl Unary {
    /// The data frame and the trailers, to write them out.
    pub(crate) fn into_parts(self) -> (Option<Bytes>, Option<HeaderMap>) {
        (self.data, self.trailers)
    }
}

/// The bytes of request bodies one connection may hold at once, read but not yet handed to
/// a handler as messages: what bounds a connection's memory when its client opens many
/// streams and fills each with a large message (the HTTP/2 windows bound only what is in
/// flight, not what the server has read and buffered).
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            limit,
        })
    }
}

/// What one body holds of a [`Budget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<Budget>,
    held: usize,
}

impl Charge {
    pub(crate) fn new(budget: Arc<Budget>) -> Charge {
        Charge { budget, held: 0 }
    }

    /// Takes `n` more bytes; `false` (and nothing taken) when the budget has not that much.
    pub(crate) fn take(&mut self, n: usize) -> bool {
        let taken = self
            .budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&u| u <= self.budget.limit)
            })
            .is_ok();
        if taken {
            self.held += n;
        }
        taken
    }

    /// Gives back `n` bytes (at most what is held).
    pub(crate) fn give(&mut self, n: usize) {
        let n = n.min(self.held);
        self.held -= n;
        self.budget.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// The budget's limit, for messages.
    pub(crate) fn limit(&self) -> usize {
        self.budget.limit
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let held = self.held;
        self.give(held);
    }
}

/// Why reading a body failed: its stream broke, or its connection holds more request bytes
/// than it may.
#[derive(Debug)]
pub enum BodyError {
    /// The HTTP/2 stream failed.
    H2(h2::Error),
    /// The connection's request bodies hold this many bytes already (its budget).
    Budget(usize),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::H2(e) => e.fmt(f),
            BodyError::Budget(limit) => write!(
                f,
                "the requests of this connection hold {limit} bytes already: send fewer or smaller requests at once"
            ),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::H2(e) => Some(e),
            BodyError::Budget(_) => None,
        }
    }
}

/// A body read off an HTTP/2 stream: a request on the server, a response on the client.
/// Each chunk read is given back to the stream's flow-control window, so the peer can send
/// more; on the server, only while the connection's request budget has room for it.
#[derive(Debug)]
pub struct RecvBody {
    recv: h2::RecvStream,
    data_done: bool,
    charge: Option<Charge>,
}

impl RecvBody {
    pub(crate) fn new(recv: h2::RecvStream) -> RecvBody {
        RecvBody {
            recv,
            data_done: false,
            charge: None,
        }
    }

    /// A request body whose bytes count against `budget` while it lives.
    pub(crate) fn budgeted(recv: h2::RecvStream, budget: Arc<Budget>) -> RecvBody {
        RecvBody {
            recv,
            data_done: false,
            charge: Some(Charge::new(budget)),
        }
    }

    /// Counts `n` more bytes against the connection's request budget for as long as the body
    /// lives: a request decompressed, held as its wire bytes are. An error (`RESOURCE_EXHAUSTED`)
    /// when the budget has not that much room; always fine for a body without a budget.
    pub(crate) fn hold(&mut self, n: usize) -> crate::Result<()> {
        let Some(charge) = &mut self.charge else {
            return Ok(());
        };
        if charge.take(n) {
            return Ok(());
        }
        Err(crate::Error::new(
            crate::Code::ResourceExhausted,
            BodyError::Budget(charge.limit()).to_string(),
        ))
    }

    /// The stream, and what it holds of its budget.
    pub(crate) fn into_inner(self) -> (h2::RecvStream, Option<Charge>) {
        (self.recv, self.charge)
    }
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if !self.data_done {
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    if let Some(charge) = &mut self.charge
                        && !charge.take(data.len())
                    {
                        let limit = charge.limit();
                        // Nothing more of it is read: its window stays shut.

                        return Poll::Ready(Some(Err(BodyError::Budget(limit))));
                    }
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(BodyError::H2(e)))),
                Poll::Ready(None) => self.data_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match self.recv.poll_trailers(cx) {
            Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(BodyError::H2(e)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stay_within_the_budget_and_go_back_when_dropped() {
        let budget = Budget::new(100);
        let mut a = Charge::new(budget.clone());
        let mut b = Charge::new(budget.clone());
        assert!(a.take(60));
        assert!(!b.take(50), "over the limit");
        assert!(b.take(40));
        a.give(30);
        assert!(b.take(30));
        drop(a);
        drop(b);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
    }
}
