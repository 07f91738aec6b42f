//! Load balancing: which node of a service gets the next call.
//!
//! A selector picks a [`Candidate`] from [`Nodes`], the cached node list of one service. The
//! list carries the per-service state selectors need (a cursor, a hash ring) and each
//! candidate its [`NodeStats`] (calls in flight, a latency EWMA, its circuit breaker), which
//! survive registry updates. So round robin rotates across calls (not within one call as in
//! go-micro), least-loaded sees live load, and failed nodes are left alone for a back-off
//! period (their breaker open: outlier ejection, and with a [`CircuitBreaker`] failed
//! answers too), then probed by one call before they take calls again.
//!
//! Every selector honours the call's [`Selection`]: its [`Filter`] (version, node metadata)
//! always; ejected nodes and nodes that already failed this call only when nothing else is
//! left.

mod breaker;
pub mod consistent_hash;
pub mod least_loaded;
mod named;
pub mod random;
pub mod round_robin;
mod stats;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub use breaker::CircuitBreaker;
pub use consistent_hash::ConsistentHash;
pub use least_loaded::LeastLoaded;
pub use named::from_name;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use stats::{InFlight, NodeStats};

use crate::registry::Node;

/// Milliseconds since the first use of the selector clock (a process-wide monotonic epoch).
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A node a call may go to, with its version and live statistics.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The registry node.
    pub node: Node,
    /// The version of the service the node runs.
    pub version: String,
    /// Live statistics, kept across registry updates.
    pub stats: Arc<NodeStats>,
}

/// Constraints of a call on its node: a version, node metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only nodes of this version.
    pub version: Option<String>,
    /// Only nodes whose metadata has all these pairs.
    pub metadata: Vec<(String, String)>,
}

impl Filter {
    /// Whether `c` passes.
    pub fn matches(&self, c: &Candidate) -> bool {
        self.version.as_ref().is_none_or(|v| *v == c.version)
            && self
                .metadata
                .iter()
                .all(|(k, v)| c.node.metadata.get(k) == Some(v))
    }

    fn is_empty(&self) -> bool {
        self.version.is_none() && self.metadata.is_empty()
    }
}

/// What one call asks of the selector.
#[derive(Debug, Default)]
pub struct Selection<'a> {
    /// The key of consistent hashing (sticky routing); other selectors ignore it.
    pub key: Option<&'a str>,
    /// Constraints on the node.
    pub filter: Option<&'a Filter>,
    /// Addresses that already failed this call.
    pub avoid: &'a [String],
    /// The time, from [`now_ms`].
    pub now_ms: u64,
}

impl Selection<'_> {
    fn allows(&self, c: &Candidate) -> bool {
        self.filter.is_none_or(|f| f.is_empty() || f.matches(c))
    }

    fn prefers(&self, c: &Candidate) -> bool {
        !c.stats.is_ejected(self.now_ms) && !self.avoid.contains(&c.node.address)
    }
}

/// The nodes of one service, as the client cache holds them.
#[derive(Debug, Default)]
pub struct Nodes {
    candidates: Vec<Candidate>,
    cursor: AtomicUsize,
    /// The `hash` selector's ring of this list, made on its first use: (point, candidate
    /// index), sorted by point.
    ring: OnceLock<Vec<(u64, usize)>>,
}

impl Nodes {
    /// Candidates with a fresh cursor.
    pub fn new(candidates: Vec<Candidate>) -> Nodes {
        Nodes {
            candidates,
            cursor: AtomicUsize::new(0),
            ring: OnceLock::new(),
        }
    }

    /// Candidates from registry nodes of one version, each with fresh statistics.
    pub fn from_nodes(version: &str, nodes: Vec<Node>) -> Nodes {
        Nodes::new(
            nodes
                .into_iter()
                .map(|node| Candidate {
                    node,
                    version: version.to_owned(),
                    stats: Arc::default(),
                })
                .collect(),
        )
    }

    /// The candidates.
    pub fn as_slice(&self) -> &[Candidate] {
        &self.candidates
    }

