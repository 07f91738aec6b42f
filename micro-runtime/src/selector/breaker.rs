//! [`CircuitBreaker`]: when a node that answers is nonetheless failing, and for how long it
//! is left alone.

use std::time::Duration;

use crate::error::Code;

/// A circuit breaker per node, set on a client
/// ([`ServiceBuilder::circuit_breaker`](crate::ServiceBuilder::circuit_breaker),
/// [`ClientOptions::breaker`](crate::ClientOptions::breaker)).
///
/// Without one, a node's breaker opens only on transport failures (it refused, reset or did
/// not answer in time), as outlier ejection does. With one, answers count too: an answer
/// with a code the breaker counts as a failure (by default `UNAVAILABLE`, `INTERNAL`,
/// `UNKNOWN`, `DEADLINE_EXCEEDED`, `DATA_LOSS`) adds to the node's failures, and the breaker
/// opens after [`failures_in_row`](Self::failures_in_row) failed answers in a row, or when
/// the failed share of the answers of a [`window`](Self::window) reaches the
/// [`failure_ratio`](Self::failure_ratio). An open node gets no calls (unless no other node
/// is left) for [`open_for`](Self::open_for), doubled each time it opens again, at most
/// [`max_open`](Self::max_open); then one call at a time probes it (half-open): a good
/// answer closes the breaker, a failure opens it again.
///
/// The state lives in the client's node statistics: shared by every call of the client,
/// kept across registry updates.
///
/// ```
/// use std::time::Duration;
/// use micro_runtime::selector::CircuitBreaker;
/// use micro_runtime::Service;
///
/// let service = Service::builder()
///     .name("orders")
///     .circuit_breaker(
///         CircuitBreaker::new()
///             .failures_in_row(5)
///             .failure_ratio(0.5, 20)
///             .open_for(Duration::from_secs(1)),
///     )
///     .build()?;
/// # Ok::<(), micro_runtime::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreaker {
    pub(super) failures_in_row: u32,
    pub(super) ratio: Option<(f64, u32)>,
    pub(super) window: Duration,
    pub(super) open_for: Duration,
    pub(super) max_open: Duration,
    /// The codes counted as failures, one bit per code number.
    codes: u32,
}

impl Default for CircuitBreaker {
    /// Five failures in a row, or half of at least 20 answers in 10 s; open for 1 s,
    /// doubling to 30 s.
    fn default() -> CircuitBreaker {
        CircuitBreaker {
            failures_in_row: 5,
            ratio: Some((0.5, 20)),
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(1),
            max_open: Duration::from_secs(30),
            codes: bits(&[
                Code::Unavailable,
                Code::Internal,
                Code::Unknown,
                Code::DeadlineExceeded,
                Code::DataLoss,
            ]),
        }
    }
}

fn bits(codes: &[Code]) -> u32 {
    codes.iter().fold(0, |bits, &c| bits | 1 << (c as u32))
}

impl CircuitBreaker {
    /// The default breaker (see [`Default`]).
    pub fn new() -> CircuitBreaker {
        CircuitBreaker::default()
    }

    /// Opens after `n` failed answers in a row (at least 1).
    pub fn failures_in_row(mut self, n: u32) -> CircuitBreaker {
        self.failures_in_row = n.max(1);
        self
    }

    /// Opens when at least `ratio` (0–1) of the answers of a window failed, counted once the
    /// window holds `min_answers` answers.
    pub fn failure_ratio(mut self, ratio: f64, min_answers: u32) -> CircuitBreaker {
        self.ratio = Some((ratio.clamp(0.0, 1.0), min_answers.max(1)));
        self
    }

    /// Counts failures in a row only, with no ratio.
    pub fn no_failure_ratio(mut self) -> CircuitBreaker {
        self.ratio = None;
        self
    }

    /// The window the failure ratio is counted over (at least 1 ms).
    pub fn window(mut self, window: Duration) -> CircuitBreaker {
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// How long a node stays open the first time (at least 1 ms); doubled each time it
    /// opens again before a good answer.
    pub fn open_for(mut self, open_for: Duration) -> CircuitBreaker {
        self.open_for = open_for.max(Duration::from_millis(1));
        self.max_open = self.max_open.max(self.open_for);
        self
    }

    /// The longest a node stays open.
    pub fn max_open(mut self, max_open: Duration) -> CircuitBreaker {
        self.max_open = max_open.max(self.open_for);
        self
    }

    /// The answer codes counted as failures.
    pub fn failure_codes(mut self, codes: &[Code]) -> CircuitBreaker {
        self.codes = bits(codes);
        self
    }

    /// Whether an answer with `code` counts as a failure.
    pub fn counts(&self, code: Code) -> bool {
        self.codes & (1 << (code as u32)) != 0
    }

    pub(super) fn window_ms(&self) -> u64 {
        self.window.as_millis().min(u128::from(u64::MAX)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_its_codes_only() {
        let b = CircuitBreaker::default();
        assert!(b.counts(Code::Unavailable));
        assert!(!b.counts(Code::Ok));
        assert!(!b.counts(Code::NotFound));
        let b = b.failure_codes(&[Code::NotFound]);
        assert!(b.counts(Code::NotFound));
        assert!(!b.counts(Code::Unavailable));
    }
}
