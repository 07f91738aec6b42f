//! A routed call: what a route (a handler's method, the health service) gets and answers,
//! and the running of it under its deadline and a panic guard; how its messages are
//! compressed each way ([`Encodings`]).

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, Stream};
use http::{HeaderMap, HeaderValue, Response};

use crate::codec::Codec;
use crate::context::Context;
use crate::error::{Code, Error, Result};
use crate::stream::{BoxStream, Streaming};
use crate::transport::body::{RecvBody, Unary};
use crate::transport::compression::{self, Compression, GRPC_ACCEPT_ENCODING, GRPC_ENCODING};
use crate::transport::{frame, put_status};

/// The future of one call: always a response (errors are gRPC statuses).
pub(crate) type RouteFuture = Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>;

/// A method's own work on a routed call: what handler layers run around.
pub(crate) type Body = std::sync::Arc<
    dyn Fn(Incoming) -> Pin<Box<dyn Future<Output = Result<Reply>> + Send>> + Send + Sync,
>;

/// One method, callable with an incoming request.
pub(crate) trait Route: Send + Sync + 'static {
    fn call(&self, call: Call) -> RouteFuture;
}

impl<F> Route for F
where
    F: Fn(Call) -> RouteFuture + Send + Sync + 'static,
{
    fn call(&self, call: Call) -> RouteFuture {
        self(call)
    }
}

/// The body of a response: one message (or none) then trailers, or a stream of message
/// frames that the trailers follow, sent within the call's deadline.
pub(crate) enum ResponseBody {
    Unary(Unary),
    Stream(BoxStream<Bytes>, Option<Deadline>),
}

/// The deadline of a call (`grpc-timeout`), as a response stream is held to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    /// The timeout the client asked for, for the error's message.
    pub(crate) timeout: Duration,
    pub(crate) at: tokio::time::Instant,
}

impl Deadline {
    pub(crate) fn exceeded(&self) -> Error {
        deadline_exceeded(self.timeout)
    }
}

/// What a method answers: one encoded message frame, or a stream of them.
pub(crate) enum Reply {
    Message(Bytes),
    Stream(BoxStream<Bytes>),
}

/// Size limits of a call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_recv: usize,
    pub(crate) max_send: usize,
    /// The request bytes one connection may hold at once.
    pub(crate) request_buffer: usize,
}

/// How a call's messages are compressed: its requests as the client's `grpc-encoding` says,
/// its responses with the same encoding when the client's `grpc-accept-encoding` lists it
/// (as grpc-go and grpcio servers answer), else not at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Encodings {
    pub(crate) request: Compression,
    pub(crate) response: Compression,
}

impl Encodings {
    /// The encodings of a request with these headers, or the error of a `grpc-encoding` this
    /// server does not speak (`UNIMPLEMENTED`).
    pub(crate) fn of(headers: &HeaderMap) -> Result<Encodings> {
        let Some(named) = headers.get(GRPC_ENCODING) else {
            return Ok(Encodings::default());
        };
        let request = Compression::from_header(named.as_bytes())
            .ok_or_else(|| compression::unsupported_request(named.as_bytes()))?;
        let accepted = !request.is_identity()
            && headers
                .get(GRPC_ACCEPT_ENCODING)
                .is_some_and(|list| compression::accepts(list.as_bytes(), request));
        Ok(Encodings {
            request,
            response: if accepted {
                request
            } else {
                Compression::Identity
            },
        })
    }
}

/// An incoming call, parsed as far as routing needs.
pub(crate) struct Call {
    pub(super) codec: Codec,
    pub(super) encodings: Encodings,
    pub(super) headers: HeaderMap,
    pub(super) timeout: Option<Duration>,
    pub(super) remote: SocketAddr,
    pub(super) body: RecvBody,
    pub(super) limits: Limits,
}

/// A routed call as its method sees it.
pub(crate) struct Incoming {
    pub(crate) ctx: Context,
    pub(crate) codec: Codec,
    /// Requests are read, and responses must be encoded, as these say.
    pub(crate) encodings: Encodings,
    pub(crate) body: RecvBody,
    pub(crate) limits: Limits,
}

impl Incoming {
    /// The one request message of a unary or server-streaming call. A compressed one counts
    /// against the connection's request budget as it is decompressed, as long as the call
    /// runs (its wire bytes do too): a small compressed request can't make the server hold
    /// more than the budget.
    pub(crate) async fn message(&mut self) -> Result<Bytes> {
        let request = self.encodings.request;
        let (message, _) = frame::read_unary(&mut self.body, self.limits.max_recv, request).await?;
        let message = message.ok_or(frame::FrameError::Missing)?;
        if !request.is_identity() {
            self.body.hold(message.len())?;
        }
        Ok(message)
    }

