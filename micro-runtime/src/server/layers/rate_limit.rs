//! [`RateLimit`]: at most so many calls per second, with bursts, per endpoint or per caller.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::context::Context;
use crate::error::{Code, Error, Result};
use crate::server::{Answer, HandlerCall, HandlerLayer, Next};

/// How often at most the buckets are swept for room when the cap on keys is reached.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The longest period: a century, well within what the clock can add.
const LONGEST_PERIOD: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Admits at most a set rate of calls, with bursts (a token bucket), and refuses the rest at
/// once with `RESOURCE_EXHAUSTED`, saying when to try again.
///
/// Each endpoint has a bucket of its own by default. [`RateLimit::per_metadata`] gives
/// each caller (each value of a metadata key, such as `x-user`) its own bucket on each
/// endpoint, so one caller's flood does not refuse the others;
/// [`RateLimit::across_endpoints`] makes the buckets cover every endpoint of the server.
/// Calls without the key share one bucket. A streaming call counts once, when it opens.
///
/// ```
/// use std::time::Duration;
/// use micro_runtime::Service;
/// use micro_runtime::server::RateLimit;
///
/// let service = Service::builder()
///     .name("orders")
///     // Per user and endpoint: 100 calls a second, at most 20 at once after a pause.
///     .wrap_handler(RateLimit::per_second(100).burst(20).per_metadata("x-user"))
///     // And 10,000 a minute for the whole server.
///     .wrap_handler(RateLimit::per(10_000, Duration::from_secs(60)).across_endpoints())
///     .build()?;
/// # Ok::<(), micro_runtime::Error>(())
/// ```
///
/// # Memory
/// A bucket is one instant (the generic cell rate algorithm's "theoretical arrival time")
/// under a 64-bit keyed hash of its key, about 32 bytes whatever the key's size. At most
/// [`max_keys`](RateLimit::max_keys) buckets (10,000 by default) are kept. When they are all
/// taken, the buckets that have filled up again (those of callers quiet for long enough, which
/// a fresh bucket would replace exactly) are dropped, at most once a second; keys that still
/// find no room share one overflow bucket of the same rate until room is made. A flood of
/// made-up keys thus costs a bounded map; but each new key starts with a full burst, so such a
/// flood gets up to `max_keys × burst` calls a period through: pair a per-caller limit with
/// one [`across_endpoints`](RateLimit::across_endpoints) without a key, as above, to bound
/// the whole.
///
/// Clones share their buckets; each builder method makes a layer with buckets of its own.
#[derive(Clone)]
pub struct RateLimit {
    /// Calls admitted per `period`, and the interval between two at the steady rate.
    calls: u32,
    period: Duration,
    interval: Duration,
    burst: u32,
    /// How far ahead of now a bucket's arrival time may be: `interval * burst`.
    window: Duration,
    key: Option<Arc<str>>,
    across_endpoints: bool,
    max_keys: usize,
    hasher: RandomState,
    buckets: Arc<Mutex<Buckets>>,
}

/// The buckets: for each key, when the bucket is full again (at or before now: full).
#[derive(Default)]
struct Buckets {
    full_at: HashMap<u64, Instant>,
    /// The bucket of the keys beyond the cap.
    overflow: Option<Instant>,
    last_sweep: Option<Instant>,
}

impl RateLimit {
    /// `calls` a second (at least 1), with bursts of as many.
    pub fn per_second(calls: u32) -> RateLimit {
        RateLimit::per(calls, Duration::from_secs(1))
    }

    /// `calls` (at least 1) per `period`, with bursts of as many: `per(600,
    /// Duration::from_secs(60))` admits one call every 100 ms on average, up to 600 at once
    /// after a quiet minute. A zero period is no limit; a period beyond a century is a
    /// century.
    pub fn per(calls: u32, period: Duration) -> RateLimit {
        let calls = calls.max(1);
        let period = period.min(LONGEST_PERIOD);
        RateLimit {
            calls,
            period,
            interval: period / calls,
            burst: calls,
            window: Duration::ZERO,
            key: None,
            across_endpoints: false,
            max_keys: 10_000,
            hasher: RandomState::new(),
            buckets: Arc::default(),
        }
        .fresh()
    }

    /// At most `calls` at once (at least 1) after a quiet spell: the bucket's size. By
    /// default, the calls of one period.
    pub fn burst(mut self, calls: u32) -> RateLimit {
        self.burst = calls.max(1);
        self.fresh()
    }

    /// A bucket per value of the metadata key `key` (such as `x-user`, looked up ignoring
    /// case) on each endpoint, so callers are limited one by one. Calls without it (or with
    /// a value that is not text) share one bucket.
    pub fn per_metadata(mut self, key: impl Into<String>) -> RateLimit {
        self.key = Some(key.into().into());
        self.fresh()
    }

    /// Buckets that cover every endpoint of the server: one for the whole server, or one
    /// per caller with [`RateLimit::per_metadata`].
    pub fn across_endpoints(mut self) -> RateLimit {
        self.across_endpoints = true;
        self.fresh()
    }

