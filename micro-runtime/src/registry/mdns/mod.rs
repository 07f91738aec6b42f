//! The mDNS registry (feature `mdns`): services on one LAN find each other by multicast DNS,
//! with no registry server, as go-micro's default registry does.
//!
//! Built on [`mdns_sd`], whose daemon runs on its own thread. Each registered node is one
//! DNS-SD instance of type [`SERVICE_TYPE`] (`_micro._tcp.local.`):
//! - instance name: the node id made a plain DNS label (letters, digits, `-`, `_`; any other
//!   character becomes `-`) and cut to its first 46 bytes, then `-` and a 16-digit hex FNV-1a
//!   hash of the service name and the whole node id: `greeter-<uuid>-<hash>`. A node id
//!   need only be unique within its service, as in the other backends: two services with a
//!   node id in common (`n1`) publish distinct instances, and ids that read alike keep
//!   distinct names;
//! - host `<instance name>.local.`, whose A/AAAA record is the IP of the node address (an IP is
//!   required: `127.0.0.1:9090`, `[::1]:9090`), and SRV port the port of the node address;
//! - TXT: go-micro's service record holding this one node, as compact JSON, split into
//!   strings that each fit DNS's 255-byte limit (RFC 6763 §6.1), plus what TTLs need:
//!
//! | key | value |
//! |---|---|
//! | `txtvers` | `1`, the version of this scheme |
//! | `ttl` | the registration TTL in milliseconds; `0` for none |
//! | `seq` | a number that changes on every registration, so peers see refreshes |
//! | `parts` | how many record pieces follow, at least 1 |
//! | `r0`, `r1`, ... | the record's JSON bytes, in pieces of at most 250 bytes (cut anywhere, even inside a UTF-8 character: peers join the bytes before parsing) |
//!
//! A record's JSON may be at most [`MAX_RECORD_BYTES`], which keeps the TXT record within
//! one mDNS packet (RFC 6762 §17); a larger one is refused at registration. A TXT record that
//! does not follow the scheme (unknown version, missing piece, bad JSON, not one node) is
//! skipped with a warning.
//!
//! # Lookups and TTLs
//! Lookups answer from an in-memory view that the daemon's browse feeds from the start. A
//! lookup that finds nothing in the registry's first [`DISCOVERY_WAIT`] (1.5 s) waits for the
//! rest of it, so a fresh process sees the nodes already on the network: a node that
//! announced itself less than a second ago may not repeat its records at once (RFC 6762 §6),
//! so it answers the browse's second query, a second after the first, or announces again at
//! 1.1 s.
//!
//! A node leaves the view when its goodbye arrives ([`Registry::deregister`] sends one), when
//! the daemon's DNS records of it expire, or when its TTL passes without a new `seq`: every
//! peer enforces the TTL, so a node whose process died silently leaves within its TTL rather
//! than the two minutes of its DNS records. The registering process also withdraws (with a
//! goodbye) its own nodes that were not re-registered within their TTL. Nodes registered
//! through this registry are in its view at once.
//!
//! # Interfaces
//! Multicast goes only where it should. [`Interfaces::Auto`] (the default: `--registry mdns`
//! with no `--registry_address`) starts on the loopback interface only, and adds the
//! interface of a node's IP when a node with a non-loopback address is registered; a
//! process that only calls services on other hosts names its interface with
//! `--registry_address <its IP>`, or all interfaces with `--registry_address 0.0.0.0`. So
//! services on `127.0.0.1` never send mDNS traffic to a real network. mdns-sd joins the mDNS
//! group on every interface when its daemon starts, before the selection applies, so the
//! kernel may announce that membership (IGMP/MLD) on them; no mDNS packet follows there.
//!
//! Not wire-compatible with go-micro's own mDNS registry, which publishes under its own
//! `micro.` domain with compressed TXT data: mdns-sd serves only `.local.`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mdns_sd::{
    DaemonEvent, IfKind, ServiceDaemon, ServiceEvent, ServiceInfo, TxtProperties, TxtProperty,
};
use tokio::sync::Notify;