    /// The request stream of a client-streaming or bidirectional call.
    pub(crate) fn into_stream<T>(self) -> (Context, Streaming<T>) {
        let (recv, charge) = self.body.into_inner();
        let stream = Streaming::request(
            recv,
            self.codec,
            self.limits.max_recv,
            self.encodings.request,
            charge,
        );
        (self.ctx, stream)
    }
}

impl Call {
    /// Runs `f` on the call under its deadline (dropping it when the deadline passes) and
    /// turns the outcome into a response. A panicking handler is an `INTERNAL` error, not a
    /// dead connection. A response stream stays under the same deadline and panic guard.
    pub(crate) fn serve<F, Fut>(
        self,
        f: F,
    ) -> impl Future<Output = Response<ResponseBody>> + Send + 'static
    where
        F: FnOnce(Incoming) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Reply>> + Send,
    {
        let Call {
            codec,
            encodings,
            headers,
            timeout,
            remote,
            body,
            limits,
        } = self;
        async move {
            let deadline = timeout.map(|t| Instant::now() + t);
            let incoming = Incoming {
                ctx: Context::incoming(headers, deadline, Some(remote)),
                codec,
                encodings,
                body,
                limits,
            };
            let work = AssertUnwindSafe(f(incoming)).catch_unwind();
            let outcome = match timeout {
                None => work.await,
                Some(t) => match tokio::time::timeout(t, work).await {
                    Ok(outcome) => outcome,
                    Err(_) => Ok(Err(deadline_exceeded(t))),
                },
            };
            match outcome {
                Ok(Ok(Reply::Message(frame))) => reply(codec, encodings.response, frame),
                Ok(Ok(Reply::Stream(frames))) => {
                    let frames = Guarded {
                        inner: frames,
                        done: false,
                    };
                    let deadline = timeout.zip(deadline).map(|(timeout, at)| Deadline {
                        timeout,
                        at: at.into(),
                    });
                    let mut rsp = Response::new(ResponseBody::Stream(Box::pin(frames), deadline));
                    head(rsp.headers_mut(), codec, encodings.response);
                    rsp
                }
                Ok(Err(err)) => status_response(codec, &err),
                Err(_) => status_response(codec, &panicked()),
            }
        }
    }
}

fn deadline_exceeded(t: Duration) -> Error {
    Error::new(
        Code::DeadlineExceeded,
        format!("deadline of {t:?} exceeded"),
    )
}

fn panicked() -> Error {
    Error::new(Code::Internal, "the handler panicked")
}

/// A response stream with panics caught: a panic ends it with an `INTERNAL` status. (Its
/// deadline is kept by the connection, which also bounds the waits for the client's window.)
struct Guarded {
    inner: BoxStream<Bytes>,
    done: bool,
}

impl Stream for Guarded {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let inner = &mut this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_next(cx))) {
            Ok(Poll::Ready(Some(Err(e)))) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Ok(polled) => polled,
            Err(_) => {
                this.done = true;
                Poll::Ready(Some(Err(panicked())))
            }
        }
    }
}

/// The headers of a response: its codec, and when its messages are compressed their
/// encoding and the encodings this server decodes (a plain answer to a plain request says
/// nothing of compression: one header less to encode on the hot path).
fn head(headers: &mut HeaderMap, codec: Codec, response: Compression) {
    headers.insert(http::header::CONTENT_TYPE, codec.content_type_header());
    if !response.is_identity() {
        headers.insert(GRPC_ENCODING, response.header_value());
        headers.insert(GRPC_ACCEPT_ENCODING, compression::accept_encoding());
    }
}

/// A successful reply: the message frame (compressed as `response` says), then
/// `grpc-status: 0`.
fn reply(codec: Codec, response: Compression, frame: Bytes) -> Response<ResponseBody> {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut rsp = Response::new(ResponseBody::Unary(Unary::new(frame, trailers)));
    head(rsp.headers_mut(), codec, response);
    rsp
}

/// A trailers-only error response: the status in the headers, no body. (An
/// `UNIMPLEMENTED` one lists the encodings this server decodes too: the answer the spec asks
/// for to a request in one it does not.)
pub(crate) fn status_response(codec: Codec, err: &Error) -> Response<ResponseBody> {
    let mut rsp = Response::new(ResponseBody::Unary(Unary::empty()));
    let headers = rsp.headers_mut();
    head(headers, codec, Compression::Identity);
    if err.code() == Code::Unimplemented {
        // Perhaps the request's encoding: the spec's answer lists those there are.
        headers.insert(GRPC_ACCEPT_ENCODING, compression::accept_encoding());
    }
    put_status(headers, err);
    rsp
}