    /// The most buckets kept (at least 1; default 10,000); see [Memory](#memory).
    pub fn max_keys(mut self, keys: usize) -> RateLimit {
        self.max_keys = keys.max(1);
        self.fresh()
    }

    /// The buckets kept now (the overflow bucket aside).
    pub fn tracked_keys(&self) -> usize {
        self.lock().full_at.len()
    }

    /// This setting with buckets of its own.
    fn fresh(mut self) -> RateLimit {
        self.window = self.interval.saturating_mul(self.burst);
        self.buckets = Arc::default();
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a call to `endpoint` with `ctx` from its bucket, or says why not.
    fn admit(&self, endpoint: &str, ctx: &Context) -> Result<()> {
        let scope = if self.across_endpoints { "" } else { endpoint };
        let value = self.key.as_deref().map(|k| ctx.metadata().get(k));
        let key = self.hasher.hash_one((scope, value));
        let now = Instant::now();
        let wait = {
            let mut buckets = self.lock();
            self.take(&mut buckets, key, now)
        };
        match wait {
            None => Ok(()),
            Some(wait) => Err(self.refusal(endpoint, wait)),
        }
    }

    /// Takes one call from the bucket of `key` at `now`; `None` when admitted, else how
    /// long until it would be.
    fn take(&self, buckets: &mut Buckets, key: u64, now: Instant) -> Option<Duration> {
        let bucket = match buckets.full_at.get_mut(&key) {
            Some(bucket) => bucket,
            None => {
                if buckets.full_at.len() >= self.max_keys {
                    self.sweep(buckets, now);
                }
                if buckets.full_at.len() >= self.max_keys {
                    let overflow = buckets.overflow.get_or_insert(now);
                    return self.take_from(overflow, now);
                }
                buckets.full_at.entry(key).or_insert(now)
            }
        };
        self.take_from(bucket, now)
    }

    /// The generic cell rate algorithm: a call is admitted when the bucket's arrival time,
    /// moved on by one interval, stays within the burst's window of now.
    fn take_from(&self, full_at: &mut Instant, now: Instant) -> Option<Duration> {
        let Some(next) = (*full_at).max(now).checked_add(self.interval) else {
            return Some(self.period);
        };
        let ahead = next.saturating_duration_since(now);
        if ahead > self.window {
            return Some(ahead - self.window);
        }
        *full_at = next;
        None
    }

    /// Drops the buckets that are full again (at most every [`SWEEP_EVERY`]).
    fn sweep(&self, buckets: &mut Buckets, now: Instant) {
        if buckets
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < SWEEP_EVERY)
        {
            return;
        }
        buckets.last_sweep = Some(now);
        buckets.full_at.retain(|_, full_at| *full_at > now);
        if buckets.overflow.is_some_and(|full_at| full_at <= now) {
            buckets.overflow = None;
        }
    }

    fn refusal(&self, endpoint: &str, wait: Duration) -> Error {
        // Whole milliseconds, rounded up: trying again then succeeds.
        let wait_ms = wait.as_nanos().div_ceil(1_000_000);
        let scope = if self.across_endpoints {
            "the server"
        } else {
            endpoint
        };
        // The key's name, never its value (metadata values may be secrets).
        let per = match &self.key {
            Some(key) => format!(" per {key}"),
            None => String::new(),
        };
        Error::new(
            Code::ResourceExhausted,
            format!(
                "rate limit of {scope}{per} reached: {} calls per {:?}, bursts of {}; try again in {wait_ms} ms",
                self.calls, self.period, self.burst
            ),
        )
        .with_id("go.micro.server")
    }
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("calls", &self.calls)
            .field("period", &self.period)
            .field("burst", &self.burst)
            .field("per_metadata", &self.key)
            .field("across_endpoints", &self.across_endpoints)
            .field("max_keys", &self.max_keys)
            .finish()
    }
}

