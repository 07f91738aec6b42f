//! [`Timeout`]: a deadline of the server's own for every call.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Code, Error, Result};
use crate::server::{Answer, CallKind, HandlerCall, HandlerLayer, Next};

/// Ends a call that takes longer than a set time with `DEADLINE_EXCEEDED`, dropping the
/// handler's work. A unary call's context gets the earlier of this deadline and the
/// caller's, so the calls the handler makes with it stop in time too. For a stream, bounds
/// the handler until its stream of responses begins (the stream then lives by the caller's
/// deadline), and leaves its context as the caller set it.
#[derive(Clone, Copy, Debug)]
pub struct Timeout {
    limit: Duration,
}

impl Timeout {
    /// Calls end after `limit`.
    pub fn new(limit: Duration) -> Timeout {
        Timeout { limit }
    }
}

impl HandlerLayer for Timeout {
    fn handle(
        &self,
        mut call: HandlerCall,
        next: Next,
    ) -> impl Future<Output = Result<Answer>> + Send {
        let limit = self.limit;
        async move {
            let deadline = Instant::now().checked_add(limit);
            if let (Some(deadline), CallKind::Unary) = (deadline, call.kind()) {
                let ctx = call.context_mut();
                if ctx.deadline().is_none_or(|caller| caller > deadline) {
                    *ctx = std::mem::take(ctx).with_deadline(deadline);
                }
            }
            match tokio::time::timeout(limit, next.run(call)).await {
                Ok(answer) => answer,
                Err(_) => Err(Error::new(
                    Code::DeadlineExceeded,
                    format!("the server's timeout of {limit:?} passed"),
                )
                .with_id("go.micro.server")),
            }
        }
    }
}
