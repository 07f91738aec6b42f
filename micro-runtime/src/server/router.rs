//! The request path: from an HTTP/2 request to a handler and back.
//!
//! Per call: one map lookup for the route, one boxed future (the handler's), the reply frame
//! and its trailers. No locks.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, Stream};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

use super::health::Health;
use super::{Handler, ServerOptions};
use crate::codec::Codec;
use crate::context::Context;
use crate::error::{Code, Error, Result};
use crate::stream::{BoxStream, Streaming};
use crate::transport::body::{Budget, RecvBody, Unary};
use crate::transport::{frame, parse_timeout, put_status};

/// The future of one call: always a response (errors are gRPC statuses).
pub(crate) type RouteFuture = Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>;

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

/// An incoming call, parsed as far as routing needs.
pub(crate) struct Call {
    codec: Codec,
    headers: HeaderMap,
    timeout: Option<Duration>,
    remote: SocketAddr,
    body: RecvBody,
    limits: Limits,
}

/// A routed call as its method sees it.
pub(crate) struct Incoming {
    pub(crate) ctx: Context,
    pub(crate) codec: Codec,
    pub(crate) body: RecvBody,
    pub(crate) limits: Limits,
}

impl Incoming {
    /// The one request message of a unary or server-streaming call.
    pub(crate) async fn message(&mut self) -> Result<Bytes> {
        let (message, _) = frame::read_unary(&mut self.body, self.limits.max_recv).await?;
        message.ok_or_else(|| frame::FrameError::Missing.into())
    }

    /// The request stream of a client-streaming or bidirectional call.
    pub(crate) fn into_stream<T>(self) -> (Context, Streaming<T>) {
        let (recv, charge) = self.body.into_inner();
        let stream = Streaming::request(recv, self.codec, self.limits.max_recv, charge);
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
                Ok(Ok(Reply::Message(frame))) => reply(codec, frame),
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
                    rsp.headers_mut()
                        .insert(http::header::CONTENT_TYPE, codec.content_type_header());
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

/// Routes by HTTP path.
pub(crate) struct Router {
    routes: HashMap<Box<str>, Arc<dyn Route>>,
    limits: Limits,
    health: Arc<Health>,
}

impl Router {
    /// The routes of `handlers`, and the health service answering for the services they
    /// serve.
    pub(crate) fn new(options: &ServerOptions, handlers: &[Handler]) -> Router {
        let mut routes: HashMap<Box<str>, Arc<dyn Route>> = HashMap::new();
        // What health checks answer for besides the empty name: the registered name and each
        // handled service by the names its paths use.
        let mut names = vec![options.name.clone()];
        for h in handlers {
            // The standard path, and go-micro's, which uses the registered service name.
            for prefix in [h.package(), options.name.as_str()] {
                let service = match prefix {
                    "" => h.service().to_owned(),
                    p => format!("{p}.{}", h.service()),
                };
                for m in h.methods() {
                    let path = format!("/{service}/{}", m.name);
                    routes.entry(path.into()).or_insert_with(|| m.route.clone());
                }
                if !names.contains(&service) {
                    names.push(service);
                }
            }
        }
        let health = Arc::new(Health::new(names));
        routes
            .entry(crate::health::CHECK.path.into())
            .or_insert_with(|| health.route());
        let limits = Limits {
            max_recv: options.max_message_size,
            max_send: options.max_message_size,
            // At least one message of the largest size, with its frame header.
            request_buffer: options
                .connection_request_buffer
                .max(options.max_message_size.saturating_add(5)),
        };
        Router {
            routes,
            limits,
            health,
        }
    }

    /// What `grpc.health.v1.Health/Check` answers.
    pub(crate) fn health(&self) -> &Arc<Health> {
        &self.health
    }
}

/// The request handling of one connection.
pub(crate) struct ConnService {
    router: Arc<Router>,
    remote: SocketAddr,
    /// What the connection's request bodies may hold at once.
    budget: Arc<Budget>,
}

impl ConnService {
    pub(crate) fn new(router: Arc<Router>, remote: SocketAddr) -> ConnService {
        let budget = Budget::new(router.limits.request_buffer);
        ConnService {
            router,
            remote,
            budget,
        }
    }

    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }
}

/// A routed call, or a response made without calling anything.
pub(crate) enum ConnFuture {
    Routed(RouteFuture),
    /// Boxed so the common, routed case keeps the future small.
    Ready(Option<Box<Response<ResponseBody>>>),
}

impl Future for ConnFuture {
    type Output = Response<ResponseBody>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ConnFuture::Routed(f) => f.as_mut().poll(cx),
            ConnFuture::Ready(r) => match r.take() {
                Some(rsp) => Poll::Ready(*rsp),
                None => Poll::Pending,
            },
        }
    }
}

