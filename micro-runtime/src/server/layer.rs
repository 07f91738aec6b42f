//! Handler layers: code that runs around every method of a server, unary and streaming, in
//! the order they were added (the first added is the outermost), as go-micro's
//! `WrapHandler`. A layer sees the call's endpoint, kind and [`Context`] (metadata it may
//! change, deadline), and may answer in the method's stead (refuse with an error) or call on.
//!
//! With no layer a call costs nothing more: the router serves each method's plain route, and
//! builds layered routes only when a layer is set.
//!
//! ```
//! use micro_runtime::server::{Answer, HandlerCall, HandlerLayer, Next};
//! use micro_runtime::{Error, Result};
//!
//! /// Refuses calls that carry no `x-user`; tells the handler who it is for.
//! struct NeedsUser;
//!
//! impl HandlerLayer for NeedsUser {
//!     async fn handle(&self, mut call: HandlerCall, next: Next) -> Result<Answer> {
//!         let Some(user) = call.context().metadata().get("x-user").map(str::to_owned) else {
//!             return Err(Error::unauthorized("orders", "no x-user"));
//!         };
//!         call.context_mut().metadata_mut().insert("x-checked-user", &user)?;
//!         next.run(call).await
//!     }
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::call::{Body, Call, Incoming, Reply, Route, RouteFuture};
use crate::context::{CallKind, Context};
use crate::error::Result;

/// A boxed future, as layers are kept.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One call, as a handler layer sees it: its endpoint (`Greeter.Hello`), kind and context.
pub struct HandlerCall {
    endpoint: Arc<str>,
    kind: CallKind,
    incoming: Incoming,
}

impl HandlerCall {
    /// The endpoint called, as the registry names it (`Greeter.Hello`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The endpoint, shared (kept past the call without a copy).
    pub(crate) fn endpoint_shared(&self) -> Arc<str> {
        self.endpoint.clone()
    }

    /// Whether the method is unary or streaming.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// The call's context: its metadata, deadline and caller.
    pub fn context(&self) -> &Context {
        &self.incoming.ctx
    }

    /// The call's context, to change: metadata added here is what the handler (and the
    /// layers after this one) see.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.incoming.ctx
    }
}

impl std::fmt::Debug for HandlerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerCall")
            .field("endpoint", &self.endpoint)
            .field("kind", &self.kind)
            .field("context", &self.incoming.ctx)
            .finish()
    }
}

/// What a method answered: its response message, or the stream of its responses (whose
/// messages are still to come).
pub struct Answer {
    reply: Reply,
}

impl Answer {
    /// Whether the answer is a stream of responses.
    pub fn is_stream(&self) -> bool {
        matches!(self.reply, Reply::Stream(_))
    }

    /// Keeps `guard` until the answer is sent: at once for a message, until its last response
    /// for a stream (a concurrency permit held for a stream's life, say).
    pub fn keep_until_sent(self, guard: impl Send + 'static) -> Answer {
        match self.reply {
            Reply::Message(frame) => Answer {
                reply: Reply::Message(frame),
            },
            Reply::Stream(frames) => {
                use futures_util::StreamExt;
                let frames = frames.map(move |frame| {
                    let _ = &guard;
                    frame
                });
                Answer {
                    reply: Reply::Stream(Box::pin(frames)),
                }
            }
        }
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("stream", &self.is_stream())
            .finish()
    }
}

/// Code that runs around every method of a server ([`Server::wrap_handler`](super::Server::wrap_handler)).
pub trait HandlerLayer: Send + Sync + 'static {
    /// Handles `call`: answers it itself (an error refuses the call, its code reaching the
    /// caller), or calls on with `next.run(call)`, before and after which it may do more.
    fn handle(&self, call: HandlerCall, next: Next) -> impl Future<Output = Result<Answer>> + Send;
}

/// A shared layer: its state is the one the program holds (counters it reads, say).
impl<L: HandlerLayer> HandlerLayer for Arc<L> {
    fn handle(&self, call: HandlerCall, next: Next) -> impl Future<Output = Result<Answer>> + Send {
        (**self).handle(call, next)
    }
}

/// [`HandlerLayer`] as the server keeps layers: object-safe, its futures boxed.
trait DynLayer: Send + Sync + 'static {
    fn handle_boxed(&self, call: HandlerCall, next: Next) -> BoxFuture<'_, Result<Answer>>;
}

impl<L: HandlerLayer> DynLayer for L {
    fn handle_boxed(&self, call: HandlerCall, next: Next) -> BoxFuture<'_, Result<Answer>> {
        Box::pin(self.handle(call, next))
    }
}

/// A server's handler layers, outermost first.
#[derive(Clone, Default)]
pub(super) struct Layers(Vec<Arc<dyn DynLayer>>);

impl Layers {
    pub(super) fn push(&mut self, layer: impl HandlerLayer) {
        self.0.push(Arc::new(layer));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The route of a method whose own work is `body`, run inside these layers.
    pub(super) fn route(&self, endpoint: &str, kind: CallKind, body: Body) -> Arc<dyn Route> {
        Arc::new(Layered {
            layers: self.0.clone().into(),
            endpoint: endpoint.into(),
            kind,
            body,
        })
    }
}

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Layers({})", self.0.len())
    }
}

/// A method with layers around it.
struct Layered {
    layers: Arc<[Arc<dyn DynLayer>]>,
    endpoint: Arc<str>,
    kind: CallKind,
    body: Body,
}

impl Route for Layered {
    fn call(&self, call: Call) -> RouteFuture {
        let next = Next {
            layers: self.layers.clone(),
            index: 0,
            body: self.body.clone(),
        };
        let (endpoint, kind) = (self.endpoint.clone(), self.kind);
        Box::pin(call.serve(move |incoming: Incoming| async move {
            let call = HandlerCall {
                endpoint,
                kind,
                incoming,
            };
            next.run(call).await.map(|answer| answer.reply)
        }))
    }
}

/// The rest of the chain after a layer: the layers after it, then the method.
pub struct Next {
    layers: Arc<[Arc<dyn DynLayer>]>,
    index: usize,
    body: Body,
}

impl Next {
    /// Runs the rest of the chain on `call`.
    pub async fn run(self, call: HandlerCall) -> Result<Answer> {
        match self.layers.get(self.index).cloned() {
            Some(layer) => {
                let next = Next {
                    layers: self.layers,
                    index: self.index + 1,
                    body: self.body,
                };
                layer.handle_boxed(call, next).await
            }
            None => (self.body)(call.incoming)
                .await
                .map(|reply| Answer { reply }),
        }
    }
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("layers_left", &(self.layers.len() - self.index))
            .finish()
    }
}
