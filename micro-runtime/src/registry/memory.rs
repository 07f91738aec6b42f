//! An in-process registry: for tests and for programs whose services all live in one process.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Action, Record, RegisterOptions, Registry, Watcher, Watchers};
use crate::error::Result;

/// A registry held in memory. Records with a TTL expire like in any other backend.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (service name, node id) -> (single-node record, expiry).
    records: HashMap<(String, String), (Record, Option<Instant>)>,
    watchers: Watchers,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> MemoryRegistry {
        MemoryRegistry::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        let dead: Vec<_> = self
            .records
            .iter()
            .filter(|(_, (_, exp))| exp.is_some_and(|e| e <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            if let Some((svc, _)) = self.records.remove(&key) {
                self.watchers.notify(Action::Delete, &svc);
            }
        }
    }
}

#[async_trait::async_trait]
impl Registry for MemoryRegistry {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn register(&self, service: &Record, options: RegisterOptions) -> Result<()> {
        // A TTL too long for the clock never expires.
        let expires = (options.ttl > Duration::ZERO)
            .then(|| Instant::now().checked_add(options.ttl))
            .flatten();
        let mut guard = self.lock();
        let inner = &mut *guard;
        for node in &service.nodes {
            let record = Record {
                name: service.name.clone(),
                version: service.version.clone(),
                metadata: service.metadata.clone(),
                endpoints: service.endpoints.clone(),
                nodes: vec![node.clone()],
            };
            let key = (service.name.clone(), node.id.clone());
            let (action, stored) = match inner.records.entry(key) {
                Entry::Occupied(entry) => {
                    let (stored, expiry) = entry.into_mut();
                    *expiry = expires;
                    if *stored == record {
                        continue;
                    }
                    *stored = record;
                    (Action::Update, &*stored)
                }
                Entry::Vacant(entry) => (Action::Create, &entry.insert((record, expires)).0),
            };
            inner.watchers.notify(action, stored);
        }
        Ok(())
    }

    async fn deregister(&self, service: &Record) -> Result<()> {
        let mut inner = self.lock();
        for node in &service.nodes {
            if let Some((record, _)) = inner
                .records
                .remove(&(service.name.clone(), node.id.clone()))
            {
                inner.watchers.notify(Action::Delete, &record);
            }
        }
        Ok(())
    }

    async fn get_service(&self, name: &str) -> Result<Vec<Record>> {
        let mut inner = self.lock();
        inner.expire(Instant::now());
        let found = super::merge(
            inner
                .records
                .values()
                .filter(|(s, _)| s.name == name)
                .map(|(s, _)| s.clone()),
        );
        if found.is_empty() {
            return Err(super::not_found(name));
        }
        Ok(found)
    }

    async fn list_services(&self) -> Result<Vec<Record>> {
        let mut inner = self.lock();
        inner.expire(Instant::now());
        Ok(super::merge(inner.records.values().map(|(s, _)| s.clone())))
    }

    async fn watch(&self, service: Option<&str>) -> Result<Watcher> {
        Ok(self.lock().watchers.add(service))
    }
}
