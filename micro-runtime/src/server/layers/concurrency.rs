//! [`ConcurrencyLimit`]: at most so many calls at once, the rest shed.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::{Code, Error, Result};
use crate::server::{Answer, HandlerCall, HandlerLayer, Next};

/// Runs at most `limit` calls at once and sheds the rest at once with `RESOURCE_EXHAUSTED`,
/// which costs the server nearly nothing: under overload the admitted calls keep their speed
/// instead of every call slowing down. Shared by every method of the server.
///
/// A stream counts until its last response is sent: a stream whose client stops reading holds
/// its place until the call's deadline, so streams behind this layer want deadlines (a
/// [`Timeout`](super::Timeout) does not bound a stream once it has begun).
#[derive(Clone, Debug)]
pub struct ConcurrencyLimit {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl ConcurrencyLimit {
    /// At most `limit` calls at once (at least one).
    pub fn new(limit: usize) -> ConcurrencyLimit {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        ConcurrencyLimit {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// The calls running now.
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }
}

impl HandlerLayer for ConcurrencyLimit {
    fn handle(&self, call: HandlerCall, next: Next) -> impl Future<Output = Result<Answer>> + Send {
        let permit = self.permits.clone().try_acquire_owned();
        let limit = self.limit;
        async move {
            let Ok(permit) = permit else {
                return Err(Error::new(
                    Code::ResourceExhausted,
                    format!("the server is busy: {limit} calls at once already"),
                )
                .with_id("go.micro.server"));
            };
            Ok(next.run(call).await?.keep_until_sent(permit))
        }
    }
}