    /// Carries the cursor of `old` (the list this one replaces) over, so round robin goes on
    /// from where it was instead of starting again at the first node on every rebuild.
    pub fn continuing(self, old: Option<&Nodes>) -> Nodes {
        if let Some(old) = old {
            self.cursor
                .store(old.cursor.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self
    }

    /// Advances the shared cursor and returns its previous value.
    pub fn next_cursor(&self) -> usize {
        self.cursor.fetch_add(1, Ordering::Relaxed)
    }

    /// The first candidate at or after `start` (wrapping) that the call prefers; failing that,
    /// the first it allows (ejected or already failed, but within the filter).
    pub fn first_from(&self, start: usize, call: &Selection<'_>) -> Option<&Candidate> {
        let n = self.candidates.len();
        self.first_of((0..n).map(|i| (start + i) % n), call)
    }

    /// The first candidate, in the order of `indices`, that the call prefers; failing that,
    /// the first it allows.
    pub(crate) fn first_of(
        &self,
        indices: impl Iterator<Item = usize>,
        call: &Selection<'_>,
    ) -> Option<&Candidate> {
        let mut fallback = None;
        for c in indices.filter_map(|i| self.candidates.get(i)) {
            if call.allows(c) {
                if call.prefers(c) {
                    return Some(c);
                }
                fallback = fallback.or(Some(c));
            }
        }
        fallback
    }
}

/// Picks a node for each call.
pub trait Selector: Send + Sync + 'static {
    /// The strategy's name, as in `--selector`.
    fn name(&self) -> &'static str;

    /// A candidate of `nodes` for the call, or `None` when none passes its filter.
    fn select<'a>(&self, nodes: &'a Nodes, call: &Selection<'_>) -> Option<&'a Candidate>;
}

#[cfg(test)]
pub(crate) fn test_nodes(n: usize) -> Nodes {
    Nodes::from_nodes(
        "1",
        (0..n)
            .map(|i| Node {
                id: format!("n{i}"),
                address: format!("127.0.0.1:{}", 1000 + i),
                ..Node::default()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_hard_ejection_is_soft() {
        let mut nodes = test_nodes(3);
        nodes.candidates[2].version = "2".into();
        nodes.candidates[2]
            .node
            .metadata
            .insert("zone".into(), "b".into());
        let v2 = Filter {
            version: Some("2".into()),
            ..Filter::default()
        };
        let zone_b = Filter {
            metadata: vec![("zone".into(), "b".into())],
            ..Filter::default()
        };
        for f in [&v2, &zone_b] {
            for sel in [
                &Random as &dyn Selector,
                &RoundRobin,
                &LeastLoaded,
                &ConsistentHash,
            ] {
                let call = Selection {
                    filter: Some(f),
                    key: Some("k"),
                    ..Selection::default()
                };
                assert_eq!(
                    sel.select(&nodes, &call).unwrap().node.id,
                    "n2",
                    "{}",
                    sel.name()
                );
            }
        }
        let v3 = Filter {
            version: Some("3".into()),
            ..Filter::default()
        };
        assert!(
            Random
                .select(
                    &nodes,
                    &Selection {
                        filter: Some(&v3),
                        ..Selection::default()
                    }
                )
                .is_none()
        );

        // All but n1 ejected: every selector goes to n1; all ejected: still someone.
        nodes.candidates[0].stats.record_failure(now_ms());
        nodes.candidates[2].stats.record_failure(now_ms());
        for sel in [
            &Random as &dyn Selector,
            &RoundRobin,
            &LeastLoaded,
            &ConsistentHash,
        ] {
            for key in ["a", "b", "c", "d"] {
                let call = Selection {
                    key: Some(key),
                    now_ms: now_ms(),
                    ..Selection::default()
                };
                assert_eq!(
                    sel.select(&nodes, &call).unwrap().node.id,
                    "n1",
                    "{}",
                    sel.name()
                );
            }
        }
        nodes.candidates[1].stats.record_failure(now_ms());
        assert!(
            RoundRobin
                .select(
                    &nodes,
                    &Selection {
                        now_ms: now_ms(),
                        ..Selection::default()
                    }
                )
                .is_some()
        );
    }
}
