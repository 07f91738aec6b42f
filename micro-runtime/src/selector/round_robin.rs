//! Round robin that really rotates: the cursor lives with the service's cached nodes, so
//! consecutive calls go to consecutive nodes.

use super::{Candidate, Nodes, Selection, Selector};

/// Picks the nodes of a service in turn, across calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

impl Selector for RoundRobin {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn select<'a>(&self, nodes: &'a Nodes, call: &Selection<'_>) -> Option<&'a Candidate> {
        match nodes.as_slice().len() {
            0 => None,
            n => nodes.first_from(nodes.next_cursor() % n, call),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::test_nodes;

    #[test]
    fn rotates_exactly_across_calls() {
        let nodes = test_nodes(3);
        let picked: Vec<_> = (0..7)
            .map(|_| {
                RoundRobin
                    .select(&nodes, &Selection::default())
                    .unwrap()
                    .node
                    .id
                    .clone()
            })
            .collect();
        assert_eq!(picked, ["n0", "n1", "n2", "n0", "n1", "n2", "n0"]);
        assert!(
            RoundRobin
                .select(&Nodes::default(), &Selection::default())
                .is_none()
        );
    }
}
