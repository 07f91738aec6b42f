//! [`NodeStats`]: what the client knows of one node — calls in flight, a latency EWMA, and
//! the node's circuit breaker (closed, open, half-open).
//!
//! The breaker opens on a transport failure (refused, reset, unreachable, silent) at once,
//! and, when the client has a [`CircuitBreaker`], on failed answers as it says. An open node
//! is avoided for `open_for × 2^(times opened in a row)`, capped; then it is half-open: one
//! call at a time probes it, and the node closes on an answer or opens again on a failure.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::breaker::CircuitBreaker;

/// How long a half-open node's probe keeps other calls away before another may probe.
const PROBE_TTL_MS: u64 = 5_000;

/// Live statistics of one node, shared by every call to it.
#[derive(Debug, Default)]
pub struct NodeStats {
    in_flight: AtomicUsize,
    /// Latency EWMA in microseconds; 0 before the first sample.
    ewma_us: AtomicU64,
    /// Times the breaker opened in a row (each doubles the open interval); 0 when closed.
    opened: AtomicU32,
    /// Until when the breaker is open ([`now_ms`](super::now_ms) time); 0 when closed.
    open_until_ms: AtomicU64,
    /// When the half-open probe under way began; 0 when none.
    probe_since_ms: AtomicU64,
    /// Failed answers in a row.
    failures_in_row: AtomicU32,
    /// When the current window of answers began.
    window_start_ms: AtomicU64,
    /// Answers, and failed answers, in the current window.
    window_answers: AtomicU32,
    window_failures: AtomicU32,
}

