//! Publish layers: code that runs around every event a client publishes, in the order they
//! were added (the first added is the outermost), as go-micro's `WrapClient` around
//! `Publish`. A layer sees the topic and the message (its headers, which it may change, and
//! its body), and may refuse to publish it with an error of its own.
//!
//! ```
//! use micro_runtime::client::{Publication, PublishLayer, PublishNext};
//! use micro_runtime::Result;
//!
//! /// Stamps every event with the publishing zone.
//! struct Zone;
//!
//! impl PublishLayer for Zone {
//!     async fn publish(&self, mut event: Publication, next: PublishNext<'_>) -> Result<()> {
//!         event.set_header("X-Zone", "eu-1");
//!         next.run(event).await
//!     }
//! }
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use super::chain::{BoxFuture, Chain, LayerNext, Link, SendFn};
use crate::broker::{self, Envelope};
use crate::error::Result;

/// One event on its way to the broker, as a publish layer sees it.
#[derive(Debug)]
pub struct Publication {
    pub(super) topic: String,
    pub(super) envelope: Envelope,
}

impl Publication {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The message: its headers (`Content-Type`, `Micro-Topic`, `Micro-Id`, the
    /// publisher's metadata) and encoded body.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// A header's value.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.envelope.header.get(key).map(String::as_str)
    }

    /// Sets a header, replacing one of the same name.
    pub fn set_header(&mut self, key: &str, value: &str) {
        broker::put_header(
            &mut self.envelope.header,
            Cow::Owned(key.to_owned()),
            value.to_owned(),
        );
    }
}

/// Code that runs around every event a client publishes
/// ([`ServiceBuilder::wrap_publish`](crate::ServiceBuilder::wrap_publish),
/// [`ClientOptions::wrap_publish`](super::ClientOptions::wrap_publish)).
pub trait PublishLayer: Send + Sync + 'static {
    /// Publishes `event`: calls on with `next.run(event)`, or refuses with an error, which
    /// the publisher gets (nothing is published).
    fn publish(
        &self,
        event: Publication,
        next: PublishNext<'_>,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// A shared layer: its state is the one the program holds.
impl<L: PublishLayer> PublishLayer for Arc<L> {
    fn publish(
        &self,
        event: Publication,
        next: PublishNext<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).publish(event, next)
    }
}

impl<L: PublishLayer> Link<Publication> for L {
    fn run_boxed<'a>(
        &'a self,
        event: Publication,
        next: PublishNext<'a>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.publish(event, next))
    }
}

/// A client's publish layers, outermost first.
#[derive(Clone, Default)]
pub struct PublishLayers(Chain<Publication>);

impl PublishLayers {
    /// Adds `layer` inside those already there.
    pub fn push(&mut self, layer: impl PublishLayer) {
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

    /// Runs `event` through the layers, then `send`.
    pub(super) async fn run<'a>(
        &'a self,
        event: Publication,
        send: &'a SendFn<'a, Publication>,
    ) -> Result<()> {
        self.0.run(event, send).await
    }
}

impl std::fmt::Debug for PublishLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublishLayers({})", self.0.len())
    }
}

/// The rest of the chain after a publish layer: the layers after it, then the broker; its
/// `run` says whether the event was published.
pub type PublishNext<'a> = LayerNext<'a, Publication>;
