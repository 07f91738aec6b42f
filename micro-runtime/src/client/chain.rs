//! The chain client layers run in: call layers around attempts, publish layers around
//! events. Layers are kept outermost first; each calls on with [`LayerNext::run`], the last
//! to the work itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Result;

/// A boxed future, as layers are kept.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A layer around `T`s as a chain keeps it: object-safe, its futures boxed.
pub(super) trait Link<T>: Send + Sync + 'static {
    fn run_boxed<'a>(&'a self, item: T, next: LayerNext<'a, T>) -> BoxFuture<'a, Result<()>>;
}

/// Layers around `T`s, outermost first. Cheap to clone.
pub(super) struct Chain<T>(Arc<[Arc<dyn Link<T>>]>);

impl<T> Clone for Chain<T> {
    fn clone(&self) -> Chain<T> {
        Chain(self.0.clone())
    }
}

impl<T> Default for Chain<T> {
    fn default() -> Chain<T> {
        Chain(Arc::new([]))
    }
}

impl<T: 'static> Chain<T> {
    /// Adds `layer` inside those already there.
    pub(super) fn push(&mut self, layer: Arc<dyn Link<T>>) {
        let mut layers = self.0.to_vec();
        layers.push(layer);
        self.0 = layers.into();
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Runs `item` through the layers, then `send`.
    pub(super) async fn run<'a>(&'a self, item: T, send: &'a SendFn<'a, T>) -> Result<()> {
        LayerNext {
            layers: &self.0,
            send,
        }
        .run(item)
        .await
    }
}

/// What the innermost layer calls on to: the work itself.
pub(super) type SendFn<'a, T> = dyn Fn(T) -> BoxFuture<'a, Result<()>> + Send + Sync + 'a;

/// The rest of a chain after a layer: the layers after it, then the work itself (an
/// attempt's exchange, an event's publishing). [`CallNext`](super::CallNext) and
/// [`PublishNext`](super::PublishNext) are its two kinds.
pub struct LayerNext<'a, T> {
    layers: &'a [Arc<dyn Link<T>>],
    send: &'a SendFn<'a, T>,
}

impl<T: 'static> LayerNext<'_, T> {
    /// Runs the rest of the chain on `item`: its result is the work's outcome.
    pub async fn run(self, item: T) -> Result<()> {
        match self.layers.split_first() {
            Some((layer, rest)) => {
                let next = LayerNext {
                    layers: rest,
                    send: self.send,
                };
                layer.run_boxed(item, next).await
            }
            None => (self.send)(item).await,
        }
    }
}

impl<T> std::fmt::Debug for LayerNext<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerNext")
            .field("layers_left", &self.layers.len())
            .finish()
    }
}
