//! Load balancing: which node of a service gets the next call.
//!
//! A selector picks from [`Nodes`], the cached node list of one service. The list carries the
//! selector's per-service state (a cursor), so round robin rotates across calls, not within
//! one call as in go-micro.

pub mod random;
pub mod round_robin;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use random::Random;
pub use round_robin::RoundRobin;

use crate::error::{Code, Error, Result};
use crate::registry::Node;

/// The nodes of one service, as the client cache holds them.
#[derive(Debug, Default)]
pub struct Nodes {
    nodes: Vec<Node>,
    cursor: AtomicUsize,
}

impl Nodes {
    /// A list of nodes with a fresh cursor.
    pub fn new(nodes: Vec<Node>) -> Nodes {
        Nodes {
            nodes,
            cursor: AtomicUsize::new(0),
        }
    }

    /// The nodes.
    pub fn as_slice(&self) -> &[Node] {
        &self.nodes
    }

    /// Advances the shared cursor and returns its previous value.
    pub fn next_cursor(&self) -> usize {
        self.cursor.fetch_add(1, Ordering::Relaxed)
    }
}

/// Picks a node for each call.
pub trait Selector: Send + Sync + 'static {
    /// The strategy's name (`random`, `roundrobin`).
    fn name(&self) -> &'static str;

    /// A node of `nodes`, or `None` when there is none to pick.
    fn select<'a>(&self, nodes: &'a Nodes) -> Option<&'a Node>;
}

/// The selector named by `--selector` (`random`, the default, or `roundrobin`).
pub fn from_name(name: &str) -> Result<Arc<dyn Selector>> {
    match name {
        "" | "random" => Ok(Arc::new(Random)),
        "roundrobin" | "round_robin" => Ok(Arc::new(RoundRobin)),
        other => Err(Error::new(
            Code::InvalidArgument,
            format!("unknown selector {other:?} (expected random or roundrobin)"),
        )),
    }
}
