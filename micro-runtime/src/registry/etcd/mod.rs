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

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio::time::timeout_at;

use self::api::{KeyValue, LeaseKeepAliveRequest, LeaseKeepAliveResponse, WatchResponse};
use self::client::{Conn, Credentials};
use super::{Action, Change, Node, Record, RegisterOptions, Registry, Watcher};
use crate::error::{Code, Error, Result};
use crate::stream::CallStream;
use crate::transport::tls::ClientTls;

/// The root of every key go-micro's etcd registry writes.
pub const PREFIX: &str = "/micro/registry/";

/// The endpoint used when none is given.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:2379";

/// How long connecting and each request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// etcd's largest lease TTL, in seconds.
const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// Longest wait between attempts to reopen a broken watch.
const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(5);

/// Where and how to reach etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// Endpoints, `host:port`, `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// User name, for etcd's authentication.
    pub username: Option<String>,
    /// Password of [`EtcdOptions::username`].
    pub password: Option<String>,
    /// PEM file of the CA that signed the servers' certificates (turns TLS on).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (turns TLS on; goes with [`EtcdOptions::key_file`]).
    pub cert_file: Option<PathBuf>,
    /// PEM key of [`EtcdOptions::cert_file`].
    pub key_file: Option<PathBuf>,
    /// Bound on connecting and on each request.
    pub timeout: Duration,
}

