//! The view of the nodes on the network: the browsing thread feeds it from the daemon's
//! events and expires nodes whose TTL passed; lookups, watches and this registry's own
//! registrations read and change it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mdns_sd::{DaemonEvent, ServiceDaemon, ServiceEvent};
use tokio::sync::Notify;

use super::txt::{Published, decode_txt};
use crate::registry::{Action, Record, Watcher, Watchers};

/// How long a new registry waits for the network before saying a service is not found:
/// a second for the browse's second query, plus time for the answer.
pub const DISCOVERY_WAIT: Duration = Duration::from_millis(1500);

/// How often the browsing thread expires nodes whose TTL passed.
const SWEEP_PERIOD: Duration = Duration::from_millis(250);

/// What the registry and its browsing thread share.
pub(super) struct Shared {
    pub(super) daemon: ServiceDaemon,
    state: Mutex<State>,
    /// Woken whenever a node enters or changes in the view.
    changed: Notify,
    created: Instant,
}

#[derive(Default)]
struct State {
    /// Live nodes by lower-case instance full name.
    nodes: HashMap<String, Entry>,
    /// Instances this registry published: its own records are authoritative for them, so
    /// browse events about them (late echoes of a node just deregistered) are ignored.
    own: HashSet<String>,
    watchers: Watchers,
}

/// One node in the view.
struct Entry {
    published: Published,
    /// When the node leaves the view unless a new `seq` is seen; `None` without a TTL.
    expires: Option<Instant>,
}

impl Shared {
    /// The view of a daemon just started, empty.
    pub(super) fn new(daemon: ServiceDaemon) -> Shared {
        Shared {
            daemon,
            state: Mutex::default(),
            changed: Notify::new(),
            created: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the view usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a node in the view: a new node is a Create, a changed record an Update, a new
    /// `seq` of the same record only a refresh of its TTL.
    fn upsert(&self, state: &mut State, key: String, published: Published, now: Instant) {
        let expires = (!published.ttl.is_zero())
            .then(|| now.checked_add(published.ttl))
            .flatten();
        let action = match state.nodes.get_mut(&key) {
            Some(entry) if entry.published.record == published.record => {
                if entry.published.seq != published.seq || entry.published.ttl != published.ttl {
                    entry.published = published;
                    entry.expires = expires;
                }
                return;
            }
            Some(_) => Action::Update,
            None => Action::Create,
        };
        state.notify(action, &published.record);
        state.nodes.insert(key, Entry { published, expires });
        self.changed.notify_waiters();
    }

    /// A node resolved on the network.
    fn resolved(&self, resolved: &mdns_sd::ResolvedService) {
        let key = resolved.get_fullname().to_lowercase();
        let mut published = match decode_txt(resolved.get_properties()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(instance = %resolved.get_fullname(), error = %e, "mdns registry: skipping a broken record");
                return;
            }
        };
        // A record without an address takes the one the daemon resolved.
        let ip = resolved
            .get_addresses()
            .iter()
            .next()
            .map(|ip| ip.to_ip_addr());
        for node in &mut published.record.nodes {
            if let (true, Some(ip)) = (node.address.is_empty(), ip) {
                node.address = SocketAddr::new(ip, resolved.get_port()).to_string();
            }
        }
        let mut state = self.lock();
        if state.own.contains(&key) {
            return;
        }
        self.upsert(&mut state, key, published, Instant::now());
    }

    /// A node left the network (goodbye, or its DNS records expired).
    fn removed(&self, fullname: &str) {
        let key = fullname.to_lowercase();
        let mut state = self.lock();
        if state.own.contains(&key) {
            return;
        }
        if let Some(entry) = state.nodes.remove(&key) {
            state.notify(Action::Delete, &entry.published.record);
        }
    }

    /// Drops the nodes whose TTL passed; withdraws this registry's own from the network.
    fn expire(&self, now: Instant) {
        let mut state = self.lock();
        let dead: Vec<String> = state
            .nodes
            .iter()
            .filter(|(_, e)| e.expires.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            let Some(entry) = state.nodes.remove(&key) else {
                continue;
            };
            if state.own.contains(&key) {
                tracing::warn!(instance = %key, "mdns registry: withdrawing a node not re-registered within its TTL");
                if let Err(e) = self.daemon.unregister(&key) {
                    tracing::warn!(instance = %key, error = %e, "mdns registry: withdrawal failed");
                }
            }
            state.notify(Action::Delete, &entry.published.record);
        }
    }

    /// A node this registry published: in the view at once, and its own records are
    /// authoritative for it from now on.
    pub(super) fn own(&self, key: String, published: Published) {
        let mut state = self.lock();
        state.own.insert(key.clone());
        self.upsert(&mut state, key, published, Instant::now());
    }

    /// A node this registry deregistered leaves the view.
    pub(super) fn withdrawn(&self, fullname: &str) {
        let mut state = self.lock();
        if let Some(entry) = state.nodes.remove(&fullname.to_lowercase()) {
            state.notify(Action::Delete, &entry.published.record);
        }
    }

    /// A watch of `service` (or of every service) on the view.
    pub(super) fn watch(&self, service: Option<&str>) -> Watcher {
        self.lock().watchers.add(service)
    }

    /// Live nodes of `name` (or of every service), merged per version.
    pub(super) fn lookup(&self, name: Option<&str>) -> Vec<Record> {
        let now = Instant::now();
        let state = self.lock();
        crate::registry::merge(
            state
                .nodes
                .values()
                .filter(|e| e.expires.is_none_or(|t| t > now))
                .map(|e| &e.published.record)
                .filter(|r| name.is_none_or(|n| r.name == n))
                .cloned(),
        )
    }

    /// Waits until the registry's first [`DISCOVERY_WAIT`] is over or `done` holds.
    pub(super) async fn discover(&self, mut done: impl FnMut() -> bool) {
        let until = self.created + DISCOVERY_WAIT;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change in between is not missed.
            changed.as_mut().enable();
            if done() || Instant::now() >= until {
                return;
            }
            let _ = tokio::time::timeout_at(until.into(), changed).await;
        }
    }
}

impl State {
    fn notify(&mut self, action: Action, service: &Record) {
        self.watchers.notify(action, service);
    }
}

/// The browsing thread: feeds the view from the daemon's events and expires nodes, until
/// the daemon stops.
pub(super) fn browse(
    shared: &Shared,
    events: &mdns_sd::Receiver<ServiceEvent>,
    monitor: &mdns_sd::Receiver<DaemonEvent>,
) {
    loop {
        match events.recv_timeout(SWEEP_PERIOD) {
            Ok(ServiceEvent::ServiceResolved(resolved)) => shared.resolved(&resolved),
            Ok(ServiceEvent::ServiceRemoved(_, fullname)) => shared.removed(&fullname),
            Ok(_) | Err(mdns_sd::RecvTimeoutError::Timeout) => {}
            Err(mdns_sd::RecvTimeoutError::Disconnected) => return,
        }
        while let Ok(event) = monitor.try_recv() {
            if let DaemonEvent::Error(e) = event {
                tracing::warn!(error = %e, "mdns registry: daemon error");
            }
        }
        shared.expire(Instant::now());
    }
}
