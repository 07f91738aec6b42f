//! The etcd registry (feature `etcd`): go-micro's etcd layout, so Rust and Go services share
//! one registry.
//!
//! # Layout
//! Each node is one key, `/micro/registry/<service name>/<node id>` (every `/` inside the name
//! or the id replaced by `-`), whose value is the compact JSON of a [`Record`] holding that one
//! node: exactly what go-micro's etcd registry writes and reads.
//!
//! # Leases
//! A node registered with a TTL is put with a lease of that many seconds (at least 1; etcd
//! itself raises very short TTLs to its minimum, 2 s with its default timings); a zero TTL
//! puts it without a lease. Registering the same node again does not put it again when it is
//! unchanged: it sends one keepalive for its lease on a long-lived keepalive stream that the
//! registry keeps open for that lease (one stream per registered node, on the shared
//! connection; a server registers one node, so one stream), where go-micro opens a stream
//! per renewal. So a record lives its TTL after its last registration, as with every
//! backend, and a process that dies stops renewing it. When the lease is gone (it expired,
//! was revoked, or etcd lost it) the next registration grants a new lease and puts the record
//! again. Changed records are put again with a new lease. Dropping the registry closes its
//! keepalive streams; the records then expire at their TTL. As in go-micro, a key deleted
//! behind the registry's back while its lease lives (`etcdctl del`) comes back only once
//! the node changes or its lease is gone.
//!
//! # Watch
//! A prefix watch with previous values: a put is [`Action::Create`], or [`Action::Update`]
//! when the key existed before; a delete (including a lease's expiry) is [`Action::Delete`],
//! with the service taken from the previous value. When the watch stream breaks (a member
//! died, etcd restarted) the watch reconnects, with a backoff of up to 5 s, and resumes from
//! the revision after the last event it delivered, so no change is lost or repeated. Only when
//! etcd can no longer replay from there (that history was compacted) does the [`Watcher`] get
//! an `UNAVAILABLE` error, and then it ends. The watch ends when the [`Watcher`] is dropped.
//!
//! [`Action::Create`]: super::Action::Create
//! [`Action::Update`]: super::Action::Update
//! [`Action::Delete`]: super::Action::Delete
//!
//! # Settings
//! `--registry etcd --registry_address host:port[,host:port...]` (default `127.0.0.1:2379`;
//! port 2379 added when missing; `http://` and `https://` prefixes accepted), and:
//!
//! | variable | meaning |
//! |---|---|
//! | `ETCD_USERNAME`, `ETCD_PASSWORD` | etcd user and password (authentication) |
//! | `ETCD_CA_FILE` | PEM file of the CA that signed the etcd servers' certificates |
//! | `ETCD_CERT_FILE`, `ETCD_KEY_FILE` | PEM client certificate and key, for etcd's client certificate authentication |
//!
//! TLS (rustls) is on when an address starts with `https://` or any of the three file
//! variables is set; then every endpoint is dialed over TLS. Without `ETCD_CA_FILE` the
//! system's trusted roots are used.
//!
//! The client is this crate's own: [`crate::Client`] calling etcd's v3 gRPC API (the few
//! messages it needs are written out in `api.rs`), so building it takes no `protoc`.
//!
//! Connecting and each request are bounded by 5 s. A request that could not reach a member
//! is tried again (on the others, for a cluster), up to twice per endpoint within those 5 s,
//! so a cluster keeps serving while a member is down and an etcd that is all down is reported
//! at once. Failures to reach etcd are `UNAVAILABLE` errors, refused credentials
//! `UNAUTHENTICATED`. The connection is made on first use and shared by every operation, the
//! registry's clones and its watches.
//!
//! ```no_run
//! use std::sync::Arc;
//! use micro_runtime::registry::etcd::{EtcdOptions, EtcdRegistry};
//!
//! # fn main() -> micro_runtime::Result<()> {
//! let mut options = EtcdOptions::new("etcd-1:2379,etcd-2:2379,etcd-3:2379");
//! options.username = Some("micro".into());
//! options.password = Some("secret".into());
//! let registry = Arc::new(EtcdRegistry::new(options)?);
//! let service = micro_runtime::Service::builder()
//!     .name("greeter")
//!     .registry(registry)
//!     .build()?;
//! # drop(service);
//! # Ok(())
//! # }
//! ```

mod api;
mod client;
mod layout;
mod lease;
mod options;
mod watch;

pub use layout::{PREFIX, node_key, service_prefix};
pub use options::{DEFAULT_ADDRESS, DEFAULT_TIMEOUT, EtcdOptions};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use tokio::sync::Mutex;

use self::client::Conn;
use self::lease::{Registered, grant, lease_seconds};
use self::options::invalid;
use super::{Record, RegisterOptions, Registry, Watcher};
use crate::error::Result;

