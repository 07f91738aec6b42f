//! [`RetryBudget`]: retries capped at a share of calls, so that an outage does not multiply
//! the load on what is left.

use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

/// Caps a client's retries at a share of its calls (Finagle's retry budget, as
/// [`tower`] keeps it): each call deposits into the budget, each retry withdraws from it,
/// and a retry the budget cannot pay for is not made (the call fails with its last error).
/// Deposits count for [`ttl`](Self::ttl) (10 s by default); a small reserve of
/// [`min_per_second`](Self::min_per_second) retries (10 by default) lets a client that
/// makes few calls retry at all.
///
/// So with `RetryBudget::percent(20)`, a client's attempts stay under 1.2 × its calls (plus
/// the reserve) however many nodes fail: retries no longer triple the load of an outage.
/// Shares up to 100 % are counted as one retry per ⌊100 / percent⌋ calls (20 → 1 in 5,
/// 30 → 1 in 3, 51–100 → 1 per call), as tower counts them.
///
/// ```
/// use micro_runtime::client::RetryBudget;
/// use micro_runtime::Service;
///
/// let service = Service::builder()
///     .name("orders")
///     .retry_budget(RetryBudget::percent(20))
///     .build()?;
/// # Ok::<(), micro_runtime::Error>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    budget: Arc<TpsBudget>,
    percent: u32,
    ttl: Duration,
    min_per_second: u32,
}

impl RetryBudget {
    /// Retries up to `percent` % of calls (0–1000), over 10 s, with a reserve of 10 per
    /// second.
    pub fn percent(percent: u32) -> RetryBudget {
        RetryBudget::with(percent.min(1000), Duration::from_secs(10), 10)
    }

    /// The reserve: retries allowed per second whatever the calls (0 for none).
    pub fn min_per_second(self, n: u32) -> RetryBudget {
        RetryBudget::with(self.percent, self.ttl, n.min(1_000_000))
    }

    /// How long a call's deposit counts (1–60 s).
    pub fn ttl(self, ttl: Duration) -> RetryBudget {
        let ttl = ttl.clamp(Duration::from_secs(1), Duration::from_secs(60));
        RetryBudget::with(self.percent, ttl, self.min_per_second)
    }

    fn with(percent: u32, ttl: Duration, min_per_second: u32) -> RetryBudget {
        // Within TpsBudget's bounds: ttl 1–60 s, percent 0–1000 (as a share, 0–10).
        RetryBudget {
            budget: Arc::new(TpsBudget::new(ttl, min_per_second, percent as f32 / 100.0)),
            percent,
            ttl,
            min_per_second,
        }
    }

    /// Counts a call.
    pub(super) fn deposit(&self) {
        self.budget.deposit();
    }

    /// Takes a retry from the budget; whether it had one.
    pub(super) fn withdraw(&self) -> bool {
        self.budget.withdraw()
    }
}

impl std::fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryBudget")
            .field("percent", &self.percent)
            .field("ttl", &self.ttl)
            .field("min_per_second", &self.min_per_second)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_a_share_of_calls() {
        let budget = RetryBudget::percent(20).min_per_second(0);
        assert!(!budget.withdraw(), "no calls yet, no reserve");
        for _ in 0..100 {
            budget.deposit();
        }
        let retries = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(retries, 20);
    }

    #[tokio::test(start_paused = true)]
    async fn the_reserve_allows_a_few() {
        let budget = RetryBudget::percent(0).min_per_second(1);
        let retries = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(retries, 10, "1 per second over 10 s");
    }
}
