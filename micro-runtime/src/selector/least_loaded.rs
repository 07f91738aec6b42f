//! Least-loaded by the power of two choices: of two random nodes, the one with fewer calls in
//! flight, and on a tie the one with the lower latency EWMA. Cheap (no scan of all nodes) and
//! it keeps load off a slow node, whose calls pile up in flight.

use super::{Candidate, Nodes, Selection, Selector};

/// Power-of-two-choices on calls in flight, then latency.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastLoaded;

impl Selector for LeastLoaded {
    fn name(&self) -> &'static str {
        "leastloaded"
    }

    fn select<'a>(&self, nodes: &'a Nodes, call: &Selection<'_>) -> Option<&'a Candidate> {
        let n = nodes.as_slice().len();
        if n == 0 {
            return None;
        }
        let a = nodes.first_from(fastrand::usize(..n), call)?;
        let b = nodes.first_from(fastrand::usize(..n), call)?;
        let load = |c: &Candidate| (c.stats.in_flight(), c.stats.latency());
        Some(if load(b) < load(a) { b } else { a })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::test_nodes;
    use std::time::Duration;

    #[test]
    fn avoids_the_busy_and_the_slow() {
        let nodes = test_nodes(2);
        let busy = &nodes.as_slice()[0];
        let _calls: Vec<_> = (0..5).map(|_| busy.stats.start()).collect();
        let picks = (0..200)
            .filter(|_| {
                LeastLoaded
                    .select(&nodes, &Selection::default())
                    .unwrap()
                    .node
                    .id
                    == "n0"
            })
            .count();
        // n0 wins only when both draws are n0: about a quarter of the time.
        assert!(picks < 100, "{picks}");
        drop(_calls);
        nodes.as_slice()[0]
            .stats
            .record_success(Duration::from_millis(50));
        nodes.as_slice()[1]
            .stats
            .record_success(Duration::from_millis(1));
        let picks = (0..200)
            .filter(|_| {
                LeastLoaded
                    .select(&nodes, &Selection::default())
                    .unwrap()
                    .node
                    .id
                    == "n0"
            })
            .count();
        assert!(picks < 100, "{picks}");
    }
}
