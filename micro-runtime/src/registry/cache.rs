//! The client's view of the registry: node lists per service, kept current by a watch.
//!
//! - The first call to a service looks it up (one lookup in flight per name) and starts one
//!   registry watch for the client; from then on changes arrive as events and calls read the
//!   cache only. Reads take no lock: the map is swapped whole on change.
//! - Entries are still looked up again after the TTL (go-micro's one minute), in case events
//!   were missed; while the watch is down, that is how changes are seen.
//! - When the registry is unreachable, the last known nodes keep being served
//!   (self-preservation); the outage is logged and reported by [`Cache::health`]. While an
//!   entry is being looked up again, and for a second after a lookup failed, calls get its
//!   last known nodes at once: an outage costs one lookup's timeout, not one per caller.
//! - Events that arrive while a service is being looked up are kept and applied to the
//!   lookup's answer, which may predate them: none is lost to the race.
//! - Node statistics (load, latency, ejection) survive updates of the node list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::{Action, Change, Record, Registry};
use crate::error::{Code, Result};
use crate::selector::{Candidate, Nodes};

/// How long the watch waits before it is started again after a failure.
const REWATCH_BACKOFF: Duration = Duration::from_secs(1);

/// How long the last known nodes are served without asking again after a lookup failed.
const RELOOKUP_BACKOFF: Duration = Duration::from_secs(1);

/// The registry's health as the cache sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Whether the last lookup or watch succeeded.
    pub reachable: bool,
    /// The last error, while unreachable.
    pub last_error: Option<String>,
}

/// Cached node lists by service name. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<dyn Registry>,
    ttl: Duration,
    entries: ArcSwap<HashMap<String, Entry>>,
    /// Per-name locks, so one lookup is in flight per service.
    lookups: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The events seen for each service being looked up, to apply to its answer (`None`
    /// when the watch broke meanwhile: events were missed). Held while an event is applied,
    /// while an answer is stored and while the watch's breakdown is marked, so nothing
    /// falls between.
    pending: Mutex<HashMap<String, Option<Vec<Change>>>>,
    watching: Mutex<bool>,
    health: Mutex<Health>,
    /// Never sent on: its receivers learn that the cache is gone when it is dropped.
    alive: tokio::sync::watch::Sender<()>,
}

#[derive(Clone)]
struct Entry {
    services: Arc<Vec<Record>>,
    nodes: Arc<Nodes>,
    fetched: Instant,
    /// Events may have been missed (the watch broke): look it up on next use.
    stale: bool,
    /// A lookup failed: serve these nodes as they are until then.
    retry_after: Option<Instant>,
}

impl Entry {
    fn is_fresh(&self, ttl: Duration) -> bool {
        (!self.stale && self.fetched.elapsed() < ttl)
            || self.retry_after.is_some_and(|t| Instant::now() < t)
    }
}

impl Cache {
    /// A cache over `registry` whose entries are looked up again after `ttl`.
    pub fn new(registry: Arc<dyn Registry>, ttl: Duration) -> Cache {
        Cache {
            inner: Arc::new(Inner {
                registry,
                ttl,
                entries: ArcSwap::default(),
                lookups: Mutex::default(),
                pending: Mutex::default(),
                watching: Mutex::new(false),
                health: Mutex::new(Health {
                    reachable: true,
                    last_error: None,
                }),
                alive: tokio::sync::watch::Sender::new(()),
            }),
        }
    }