/// Counts a call in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a NodeStats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl NodeStats {
    /// Marks a call started; it ends when the guard drops.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency EWMA (weight 1/8), zero before the first sample.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.ewma_us.load(Ordering::Relaxed))
    }

    fn sample_latency(&self, latency: Duration) {
        let sample = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        let old = self.ewma_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.ewma_us.store(new.max(1), Ordering::Relaxed);
    }

    /// Records a call the node answered well (or, with no [`CircuitBreaker`], answered at
    /// all): it is healthy, and its breaker closes.
    ///
    /// An open breaker stays open until its interval has passed: an answer to a call that
    /// was under way when it opened (or sent there because no other node was left) does not
    /// close it; one that comes once it is half-open does.
    pub fn record_success(&self, latency: Duration) {
        self.record_success_at(latency, super::now_ms());
    }

    /// [`record_success`](Self::record_success) at `now_ms`.
    pub fn record_success_at(&self, latency: Duration, now_ms: u64) {
        self.sample_latency(latency);
        if self.failures_in_row.load(Ordering::Relaxed) != 0 {
            self.failures_in_row.store(0, Ordering::Relaxed);
        }
        let until = self.open_until_ms.load(Ordering::Relaxed);
        if until != 0 && until <= now_ms {
            self.close();
        } else if until == 0 && self.probe_since_ms.load(Ordering::Relaxed) != 0 {
            // A probe flag set as another call closed the breaker.
            self.probe_since_ms.store(0, Ordering::Relaxed);
        }
    }

    /// Records an answer under `breaker`: a failure when its code is one the breaker counts.
    /// The breaker opens after its failures in a row, or its failure ratio in a window, or
    /// on the failed answer of a half-open probe.
    pub fn record_answer(
        &self,
        breaker: &CircuitBreaker,
        code: crate::Code,
        latency: Duration,
        now_ms: u64,
    ) {
        let failed = breaker.counts(code);
        let ratio_trips = breaker.ratio.is_some_and(|(ratio, min)| {
            let start = self.window_start_ms.load(Ordering::Relaxed);
            if now_ms.saturating_sub(start) >= breaker.window_ms() {
                self.window_start_ms.store(now_ms, Ordering::Relaxed);
                self.window_answers.store(0, Ordering::Relaxed);
                self.window_failures.store(0, Ordering::Relaxed);
            }
            let answers = self.window_answers.fetch_add(1, Ordering::Relaxed) + 1;
            let failures = self.window_failures.load(Ordering::Relaxed) + u32::from(failed);
            if failed {
                self.window_failures.fetch_add(1, Ordering::Relaxed);
            }
            failed && answers >= min && f64::from(failures) >= ratio * f64::from(answers)
        });
        if !failed {
            return self.record_success_at(latency, now_ms);
        }
        self.sample_latency(latency);
        let in_row = self.failures_in_row.fetch_add(1, Ordering::Relaxed) + 1;
        let until = self.open_until_ms.load(Ordering::Relaxed);
        let half_open = until != 0 && until <= now_ms;
        if half_open || ratio_trips || in_row >= breaker.failures_in_row {
            self.open(now_ms, breaker.open_for, breaker.max_open);
        }
    }

    /// Records a transport failure (refused, reset, unreachable, timed out): the breaker
    /// opens for `1 s × 2^(times opened in a row)`, at most 30 s.
    pub fn record_failure(&self, now_ms: u64) {
        let defaults = CircuitBreaker::default();
        self.open(now_ms, defaults.open_for, defaults.max_open);
    }

    /// Records a transport failure under `breaker`'s open intervals.
    pub fn record_failure_under(&self, breaker: &CircuitBreaker, now_ms: u64) {
        self.open(now_ms, breaker.open_for, breaker.max_open);
    }

    fn open(&self, now_ms: u64, base: Duration, max: Duration) {
        let n = self.opened.fetch_add(1, Ordering::Relaxed).min(16);
        let period = base.saturating_mul(2u32.saturating_pow(n)).min(max);
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        let until = now_ms.saturating_add(period_ms).max(1);
        self.open_until_ms.store(until, Ordering::Relaxed);
        self.probe_since_ms.store(0, Ordering::Relaxed);
        self.failures_in_row.store(0, Ordering::Relaxed);
        self.window_answers.store(0, Ordering::Relaxed);
        self.window_failures.store(0, Ordering::Relaxed);
        tracing::debug!(?period, "node breaker open");
    }

    fn close(&self) {
        self.open_until_ms.store(0, Ordering::Relaxed);
        self.probe_since_ms.store(0, Ordering::Relaxed);
        self.opened.store(0, Ordering::Relaxed);
    }

    /// Whether the node is to be avoided at `now_ms`: its breaker is open, or half-open with
    /// a probe under way.
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        if until > now_ms {
            return true;
        }
        let probe = self.probe_since_ms.load(Ordering::Relaxed);
        probe != 0 && now_ms < probe.saturating_add(PROBE_TTL_MS)
    }

    /// Whether the breaker is open at `now_ms` (not yet half-open).
    pub fn is_open(&self, now_ms: u64) -> bool {
        self.open_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// Called when a call picked this node: when the node is half-open, the call becomes
    /// its probe, and other calls keep away until the probe's outcome is known.
    pub fn picked(&self, now_ms: u64) {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        if until != 0 && until <= now_ms {
            let probe = self.probe_since_ms.load(Ordering::Relaxed);
            if probe == 0 || now_ms >= probe.saturating_add(PROBE_TTL_MS) {
                let _ = self.probe_since_ms.compare_exchange(
                    probe,
                    now_ms.max(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[test]
    fn ejection_backs_off_and_resets() {
        let s = NodeStats::default();
        s.record_failure(0);
        assert!(s.is_ejected(999));
        assert!(!s.is_ejected(1000));
        s.record_failure(1000);
        assert!(s.is_ejected(2999));
        assert!(!s.is_ejected(3000));
        for _ in 0..20 {
            s.record_failure(0);
        }
        assert!(!s.is_ejected(30_000));
        s.record_success_at(Duration::from_millis(1), 29_999);
        assert!(s.is_open(29_999), "an answer while open does not close it");
        s.record_success_at(Duration::from_millis(1), 30_000);
        s.record_failure(30_000);
        assert!(!s.is_ejected(31_000), "closed: the back-off starts again");
    }

    #[test]
    fn half_open_admits_one_probe_at_a_time() {
        let s = NodeStats::default();
        s.record_failure(0);
        assert!(s.is_open(500));
        assert!(!s.is_ejected(1000), "half-open: a probe may go");
        s.picked(1000);
        assert!(
            s.is_ejected(1001),
            "the probe is under way: the others keep away"
        );
        assert!(
            !s.is_ejected(1000 + PROBE_TTL_MS),
            "a probe that never ends expires"
        );
        s.record_success_at(Duration::from_millis(1), 1001);
        assert!(!s.is_ejected(1001));
        assert!(!s.is_open(1001));
    }

    #[test]
    fn failed_answers_open_after_the_threshold() {
        let b = CircuitBreaker::new()
            .failures_in_row(3)
            .open_for(Duration::from_millis(100));
        let s = NodeStats::default();
        let ms = Duration::from_millis(1);
        s.record_answer(&b, Code::Unavailable, ms, 0);
        s.record_answer(&b, Code::NotFound, ms, 0); // not a failure: the row starts again
        s.record_answer(&b, Code::Unavailable, ms, 0);
        s.record_answer(&b, Code::Internal, ms, 0);
        assert!(!s.is_ejected(0));
        s.record_answer(&b, Code::Unavailable, ms, 0);
        assert!(s.is_open(99));
        // Half-open at 100: the probe fails, open again for twice as long.
        s.picked(100);
        s.record_answer(&b, Code::Unavailable, ms, 100);
        assert!(s.is_open(299));
        assert!(!s.is_open(300));
        // The next probe answers: closed.
        s.picked(300);
        s.record_answer(&b, Code::Ok, ms, 300);
        assert!(!s.is_ejected(300));
        s.record_answer(&b, Code::Unavailable, ms, 300);
        assert!(
            !s.is_ejected(300),
            "closed again: the row starts from nothing"
        );
    }

    #[test]
    fn a_failure_ratio_opens_the_breaker() {
        let b = CircuitBreaker::new()
            .failures_in_row(1000)
            .failure_ratio(0.5, 10);
        let s = NodeStats::default();
        let ms = Duration::from_millis(1);
        for i in 0..9 {
            let code = if i % 2 == 0 {
                Code::Unavailable
            } else {
                Code::Ok
            };
            s.record_answer(&b, code, ms, 10);
        }
        assert!(!s.is_ejected(10), "fewer answers than the minimum");
        s.record_answer(&b, Code::Unavailable, ms, 10);
        assert!(s.is_open(10), "6 of 10 failed");
    }
}
