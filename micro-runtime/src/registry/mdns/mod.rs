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

mod announce;
mod browse;
mod interfaces;
mod txt;

pub use announce::SERVICE_TYPE;
pub use browse::DISCOVERY_WAIT;
pub use interfaces::Interfaces;
pub use txt::MAX_RECORD_BYTES;
pub(crate) use txt::decode_txt_wire;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mdns_sd::{IfKind, ServiceDaemon};

use self::announce::{daemon_error, instance_name, service_info};
use self::browse::{Shared, browse};
use self::txt::Published;
use super::{Record, RegisterOptions, Registry, Watcher};
use crate::error::{Code, Error, Result};

/// How long a deregistration waits for the daemon to confirm its goodbye was sent.
const UNREGISTER_WAIT: Duration = Duration::from_secs(1);

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
        let selected = interfaces.select(&daemon);
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
        let shared = Arc::new(Shared::new(daemon));
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
            self.shared.own(key, published);
        }
        Ok(())
    }

    async fn deregister(&self, service: &Record) -> Result<()> {
        for node in &service.nodes {
            let instance = instance_name(&service.name, &node.id)?;
            let fullname = format!("{instance}.{SERVICE_TYPE}");
            self.shared.withdrawn(&fullname);
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
        self.shared
            .discover(|| !self.shared.lookup(Some(name)).is_empty())
            .await;
        let found = self.shared.lookup(Some(name));
        if found.is_empty() {
            return Err(super::not_found(name));
        }
        Ok(found)
    }

    async fn list_services(&self) -> Result<Vec<Record>> {
        self.shared.discover(|| false).await;
        Ok(self.shared.lookup(None))
    }

    async fn watch(&self, service: Option<&str>) -> Result<Watcher> {
        Ok(self.shared.watch(service))
    }
}

#[cfg(test)]
mod fixtures;