    /// The registry behind the cache.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.inner.registry
    }

    /// The registry's health as last seen.
    pub fn health(&self) -> Health {
        lock(&self.inner.health).clone()
    }

    /// The nodes of `service`, from the cache when fresh.
    pub async fn get(&self, service: &str) -> Result<Arc<Nodes>> {
        if let Some(e) = self.inner.entries.load().get(service)
            && e.is_fresh(self.inner.ttl)
        {
            return Ok(e.nodes.clone());
        }
        let gate = lock(&self.inner.lookups)
            .entry(service.to_owned())
            .or_default()
            .clone();
        let _one_at_a_time = match gate.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // A lookup is in flight: its last known nodes now, if it has any, rather
                // than a wait for a registry that may be down.
                if let Some(e) = self.inner.entries.load().get(service) {
                    return Ok(e.nodes.clone());
                }
                gate.lock().await
            }
        };
        // Someone else may have looked it up while we waited.
        let stale = match self.inner.entries.load().get(service) {
            Some(e) if e.is_fresh(self.inner.ttl) => return Ok(e.nodes.clone()),
            Some(e) => Some(e.nodes.clone()),
            None => None,
        };
        self.ensure_watch().await;
        let lookup = Lookup::start(&self.inner, service);
        match self.inner.registry.get_service(service).await {
            Ok(versions) => {
                self.inner.set_health(None);
                Ok(lookup.store(versions))
            }
            Err(e) if e.code() == Code::NotFound => {
                self.inner.set_health(None);
                self.invalidate(service);
                Err(e)
            }
            Err(e) => {
                self.inner.set_health(Some(e.to_string()));
                match stale {
                    Some(nodes) => {
                        tracing::warn!(service, error = %e, "registry unreachable, serving last known nodes");
                        self.inner.retry_later(service);
                        Ok(nodes)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Forgets `service`, so the next lookup asks the registry.
    pub fn invalidate(&self, service: &str) {
        if self.inner.entries.load().contains_key(service) {
            self.inner.entries.rcu(|map| {
                let mut map = HashMap::clone(map);
                map.remove(service);
                map
            });
        }
    }

    /// Starts the watch if it is not running. The first watcher is made before the first
    /// lookup, so no change between the two goes unseen.
    async fn ensure_watch(&self) {
        {
            let mut watching = lock(&self.inner.watching);
            if *watching {
                return;
            }
            *watching = true;
        }
        let first = match self.inner.registry.watch(None).await {
            Ok(w) => Some(w),
            Err(e) => {
                self.inner.set_health(Some(e.to_string()));
                None
            }
        };
        let gone = self.inner.alive.subscribe();
        tokio::spawn(watch(Arc::downgrade(&self.inner), first, gone));
    }
}

/// A lookup in flight: the events seen for its service meanwhile are kept (see
/// [`Inner::apply`]) until its answer is stored, or dropped with it when it fails or its
/// caller goes away.
struct Lookup<'a> {
    inner: &'a Inner,
    service: &'a str,
}

impl<'a> Lookup<'a> {
    fn start(inner: &'a Inner, service: &'a str) -> Lookup<'a> {
        lock(&inner.pending).insert(service.to_owned(), Some(Vec::new()));
        Lookup { inner, service }
    }

    /// Stores the answer, then the events seen since the lookup began, in order: each sets
    /// or removes one node, so replaying those the answer already shows changes nothing,
    /// and the last event about a node wins. When the watch broke meanwhile, the answer is
    /// stored stale: it may predate events that were missed.
    fn store(self, versions: Vec<Record>) -> Arc<Nodes> {
        let mut pending = lock(&self.inner.pending);
        let seen = pending.remove(self.service).unwrap_or_default();
        let stored = self.inner.store(self.service, versions, seen.is_none());
        let events = seen.unwrap_or_default();
        if events.is_empty() {
            return stored;
        }
        for event in events {
            self.inner.apply_to_entry(event);
        }
        match self.inner.entries.load().get(self.service) {
            Some(entry) => entry.nodes.clone(),
            None => stored,
        }
    }
}

impl Drop for Lookup<'_> {
    fn drop(&mut self) {
        lock(&self.inner.pending).remove(self.service);
    }
}

