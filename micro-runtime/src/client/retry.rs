//! Retries: the one loop every call runs its attempts in.
//!
//! An attempt that fails is sorted by how far its request got ([`Failure`]):
//! - it never reached a handler (the connection could not be made, or the server refused the
//!   stream before reading it: HTTP/2 `REFUSED_STREAM`, or a GOAWAY that did not cover it):
//!   any call, idempotent or not, is tried again;
//! - the connection broke after the request was sent: the handler may have run, so only
//!   idempotent methods ([`Method::idempotent`](super::Method::idempotent),
//!   [`CallOptions::idempotent`](super::CallOptions::idempotent)) are tried again;
//! - the node answered with an error: only `UNAVAILABLE` of an idempotent method is tried
//!   again.
//!
//! Each retry picks a node again (avoiding those that failed during the call), after a
//! back-off of `100 ms × attempt^e` as in go-micro, within the call's deadline and the
//! client's [`RetryBudget`], when it has one. Opening a stream is retried only while nothing
//! reached a server.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::budget::RetryBudget;
use crate::error::{Code, Error, Result};
use crate::selector::{CircuitBreaker, NodeStats, now_ms};

/// How one attempt failed.
pub(crate) enum Failure {
    /// The request never reached a handler: another attempt is always safe.
    Unsent(Error),
    /// The connection broke after the request was sent: the handler may have run, so only
    /// idempotent methods are tried again.
    Broken(Error),
    /// The node (or the registry) answered with an error. Only `UNAVAILABLE` of an
    /// idempotent method is tried again.
    Answered(Error),
}

impl Failure {
    fn is_retryable(&self, idempotent: bool) -> bool {
        match self {
            Failure::Unsent(_) => true,
            Failure::Broken(_) => idempotent,
            Failure::Answered(e) => idempotent && e.code() == Code::Unavailable,
        }
    }

    /// The error, whatever the failure.
    pub(super) fn error(&self) -> &Error {
        match self {
            Failure::Unsent(e) | Failure::Broken(e) | Failure::Answered(e) => e,
        }
    }

    pub(super) fn into_error(self) -> Error {
        match self {
            Failure::Unsent(e) | Failure::Broken(e) | Failure::Answered(e) => e,
        }
    }
}

/// What the attempts of one call share.
#[derive(Default)]
pub(super) struct Tried {
    /// The nodes that failed during this call, avoided by its next attempts.
    pub(super) failed: Vec<String>,
    /// The node of the attempt under way.
    pub(super) node: Option<Arc<NodeStats>>,
    /// The attempt under way: 0 for the first.
    pub(super) attempt: u32,
}

/// How a call is retried.
pub(super) struct Policy<'a> {
    pub(super) service: &'a str,
    pub(super) endpoint: &'a str,
    /// Attempts after the first.
    pub(super) retries: u32,
    /// Whether an attempt that may have reached the handler is tried again.
    pub(super) idempotent: bool,
    /// The call's deadline, and the timeout it was set from (for the error).
    pub(super) deadline: Option<(Instant, Duration)>,
    /// The client's retry budget, when it has one.
    pub(super) budget: Option<&'a RetryBudget>,
    /// The client's circuit breaker, when it has one: its intervals for a node that timed
    /// out.
    pub(super) breaker: Option<&'a CircuitBreaker>,
}

/// A call, as one attempt to make as often as its [`Policy`] allows.
pub(super) trait Attempt {
    type Output;

    /// Makes one attempt; `tried` holds what the earlier ones learnt.
    fn attempt(
        &self,
        tried: &mut Tried,
    ) -> impl Future<Output = Result<Self::Output, Failure>> + Send;
}

/// Makes attempts of `call` until one succeeds, one fails in a way that is not retried, or
/// the retries or the deadline run out. An attempt cut short by the deadline ejects its node
/// like one that failed: a node that went silent (its host lost, no reset ever comes) then
/// stops costing every caller its whole timeout.
pub(super) async fn retry<A: Attempt>(policy: Policy<'_>, call: &A) -> Result<A::Output> {
    let mut tried = Tried::default();
    let mut attempts = 0;
    // A deadline already passed (a caller's, carried on by its context) sends nothing.
    if let Some((deadline, timeout)) = policy.deadline
        && Instant::now() >= deadline
    {
        return Err(deadline_exceeded(policy.service, policy.endpoint, timeout));
    }
    if let Some(budget) = policy.budget {
        budget.deposit();
    }
    loop {
        tried.attempt = attempts;
        tried.node = None;
        let outcome = match policy.deadline {
            None => call.attempt(&mut tried).await,
            Some((deadline, timeout)) => {
                match tokio::time::timeout_at(deadline, call.attempt(&mut tried)).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        if let Some(stats) = &tried.node {
                            match policy.breaker {
                                Some(breaker) => stats.record_failure_under(breaker, now_ms()),
                                None => stats.record_failure(now_ms()),
                            }
                        }
                        return Err(deadline_exceeded(policy.service, policy.endpoint, timeout));
                    }
                }
            }
        };
        let err = match outcome {
            Ok(value) => return Ok(value),
            Err(f) if f.is_retryable(policy.idempotent) => f.into_error(),
            Err(f) => return Err(f.into_error()),
        };
        if attempts >= policy.retries {
            return Err(err);
        }
        attempts += 1;
        let backoff = backoff(attempts);
        if policy
            .deadline
            .is_some_and(|(deadline, _)| Instant::now() + backoff >= deadline)
        {
            return Err(err);
        }
        if policy.budget.is_some_and(|budget| !budget.withdraw()) {
            tracing::debug!(
                service = policy.service,
                endpoint = policy.endpoint,
                error = %err,
                "not retried: the retry budget is spent"
            );
            return Err(err);
        }
        tracing::debug!(
            service = policy.service,
            endpoint = policy.endpoint,
            attempt = attempts,
            ?backoff,
            error = %err,
            "retrying"
        );
        tokio::time::sleep(backoff).await;
    }
}

