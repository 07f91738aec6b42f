//! Uniformly random choice, go-micro's default.

use super::{Candidate, Nodes, Selection, Selector};

/// Picks a node uniformly at random.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random;

impl Selector for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn select<'a>(&self, nodes: &'a Nodes, call: &Selection<'_>) -> Option<&'a Candidate> {
        match nodes.as_slice().len() {
            0 => None,
            n => nodes.first_from(fastrand::usize(..n), call),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::test_nodes;

    #[test]
    fn picks_every_node_eventually_and_none_from_empty() {
        let nodes = test_nodes(3);
        let mut seen = [false; 3];
        for _ in 0..200 {
            let c = Random.select(&nodes, &Selection::default()).unwrap();
            seen[c.node.id[1..].parse::<usize>().unwrap()] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert!(
            Random
                .select(&Nodes::default(), &Selection::default())
                .is_none()
        );
    }
}
