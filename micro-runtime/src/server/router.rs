//! Routing: from an HTTP/2 request to the route of its path (a handler's method, or the
//! health service), or a response made without calling anything.
//!
//! Per call: one map lookup for the route, one boxed future (the handler's), the reply frame
//! and its trailers. No locks.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response, StatusCode};

use super::call::{Call, Encodings, Limits, ResponseBody, Route, RouteFuture, status_response};
use super::handler::Handler;
use super::health::Health;
use super::layer::Layers;
use super::options::ServerOptions;
use crate::codec::Codec;
use crate::context::CallKind;
use crate::error::{Code, Error};
use crate::transport::body::{Budget, RecvBody, Unary};
use crate::transport::parse_timeout;

/// Routes by HTTP path.
pub(crate) struct Router {
    routes: HashMap<Box<str>, Arc<dyn Route>>,
    limits: Limits,
    health: Arc<Health>,
}

impl Router {
    /// The routes of `handlers`, and the health service answering for the services they
    /// serve.
    pub(crate) fn new(options: &ServerOptions, handlers: &[Handler], layers: &Layers) -> Router {
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
                    routes.entry(path.into()).or_insert_with(|| {
                        if layers.is_empty() {
                            return m.route.clone();
                        }
                        let kind = match m.stream {
                            true => CallKind::Streaming,
                            false => CallKind::Unary,
                        };
                        layers.route(&m.endpoint.name, kind, m.body.clone())
                    });
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
        // A compression we do not speak: UNIMPLEMENTED, and what we do (the spec's answer).
        let encodings = match Encodings::of(&parts.headers) {
            Ok(encodings) => encodings,
            Err(err) => return ConnFuture::Ready(Some(Box::new(status_response(codec, &err)))),
        };
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
            encodings,
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