/// A registry in etcd, in go-micro's layout. Cheap to clone: clones share the connection and
/// the registrations.
#[derive(Clone)]
pub struct EtcdRegistry {
    conn: Arc<Conn>,
    /// What this registry put, by key. Held across the requests of one registration, so
    /// registrations of one registry happen one at a time. Only the registry holds it (not
    /// its watches): dropping the registry closes the keepalive streams.
    registered: Arc<Mutex<HashMap<String, Registered>>>,
}

impl fmt::Debug for EtcdRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdRegistry")
            .field("endpoints", &self.conn.urls())
            .field("timeout", &self.conn.timeout)
            .finish_non_exhaustive()
    }
}

impl EtcdRegistry {
    /// A registry with these options. Reads the TLS files now, so that a wrong path is an
    /// error here; connects on first use.
    pub fn new(options: EtcdOptions) -> Result<EtcdRegistry> {
        Ok(EtcdRegistry {
            conn: Arc::new(options.conn()?),
            registered: Arc::default(),
        })
    }

    /// The registry `--registry etcd --registry_address ADDRESS` names: [`EtcdOptions::from_env`].
    pub fn from_env(address: &str) -> Result<EtcdRegistry> {
        EtcdRegistry::new(EtcdOptions::from_env(address))
    }

    /// The endpoint URLs dialed.
    pub fn endpoints(&self) -> &[String] {
        self.conn.urls()
    }
}

#[async_trait::async_trait]
impl Registry for EtcdRegistry {
    fn name(&self) -> &'static str {
        "etcd"
    }

    async fn register(&self, service: &Record, options: RegisterOptions) -> Result<()> {
        if service.name.is_empty() {
            return Err(invalid("register: the service has no name"));
        }
        let ttl = lease_seconds(options.ttl);
        let mut registered = self.registered.lock().await;
        for node in &service.nodes {
            if node.id.is_empty() {
                return Err(invalid(format!(
                    "register {}: a node has no id",
                    service.name
                )));
            }
            let key = node_key(&service.name, &node.id);
            let json = Record {
                nodes: vec![node.clone()],
                ..service.clone()
            }
            .to_json();
            if let Some(reg) = registered.get_mut(&key)
                && reg.json == json
                && reg.ttl == ttl
            {
                if ttl == 0 || reg.renew(&self.conn, &key).await? {
                    continue;
                }
                tracing::info!(
                    key,
                    "etcd lease of the registration is gone, putting it again"
                );
            }
            let mut lease = 0;
            if ttl > 0 {
                lease = grant(&self.conn, ttl).await?;
            }
            let put = api::PutRequest {
                key: key.as_bytes().to_vec(),
                value: json.as_bytes().to_vec(),
                // Lease 0 is none.
                lease,
            };
            let _: api::PutResponse = self
                .conn
                .unary(&api::PUT, &put, &format!("put {key}"))
                .await?;
            registered.insert(key, Registered::new(json, ttl, lease));
        }
        Ok(())
    }

    async fn deregister(&self, service: &Record) -> Result<()> {
        let mut registered = self.registered.lock().await;
        for node in &service.nodes {
            let key = node_key(&service.name, &node.id);
            let delete = api::DeleteRangeRequest {
                key: key.as_bytes().to_vec(),
            };
            let _: api::DeleteRangeResponse = self
                .conn
                .unary(&api::DELETE_RANGE, &delete, &format!("delete {key}"))
                .await?;
            // Also closes the lease's keepalive stream; the lease, holding no key, expires.
            registered.remove(&key);
        }
        Ok(())
    }

    async fn get_service(&self, name: &str) -> Result<Vec<Record>> {
        let found = super::merge(
            self.conn
                .records(&service_prefix(name))
                .await?
                .into_iter()
                // Names that escape alike share a prefix.
                .filter(|s| s.name == name),
        );
        if found.is_empty() {
            return Err(super::not_found(name));
        }
        Ok(found)
    }

    async fn list_services(&self) -> Result<Vec<Record>> {
        Ok(super::merge(self.conn.records(PREFIX).await?))
    }

    async fn watch(&self, service: Option<&str>) -> Result<Watcher> {
        watch::watch(&self.conn, service).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Code;

    #[test]
    fn registry_builds_without_a_runtime_or_a_server() {
        let reg = EtcdRegistry::new(EtcdOptions::new("127.0.0.1:1,https://127.0.0.1:2")).unwrap();
        assert_eq!(
            reg.endpoints(),
            ["https://127.0.0.1:1", "https://127.0.0.1:2"]
        );
        assert_eq!(reg.name(), "etcd");
    }

    #[tokio::test]
    async fn unreachable_etcd_is_unavailable_within_the_timeout() {
        // A port with nothing behind it: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut o = EtcdOptions::new(&format!("127.0.0.1:{port}"));
        o.timeout = Duration::from_millis(500);
        let reg = EtcdRegistry::new(o).unwrap();
        let start = std::time::Instant::now();
        let err = reg.get_service("greeter").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(err.detail().contains("etcd registry"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        let err = reg.watch(None).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
    }
}
