//! Round robin that really rotates: the cursor lives with the service's cached nodes, so
//! consecutive calls go to consecutive nodes.

use super::{Nodes, Selector};
use crate::registry::Node;

/// Picks the nodes of a service in turn, across calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

impl Selector for RoundRobin {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn select<'a>(&self, nodes: &'a Nodes) -> Option<&'a Node> {
        let len = nodes.as_slice().len();
        if len == 0 {
            return None;
        }
        nodes.as_slice().get(nodes.next_cursor() % len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_exactly_across_calls() {
        let nodes = Nodes::new(
            (0..3)
                .map(|i| Node {
                    id: i.to_string(),
                    ..Node::default()
                })
                .collect(),
        );
        let picked: Vec<_> = (0..7)
            .map(|_| RoundRobin.select(&nodes).unwrap().id.clone())
            .collect();
        assert_eq!(picked, ["0", "1", "2", "0", "1", "2", "0"]);
        assert!(RoundRobin.select(&Nodes::default()).is_none());
    }
}