impl EtcdOptions {
    /// Options for `address`: endpoints separated by commas (empty for
    /// [`DEFAULT_ADDRESS`]), no authentication, TLS only for `https://` endpoints.
    pub fn new(address: &str) -> EtcdOptions {
        let mut endpoints: Vec<String> = address
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            endpoints.push(DEFAULT_ADDRESS.to_owned());
        }
        EtcdOptions {
            endpoints,
            username: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Options for `address` with the settings of the `ETCD_*` environment variables (see the
    /// [module docs](self)).
    pub fn from_env(address: &str) -> EtcdOptions {
        EtcdOptions::from_lookup(address, |name| std::env::var(name).ok())
    }

    fn from_lookup(address: &str, var: impl Fn(&str) -> Option<String>) -> EtcdOptions {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        EtcdOptions {
            username: var("ETCD_USERNAME"),
            password: var("ETCD_PASSWORD"),
            ca_file: var("ETCD_CA_FILE").map(PathBuf::from),
            cert_file: var("ETCD_CERT_FILE").map(PathBuf::from),
            key_file: var("ETCD_KEY_FILE").map(PathBuf::from),
            ..EtcdOptions::new(address)
        }
    }

    fn tls_on(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.endpoints.iter().any(|e| e.starts_with("https://"))
    }
}

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

/// A lease's keepalive stream.
type KeepAlive = CallStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;

/// A node this registry put.
struct Registered {
    /// The value put, to leave an unchanged node alone.
    json: String,
    /// The TTL in seconds; 0 for no lease.
    ttl: i64,
    /// The lease the key was put with; 0 for none.
    lease: i64,
    /// The lease's keepalive stream, opened at the first renewal and kept.
    keepalive: Option<KeepAlive>,
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
        let tls = options.tls_on();
        let urls = options
            .endpoints
            .iter()
            .map(|e| endpoint_url(e, tls))
            .collect::<Result<Vec<_>>>()?;
        if urls.is_empty() {
            return Err(invalid("no endpoints"));
        }
        let addrs = urls
            .iter()
            .map(|u| {
                u.split_once("://")
                    .map_or(u.as_str(), |(_, a)| a)
                    .to_owned()
            })
            .collect();
        let timeout = if options.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            options.timeout
        };
        let credentials = match (&options.username, &options.password) {
            (Some(user), Some(password)) => Some(Credentials {
                user: user.clone(),
                password: password.clone(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid("ETCD_USERNAME is set but ETCD_PASSWORD is not"));
            }
            (None, Some(_)) => {
                return Err(invalid("ETCD_PASSWORD is set but ETCD_USERNAME is not"));
            }
        };
        let tls = if tls {
            Some(client_tls(&options)?)
        } else {
            None
        };
        Ok(EtcdRegistry {
            conn: Arc::new(Conn::new(urls, addrs, credentials, tls, timeout)),
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

    /// Sends one keepalive for `reg`'s lease on its stream, opening the stream when it has
    /// none or the old one broke. `Ok(false)` when the lease is gone.
    async fn renew(&self, key: &str, reg: &mut Registered) -> Result<bool> {
        let deadline = crate::transport::deadline_in(self.conn.timeout);
        let lease = reg.lease;
        if let Some(stream) = reg.keepalive.as_mut() {
            match timeout_at(deadline, keep_alive(stream, lease)).await {
                Ok(Ok(ttl)) => return Ok(ttl > 0),
                Ok(Err(e)) => {
                    tracing::debug!(key, error = %e, "etcd keepalive stream broke, opening another");
                }
                Err(_) => {
                    tracing::debug!(key, "etcd keepalive got no answer, opening another stream");
                }
            }
            // A late answer must not be taken for the next one's: drop the stream.
            reg.keepalive = None;
        }
        let (stream, ttl) = self
            .conn
            .stream_until(
                deadline,
                &api::LEASE_KEEP_ALIVE,
                &format!("keep {key} alive"),
                |mut stream: KeepAlive| async move {
                    let ttl = keep_alive(&mut stream, lease).await?;
                    Ok((stream, ttl))
                },
            )
            .await?;
        if ttl <= 0 {
            return Ok(false);
        }
        reg.keepalive = Some(stream);
        Ok(true)
    }
}

/// One keepalive of `lease` on `stream`: the TTL etcd answers, 0 or less when the lease is
/// gone.
async fn keep_alive(stream: &mut KeepAlive, lease: i64) -> Result<i64> {
    stream.send(LeaseKeepAliveRequest { id: lease }).await?;
    match stream.recv().await? {
        Some(rsp) => Ok(rsp.ttl),
        None => Err(Error::new(Code::Unavailable, "the keepalive stream ended")),
    }
}

impl Conn {
    /// What a watcher is told when its changes can't be replayed.
    fn compacted(&self, prefix: &str, from: i64) -> Error {
        self.fail(
            Code::Unavailable,
            &format!("watch {prefix}"),
            format!("the changes from revision {from} are compacted away; watch again"),
        )
    }

    /// Records under `prefix`; broken ones are skipped with a warning.
    async fn records(&self, prefix: &str) -> Result<Vec<Record>> {
        let request = api::RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: api::prefix_end(prefix.as_bytes()),
        };
        let rsp: api::RangeResponse = self
            .unary(&api::RANGE, &request, &format!("get {prefix}"))
            .await?;
        Ok(rsp.kvs.iter().filter_map(decode).collect())
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
            if let Some(reg) = registered.get_mut(&key) {
                if reg.json == json && reg.ttl == ttl {
                    if ttl == 0 || self.renew(&key, reg).await? {
                        continue;
                    }
                    tracing::info!(
                        key,
                        "etcd lease of the registration is gone, putting it again"
                    );
                }
            }
            let mut lease = 0;
            if ttl > 0 {
                let what = format!("grant a lease of {ttl}s");
                let granted: api::LeaseGrantResponse = self
                    .conn
                    .unary(&api::LEASE_GRANT, &api::LeaseGrantRequest { ttl }, &what)
                    .await?;
                if !granted.error.is_empty() {
                    return Err(self.conn.fail(Code::Unavailable, &what, granted.error));
                }
                lease = granted.id;
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
            registered.insert(
                key,
                Registered {
                    json,
                    ttl,
                    lease,
                    keepalive: None,
                },
            );
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
        let prefix = service.map_or_else(|| PREFIX.to_owned(), service_prefix);
        let (stream, next) = self.conn.open_watch(&prefix, None).await?;
        let (tx, watcher) = Watcher::channel();
        let task = WatchTask {
            conn: self.conn.clone(),
            prefix,
            service: service.map(str::to_owned),
            next,
            tx,
        };
        tokio::spawn(task.run(stream));
        Ok(watcher)
    }
}

/// A watch stream.
type WatchStream = CallStream<api::WatchRequest, WatchResponse>;

impl Conn {
    /// Opens a prefix watch from revision `start` (or from now), once etcd confirmed it.
    /// Returns the stream and the first revision it reports.
    async fn open_watch(&self, prefix: &str, start: Option<i64>) -> Result<(WatchStream, i64)> {
        // Progress notifications (etcd sends them on a quiet watch, every
        // --experimental-watch-progress-notify-interval) move the resume point on when
        // nothing under the prefix changes, so a resume after a compaction is no false loss.
        let create = api::WatchRequest {
            create_request: Some(api::WatchCreateRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: api::prefix_end(prefix.as_bytes()),
                start_revision: start.unwrap_or(0),
                progress_notify: true,
                prev_kv: true,
            }),
        };
        let what = format!("watch {prefix}");
        let deadline = crate::transport::deadline_in(self.timeout);
        let (stream, first) = self
            .stream_until(deadline, &api::WATCH, &what, |mut stream: WatchStream| {
                let create = create.clone();
                async move {
                    stream.send(create).await?;
                    // Events are only certain to be seen once etcd confirmed the watch.
                    match stream.recv().await? {
                        Some(first) => Ok((stream, first)),
                        None => Err(Error::new(Code::Unavailable, "the stream closed")),
                    }
                }
            })
            .await?;
        if first.compact_revision > 0 {
            return Err(self.fail(
                Code::OutOfRange,
                &what,
                format!("revision {start:?} is compacted away"),
            ));
        }
        if !first.created || first.canceled {
            return Err(self.fail(
                Code::Unavailable,
                &what,
                format!("refused: {}", first.cancel_reason),
            ));
        }
        let now = first.header.as_ref().map_or(0, |h| h.revision);
        if let Some(from) = start {
            // etcd accepts a start in the future and waits for it: after its data was wiped
            // (revisions start again at 1) that would skip every change up to the old
            // revision, silently.
            if now + 1 < from {
                return Err(self.fail(
                    Code::OutOfRange,
                    &what,
                    format!(
                        "etcd is at revision {now}, behind the {from} this watch resumes from (its data was reset); watch again"
                    ),
                ));
            }
        }
        Ok((stream, start.unwrap_or(now + 1)))
    }
}

/// Feeds one [`Watcher`], reconnecting when the stream breaks.
struct WatchTask {
    conn: Arc<Conn>,
    prefix: String,
    /// The service watched, `None` for all.
    service: Option<String>,
    /// The revision to resume from: the one after the last event delivered.
    next: i64,
    tx: mpsc::Sender<Result<Change>>,
}

impl WatchTask {
    async fn run(mut self, stream: WatchStream) {
        let mut stream = Some(stream);
        loop {
            let mut current = match stream.take() {
                Some(s) => s,
                None => match self.reopen().await {
                    Some(s) => s,
                    None => return,
                },
            };
            loop {
                let message = tokio::select! {
                    _ = self.tx.closed() => return,
                    m = current.recv() => m,
                };
                let rsp = match message {
                    Ok(Some(rsp)) => rsp,
                    Ok(None) => {
                        tracing::debug!(prefix = %self.prefix, "etcd watch stream ended, reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(prefix = %self.prefix, error = %e, "etcd watch stream broke, reconnecting");
                        break;
                    }
                };
                if rsp.compact_revision > 0 {
                    let _ = self
                        .tx
                        .send(Err(self.conn.compacted(&self.prefix, self.next)))
                        .await;
                    return;
                }
                if rsp.canceled {
                    tracing::debug!(prefix = %self.prefix, reason = %rsp.cancel_reason, "etcd canceled the watch, reconnecting");
                    break;
                }
                // A progress notification: every change up to its revision was sent.
                if rsp.events.is_empty() && !rsp.created {
                    if let Some(header) = &rsp.header {
                        self.next = self.next.max(header.revision + 1);
                    }
                }
                for ev in &rsp.events {
                    if let Some(kv) = &ev.kv {
                        self.next = self.next.max(kv.mod_revision + 1);
                    }
                    let Some(event) = event(ev) else { continue };
                    if self
                        .service
                        .as_ref()
                        .is_some_and(|s| *s != event.service.name)
                    {
                        continue;
                    }
                    if self.tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// A new stream from the next revision, retried with backoff; `None` once the watcher is
    /// gone.
    async fn reopen(&mut self) -> Option<WatchStream> {
        let mut delay = Duration::from_millis(100);
        loop {
            tokio::select! {
                _ = self.tx.closed() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            let opened = tokio::select! {
                _ = self.tx.closed() => return None,
                o = self.conn.open_watch(&self.prefix, Some(self.next)) => o,
            };
            match opened {
                Ok((stream, _)) => return Some(stream),
                // Compacted away, or etcd's data reset: the changes since `next` can't be
                // had; the watcher's owner must look everything up again.
                Err(e) if e.code() == Code::OutOfRange => {
                    let err = if e.detail().contains("compacted") {
                        self.conn.compacted(&self.prefix, self.next)
                    } else {
                        Error::new(Code::Unavailable, e.detail())
                    };
                    let _ = self.tx.send(Err(err)).await;
                    return None;
                }
                Err(e) => {
                    tracing::debug!(prefix = %self.prefix, error = %e, "reopening the etcd watch failed");
                    delay = (delay * 2).min(MAX_WATCH_BACKOFF);
                }
            }
        }
    }
}

/// The registry event of an etcd event; `None` for a record that can't be read.
fn event(ev: &api::WatchEvent) -> Option<Change> {
    let kv = ev.kv.as_ref()?;
    // A deleted key comes as a tombstone, version 0; a put key has version 1 or more.
    if kv.version == 0 {
        let service = match &ev.prev_kv {
            Some(prev) => decode(prev)?,
            // The previous value was compacted away: what the key tells.
            None => from_key(&kv.key)?,
        };
        return Some(Change {
            action: Action::Delete,
            service,
        });
    }
    let action = if ev.prev_kv.is_some() {
        Action::Update
    } else {
        Action::Create
    };
    Some(Change {
        action,
        service: decode(kv)?,
    })
}

/// The record in a key's value; broken ones are logged and skipped.
fn decode(kv: &KeyValue) -> Option<Record> {
    match Record::from_json(&kv.value) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(key = %String::from_utf8_lossy(&kv.key), error = %e, "skipping broken registry record");
            None
        }
    }
}

/// A record with only the (escaped) service name and node id a key holds.
fn from_key(key: &[u8]) -> Option<Record> {
    let key = std::str::from_utf8(key).ok()?.strip_prefix(PREFIX)?;
    let (name, id) = key.split_once('/')?;
    Some(Record {
        name: name.to_owned(),
        nodes: vec![Node {
            id: id.to_owned(),
            ..Node::default()
        }],
        ..Record::default()
    })
}

/// `/micro/registry/<name>/<id>`, with `/` in either replaced by `-`, as go-micro does.
pub fn node_key(service: &str, node: &str) -> String {
    format!("{}{}/{}", PREFIX, escape(service), escape(node))
}

/// `/micro/registry/<name>/`: the keys of one service.
pub fn service_prefix(service: &str) -> String {
    format!("{}{}/", PREFIX, escape(service))
}

fn escape(s: &str) -> String {
    s.replace('/', "-")
}

/// A TTL as etcd lease seconds: 0 for none, else rounded up to whole seconds.
fn lease_seconds(ttl: Duration) -> i64 {
    if ttl.is_zero() {
        return 0;
    }
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .clamp(1, MAX_LEASE_TTL)
}

/// The URL dialed for an endpoint: the scheme for `tls`, port 2379 when none is given.
fn endpoint_url(endpoint: &str, tls: bool) -> Result<String> {
    let host = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    if host.contains('@') {
        return Err(invalid(format!(
            "endpoint {:?} holds credentials: give them in ETCD_USERNAME and ETCD_PASSWORD",
            crate::redact::address(endpoint)
        )));
    }
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(invalid(format!("bad endpoint {endpoint:?}")));
    }
    let has_port = match host.rsplit_once(':') {
        // `[::1]:2379` or `host:2379`; a bare IPv6 address has colons but no port.
        Some((h, port)) => {
            (h.ends_with(']') || !h.contains(':')) && port.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    };
    let host = match (has_port, host.contains(':') && !host.starts_with('[')) {
        (true, _) => host.to_owned(),
        (false, true) => format!("[{host}]:2379"),
        (false, false) => format!("{host}:2379"),
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{host}"))
}

/// TLS with the CA of `ETCD_CA_FILE` (else the system's roots) and the client certificate of
/// `ETCD_CERT_FILE` and `ETCD_KEY_FILE`.
fn client_tls(options: &EtcdOptions) -> Result<ClientTls> {
    let ca = match &options.ca_file {
        Some(ca) => Some(read_pem("ETCD_CA_FILE", ca)?),
        None => None,
    };
    let identity = match (&options.cert_file, &options.key_file) {
        (Some(cert), Some(key)) => Some((
            read_pem("ETCD_CERT_FILE", cert)?,
            read_pem("ETCD_KEY_FILE", key)?,
        )),
        (None, None) => None,
        _ => return Err(invalid("ETCD_CERT_FILE and ETCD_KEY_FILE go together")),
    };
    ClientTls::from_pem(
        ca.as_deref(),
        identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
    )
    .map_err(|e| invalid(e.detail()))
}

fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| invalid(format!("{what} {}: {e}", path.display())))
}

fn invalid(detail: impl fmt::Display) -> Error {
    Error::new(Code::InvalidArgument, format!("etcd registry: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_go_micros() {
        assert_eq!(
            node_key("greeter", "greeter-1"),
            "/micro/registry/greeter/greeter-1"
        );
        assert_eq!(
            node_key("go.micro/x", "a/b/c"),
            "/micro/registry/go.micro-x/a-b-c"
        );
        assert_eq!(service_prefix("a/b"), "/micro/registry/a-b/");
    }

    #[test]
    fn endpoints_get_a_scheme_and_port() {
        let url = |e: &str, tls| endpoint_url(e, tls).unwrap();
        assert_eq!(url("127.0.0.1", false), "http://127.0.0.1:2379");
        assert_eq!(url("127.0.0.1:2380", false), "http://127.0.0.1:2380");
        assert_eq!(url("http://etcd:1234/", false), "http://etcd:1234");
        assert_eq!(url("https://etcd", true), "https://etcd:2379");
        assert_eq!(url("etcd:1234", true), "https://etcd:1234");
        assert_eq!(url("[::1]:1234", false), "http://[::1]:1234");
        assert_eq!(url("[::1]", false), "http://[::1]:2379");
        assert_eq!(url("::1", false), "http://[::1]:2379");
        for bad in ["", "http://", "a b", "host/path"] {
            assert!(endpoint_url(bad, false).is_err(), "{bad:?}");
        }
        let err = endpoint_url("http://u:s3cret@h:2379", false).unwrap_err();
        assert!(err.detail().contains("ETCD_USERNAME"), "{err}");
        assert!(!err.detail().contains("s3cret"), "{err}");
    }

    #[test]
    fn options_from_address_and_environment() {
        let o = EtcdOptions::new("");
        assert_eq!(o.endpoints, [DEFAULT_ADDRESS]);
        let o = EtcdOptions::new(" a:1, b ,,");
        assert_eq!(o.endpoints, ["a:1", "b"]);
        assert!(!o.tls_on());
        assert!(EtcdOptions::new("a,https://b").tls_on());

        let env: HashMap<&str, &str> = [
            ("ETCD_USERNAME", "u"),
            ("ETCD_PASSWORD", "p"),
            ("ETCD_CA_FILE", "/ca.pem"),
            ("ETCD_CERT_FILE", ""),
        ]
        .into();
        let o = EtcdOptions::from_lookup("x", |k| env.get(k).map(|v| v.to_string()));
        assert_eq!(o.username.as_deref(), Some("u"));
        assert_eq!(o.password.as_deref(), Some("p"));
        assert_eq!(o.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(o.cert_file, None);
        assert!(o.tls_on());
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let mut o = EtcdOptions::new("127.0.0.1");
        o.username = Some("u".into());
        assert_eq!(
            EtcdRegistry::new(o).unwrap_err().code(),
            Code::InvalidArgument
        );
        let mut o = EtcdOptions::new("127.0.0.1");
        o.ca_file = Some("/nonexistent/ca.pem".into());
        let err = EtcdRegistry::new(o).unwrap_err();
        assert!(err.detail().contains("ETCD_CA_FILE"), "{err}");
        let mut o = EtcdOptions::new("127.0.0.1");
        o.cert_file = Some("/nonexistent/cert.pem".into());
        assert!(EtcdRegistry::new(o).is_err());
        assert!(EtcdRegistry::new(EtcdOptions::new("a b")).is_err());
    }

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

    #[test]
    fn lease_seconds_round_up() {
        assert_eq!(lease_seconds(Duration::ZERO), 0);
        assert_eq!(lease_seconds(Duration::from_millis(1)), 1);
        assert_eq!(lease_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(lease_seconds(Duration::from_secs(60)), 60);
        assert_eq!(lease_seconds(Duration::MAX), MAX_LEASE_TTL);
    }

    #[test]
    fn keys_tell_a_deleted_node() {
        let svc = from_key(b"/micro/registry/greeter/greeter-1").unwrap();
        assert_eq!(svc.name, "greeter");
        assert_eq!(svc.nodes[0].id, "greeter-1");
        assert!(from_key(b"/other/greeter/1").is_none());
        assert!(from_key(b"/micro/registry/greeter").is_none());
        assert!(from_key(&[0xff, 0xfe]).is_none());
    }
}