impl ConnService {
    /// Routes one request; the future answers it.
    pub(crate) fn call(&self, req: Request<h2::RecvStream>) -> ConnFuture {
        let (parts, body) = req.into_parts();
        let body = RecvBody::budgeted(body, self.budget.clone());
        let codec = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|ct| Codec::from_content_type(ct.as_bytes()));
        let Some(codec) = codec else {
            // Not gRPC at all: the spec's answer is HTTP 415.
            let mut rsp = Response::new(ResponseBody::Unary(Unary::empty()));
            *rsp.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return ConnFuture::Ready(Some(Box::new(rsp)));
        };
        if parts.method != http::Method::POST {
            let err = Error::new(
                Code::Unimplemented,
                format!("method {} is not POST", parts.method),
            );
            return ConnFuture::Ready(Some(Box::new(status_response(codec, &err))));
        }
        if let Some(enc) = parts.headers.get("grpc-encoding") {
            if enc != "identity" {
                let err = Error::new(
                    Code::Unimplemented,
                    format!(
                        "grpc-encoding {enc:?} is not supported (grpc-accept-encoding: identity)"
                    ),
                );
                return ConnFuture::Ready(Some(Box::new(status_response(codec, &err))));
            }
        }
        let timeout = match parts.headers.get("grpc-timeout") {
            None => None,
            Some(v) => match parse_timeout(v.as_bytes()) {
                Some(t) => Some(t),
                // The client asked for a deadline we cannot read: answer as grpc-go does
                // rather than run the call with none.
                None => {
                    let err = Error::new(
                        Code::Internal,
                        format!(
                            "malformed grpc-timeout: {}",
                            String::from_utf8_lossy(v.as_bytes())
                        ),
                    );
                    return ConnFuture::Ready(Some(Box::new(status_response(codec, &err))));
                }
            },
        };
        let path = parts.uri.path();
        let Some(route) = self.router.routes.get(path) else {
            let err = unknown_path(path);
            return ConnFuture::Ready(Some(Box::new(status_response(codec, &err))));
        };
        let call = Call {
            codec,
            headers: parts.headers,
            timeout,
            remote: self.remote,
            body,
            limits: self.router.limits,
        };
        ConnFuture::Routed(route.call(call))
    }
}

fn unknown_path(path: &str) -> Error {
    let (service, method) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .unwrap_or((path, ""));
    if method.is_empty() {
        Error::new(
            Code::Unimplemented,
            format!("malformed method path {path:?}"),
        )
    } else {
        Error::new(
            Code::Unimplemented,
            format!("unknown service {service} or method {method}"),
        )
    }
}

/// A successful reply: the message frame, then `grpc-status: 0`.
fn reply(codec: Codec, frame: Bytes) -> Response<ResponseBody> {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut rsp = Response::new(ResponseBody::Unary(Unary::new(frame, trailers)));
    rsp.headers_mut()
        .insert(http::header::CONTENT_TYPE, codec.content_type_header());
    rsp
}

/// A trailers-only error response: the status in the headers, no body.
pub(crate) fn status_response(codec: Codec, err: &Error) -> Response<ResponseBody> {
    let mut rsp = Response::new(ResponseBody::Unary(Unary::empty()));
    let headers = rsp.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, codec.content_type_header());
    put_status(headers, err);
    rsp
}
