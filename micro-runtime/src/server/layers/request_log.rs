//! [`RequestLog`]: one log line per call, when it is answered.

use std::time::Instant;

use crate::error::Result;
use crate::server::{Answer, HandlerCall, HandlerLayer, Next};

/// Logs each call when it is answered (for a stream: when its stream of responses begins):
/// endpoint, caller, outcome (`OK` or the error's code) and the time it took, as a `tracing`
/// event of target `micro::request` (INFO; an error WARN). Never logs metadata values, which
/// may hold secrets.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestLog;

impl RequestLog {
    /// The layer.
    pub fn new() -> RequestLog {
        RequestLog
    }
}

impl HandlerLayer for RequestLog {
    async fn handle(&self, call: HandlerCall, next: Next) -> Result<Answer> {
        let started = Instant::now();
        let endpoint = call.endpoint_shared();
        let remote = call.context().remote_addr();
        let answer = next.run(call).await;
        let took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let remote = remote.as_ref().map_or(&"" as &dyn std::fmt::Display, |r| r);
        match &answer {
            Ok(_) => tracing::info!(
                target: "micro::request",
                endpoint = &*endpoint,
                remote = %remote,
                code = "OK",
                took_us,
                "call"
            ),
            Err(e) => tracing::warn!(
                target: "micro::request",
                endpoint = &*endpoint,
                remote = %remote,
                code = ?e.code(),
                error = e.detail(),
                took_us,
                "call"
            ),
        }
        answer
    }
}
