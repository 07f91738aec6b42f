//! Uniformly random choice, go-micro's default.

use super::{Nodes, Selector};
use crate::registry::Node;

/// Picks a node uniformly at random.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random;

impl Selector for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn select<'a>(&self, nodes: &'a Nodes) -> Option<&'a Node> {
        let nodes = nodes.as_slice();
        match nodes.len() {
            0 => None,
            1 => nodes.first(),
            n => nodes.get(fastrand::usize(..n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_every_node_eventually_and_none_from_empty() {
        let nodes = Nodes::new(
            (0..3)
                .map(|i| Node {
                    id: i.to_string(),
                    ..Node::default()
                })
                .collect(),
        );
        let mut seen = [false; 3];
        for _ in 0..200 {
            let n = Random.select(&nodes).unwrap();
            seen[n.id.parse::<usize>().unwrap()] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert!(Random.select(&Nodes::default()).is_none());
    }
}
