//! Call layers: code that runs around every attempt of a client's calls, unary and
//! streaming, in the order they were added (the first added is the outermost), as go-micro's
//! `WrapCall`. A layer sees the service, endpoint, kind, the node picked, the attempt number
//! and the metadata (which it may change), and the attempt's outcome; it may refuse an
//! attempt with an error of its own.
//!
//! A streaming call's attempt is the opening of its stream: its outcome is whether the
//! stream opened. With no layer a call costs nothing more.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use micro_runtime::client::{CallLayer, CallNext, OutgoingCall};
//! use micro_runtime::Result;
//!
//! /// Counts attempts that failed, and tags every request with the caller's zone.
//! #[derive(Default)]
//! struct Failures(AtomicU64);
//!
//! impl CallLayer for Failures {
//!     async fn call(&self, mut call: OutgoingCall, next: CallNext<'_>) -> Result<()> {
//!         call.metadata_mut().insert("x-zone", "eu-1")?;
//!         let outcome = next.run(call).await;
//!         if outcome.is_err() {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!         outcome
//!     }
//! }
//! ```

use std::future::Future;
use std::sync::Arc;

use super::chain::{BoxFuture, Chain, LayerNext, Link, SendFn};
use crate::context::{CallKind, Metadata};
use crate::error::Result;

/// One attempt of a call, as a call layer sees it.
#[derive(Debug)]
pub struct OutgoingCall {
    pub(super) service: String,
    pub(super) endpoint: String,
    pub(super) kind: CallKind,
    pub(super) attempt: u32,
    pub(super) address: String,
    pub(super) metadata: Metadata,
}

impl OutgoingCall {
    /// The service called (`greeter`).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The endpoint called (`Greeter.Hello`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the call is unary or streaming.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// Which attempt of the call this is: 0 for the first, 1 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The address of the node the attempt goes to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The metadata the request carries.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The metadata the request carries, to change: what the layers after this one and the
    /// server see.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }
}

/// Code that runs around every attempt of a client's calls
/// ([`ServiceBuilder::wrap_call`](crate::ServiceBuilder::wrap_call),
/// [`ClientOptions::wrap_call`](super::ClientOptions::wrap_call)).
pub trait CallLayer: Send + Sync + 'static {
    /// Makes the attempt `call`: calls on with `next.run(call)`, whose result is the
    /// attempt's outcome, or refuses it with an error, which ends the attempt as a node's
    /// answer would (the call tries again only for `UNAVAILABLE` of an idempotent method).
    /// A layer cannot make up a response: when the attempt failed, an `Ok` from the layer
    /// does not hide the failure.
    fn call(
        &self,
        call: OutgoingCall,
        next: CallNext<'_>,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// A shared layer: its state is the one the program holds (counters it reads, say).
impl<L: CallLayer> CallLayer for Arc<L> {
    fn call(
        &self,
        call: OutgoingCall,
        next: CallNext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).call(call, next)
    }
}

impl<L: CallLayer> Link<OutgoingCall> for L {
    fn run_boxed<'a>(
        &'a self,
        call: OutgoingCall,
        next: CallNext<'a>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.call(call, next))
    }
}

/// A client's call layers, outermost first.
#[derive(Clone, Default)]
pub struct CallLayers(Chain<OutgoingCall>);

impl CallLayers {
    /// Adds `layer` inside those already there.
    pub fn push(&mut self, layer: impl CallLayer) {
        self.0.push(Arc::new(layer));
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Runs `call` through the layers, then `send`.
    pub(super) async fn run<'a>(
        &'a self,
        call: OutgoingCall,
        send: &'a SendFn<'a, OutgoingCall>,
    ) -> Result<()> {
        self.0.run(call, send).await
    }
}

impl std::fmt::Debug for CallLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallLayers({})", self.0.len())
    }
}

/// The rest of the chain after a call layer: the layers after it, then the attempt; its
/// `run` gives the attempt's outcome.
pub type CallNext<'a> = LayerNext<'a, OutgoingCall>;