use super::{Action, Record, RegisterOptions, Registry, Watcher, Watchers};
use crate::error::{Code, Error, Result};

/// The DNS-SD service type every node is published under.
pub const SERVICE_TYPE: &str = "_micro._tcp.local.";

/// The largest record (go-micro's service JSON with one node) a node may publish.
pub const MAX_RECORD_BYTES: usize = 8192;

/// How long a new registry waits for the network before saying a service is not found:
/// a second for the browse's second query, plus time for the answer.
pub const DISCOVERY_WAIT: Duration = Duration::from_millis(1500);

/// The version of the TXT scheme, in key `txtvers`.
const TXT_VERSION: &str = "1";

/// Bytes of record per TXT string: `r999=` plus 250 bytes is 255.
const PIECE_BYTES: usize = 250;

/// The longest DNS label.
const MAX_LABEL: usize = 63;

/// How often the browsing thread expires nodes whose TTL passed.
const SWEEP_PERIOD: Duration = Duration::from_millis(250);

/// How long a deregistration waits for the daemon to confirm its goodbye was sent.
const UNREGISTER_WAIT: Duration = Duration::from_secs(1);

/// Which network interfaces the registry multicasts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interfaces {
    /// Loopback, plus the interface of each non-loopback node address registered.
    #[default]
    Auto,
    /// Only the interface that has this IP.
    Only(IpAddr),
    /// Every interface, as go-micro's mDNS registry does.
    All,
}

impl Interfaces {
    /// The interfaces named by `--registry_address`: empty for [`Interfaces::Auto`],
    /// `0.0.0.0` or `::` for [`Interfaces::All`], an interface's IP for [`Interfaces::Only`].
    pub fn from_address(address: &str) -> Result<Interfaces> {
        let address = address.trim();
        if address.is_empty() {
            return Ok(Interfaces::Auto);
        }
        let ip: IpAddr = address.parse().map_err(|_| {
            Error::new(
                Code::InvalidArgument,
                format!(
                    "mdns registry address {address:?} is not an IP: name the interface's IP, \
                     0.0.0.0 for all interfaces, or nothing for loopback"
                ),
            )
        })?;
        Ok(if ip.is_unspecified() {
            Interfaces::All
        } else {
            Interfaces::Only(ip)
        })
    }
}

/// A registry on multicast DNS. Cheap to share behind an `Arc`; dropping the last handle
/// stops its daemon, which says goodbye for the nodes still registered.
pub struct MdnsRegistry {
    shared: Arc<Shared>,
    interfaces: Interfaces,
    /// Non-loopback IPs whose interface [`Interfaces::Auto`] has enabled.
    enabled: Mutex<HashSet<IpAddr>>,
    /// The next `seq` to publish.
    seq: AtomicU64,
}

/// What the registry and its browsing thread share.
struct Shared {
    daemon: ServiceDaemon,
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

/// What one TXT record carries.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Published {
    /// go-micro's service record holding the one node.
    record: Record,
    ttl: Duration,
    seq: u64,
}

impl MdnsRegistry {
    /// A registry on [`Interfaces::Auto`].
    pub fn new() -> Result<MdnsRegistry> {
        MdnsRegistry::with_interfaces(Interfaces::Auto)
    }

    /// The registry `--registry mdns --registry_address ADDRESS` names (see
    /// [`Interfaces::from_address`]).
    pub fn from_address(address: &str) -> Result<MdnsRegistry> {
        MdnsRegistry::with_interfaces(Interfaces::from_address(address)?)
    }

