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
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

use super::{Handler, ServerOptions};
use crate::codec::Codec;
use crate::context::Context;
use crate::error::{Code, Error, Result};
use crate::transport::body::{RecvBody, Unary};
use crate::transport::{frame, parse_timeout, put_status};

/// The future of one call: always a response (errors are gRPC statuses).
pub(crate) type RouteFuture = Pin<Box<dyn Future<Output = Response<Unary>> + Send>>;

/// One method, callable with an incoming request.
pub(crate) trait Route: Send + Sync + 'static {
    fn call(&self, call: Call) -> RouteFuture;
}

/// Size limits of a call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_recv: usize,
    pub(crate) max_send: usize,
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

impl Call {
    /// Reads the request message, runs `f` on it under the call's deadline (dropping it when
    /// the deadline passes) and turns the outcome into a response. A panicking handler is an
    /// `INTERNAL` error, not a dead connection.
    pub(crate) fn run<F, Fut>(self, f: F) -> impl Future<Output = Response<Unary>> + Send + 'static
    where
        F: FnOnce(Context, Codec, Bytes, usize) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes>> + Send,
    {
        let Call {
            codec,
            headers,
            timeout,
            remote,
            mut body,
            limits,
        } = self;
        async move {
            let deadline = timeout.map(|t| Instant::now() + t);
            let work = async move {
                let (message, _) = frame::read_unary(&mut body, limits.max_recv).await?;
                let ctx = Context::incoming(headers, deadline, Some(remote));
                f(ctx, codec, message, limits.max_send).await
            };
            let work = AssertUnwindSafe(work).catch_unwind();
            let outcome = match timeout {
                None => work.await,
                Some(t) => match tokio::time::timeout(t, work).await {
                    Ok(outcome) => outcome,
                    Err(_) => Ok(Err(Error::new(
                        Code::DeadlineExceeded,
                        format!("deadline of {t:?} exceeded"),
                    ))),
                },
            };
            match outcome {
                Ok(Ok(frame)) => reply(codec, frame),
                Ok(Err(err)) => status_response(codec, &err),
                Err(_) => {
                    status_response(codec, &Error::new(Code::Internal, "the handler panicked"))
                }
            }
        }
    }
}

/// Routes by HTTP path.
pub(crate) struct Router {
    routes: HashMap<Box<str>, Arc<dyn Route>>,
    limits: Limits,
}

impl Router {
    pub(crate) fn new(options: &ServerOptions, handlers: &[Handler]) -> Router {
        let mut routes: HashMap<Box<str>, Arc<dyn Route>> = HashMap::new();
        for h in handlers {
            for m in h.methods() {
                // The standard path, and go-micro's, which uses the registered service name.
                for prefix in [h.package(), options.name.as_str()] {
                    let path = match prefix {
                        "" => format!("/{}/{}", h.service(), m.name),
                        p => format!("/{p}.{}/{}", h.service(), m.name),
                    };
                    routes.entry(path.into()).or_insert_with(|| m.route.clone());
                }
            }
        }
        let limits = Limits {
            max_recv: options.max_message_size,
            max_send: options.max_message_size,
        };
        Router { routes, limits }
    }
}

/// The request handling of one connection.
pub(crate) struct ConnService {
    router: Arc<Router>,
    remote: SocketAddr,
}

impl ConnService {
    pub(crate) fn new(router: Arc<Router>, remote: SocketAddr) -> ConnService {
        ConnService { router, remote }
    }

    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }
}

/// A routed call, or a response made without calling anything.
pub(crate) enum ConnFuture {
    Routed(RouteFuture),
    /// Boxed so the common, routed case keeps the future small.
    Ready(Option<Box<Response<Unary>>>),
}

impl Future for ConnFuture {
    type Output = Response<Unary>;

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
        let body = RecvBody::new(body);
        let codec = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|ct| Codec::from_content_type(ct.as_bytes()));
        let Some(codec) = codec else {
            // Not gRPC at all: the spec's answer is HTTP 415.
            let mut rsp = Response::new(Unary::empty());
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
        let path = parts.uri.path();
        let Some(route) = self.router.routes.get(path) else {
            let err = unknown_path(path);
            return ConnFuture::Ready(Some(Box::new(status_response(codec, &err))));
        };
        let timeout = parts
            .headers
            .get("grpc-timeout")
            .and_then(|v| parse_timeout(v.as_bytes()));
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
fn reply(codec: Codec, frame: Bytes) -> Response<Unary> {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut rsp = Response::new(Unary::new(frame, trailers));
    rsp.headers_mut()
        .insert(http::header::CONTENT_TYPE, codec.content_type_header());
    rsp
}

/// A trailers-only error response: the status in the headers, no body.
pub(crate) fn status_response(codec: Codec, err: &Error) -> Response<Unary> {
    let mut rsp = Response::new(Unary::empty());
    let headers = rsp.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, codec.content_type_header());
    put_status(headers, err);
    rsp
}
