//! Consistent hashing on a per-call key (sticky routing): a key goes to the same node while
//! the node set stays the same, and when a node joins or leaves only about 1/N of the keys
//! move. Calls without a key are spread at random.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::{Candidate, Nodes, Selection, Selector};

/// Points per node on the ring: enough for an even spread over a handful of nodes.
const POINTS_PER_NODE: u32 = 64;

/// Routes by the hash of the call's key (`CallOptions::hash_key`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsistentHash;

/// The hash ring of one node list: (point, candidate index), sorted by point.
#[derive(Debug)]
pub(crate) struct Ring(Vec<(u64, usize)>);

fn hash(value: impl Hash) -> u64 {
    // DefaultHasher::new() has fixed keys: the same on every run and in every process.
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl Ring {
    fn new(candidates: &[Candidate]) -> Ring {
        let mut points: Vec<(u64, usize)> = candidates
            .iter()
            .enumerate()
            .flat_map(|(i, c)| (0..POINTS_PER_NODE).map(move |p| (hash((&c.node.id, p)), i)))
            .collect();
        points.sort_unstable();
        Ring(points)
    }
}

impl Selector for ConsistentHash {
    fn name(&self) -> &'static str {
        "hash"
    }

    fn select<'a>(&self, nodes: &'a Nodes, call: &Selection<'_>) -> Option<&'a Candidate> {
        let candidates = nodes.as_slice();
        let Some(key) = call.key else {
            return super::Random.select(nodes, call);
        };
        if candidates.is_empty() {
            return None;
        }
        let ring = nodes.ring.get_or_init(|| Ring::new(candidates));
        let start = ring.0.partition_point(|(p, _)| *p < hash(key));
        // Walk the ring from the key's point.
        let points = ring.0.len();
        nodes.first_of((0..points).map(|i| ring.0[(start + i) % points].1), call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::test_nodes;

    fn owner<'a>(nodes: &'a Nodes, key: &str) -> &'a str {
        &ConsistentHash
            .select(
                nodes,
                &Selection {
                    key: Some(key),
                    ..Selection::default()
                },
            )
            .unwrap()
            .node
            .id
    }

    #[test]
    fn keys_stick_and_few_move_when_a_node_joins() {
        let four = test_nodes(4);
        let five = test_nodes(5);
        let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        let mut moved = 0;
        let mut per_node = [0usize; 5];
        for k in &keys {
            let before = owner(&four, k);
            assert_eq!(before, owner(&four, k), "a key stays on its node");
            let after = owner(&five, k);
            per_node[after[1..].parse::<usize>().unwrap()] += 1;
            if before != after {
                assert_eq!(after, "n4", "keys only move to the new node");
                moved += 1;
            }
        }
        // Ideal: 1/5 of the keys move (2000); allow the ring's unevenness.
        assert!((1200..=2800).contains(&moved), "{moved} keys moved");
        assert!(
            per_node.iter().all(|&n| (1000..=3200).contains(&n)),
            "{per_node:?}"
        );
    }
}