    /// A registry multicasting on `interfaces`: starts the mDNS daemon and the browse.
    pub fn with_interfaces(interfaces: Interfaces) -> Result<MdnsRegistry> {
        let daemon = ServiceDaemon::new().map_err(|e| daemon_error("start the daemon", e))?;
        // The selection goes to the daemon before the browse, so no query leaves on an
        // interface outside it.
        let selected = match interfaces {
            Interfaces::All => Ok(()),
            Interfaces::Auto => daemon.disable_interface(IfKind::All).and_then(|()| {
                daemon.enable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
            }),
            Interfaces::Only(ip) => daemon
                .disable_interface(IfKind::All)
                .and_then(|()| daemon.enable_interface(IfKind::Addr(ip))),
        };
        let started = selected
            .and_then(|()| Ok((daemon.browse(SERVICE_TYPE)?, daemon.monitor()?)))
            .map_err(|e| daemon_error("start browsing", e));
        let (events, monitor) = match started {
            Ok(receivers) => receivers,
            Err(e) => {
                let _ = daemon.shutdown();
                return Err(e);
            }
        };
        let shared = Arc::new(Shared {
            daemon,
            state: Mutex::default(),
            changed: Notify::new(),
            created: Instant::now(),
        });
        let browser = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("micro-mdns".into())
            .spawn(move || browse(&browser, &events, &monitor));
        if let Err(e) = spawned {
            let _ = shared.daemon.shutdown();
            return Err(Error::new(
                Code::Internal,
                format!("mdns registry: start the browsing thread: {e}"),
            ));
        }
        // Wall-clock milliseconds: a node re-registered by a restarted process still gets
        // a `seq` its peers have not seen.
        let first_seq = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        Ok(MdnsRegistry {
            shared,
            interfaces,
            enabled: Mutex::default(),
            seq: AtomicU64::new(first_seq),
        })
    }

    /// The interfaces the registry multicasts on.
    pub fn interfaces(&self) -> Interfaces {
        self.interfaces
    }

    /// In [`Interfaces::Auto`], adds the interface of a non-loopback node IP.
    fn enable_interface_of(&self, ip: IpAddr) -> Result<()> {
        if self.interfaces != Interfaces::Auto || ip.is_loopback() {
            return Ok(());
        }
        let mut enabled = self.enabled.lock().unwrap_or_else(|e| e.into_inner());
        if enabled.contains(&ip) {
            return Ok(());
        }
        self.shared
            .daemon
            .enable_interface(IfKind::Addr(ip))
            .map_err(|e| daemon_error(&format!("enable the interface of {ip}"), e))?;
        tracing::info!(%ip, "mdns registry: multicasting on the interface of a registered node");
        enabled.insert(ip);
        Ok(())
    }

