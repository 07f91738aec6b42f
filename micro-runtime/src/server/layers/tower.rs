//! [`TowerLayer`]: a tower middleware stack as a handler layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use tower::{Layer, Service, ServiceExt};

use crate::error::{Code, Error, Result};
use crate::server::{Answer, HandlerCall, HandlerLayer, Next};

/// A call on its way through a tower stack: what the stack's innermost service,
/// [`CallOn`], calls on with.
#[derive(Debug)]
pub struct TowerCall {
    /// The call, as handler layers see it.
    pub call: HandlerCall,
    next: Next,
}

/// The innermost service of a [`TowerLayer`]'s stack: calls on to the layers after it and
/// the method.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallOn;

impl Service<TowerCall> for CallOn {
    type Response = Answer;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Answer>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: TowerCall) -> Self::Future {
        Box::pin(call.next.run(call.call))
    }
}

/// Runs existing tower middleware (`tower::limit`, `tower::timeout`, `tower::load_shed`,
/// your own `tower::Layer`s) around every method of a server, as a handler layer.
///
/// The stack is built once, over [`CallOn`], and cloned for each call, as tower services
/// are: a concurrency limit's permits are shared by every call. Its errors reach the caller
/// coded: an [`Error`] as it is, tower's `Elapsed` (timeout) as `DEADLINE_EXCEEDED`, its
/// `Overloaded` (load shedding) as `RESOURCE_EXHAUSTED`, any other as `INTERNAL` (its
/// text in the message).
///
/// ```
/// use std::time::Duration;
/// use micro_runtime::Service;
/// use micro_runtime::server::TowerLayer;
/// use tower::ServiceBuilder;
///
/// let stack = ServiceBuilder::new()
///     .load_shed()
///     .concurrency_limit(256)
///     .timeout(Duration::from_secs(5))
///     .into_inner();
/// let service = Service::builder()
///     .name("orders")
///     .wrap_handler(TowerLayer::new(stack))
///     .build()?;
/// # Ok::<(), micro_runtime::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TowerLayer<S> {
    service: S,
}

impl<S> TowerLayer<S> {
    /// The layer running `layer`'s stack.
    pub fn new<L: Layer<CallOn, Service = S>>(layer: L) -> TowerLayer<S> {
        TowerLayer {
            service: layer.layer(CallOn),
        }
    }
}

impl<S> HandlerLayer for TowerLayer<S>
where
    S: Service<TowerCall, Response = Answer> + Clone + Send + Sync + 'static,
    S::Error: Into<tower::BoxError>,
    S::Future: Send,
{
    fn handle(&self, call: HandlerCall, next: Next) -> impl Future<Output = Result<Answer>> + Send {
        let service = self.service.clone();
        async move {
            service
                .oneshot(TowerCall { call, next })
                .await
                .map_err(|e| coded(e.into()))
        }
    }
}

/// A tower error as the caller gets it.
fn coded(e: tower::BoxError) -> Error {
    let e = match e.downcast::<Error>() {
        Ok(e) => return *e,
        Err(e) => e,
    };
    let code = if e.is::<tower::timeout::error::Elapsed>() {
        Code::DeadlineExceeded
    } else if e.is::<tower::load_shed::error::Overloaded>() {
        Code::ResourceExhausted
    } else {
        Code::Internal
    };
    Error::new(code, e.to_string()).with_id("go.micro.server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tower_errors_are_coded() {
        let coded = |e: tower::BoxError| coded(e).code();
        assert_eq!(
            coded(Box::new(Error::new(Code::NotFound, "no"))),
            Code::NotFound
        );
        assert_eq!(
            coded(Box::new(tower::timeout::error::Elapsed::new())),
            Code::DeadlineExceeded
        );
        assert_eq!(
            coded(Box::new(tower::load_shed::error::Overloaded::new())),
            Code::ResourceExhausted
        );
        assert_eq!(coded("odd".into()), Code::Internal);
    }
}
