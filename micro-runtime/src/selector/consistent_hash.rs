//! Consistent hashing on a per-call key (sticky routing): a key goes to the same node while
//! the node set stays the same, and when a node joins or leaves only about 1/N of the keys
//! move. Calls without a key are spread at random.

use super::{Candidate, Nodes, Selection, Selector};

/// Points per node on the ring: enough for an even spread over a handful of nodes.
const POINTS_PER_NODE: u32 = 64;

/// Routes by the hash of the call's key (`CallOptions::hash_key`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsistentHash;

/// FNV-1a (64 bits) over `parts` in order.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// splitmix64's finalizer: spreads FNV's output over all 64 bits (its high bits, which
/// place a point on the ring, mix poorly for short inputs differing at the end).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The ring's hash: specified over explicit bytes, so every client, whatever its toolchain
/// or platform, puts a key on the same node (std's `DefaultHasher` promises neither).
fn hash(parts: &[&[u8]]) -> u64 {
    mix(fnv1a(parts))
}

/// The hash ring of one node list: (point, candidate index), sorted by point.
fn ring(candidates: &[Candidate]) -> Vec<(u64, usize)> {
    let mut points: Vec<(u64, usize)> = candidates
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            (0..POINTS_PER_NODE).map(move |p| {
                // The point's number in fixed-width little-endian bytes after the id.
                (hash(&[c.node.id.as_bytes(), &p.to_le_bytes()]), i)
            })
        })
        .collect();
    points.sort_unstable();
    points
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
        let ring = nodes.ring.get_or_init(|| ring(candidates));
        let point = hash(&[key.as_bytes()]);
        let start = ring.partition_point(|(p, _)| *p < point);
        // Walk the ring from the key's point.
        let points = ring.len();
        nodes.first_of((0..points).map(|i| ring[(start + i) % points].1), call)
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
    fn the_hash_and_the_ring_are_pinned() {
        // FNV-1a's published test vectors.
        assert_eq!(fnv1a(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&[b"foo"]), 0xdcb2_7518_fed9_d577);
        assert_eq!(fnv1a(&[b"fo", b"o"]), fnv1a(&[b"foo"]));
        // Checked against an independent FNV-1a + splitmix64 implementation.
        assert_eq!(hash(&[b"user-1"]), 0xc499_b5f8_a721_df58);
        // Clients of any build route these keys to these nodes: a change here moves keys.
        let four = test_nodes(4);
        let owners: Vec<&str> = (0..12)
            .map(|i| owner(&four, &format!("user-{i}")))
            .collect();
        assert_eq!(
            owners,
            [
                "n1", "n1", "n2", "n2", "n2", "n1", "n0", "n2", "n2", "n0", "n0", "n2"
            ]
        );
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