    /// Live nodes of `name` (or of every service), merged per version.
    fn lookup(&self, name: Option<&str>) -> Vec<Record> {
        let now = Instant::now();
        let state = self.shared.lock();
        super::merge(
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
    async fn discover(&self, mut done: impl FnMut() -> bool) {
        let until = self.shared.created + DISCOVERY_WAIT;
        loop {
            let changed = self.shared.changed.notified();
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

impl Drop for MdnsRegistry {
    fn drop(&mut self) {
        // The daemon says goodbye for the nodes still registered, then its thread ends and
        // with it the browse channel, which ends the browsing thread.
        let _ = self.shared.daemon.shutdown();
    }
}

impl std::fmt::Debug for MdnsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdnsRegistry")
            .field("interfaces", &self.interfaces)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Registry for MdnsRegistry {
    fn name(&self) -> &'static str {
        "mdns"
    }

    async fn register(&self, service: &Record, options: RegisterOptions) -> Result<()> {
        for node in &service.nodes {
            let published = Published {
                record: Record {
                    nodes: vec![node.clone()],
                    ..service.clone()
                },
                ttl: options.ttl,
                seq: self.seq.fetch_add(1, Ordering::Relaxed),
            };
            let info = service_info(&published)?;
            if let Some(ip) = info.get_addresses().iter().next() {
                self.enable_interface_of(*ip)?;
            }
            let key = info.get_fullname().to_lowercase();
            self.shared
                .daemon
                .register(info)
                .map_err(|e| daemon_error(&format!("register node {}", node.id), e))?;
            let mut state = self.shared.lock();
            state.own.insert(key.clone());
            self.shared
                .upsert(&mut state, key, published, Instant::now());
        }
        Ok(())
    }

    async fn deregister(&self, service: &Record) -> Result<()> {
        for node in &service.nodes {
            let instance = instance_name(&service.name, &node.id)?;
            let fullname = format!("{instance}.{SERVICE_TYPE}");
            {
                let mut state = self.shared.lock();
                if let Some(entry) = state.nodes.remove(&fullname.to_lowercase()) {
                    state.notify(Action::Delete, &entry.published.record);
                }
            }
            let status = self
                .shared
                .daemon
                .unregister(&fullname)
                .map_err(|e| daemon_error(&format!("deregister node {}", node.id), e))?;
            // The daemon answers once the goodbye is out; not hearing back in time is
            // worth a warning, not a failed stop.
            if tokio::time::timeout(UNREGISTER_WAIT, status.recv_async())
                .await
                .is_err()
            {
                tracing::warn!(node = %node.id, "mdns registry: no confirmation of the goodbye");
            }
        }
        Ok(())
    }

    async fn get_service(&self, name: &str) -> Result<Vec<Record>> {
        self.discover(|| !self.lookup(Some(name)).is_empty()).await;
        let found = self.lookup(Some(name));
        if found.is_empty() {
            return Err(super::not_found(name));
        }
        Ok(found)
    }

    async fn list_services(&self) -> Result<Vec<Record>> {
        self.discover(|| false).await;
        Ok(self.lookup(None))
    }

    async fn watch(&self, service: Option<&str>) -> Result<Watcher> {
        Ok(self.shared.lock().watchers.add(service))
    }
}

impl Shared {
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
}

impl State {
    fn notify(&mut self, action: Action, service: &Record) {
        self.watchers.notify(action, service);
    }
}

/// The browsing thread: feeds the view from the daemon's events and expires nodes, until
/// the daemon stops.
fn browse(
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

/// The mDNS instance of one node's record.
fn service_info(published: &Published) -> Result<ServiceInfo> {
    let node = match published.record.nodes.as_slice() {
        [node] => node,
        nodes => {
            return Err(Error::new(
                Code::Internal,
                format!(
                    "mdns registry: a record holds one node, not {}",
                    nodes.len()
                ),
            ));
        }
    };
    let addr: SocketAddr = node.address.parse().map_err(|_| {
        Error::new(
            Code::InvalidArgument,
            format!(
                "mdns registry: node {} has address {:?}; mDNS needs an IP and a port \
                 (set --server_address or --server_advertise to one)",
                node.id, node.address
            ),
        )
    })?;
    let instance = instance_name(&published.record.name, &node.id)?;
    let mut info = ServiceInfo::new(
        SERVICE_TYPE,
        &instance,
        &format!("{instance}.local."),
        addr.ip(),
        addr.port(),
        encode_txt(published)?,
    )
    .map_err(|e| daemon_error(&format!("describe node {}", node.id), e))?;
    // Instance names carry the node id, unique by construction: no need to probe for
    // conflicts, which would delay every announcement by most of a second.
    info.set_requires_probe(false);
    Ok(info)
}

/// The TXT strings of a record (the scheme is in the module docs).
fn encode_txt(published: &Published) -> Result<Vec<TxtProperty>> {
    let json = serde_json::to_vec(&published.record).map_err(|e| {
        Error::new(
            Code::Internal,
            format!("mdns registry: encode the record: {e}"),
        )
    })?;
    if json.len() > MAX_RECORD_BYTES {
        return Err(Error::new(
            Code::InvalidArgument,
            format!(
                "mdns registry: the record of {} is {} bytes, over the {MAX_RECORD_BYTES} an mDNS \
                 TXT record carries (fewer endpoints or less metadata would fit)",
                published.record.name,
                json.len()
            ),
        ));
    }
    let ttl_ms = u64::try_from(published.ttl.as_millis()).unwrap_or(u64::MAX);
    let pieces: Vec<&[u8]> = json.chunks(PIECE_BYTES).collect();
    let mut txt = vec![
        TxtProperty::from(("txtvers", TXT_VERSION)),
        TxtProperty::from(("ttl", ttl_ms.to_string())),
        TxtProperty::from(("seq", published.seq.to_string())),
        TxtProperty::from(("parts", pieces.len().to_string())),
    ];
    txt.extend(
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| TxtProperty::from((format!("r{i}"), piece))),
    );
    Ok(txt)
}

/// Decodes a TXT record's wire form (length-prefixed strings) as an announcement's, for the
/// fuzz target (`crate::fuzz`): whether it holds a record.
pub(crate) fn decode_txt_wire(data: &[u8]) -> Result<()> {
    decode_txt(&TxtProperties::from(data)).map(|_| ())
}

/// The record a TXT record carries; an error says what is wrong with a broken one.
fn decode_txt(txt: &TxtProperties) -> Result<Published> {
    let broken = |what: String| Error::new(Code::Internal, format!("broken mdns record: {what}"));
    let text = |key: &str| -> Result<Option<&str>> {
        match txt.get_property_val(key) {
            None => Ok(None),
            Some(value) => std::str::from_utf8(value.unwrap_or_default())
                .map(Some)
                .map_err(|_| broken(format!("{key} is not text"))),
        }
    };
    let number = |key: &str| -> Result<u64> {
        match text(key)? {
            None => Ok(0),
            Some(s) => s
                .parse()
                .map_err(|_| broken(format!("{key}={s:?} is not a number"))),
        }
    };
    match text("txtvers")? {
        Some(TXT_VERSION) => {}
        Some(other) => return Err(broken(format!("unknown txtvers {other:?}"))),
        None => return Err(broken("no txtvers".into())),
    }
    let parts = number("parts")?;
    let max_parts = MAX_RECORD_BYTES.div_ceil(PIECE_BYTES) as u64;
    if parts == 0 || parts > max_parts {
        return Err(broken(format!("parts={parts}, expected 1 to {max_parts}")));
    }
    let mut json = Vec::new();
    for i in 0..parts {
        match txt.get_property_val(&format!("r{i}")) {
            Some(Some(piece)) => json.extend_from_slice(piece),
            _ => return Err(broken(format!("piece r{i} of {parts} is missing"))),
        }
    }
    let record = Record::from_json(&json)?;
    if record.nodes.len() != 1 {
        return Err(broken(format!(
            "{} holds {} nodes, expected 1",
            record.name,
            record.nodes.len()
        )));
    }
    Ok(Published {
        record,
        ttl: Duration::from_millis(number("ttl")?),
        seq: number("seq")?,
    })
}

/// The mDNS instance name of node `id` of `service` (the rule is in the module docs).
fn instance_name(service: &str, id: &str) -> Result<String> {
    if id.is_empty() {
        return Err(Error::new(
            Code::InvalidArgument,
            "mdns registry: a node needs an id",
        ));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let prefix: String = id
        .chars()
        .map(|c| if plain(c) { c } else { '-' })
        .take(MAX_LABEL - 17)
        .collect();
    // The service name's length first, so that no other split of the same bytes into a
    // service name and an id hashes alike.
    let hash = fnv1a(
        (service.len() as u64)
            .to_be_bytes()
            .iter()
            .chain(service.as_bytes())
            .chain(id.as_bytes()),
    );
    Ok(format!("{prefix}-{hash:016x}"))
}

/// 64-bit FNV-1a: tiny, and the same in every process and version.
fn fnv1a<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn daemon_error(what: &str, e: mdns_sd::Error) -> Error {
    Error::new(Code::Unavailable, format!("mdns registry: {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Endpoint, Node, Value};
    use mdns_sd::IntoTxtProperties;

    fn published(name: &str, id: &str) -> Published {
        Published {
            record: Record {
                name: name.into(),
                version: "latest".into(),
                metadata: [("team".to_owned(), "ünïcode ✓".to_owned())].into(),
                endpoints: vec![Endpoint {
                    name: "Greeter.Hello".into(),
                    request: Some(Value {
                        name: "HelloRequest".into(),
                        kind: "HelloRequest".into(),
                        values: vec![Value {
                            name: "name".into(),
                            kind: "string".into(),
                            values: vec![],
                        }],
                    }),
                    response: None,
                    metadata: [("stream".to_owned(), "false".to_owned())].into(),
                }],
                nodes: vec![Node {
                    id: id.into(),
                    address: "127.0.0.1:4242".into(),
                    metadata: [("registry".to_owned(), "mdns".to_owned())].into(),
                }],
            },
            ttl: Duration::from_millis(1500),
            seq: 7,
        }
    }

    /// A record whose JSON needs many TXT strings, with multi-byte characters across the
    /// cuts.
    fn big() -> Published {
        let mut p = published("greeter", "greeter-1");
        for i in 0..40 {
            p.record.endpoints.push(Endpoint {
                name: format!("Greeter.Méthode{i}"),
                metadata: [("note".to_owned(), "é".repeat(10))].into(),
                ..Endpoint::default()
            });
        }
        p
    }

    fn props(txt: Vec<TxtProperty>) -> TxtProperties {
        txt.into_txt_properties()
    }

    /// The strings as they go on the wire (`key=value`, each length-prefixed), read back as
    /// a peer's daemon reads them.
    fn over_the_wire(txt: &[TxtProperty]) -> TxtProperties {
        let mut wire = Vec::new();
        for p in txt {
            let mut s = p.key().as_bytes().to_vec();
            if let Some(v) = p.val() {
                s.push(b'=');
                s.extend_from_slice(v);
            }
            assert!(s.len() <= 255, "TXT string of {} bytes", s.len());
            wire.push(s.len() as u8);
            wire.extend(s);
        }
        TxtProperties::from(wire.as_slice())
    }

    #[test]
    fn txt_round_trip() {
        for p in [published("greeter", "greeter-1"), big()] {
            let txt = encode_txt(&p).unwrap();
            assert_eq!(decode_txt(&over_the_wire(&txt)).unwrap(), p);
        }
        let txt = encode_txt(&big()).unwrap();
        assert!(
            txt.len() > 10,
            "the big record is split: {} strings",
            txt.len()
        );
    }

    #[test]
    fn txt_layout() {
        let txt = encode_txt(&published("greeter", "greeter-1")).unwrap();
        let keys: Vec<&str> = txt.iter().map(TxtProperty::key).collect();
        assert_eq!(&keys[..5], ["txtvers", "ttl", "seq", "parts", "r0"]);
        let txt = props(txt);
        assert_eq!(txt.get_property_val_str("ttl"), Some("1500"));
        assert_eq!(txt.get_property_val_str("seq"), Some("7"));
        let parts: usize = txt.get_property_val_str("parts").unwrap().parse().unwrap();
        assert_eq!(txt.len(), 4 + parts);
        assert!(
            txt.get_property_val_str("r0")
                .unwrap()
                .starts_with(r#"{"name":"greeter","version":"latest""#)
        );
    }

    #[test]
    fn too_big_a_record_is_refused() {
        let mut p = published("greeter", "greeter-1");
        p.record
            .metadata
            .insert("blob".into(), "x".repeat(MAX_RECORD_BYTES));
        let err = encode_txt(&p).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.detail().contains("bytes"), "{err}");
    }

    #[test]
    fn broken_txt_is_an_error() {
        let good = encode_txt(&big()).unwrap();
        let without = |key: &str| {
            props(
                good.iter()
                    .filter(|p| p.key() != key)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        };
        let with = |key: &str, val: &[u8]| {
            props(
                good.iter()
                    .map(|p| {
                        if p.key() == key {
                            TxtProperty::from((key, val))
                        } else {
                            p.clone()
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let single = |json: &str| {
            props(vec![
                TxtProperty::from(("txtvers", "1")),
                TxtProperty::from(("parts", "1")),
                TxtProperty::from(("r0", json)),
            ])
        };
        let cases = [
            ("empty", props(Vec::new())),
            ("no version", without("txtvers")),
            ("other version", with("txtvers", b"2")),
            ("no parts", without("parts")),
            ("zero parts", with("parts", b"0")),
            ("parts not a number", with("parts", b"many")),
            ("too many parts", with("parts", b"999999")),
            ("a missing piece", without("r3")),
            (
                "a piece without value",
                props(vec![
                    TxtProperty::from(("txtvers", "1")),
                    TxtProperty::from(("parts", "1")),
                    TxtProperty::from("r0"),
                ]),
            ),
            ("a cut piece", with("r1", b"}")),
            ("ttl not a number", with("ttl", b"-1")),
            ("seq not text", with("seq", &[0xff, 0xfe])),
            ("not JSON", single("{nope")),
            (
                "no name",
                single(r#"{"name":"","nodes":[{"id":"a","address":"x"}]}"#),
            ),
            ("no node", single(r#"{"name":"a","nodes":[]}"#)),
            (
                "two nodes",
                single(
                    r#"{"name":"a","nodes":[{"id":"a","address":"x"},{"id":"b","address":"y"}]}"#,
                ),
            ),
        ];
        for (what, txt) in cases {
            assert!(decode_txt(&txt).is_err(), "{what} was accepted");
        }
        // Missing ttl and seq read as zero: no TTL, never refreshed.
        let p = decode_txt(&without("ttl")).unwrap();
        assert_eq!(p.ttl, Duration::ZERO);
    }

    #[test]
    fn instance_names_are_dns_labels() {
        // A go-micro node id shows whole, before the hash.
        let id = "greeter-7619ed0a-6a94-4152-9335-55c693fe026c";
        let name = instance_name("greeter", id).unwrap();
        assert!(name.starts_with(&format!("{id}-")), "{name}");
        assert_eq!(name.len(), id.len() + 17);
        let long = format!("go.micro.srv.a-very-long-service-name-{}", "x".repeat(60));
        let other = format!("{long}y");
        for id in [long.as_str(), other.as_str(), "a.b", "a/b", "ünï"] {
            let name = instance_name(&long, id).unwrap();
            assert!(name.len() <= MAX_LABEL, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{name}"
            );
        }
        // Ids that read alike keep distinct names.
        let name = |service: &str, id: &str| instance_name(service, id).unwrap();
        assert_ne!(name("s", &long), name("s", &other));
        assert_ne!(name("s", "a.b"), name("s", "a/b"));
        assert_ne!(name("s", "a.b"), name("s", "a-b"));
        // So does one node id in two services, however the bytes split.
        assert_ne!(name("a", "n1"), name("b", "n1"));
        let (b49, b50) = ("b".repeat(49), "b".repeat(50));
        assert_ne!(name("a", &b50), name("ab", &b49));
        assert_eq!(name("a", "n1"), name("a", "n1"));
        assert!(instance_name("a", "").is_err());
    }

    #[test]
    fn service_info_of_a_node() {
        let p = published("greeter", "greeter-1");
        let info = service_info(&p).unwrap();
        let instance = instance_name("greeter", "greeter-1").unwrap();
        assert_eq!(
            info.get_fullname(),
            format!("{instance}._micro._tcp.local.")
        );
        assert_eq!(info.get_hostname(), format!("{instance}.local."));
        assert_eq!(info.get_port(), 4242);
        let ips: Vec<IpAddr> = info.get_addresses().iter().copied().collect();
        assert_eq!(ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(decode_txt(info.get_properties()).unwrap(), p);

        let mut v6 = p.clone();
        v6.record.nodes[0].address = "[::1]:9090".into();
        assert_eq!(service_info(&v6).unwrap().get_port(), 9090);

        for bad in ["localhost:9090", "127.0.0.1", ""] {
            let mut p = p.clone();
            p.record.nodes[0].address = bad.into();
            let err = service_info(&p).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn registry_address_names_the_interfaces() {
        assert_eq!(Interfaces::from_address("").unwrap(), Interfaces::Auto);
        assert_eq!(
            Interfaces::from_address("0.0.0.0").unwrap(),
            Interfaces::All
        );
        assert_eq!(Interfaces::from_address("::").unwrap(), Interfaces::All);
        assert_eq!(
            Interfaces::from_address(" 192.0.2.7 ").unwrap(),
            Interfaces::Only("192.0.2.7".parse().unwrap())
        );
        for bad in ["eth0", "127.0.0.1:5353", "/tmp/dir"] {
            assert_eq!(
                Interfaces::from_address(bad).unwrap_err().code(),
                Code::InvalidArgument
            );
        }
    }
}