impl HandlerLayer for RateLimit {
    fn handle(&self, call: HandlerCall, next: Next) -> impl Future<Output = Result<Answer>> + Send {
        let admitted = self.admit(call.endpoint(), call.context());
        async move {
            admitted?;
            next.run(call).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: Option<&str>) -> Context {
        let mut ctx = Context::new();
        if let Some(user) = user {
            ctx.metadata_mut().insert("x-user", user).unwrap();
        }
        ctx
    }

    /// How many of `n` calls at once are admitted.
    fn admitted(limit: &RateLimit, endpoint: &str, user: Option<&str>, n: usize) -> usize {
        let ctx = caller(user);
        (0..n)
            .filter(|_| limit.admit(endpoint, &ctx).is_ok())
            .count()
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_refills_at_the_rate_up_to_the_burst() {
        let limit = RateLimit::per_second(10).burst(3);
        assert_eq!(admitted(&limit, "A.B", None, 10), 3);
        let err = limit.admit("A.B", &Context::new()).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
        assert!(err.detail().contains("try again in 100 ms"), "{err}");
        assert!(err.detail().contains("A.B"), "{err}");

        // One call every 100 ms.
        tokio::time::advance(Duration::from_millis(99)).await;
        assert_eq!(admitted(&limit, "A.B", None, 1), 0);
        let err = limit.admit("A.B", &Context::new()).unwrap_err();
        assert!(err.detail().contains("try again in 1 ms"), "{err}");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(admitted(&limit, "A.B", None, 5), 1);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(admitted(&limit, "A.B", None, 5), 2);

        // A long pause fills the bucket to the burst, no further.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(admitted(&limit, "A.B", None, 10), 3);

        // At the steady rate every call is admitted.
        for _ in 0..50 {
            tokio::time::advance(Duration::from_millis(100)).await;
            assert_eq!(admitted(&limit, "A.B", None, 1), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_burst_defaults_to_a_periods_calls() {
        let limit = RateLimit::per(6, Duration::from_secs(60));
        assert_eq!(admitted(&limit, "A.B", None, 10), 6);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(admitted(&limit, "A.B", None, 10), 1);
        // Below one call per period's worth: at least one call, and a zero period is no limit.
        assert_eq!(admitted(&RateLimit::per_second(0), "A.B", None, 5), 1);
        assert_eq!(
            admitted(&RateLimit::per(1, Duration::ZERO), "A.B", None, 500),
            500
        );
        // A period past any clock admits the burst, then refuses.
        assert_eq!(
            admitted(&RateLimit::per(2, Duration::MAX), "A.B", None, 5),
            2
        );
    }

    #[tokio::test(start_paused = true)]
    async fn callers_and_endpoints_have_buckets_of_their_own() {
        let limit = RateLimit::per_second(1).burst(2).per_metadata("X-User");
        assert_eq!(admitted(&limit, "A.B", Some("ada"), 5), 2);
        // Another user, and the same user on another endpoint, are untouched.
        assert_eq!(admitted(&limit, "A.B", Some("bob"), 5), 2);
        assert_eq!(admitted(&limit, "A.C", Some("ada"), 5), 2);
        // Calls without the key share one bucket.
        assert_eq!(admitted(&limit, "A.B", None, 5), 2);
        assert_eq!(admitted(&limit, "A.B", None, 5), 0);
        let err = limit.admit("A.B", &caller(Some("ada"))).unwrap_err();
        assert!(err.detail().contains("per X-User"), "{err}");
        assert!(!err.detail().contains("ada"), "the value is in {err}");

        // Across endpoints: one bucket per user for the whole server.
        let limit = RateLimit::per_second(1)
            .burst(2)
            .per_metadata("x-user")
            .across_endpoints();
        assert_eq!(admitted(&limit, "A.B", Some("ada"), 1), 1);
        assert_eq!(admitted(&limit, "A.C", Some("ada"), 5), 1);
        assert_eq!(admitted(&limit, "A.C", Some("bob"), 5), 2);
        let err = limit.admit("A.B", &caller(Some("ada"))).unwrap_err();
        assert!(err.detail().contains("the server per x-user"), "{err}");

        // Per endpoint, no key: every caller shares the endpoint's bucket.
        let limit = RateLimit::per_second(1).burst(2);
        assert_eq!(admitted(&limit, "A.B", Some("ada"), 1), 1);
        assert_eq!(admitted(&limit, "A.B", Some("bob"), 5), 1);
        assert_eq!(admitted(&limit, "A.C", Some("bob"), 5), 2);

        // Clones share their buckets; a builder method makes new ones.
        let shared = limit.clone();
        assert_eq!(admitted(&shared, "A.C", None, 1), 0);
        assert_eq!(admitted(&limit.clone().burst(1), "A.C", None, 5), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_beyond_the_cap_share_one_bucket_until_room_is_made() {
        let limit = RateLimit::per_second(1).per_metadata("x-user").max_keys(3);
        for user in ["u0", "u1", "u2"] {
            assert_eq!(admitted(&limit, "A.B", Some(user), 1), 1);
        }
        assert_eq!(limit.tracked_keys(), 3);
        // Full of busy buckets: new keys share the overflow bucket (one call a second).
        assert_eq!(admitted(&limit, "A.B", Some("u3"), 1), 1);
        assert_eq!(admitted(&limit, "A.B", Some("u4"), 1), 0);
        // Known keys keep their own.
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(admitted(&limit, "A.B", Some("u0"), 1), 0);
        assert_eq!(limit.tracked_keys(), 3);

        // A flood of made-up keys keeps the map at its cap, limited as one caller.
        let flood = (0..10_000)
            .filter(|i| limit.admit("A.B", &caller(Some(&format!("m{i}")))).is_ok())
            .count();
        assert_eq!(flood, 0, "the overflow bucket is empty");
        assert_eq!(limit.tracked_keys(), 3);

        // Once buckets have filled up again, they make room (the sweep runs at most once a
        // second).
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(admitted(&limit, "A.B", Some("u0"), 1), 1);
        assert_eq!(admitted(&limit, "A.B", Some("u5"), 1), 1);
        assert_eq!(limit.tracked_keys(), 2, "the full buckets were dropped");
        assert_eq!(admitted(&limit, "A.B", Some("u5"), 1), 0);
    }
}