/// Feeds registry events into the cache until the cache is dropped (`gone` then completes,
/// and the registry's watch is closed at once, not at its next event); restarts after
/// failures.
async fn watch(
    cache: Weak<Inner>,
    mut first: Option<super::Watcher>,
    mut gone: tokio::sync::watch::Receiver<()>,
) {
    loop {
        let Some(inner) = cache.upgrade() else { return };
        let registry = inner.registry.clone();
        drop(inner);
        let watcher = match first.take() {
            Some(w) => Ok(w),
            None => registry.watch(None).await,
        };
        match watcher {
            Ok(mut watcher) => loop {
                let next = tokio::select! {
                    next = watcher.next() => next,
                    _ = gone.changed() => return,
                };
                let Some(inner) = cache.upgrade() else { return };
                match next {
                    Some(Ok(event)) => inner.apply(event),
                    Some(Err(e)) => {
                        inner.set_health(Some(e.to_string()));
                        break;
                    }
                    None => break,
                }
            },
            Err(e) => {
                let Some(inner) = cache.upgrade() else { return };
                inner.set_health(Some(e.to_string()));
            }
        }
        // Events may have been missed: entries are looked up again on their next use (and
        // kept, to be served if the registry is down), and so are the answers of lookups in
        // flight.
        if let Some(inner) = cache.upgrade() {
            let mut pending = lock(&inner.pending);
            pending.values_mut().for_each(|seen| *seen = None);
            inner.entries.rcu(|map| {
                map.iter()
                    .map(|(k, e)| {
                        (
                            k.clone(),
                            Entry {
                                stale: true,
                                ..e.clone()
                            },
                        )
                    })
                    .collect::<HashMap<_, _>>()
            });
            drop(pending);
        }
        tokio::time::sleep(REWATCH_BACKOFF).await;
    }
}

impl Inner {
    fn set_health(&self, error: Option<String>) {
        let mut health = lock(&self.health);
        match error {
            None if !health.reachable => {
                tracing::info!(registry = self.registry.name(), "registry reachable again");
                *health = Health {
                    reachable: true,
                    last_error: None,
                };
            }
            None => {}
            Some(e) => {
                if health.reachable {
                    tracing::warn!(registry = self.registry.name(), error = %e, "registry unreachable");
                }
                *health = Health {
                    reachable: false,
                    last_error: Some(e),
                };
            }
        }
    }

    /// Stores the versions of `service`, keeping the statistics of nodes already known;
    /// `stale` when they may miss changes (looked up again on next use).
    fn store(&self, service: &str, versions: Vec<Record>, stale: bool) -> Arc<Nodes> {
        let old = self.entries.load().get(service).map(|e| e.nodes.clone());
        let nodes = Arc::new(build_nodes(&versions, old.as_deref()));
        let entry = Entry {
            services: Arc::new(versions),
            nodes: nodes.clone(),
            fetched: Instant::now(),
            stale,
            retry_after: None,
        };
        self.entries.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(service.to_owned(), entry.clone());
            map
        });
        nodes
    }

    /// Serves the entry of `service` as it is for [`RELOOKUP_BACKOFF`]: its lookup failed.
    fn retry_later(&self, service: &str) {
        let until = Instant::now() + RELOOKUP_BACKOFF;
        self.entries.rcu(|map| {
            let mut map = HashMap::clone(map);
            if let Some(e) = map.get_mut(service) {
                e.retry_after = Some(until);
            }
            map
        });
    }

    /// Applies a watch event to a cached service (others are not cached: nothing to do),
    /// and keeps it for the lookup of its service in flight, if any.
    fn apply(&self, event: Change) {
        let mut pending = lock(&self.pending);
        if let Some(Some(seen)) = pending.get_mut(&event.service.name) {
            seen.push(event.clone());
        }
        self.apply_to_entry(event);
        drop(pending);
    }

    fn apply_to_entry(&self, event: Change) {
        let name = &event.service.name;
        if !self.entries.load().contains_key(name) {
            return;
        }
        // Computed from the map being replaced, so a concurrent change (a store, a stale
        // mark) is never overwritten with an older copy of the entry.
        self.entries.rcu(|map| {
            let mut map = HashMap::clone(map);
            if let Some(entry) = map.get_mut(name)
                && let Some(updated) = updated(entry, &event)
            {
                *entry = updated;
            }
            map
        });
    }
}

