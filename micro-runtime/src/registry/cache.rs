//! The client's view of the registry: node lists per service, looked up once and reused.
//!
//! A lookup hits the registry only when the service is missing or older than the TTL (go-micro's
//! one minute by default). Reads take no lock: the map is swapped whole on change. When the
//! registry fails, the last known nodes keep being served, as go-micro's cache does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::Registry;
use crate::error::{Code, Result};
use crate::selector::Nodes;

/// Cached node lists by service name.
pub struct Cache {
    registry: Arc<dyn Registry>,
    ttl: Duration,
    entries: ArcSwap<HashMap<String, Entry>>,
}

#[derive(Clone)]
struct Entry {
    nodes: Arc<Nodes>,
    fetched: Instant,
}

impl Cache {
    /// A cache over `registry` whose entries live `ttl`.
    pub fn new(registry: Arc<dyn Registry>, ttl: Duration) -> Cache {
        Cache {
            registry,
            ttl,
            entries: ArcSwap::default(),
        }
    }

    /// The registry behind the cache.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// The nodes of `service`, from the cache when fresh.
    pub async fn get(&self, service: &str) -> Result<Arc<Nodes>> {
        let stale = match self.entries.load().get(service) {
            Some(e) if e.fetched.elapsed() < self.ttl => return Ok(e.nodes.clone()),
            Some(e) => Some(e.nodes.clone()),
            None => None,
        };
        match self.registry.get_service(service).await {
            Ok(versions) => {
                let nodes = Arc::new(Nodes::new(
                    versions.into_iter().flat_map(|s| s.nodes).collect(),
                ));
                let entry = Entry {
                    nodes: nodes.clone(),
                    fetched: Instant::now(),
                };
                self.entries.rcu(|map| {
                    let mut map = HashMap::clone(map);
                    map.insert(service.to_owned(), entry.clone());
                    map
                });
                Ok(nodes)
            }
            Err(e) if e.code() == Code::NotFound => {
                self.invalidate(service);
                Err(e)
            }
            Err(e) => match stale {
                Some(nodes) => {
                    tracing::warn!(service, error = %e, "registry unreachable, serving last known nodes");
                    Ok(nodes)
                }
                None => Err(e),
            },
        }
    }

    /// Forgets `service`, so the next lookup asks the registry (after a node failed).
    pub fn invalidate(&self, service: &str) {
        if self.entries.load().contains_key(service) {
            self.entries.rcu(|map| {
                let mut map = HashMap::clone(map);
                map.remove(service);
                map
            });
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("registry", &self.registry.name())
            .field("ttl", &self.ttl)
            .finish()
    }
}
