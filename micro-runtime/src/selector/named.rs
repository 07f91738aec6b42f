//! The selector a name (`--selector`, `MICRO_SELECTOR`) gives.

use std::sync::Arc;

use crate::error::{Code, Error, Result};

use super::{ConsistentHash, LeastLoaded, Random, RoundRobin, Selector};

/// The selector named by `--selector`: `random` (the default), `roundrobin`, `leastloaded`
/// or `hash` (consistent hashing on the call's key).
pub fn from_name(name: &str) -> Result<Arc<dyn Selector>> {
    match name {
        "" | "random" => Ok(Arc::new(Random)),
        "roundrobin" | "round_robin" => Ok(Arc::new(RoundRobin)),
        "leastloaded" | "least_loaded" => Ok(Arc::new(LeastLoaded)),
        "hash" | "consistent_hash" => Ok(Arc::new(ConsistentHash)),
        other => Err(Error::new(
            Code::InvalidArgument,
            format!(
                "unknown selector {other:?} (expected random, roundrobin, leastloaded or hash)"
            ),
        )),
    }
}