/// go-micro's back-off: `100 ms × attempt^e`, at most two minutes.
fn backoff(attempt: u32) -> Duration {
    let ms = 100.0 * f64::from(attempt).powf(std::f64::consts::E);
    Duration::from_millis(ms.min(120_000.0) as u64)
}

fn deadline_exceeded(service: &str, endpoint: &str, timeout: Duration) -> Error {
    let detail = if timeout.is_zero() {
        format!("call to {service} {endpoint} not made: its deadline had passed")
    } else {
        format!("call to {service} {endpoint} timed out after {timeout:?}")
    };
    Error::new(Code::DeadlineExceeded, detail).with_id("go.micro.client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_go_micro() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(658));
        assert_eq!(backoff(100), Duration::from_secs(120));
    }

    fn unavailable() -> Error {
        Error::new(Code::Unavailable, "down")
    }

    fn policy(retries: u32, idempotent: bool) -> Policy<'static> {
        Policy {
            service: "svc",
            endpoint: "Svc.Call",
            retries,
            idempotent,
            deadline: None,
            budget: None,
            breaker: None,
        }
    }

    /// A call whose attempts each fail with `failure()` after `takes`, counting them.
    struct Failing {
        failure: fn() -> Failure,
        takes: Duration,
        made: std::sync::atomic::AtomicU32,
    }

    impl Attempt for Failing {
        type Output = ();

        async fn attempt(&self, _: &mut Tried) -> Result<(), Failure> {
            self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(self.takes).await;
            Err((self.failure)())
        }
    }

    /// Runs a call whose attempts fail with `failure()`, returning how many were made.
    async fn attempts_made(policy: Policy<'_>, failure: fn() -> Failure) -> u32 {
        let call = Failing {
            failure,
            takes: Duration::ZERO,
            made: Default::default(),
        };
        assert!(retry(policy, &call).await.is_err());
        call.made.into_inner()
    }

    #[tokio::test(start_paused = true)]
    async fn only_what_is_safe_is_tried_again() {
        let unsent = || Failure::Unsent(unavailable());
        let broken = || Failure::Broken(unavailable());
        let answered = || Failure::Answered(unavailable());
        let refused = || Failure::Answered(Error::new(Code::NotFound, "no"));
        assert_eq!(attempts_made(policy(2, false), unsent).await, 3);
        assert_eq!(attempts_made(policy(2, false), broken).await, 1);
        assert_eq!(attempts_made(policy(2, true), broken).await, 3);
        assert_eq!(attempts_made(policy(2, false), answered).await, 1);
        assert_eq!(attempts_made(policy(2, true), answered).await, 3);
        assert_eq!(attempts_made(policy(2, true), refused).await, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_the_call() {
        let timeout = Duration::from_millis(500);
        let policy = Policy {
            deadline: Some((Instant::now() + timeout, timeout)),
            ..policy(10, false)
        };
        // Back-offs of 100 ms and 658 ms: the second would end past the deadline.
        assert_eq!(
            attempts_made(policy, || Failure::Unsent(unavailable())).await,
            2
        );
        let policy = Policy {
            deadline: Some((Instant::now() + timeout, timeout)),
            ..self::policy(10, false)
        };
        let slow = Failing {
            failure: || Failure::Unsent(unavailable()),
            takes: Duration::from_secs(1),
            made: Default::default(),
        };
        let err = retry(policy, &slow).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_retry_budget_ends_the_call() {
        let budget = RetryBudget::percent(50).min_per_second(0);
        let policy = || Policy {
            budget: Some(&budget),
            ..policy(3, false)
        };
        let unsent = || Failure::Unsent(unavailable());
        // First call: one deposit, half a retry: none.
        assert_eq!(attempts_made(policy(), unsent).await, 1);
        // Second: two deposits, one retry.
        assert_eq!(attempts_made(policy(), unsent).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_passed_makes_no_attempt() {
        let policy = Policy {
            deadline: Some((Instant::now(), Duration::ZERO)),
            ..policy(10, false)
        };
        assert_eq!(
            attempts_made(policy, || Failure::Unsent(unavailable())).await,
            0
        );
    }
}