/// `entry` with `event` applied; `None` when it changes nothing. The entry keeps its age:
/// the TTL safety net still applies.
fn updated(entry: &Entry, event: &Change) -> Option<Entry> {
    let mut versions = Vec::clone(&entry.services);
    let svc = &event.service;
    let pos = versions.iter().position(|v| v.version == svc.version);
    match (event.action, pos) {
        (Action::Create | Action::Update, Some(i)) => {
            for node in &svc.nodes {
                let nodes = &mut versions[i].nodes;
                match nodes.iter_mut().find(|n| n.id == node.id) {
                    Some(n) => *n = node.clone(),
                    None => nodes.push(node.clone()),
                }
            }
        }
        (Action::Create | Action::Update, None) => versions.push(svc.clone()),
        (Action::Delete, Some(i)) => {
            versions[i]
                .nodes
                .retain(|n| !svc.nodes.iter().any(|d| d.id == n.id));
            if versions[i].nodes.is_empty() {
                versions.remove(i);
            }
        }
        (Action::Delete, None) => return None,
    }
    let nodes = Arc::new(build_nodes(&versions, Some(&entry.nodes)));
    Some(Entry {
        services: Arc::new(versions),
        nodes,
        ..entry.clone()
    })
}

/// Candidates of all versions; a node already in `old` keeps its statistics, and the list
/// keeps the round-robin cursor of `old`.
fn build_nodes(versions: &[Record], old: Option<&Nodes>) -> Nodes {
    let candidates = versions
        .iter()
        .flat_map(|s| s.nodes.iter().map(move |n| (s, n)))
        .map(|(s, n)| {
            let stats = old
                .and_then(|o| o.as_slice().iter().find(|c| c.node.id == n.id))
                .map(|c| c.stats.clone())
                .unwrap_or_default();
            Candidate {
                node: n.clone(),
                version: s.version.clone(),
                stats,
            }
        })
        .collect();
    Nodes::new(candidates).continuing(old)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("registry", &self.inner.registry.name())
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::memory::MemoryRegistry;
    use crate::registry::{Node, RegisterOptions};

    fn svc(id: &str) -> Record {
        Record {
            name: "a".into(),
            version: "1".into(),
            nodes: vec![Node {
                id: id.into(),
                address: format!("127.0.0.1:{}", id.len()),
                ..Node::default()
            }],
            ..Record::default()
        }
    }

    async fn ids(cache: &Cache) -> Vec<String> {
        let mut ids: Vec<_> = match cache.get("a").await {
            Ok(nodes) => nodes.as_slice().iter().map(|c| c.node.id.clone()).collect(),
            Err(_) => Vec::new(),
        };
        ids.sort();
        ids
    }

    #[test]
    fn round_robin_goes_on_across_rebuilds() {
        use crate::selector::{RoundRobin, Selection, Selector};
        let mut three = svc("n0");
        three.nodes.extend(["n1", "n2"].map(|id| Node {
            id: id.into(),
            ..Node::default()
        }));
        let versions = [three];
        let mut nodes = build_nodes(&versions, None);
        let mut picked = Vec::new();
        // One call between rebuilds (a watch event or a re-lookup each time): the calls
        // still rotate.
        for _ in 0..4 {
            let c = RoundRobin.select(&nodes, &Selection::default()).unwrap();
            picked.push(c.node.id.clone());
            nodes = build_nodes(&versions, Some(&nodes));
        }
        assert_eq!(picked, ["n0", "n1", "n2", "n0"]);
    }

    #[tokio::test]
    async fn watch_events_update_the_cache_without_lookups() {
        let reg = Arc::new(MemoryRegistry::new());
        // A long TTL: only the watch can explain the changes seen below.
        let cache = Cache::new(reg.clone(), Duration::from_secs(3600));
        reg.register(&svc("x"), RegisterOptions::default())
            .await
            .unwrap();
        assert_eq!(ids(&cache).await, ["x"]);
        let stats = cache.get("a").await.unwrap().as_slice()[0].stats.clone();
        reg.register(&svc("yy"), RegisterOptions::default())
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while ids(&cache).await.len() != 2 {
            assert!(Instant::now() < deadline, "no create event applied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // x kept its statistics through the update.
        let nodes = cache.get("a").await.unwrap();
        let x = nodes.as_slice().iter().find(|c| c.node.id == "x").unwrap();
        assert!(Arc::ptr_eq(&x.stats, &stats));
        reg.deregister(&svc("x")).await.unwrap();
        while ids(&cache).await != ["yy"] {
            assert!(Instant::now() < deadline, "no delete event applied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A registry that fails every call, as when its server is down.
    struct Down;

    #[async_trait::async_trait]
    impl Registry for Down {
        fn name(&self) -> &'static str {
            "down"
        }
        async fn register(&self, _: &Record, _: RegisterOptions) -> Result<()> {
            Err(crate::Error::new(Code::Unavailable, "down"))
        }
        async fn deregister(&self, _: &Record) -> Result<()> {
            Err(crate::Error::new(Code::Unavailable, "down"))
        }
        async fn get_service(&self, _: &str) -> Result<Vec<Record>> {
            Err(crate::Error::new(Code::Unavailable, "down"))
        }
        async fn list_services(&self) -> Result<Vec<Record>> {
            Err(crate::Error::new(Code::Unavailable, "down"))
        }
        async fn watch(&self, _: Option<&str>) -> Result<super::super::Watcher> {
            Err(crate::Error::new(Code::Unavailable, "down"))
        }
    }

    /// A registry whose lookups hang a while and then fail, as an etcd that stopped
    /// answering; counts them.
    #[derive(Default)]
    struct Hanging(std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl Registry for Hanging {
        fn name(&self) -> &'static str {
            "hanging"
        }
        async fn register(&self, _: &Record, _: RegisterOptions) -> Result<()> {
            Ok(())
        }
        async fn deregister(&self, _: &Record) -> Result<()> {
            Ok(())
        }
        async fn get_service(&self, _: &str) -> Result<Vec<Record>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Err(crate::Error::new(Code::Unavailable, "timed out"))
        }
        async fn list_services(&self) -> Result<Vec<Record>> {
            Ok(Vec::new())
        }
        async fn watch(&self, _: Option<&str>) -> Result<super::super::Watcher> {
            Err(crate::Error::new(Code::Unavailable, "timed out"))
        }
    }

    #[tokio::test]
    async fn an_outage_costs_one_lookup_not_one_per_caller() {
        let reg = Arc::new(Hanging::default());
        let cache = Cache::new(reg.clone(), Duration::ZERO);
        cache.inner.store("a", vec![svc("x")], false);
        // Ten callers at once on an entry due for a lookup: one asks the registry, the
        // others get the last known node without waiting for it.
        let callers: Vec<_> = (0..10)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { ids(&cache).await })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), ["x"]);
        }
        // Right after the failure, callers are served without asking again.
        for _ in 0..10 {
            assert_eq!(ids(&cache).await, ["x"]);
        }
        assert_eq!(reg.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!cache.health().reachable);
    }

    /// A registry whose one watch is the test's to feed, and whose lookups answer `x`; when
    /// `held`, only once the test lets them (`answer`), after saying they were asked.
    #[derive(Default)]
    struct Watched {
        watch: Mutex<Option<tokio::sync::mpsc::Sender<Result<Change>>>>,
        held: bool,
        asked: tokio::sync::Notify,
        answer: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl Registry for Watched {
        fn name(&self) -> &'static str {
            "watched"
        }
        async fn register(&self, _: &Record, _: RegisterOptions) -> Result<()> {
            Ok(())
        }
        async fn deregister(&self, _: &Record) -> Result<()> {
            Ok(())
        }
        async fn get_service(&self, _: &str) -> Result<Vec<Record>> {
            if self.held {
                self.asked.notify_one();
                self.answer.notified().await;
            }
            Ok(vec![svc("x")])
        }
        async fn list_services(&self) -> Result<Vec<Record>> {
            Ok(Vec::new())
        }
        async fn watch(&self, _: Option<&str>) -> Result<super::super::Watcher> {
            let (tx, watcher) = super::super::Watcher::channel();
            *lock(&self.watch) = Some(tx);
            Ok(watcher)
        }
    }

    #[tokio::test]
    async fn a_dropped_cache_closes_its_registry_watch() {
        let reg = Arc::new(Watched::default());
        let cache = Cache::new(reg.clone(), Duration::from_secs(60));
        assert_eq!(ids(&cache).await, ["x"]);
        let tx = lock(&reg.watch).clone().expect("the cache watches");
        // An event applied: the watch task is running, waiting for the next.
        tx.send(Ok(Change {
            action: Action::Create,
            service: svc("y"),
        }))
        .await
        .unwrap();
        while ids(&cache).await.len() != 2 {
            tokio::task::yield_now().await;
        }
        drop(cache);
        // No event comes; the watch must still end (a local registry's watch polls the
        // directory for as long as it is open).
        tokio::time::timeout(Duration::from_secs(5), tx.closed())
            .await
            .expect("the watch outlived its cache");
    }

    /// A cache (TTL an hour) over a held [`Watched`], and its first lookup of `a`, asked and
    /// waiting for the test to let the registry answer.
    async fn lookup_held() -> (Arc<Watched>, Cache, tokio::task::JoinHandle<Vec<String>>) {
        let reg = Arc::new(Watched {
            held: true,
            ..Watched::default()
        });
        let cache = Cache::new(reg.clone(), Duration::from_secs(3600));
        let first = tokio::spawn({
            let cache = cache.clone();
            async move { ids(&cache).await }
        });
        reg.asked.notified().await;
        (reg, cache, first)
    }

    #[tokio::test]
    async fn events_during_the_first_lookup_are_applied_to_its_answer() {
        // A long TTL: only the events can explain the nodes seen at the end.
        let (reg, cache, first) = lookup_held().await;
        // While the lookup is on its way: y comes, x goes.
        let tx = lock(&reg.watch).clone().expect("the cache watches");
        for (action, id) in [(Action::Create, "y"), (Action::Delete, "x")] {
            tx.send(Ok(Change {
                action,
                service: svc(id),
            }))
            .await
            .unwrap();
        }
        while tx.capacity() != tx.max_capacity() {
            tokio::task::yield_now().await;
        }
        // The answer predates both events.
        reg.answer.notify_one();
        assert_eq!(first.await.unwrap(), ["y"]);
        assert_eq!(ids(&cache).await, ["y"]);
    }

    #[tokio::test]
    async fn an_answer_that_may_have_missed_events_is_stale() {
        let (reg, cache, first) = lookup_held().await;
        // The watch breaks while the lookup is on its way: events may be lost.
        drop(lock(&reg.watch).take());
        while lock(&cache.inner.pending).get("a") != Some(&None) {
            tokio::task::yield_now().await;
        }
        reg.answer.notify_one();
        assert_eq!(first.await.unwrap(), ["x"]);
        // Served, and looked up again on next use rather than trusted for the TTL.
        assert!(cache.inner.entries.load()["a"].stale);
    }

    #[tokio::test]
    async fn an_unreachable_registry_keeps_the_last_known_nodes() {
        let cache = Cache::new(Arc::new(Down), Duration::ZERO);
        assert_eq!(cache.get("a").await.unwrap_err().code(), Code::Unavailable);
        assert!(!cache.health().reachable);
        cache.inner.store("a", vec![svc("x")], false);
        // TTL zero: every get asks the registry, which fails: the known node is served.
        assert_eq!(ids(&cache).await, ["x"]);
        assert_eq!(
            cache.health().last_error.as_deref(),
            Some("Unavailable: down")
        );
    }
}
