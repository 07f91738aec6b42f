//! The registry conformance suite: one set of checks that every [`Registry`] backend passes,
//! so that code written against one behaves the same on the others.
//!
//! Each check takes a [`Backend`]: the registry, a way to write a raw, broken record where
//! the backend stores raw records, and how long its writes may take to show. Checks use
//! service names of their own, so they can share a backend (one etcd server for the whole
//! run). `tests/tests/registry_conformance.rs` runs every check against every backend;
//! adding a backend there is one line. The mDNS backends multicast, so they run only inside
//! a private network namespace: the `mdns-conformance` binary runs [`CHECKS`] against them,
//! and `tests/tests/mdns.rs` runs that binary in a namespace of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceInfo};
use micro_runtime::Registry;
use micro_runtime::registry::local::LocalRegistry;
use micro_runtime::registry::mdns::{MdnsRegistry, SERVICE_TYPE};
use micro_runtime::registry::memory::MemoryRegistry;
use micro_runtime::registry::{
    Action, Change, Endpoint, Node, Record, RegisterOptions, Value, Watcher,
};
use micro_runtime::{Code, Error};

/// Writes a raw record (`service`, `node id`, `content`) the way the backend stores records,
/// bypassing the registry.
pub type WriteRaw = Box<dyn Fn(&str, &str, &str) + Send + Sync>;

/// How long a watch event may take to arrive (the local backend polls every 250 ms).
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The TTL of the expiry checks: etcd's shortest lease with its default timings.
const SHORT_TTL: Duration = Duration::from_secs(2);

/// How long a write may take to reach another mDNS registry: a fresh daemon may miss an
/// announcement while it binds its sockets, and then hears of the node when its browse
/// queries again, a second after its first query, then two seconds after that.
const MDNS_SETTLE: Duration = Duration::from_secs(5);

/// How often a read is repeated while a write settles.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// A check, boxed so that runners can keep them in a list.
pub type Check = for<'a> fn(&'a Backend) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Every check, by name, in the order runners report them.
pub const CHECKS: &[(&str, Check)] = &[
    ("register_deregister", |b| Box::pin(register_deregister(b))),
    ("not_found", |b| Box::pin(not_found(b))),
    ("list", |b| Box::pin(list(b))),
    ("versions", |b| Box::pin(versions(b))),
    ("metadata_and_endpoints", |b| {
        Box::pin(metadata_and_endpoints(b))
    }),
    ("slashes_in_names", |b| Box::pin(slashes_in_names(b))),
    ("node_ids_per_service", |b| {
        Box::pin(node_ids_per_service(b))
    }),
    ("watch", |b| Box::pin(watch(b))),
    ("watch_all", |b| Box::pin(watch_all(b))),
    ("ttl_expiry", |b| Box::pin(ttl_expiry(b))),
    ("heartbeat_keeps_alive", |b| {
        Box::pin(heartbeat_keeps_alive(b))
    }),
    ("broken_records", |b| Box::pin(broken_records(b))),
];

/// A backend under test.
pub struct Backend {
    /// The registry.
    pub registry: Arc<dyn Registry>,
    /// Writes a raw record; `None` for a backend that keeps no raw form.
    pub write_raw: Option<WriteRaw>,
    /// How long a write may take to show in reads: a read that must see a write is repeated
    /// until it does or this time has passed. Zero (read once) for a backend whose reads see
    /// its writes at once. Watch events have `EVENT_TIMEOUT` whatever this is.
    pub settle: Duration,
    /// What the registry needs alive (a temporary directory).
    _keep: Option<Box<dyn Send + Sync>>,
}

impl Backend {
    /// A backend of `registry`, without raw records.
    pub fn new(registry: Arc<dyn Registry>) -> Backend {
        Backend {
            registry,
            write_raw: None,
            settle: Duration::ZERO,
            _keep: None,
        }
    }

    /// With writes that may take up to `settle` to show in reads.
    pub fn settling(mut self, settle: Duration) -> Backend {
        self.settle = settle;
        self
    }

    /// With a writer of raw records.
    pub fn with_raw_writer(mut self, write: WriteRaw) -> Backend {
        self.write_raw = Some(write);
        self
    }

    /// Keeping `thing` alive as long as the backend.
    pub fn keeping(mut self, thing: impl Send + Sync + 'static) -> Backend {
        self._keep = Some(Box::new(thing));
        self
    }
}

/// The in-process registry. It holds typed records only, so it has no raw writer and no
/// broken records to skip.
pub fn memory() -> Backend {
    Backend::new(Arc::new(MemoryRegistry::new()))
}

/// The host-local registry, in a directory of its own.
pub fn local() -> Backend {
    let dir = tempfile::tempdir().expect("temporary directory");
    let registry = LocalRegistry::new(dir.path()).expect("local registry");
    let root = dir.path().to_owned();
    Backend::new(Arc::new(registry))
        .with_raw_writer(Box::new(move |service, node, content| {
            // The service names of the checks have no separators to escape.
            let path = root.join(service);
            std::fs::create_dir_all(&path).expect("create service directory");
            std::fs::write(path.join(format!("{node}.json")), content).expect("write raw record");
        }))
        .keeping(dir)
}

/// The etcd registry, on the etcd server shared by this test process.
pub fn etcd() -> Backend {
    let server = crate::etcd::shared();
    Backend::new(server.registry()).with_raw_writer(Box::new(move |service, node, content| {
        server.put_raw(
            &micro_runtime::registry::etcd::node_key(service, node),
            content,
        );
    }))
}

/// The mDNS registry, reading its own writes: one fresh [`MdnsRegistry`] on loopback. Its
/// own nodes show at once, so it needs no settle time, and it has no raw writer: raw records
/// would reach it only through the network, after its own writes already show (the
/// `mdns-conformance` binary names the check this leaves out, and why).
///
/// Multicasts: panics unless [`private_network`] holds.
pub fn mdns() -> Backend {
    require_private_network();
    Backend::new(Arc::new(MdnsRegistry::new().expect("mdns registry")))
}

/// Two fresh mDNS registries, as two processes on one network: nodes are registered through
/// one, read and watched through the other, so every record crosses the network. Raw
/// records are TXT records in the registry's scheme, announced by a third daemon.
///
/// Multicasts: panics unless [`private_network`] holds.
pub fn mdns_peers() -> Backend {
    require_private_network();
    let peers = MdnsPeers {
        writer: MdnsRegistry::new().expect("mdns registry"),
        reader: MdnsRegistry::new().expect("mdns registry"),
    };
    let raw = RawAnnouncer::new();
    Backend::new(Arc::new(peers))
        .settling(MDNS_SETTLE)
        .with_raw_writer(Box::new(move |service, node, content| {
            raw.announce(service, node, content)
        }))
}

/// The variable that names the network namespace a test made for the mDNS backends, as
/// `/proc/<pid>/ns/net` reads (`net:[4026532871]`).
pub const NETNS_VARIABLE: &str = "MICRO_TEST_NETNS";

/// Whether this process may multicast: it must be in the network namespace that
/// [`NETNS_VARIABLE`] names, made by the test, with no interface up but loopback, so no
/// packet can reach a real network. `Err` says why not.
pub fn private_network() -> Result<(), String> {
    let made = std::env::var(NETNS_VARIABLE)
        .map_err(|_| format!("{NETNS_VARIABLE} names no network namespace made for the test"))?;
    let current = std::fs::read_link("/proc/self/ns/net")
        .map_err(|e| format!("cannot read /proc/self/ns/net: {e}"))?;
    if current.to_string_lossy() != made {
        return Err(format!(
            "this is network namespace {}, not {made}, the one {NETNS_VARIABLE} names",
            current.display()
        ));
    }
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "up"])
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ip -o link show up` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // `1: lo: <LOOPBACK,UP,LOWER_UP> mtu ...`; a veth is `2: veth0@if3: ...`.
    let up: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect();
    if up != ["lo"] {
        return Err(format!("the interfaces up are {up:?}, not only lo"));
    }
    Ok(())
}

fn require_private_network() {
    if let Err(why) = private_network() {
        panic!(
            "the mDNS backends multicast, so they run only in a private network namespace with \
             nothing but loopback up (tests/tests/mdns.rs makes one): {why}"
        );
    }
}

/// Two mDNS registries seen as one: writes go through `writer`, reads and watches through
/// `reader`.
struct MdnsPeers {
    writer: MdnsRegistry,
    reader: MdnsRegistry,
}

#[async_trait::async_trait]
impl Registry for MdnsPeers {
    fn name(&self) -> &'static str {
        "mdns"
    }

    async fn register(&self, service: &Record, options: RegisterOptions) -> Result<(), Error> {
        self.writer.register(service, options).await
    }

    async fn deregister(&self, service: &Record) -> Result<(), Error> {
        self.writer.deregister(service).await
    }

    async fn get_service(&self, name: &str) -> Result<Vec<Record>, Error> {
        self.reader.get_service(name).await
    }

    async fn list_services(&self) -> Result<Vec<Record>, Error> {
        self.reader.list_services().await
    }

    async fn watch(&self, service: Option<&str>) -> Result<Watcher, Error> {
        self.reader.watch(service).await
    }
}

/// An mDNS daemon of its own that announces raw TXT records: the registry's envelope
/// (`txtvers`, `parts`, `r0`) around any content.
struct RawAnnouncer {
    daemon: ServiceDaemon,
    monitor: mdns_sd::Receiver<DaemonEvent>,
}

/// How long the raw announcer waits for its daemon to say a record went out.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(5);

impl RawAnnouncer {
    fn new() -> RawAnnouncer {
        let daemon = ServiceDaemon::new().expect("start an mdns daemon");
        // The registry's own choice: loopback only.
        daemon
            .disable_interface(IfKind::All)
            .expect("select interfaces");
        daemon
            .enable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
            .expect("select loopback");
        let monitor = daemon.monitor().expect("monitor the daemon");
        RawAnnouncer { daemon, monitor }
    }

    /// Announces instance `node` with `content` as its record, and returns once the daemon
    /// has sent it, so it is on the network before anything the caller does next. The
    /// service name is only in the content, if anywhere: peers read records, not instance
    /// names.
    fn announce(&self, _service: &str, node: &str, content: &str) {
        assert!(content.len() <= 250, "one TXT string holds the raw record");
        let txt = [("txtvers", "1"), ("parts", "1"), ("r0", content)];
        let mut info = ServiceInfo::new(
            SERVICE_TYPE,
            node,
            &format!("{node}.local."),
            "127.0.0.1",
            9,
            &txt[..],
        )
        .expect("describe a raw record");
        info.set_requires_probe(false);
        let fullname = info.get_fullname().to_owned();
        while self.monitor.try_recv().is_ok() {}
        self.daemon.register(info).expect("announce a raw record");
        let deadline = Instant::now() + ANNOUNCE_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.monitor.recv_timeout(left) {
                Ok(DaemonEvent::Announce(name, _)) if name == fullname => return,
                Ok(_) => {}
                Err(e) => panic!(
                    "the raw record {fullname} was not announced within {ANNOUNCE_WAIT:?}: {e}"
                ),
            }
        }
    }
}

impl Drop for RawAnnouncer {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// A service name no other check uses.
fn unique(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "conformance.{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A one-node record of `name`, version `latest`.
fn service(name: &str, node: &str) -> Record {
    Record {
        name: name.into(),
        version: "latest".into(),
        nodes: vec![Node {
            id: node.into(),
            address: "127.0.0.1:9".into(),
            metadata: BTreeMap::new(),
        }],
        ..Record::default()
    }
}

fn no_ttl() -> RegisterOptions {
    RegisterOptions::default()
}

fn ttl(ttl: Duration) -> RegisterOptions {
    RegisterOptions { ttl }
}

/// Node ids of every version of `name`, sorted; empty when `NOT_FOUND`.
async fn node_ids(reg: &dyn Registry, name: &str) -> Vec<String> {
    match reg.get_service(name).await {
        Ok(versions) => {
            let mut ids: Vec<String> = versions
                .into_iter()
                .flat_map(|s| s.nodes)
                .map(|n| n.id)
                .collect();
            ids.sort();
            ids
        }
        Err(e) if e.code() == Code::NotFound => Vec::new(),
        Err(e) => panic!("get_service({name}): {e}"),
    }
}

/// Reads with `read` until `done` holds of what it read or the backend's settle time has
/// passed, and returns the last read: a single read where writes show at once.
async fn settled<T, F: Future<Output = T>>(
    b: &Backend,
    mut read: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let until = Instant::now() + b.settle;
    loop {
        let got = read().await;
        if done(&got) || Instant::now() >= until {
            return got;
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// Asserts that the node ids of `name` are `want` (sorted), once the writes settled.
async fn assert_ids(b: &Backend, name: &str, want: &[&str]) {
    let reg = &*b.registry;
    let got = settled(b, || node_ids(reg, name), |ids| ids.as_slice() == want).await;
    assert_eq!(got, want, "node ids of {name}, settle time {:?}", b.settle);
}

/// The next event, which must come within [`EVENT_TIMEOUT`].
async fn next_event(w: &mut Watcher) -> Change {
    match tokio::time::timeout(EVENT_TIMEOUT, w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        Ok(Some(Err(e))) => panic!("watch error: {e}"),
        Ok(None) => panic!("the watch ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

/// Register two nodes, deregister them one by one: `NOT_FOUND` at the end; deregistering
/// what is not there is no error.
pub async fn register_deregister(b: &Backend) {
    let reg = &*b.registry;
    let name = unique("register");
    reg.register(&service(&name, "n1"), no_ttl()).await.unwrap();
    reg.register(&service(&name, "n2"), no_ttl()).await.unwrap();
    assert_ids(b, &name, &["n1", "n2"]).await;
    let got = reg.get_service(&name).await.unwrap();
    assert_eq!(got.len(), 1, "one version: {got:?}");
    assert_eq!(got[0].name, name);
    // Registering again changes nothing.
    reg.register(&service(&name, "n1"), no_ttl()).await.unwrap();
    assert_eq!(node_ids(reg, &name).await, ["n1", "n2"]);

    reg.deregister(&service(&name, "n1")).await.unwrap();
    assert_ids(b, &name, &["n2"]).await;
    reg.deregister(&service(&name, "n2")).await.unwrap();
    assert_ids(b, &name, &[]).await;
    let err = reg.get_service(&name).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    reg.deregister(&service(&name, "n2")).await.unwrap();
}

/// An unknown service is `NOT_FOUND` (404 for go-micro).
pub async fn not_found(b: &Backend) {
    let err = b.registry.get_service(&unique("nobody")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert_eq!(err.http_code(), 404);
}

/// `list_services` has every registered service, once per name and version.
pub async fn list(b: &Backend) {
    let reg = &*b.registry;
    let (a, c) = (unique("list-a"), unique("list-b"));
    reg.register(&service(&a, "a1"), no_ttl()).await.unwrap();
    reg.register(&service(&a, "a2"), no_ttl()).await.unwrap();
    reg.register(&service(&c, "b1"), no_ttl()).await.unwrap();
    let once = |listed: &[Record], name: &str| listed.iter().filter(|s| s.name == name).count();
    let listed = settled(
        b,
        || reg.list_services(),
        |l| {
            l.as_ref()
                .is_ok_and(|l| once(l, &a) == 1 && once(l, &c) == 1)
        },
    )
    .await
    .unwrap();
    for name in [&a, &c] {
        assert_eq!(once(&listed, name), 1, "{name} in {listed:?}");
    }
    reg.deregister(&service(&c, "b1")).await.unwrap();
    let listed = settled(
        b,
        || reg.list_services(),
        |l| l.as_ref().is_ok_and(|l| once(l, &c) == 0),
    )
    .await
    .unwrap();
    assert!(listed.iter().any(|s| s.name == a));
    assert!(!listed.iter().any(|s| s.name == c), "{listed:?}");
}

/// Two versions of one service are two entries, each with its nodes.
pub async fn versions(b: &Backend) {
    let reg = &*b.registry;
    let name = unique("versions");
    let mut v1 = service(&name, "old");
    v1.version = "1.0.0".into();
    let mut v2 = service(&name, "new");
    v2.version = "2.0.0".into();
    reg.register(&v1, no_ttl()).await.unwrap();
    reg.register(&v2, no_ttl()).await.unwrap();
    let mut got = settled(
        b,
        || reg.get_service(&name),
        |got| got.as_ref().is_ok_and(|got| got.len() == 2),
    )
    .await
    .unwrap();
    got.sort_by(|x, y| x.version.cmp(&y.version));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].version, "1.0.0");
    assert_eq!(got[0].nodes[0].id, "old");
    assert_eq!(got[1].version, "2.0.0");
    assert_eq!(got[1].nodes[0].id, "new");
    let listed_versions = |listed: &[Record]| -> BTreeSet<String> {
        listed
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.version.clone())
            .collect()
    };
    let want: BTreeSet<String> = ["1.0.0".to_owned(), "2.0.0".to_owned()].into();
    let listed = settled(
        b,
        || reg.list_services(),
        |l| l.as_ref().is_ok_and(|l| listed_versions(l) == want),
    )
    .await
    .unwrap();
    assert_eq!(listed_versions(&listed), want);
}

/// Service, node and endpoint metadata and endpoint descriptions come back as registered.
pub async fn metadata_and_endpoints(b: &Backend) {
    let reg = &*b.registry;
    let name = unique("metadata");
    let scalar = |n: &str, k: &str| Value {
        name: n.into(),
        kind: k.into(),
        values: Vec::new(),
    };
    let svc = Record {
        name: name.clone(),
        version: "1.2.3".into(),
        metadata: [("team", "core"), ("empty", "")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        endpoints: vec![
            Endpoint {
                name: "Greeter.Hello".into(),
                request: Some(Value {
                    name: "HelloRequest".into(),
                    kind: "HelloRequest".into(),
                    values: vec![
                        scalar("name", "string"),
                        Value {
                            name: "address".into(),
                            kind: "Address".into(),
                            values: vec![scalar("city", "string"), scalar("zip", "int32")],
                        },
                        scalar("tags", "[]string"),
                    ],
                }),
                response: Some(Value {
                    name: "HelloResponse".into(),
                    kind: "HelloResponse".into(),
                    values: vec![scalar("greeting", "string")],
                }),
                metadata: [("stream".to_owned(), "false".to_owned())].into(),
            },
            Endpoint {
                name: "Events.Created".into(),
                request: None,
                response: None,
                metadata: [("topic", "created"), ("subscriber", "true")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
            },
        ],
        nodes: vec![Node {
            id: format!("{name}-0d6f7c3e"),
            address: "127.0.0.1:4242".into(),
            metadata: [
                ("transport", "grpc"),
                ("protocol", "grpc"),
                ("unicode", "héllo ✓ \"quoted\""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        }],
    };
    reg.register(&svc, no_ttl()).await.unwrap();
    let want = [svc];
    let got = settled(
        b,
        || reg.get_service(&name),
        |got| got.as_ref().is_ok_and(|got| *got == want),
    )
    .await
    .unwrap();
    assert_eq!(got, want);
}

/// `/` in a service name or node id (escaped in etcd keys and local file names) comes back
/// as registered.
pub async fn slashes_in_names(b: &Backend) {
    let reg = &*b.registry;
    let name = format!("{}/api", unique("slash"));
    reg.register(&service(&name, "node/1"), no_ttl())
        .await
        .unwrap();
    assert_ids(b, &name, &["node/1"]).await;
    let got = reg.get_service(&name).await.unwrap();
    assert_eq!(got[0].name, name);
    assert_eq!(got[0].nodes[0].id, "node/1");
    reg.deregister(&service(&name, "node/1")).await.unwrap();
    assert_ids(b, &name, &[]).await;
}

/// A node id need only be unique within its service: two services with a node id in common
/// keep a node each, and deregistering one leaves the other.
pub async fn node_ids_per_service(b: &Backend) {
    let reg = &*b.registry;
    let (a, c) = (unique("same-id-a"), unique("same-id-b"));
    reg.register(&service(&a, "n1"), no_ttl()).await.unwrap();
    reg.register(&service(&c, "n1"), no_ttl()).await.unwrap();
    assert_ids(b, &a, &["n1"]).await;
    assert_ids(b, &c, &["n1"]).await;
    reg.deregister(&service(&a, "n1")).await.unwrap();
    assert_ids(b, &a, &[]).await;
    assert_ids(b, &c, &["n1"]).await;
}

/// A watch of one service sees its node created, updated and deleted, and nothing of other
/// services.
pub async fn watch(b: &Backend) {
    let reg = &*b.registry;
    let name = unique("watch");
    let mut w = reg.watch(Some(&name)).await.unwrap();
    // Another service's change must not reach this watcher.
    reg.register(&service(&unique("watch-other"), "x"), no_ttl())
        .await
        .unwrap();

    let mut svc = service(&name, "n1");
    reg.register(&svc, no_ttl()).await.unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!(ev.action, Action::Create, "{ev:?}");
    assert_eq!(ev.service.name, name);
    assert_eq!(ev.service.nodes[0].id, "n1");

    svc.nodes[0].metadata.insert("weight".into(), "2".into());
    reg.register(&svc, no_ttl()).await.unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!(ev.action, Action::Update, "{ev:?}");
    assert_eq!(ev.service.nodes[0].metadata["weight"], "2");

    reg.deregister(&svc).await.unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!(ev.action, Action::Delete, "{ev:?}");
    assert_eq!(ev.service.name, name);
    assert_eq!(ev.service.nodes[0].id, "n1");
}

/// A watch of every service sees this one's node among the rest.
pub async fn watch_all(b: &Backend) {
    let reg = &*b.registry;
    let name = unique("watch-all");
    let mut w = reg.watch(None).await.unwrap();
    reg.register(&service(&name, "n1"), no_ttl()).await.unwrap();
    loop {
        let ev = next_event(&mut w).await;
        if ev.service.name == name {
            assert_eq!(ev.action, Action::Create, "{ev:?}");
            assert_eq!(ev.service.nodes[0].id, "n1");
            break;
        }
    }
}

/// A node registered with a TTL and not registered again is gone after the TTL; a node
/// without one stays.
pub async fn ttl_expiry(b: &Backend) {
    let reg = &*b.registry;
    let name = unique("ttl");
    reg.register(&service(&name, "short"), ttl(SHORT_TTL))
        .await
        .unwrap();
    reg.register(&service(&name, "stays"), no_ttl())
        .await
        .unwrap();
    let start = Instant::now();
    assert_ids(b, &name, &["short", "stays"]).await;
    let limit = SHORT_TTL + Duration::from_secs(3);
    while node_ids(reg, &name).await != ["stays"] {
        assert!(
            start.elapsed() < limit,
            "the node with a TTL of {SHORT_TTL:?} is still there after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Gone because of the TTL, not right away.
    assert!(
        start.elapsed() >= SHORT_TTL - Duration::from_millis(600),
        "gone after {:?}, before its TTL of {SHORT_TTL:?}",
        start.elapsed()
    );
}

/// Registering a node again before its TTL runs out keeps it, past the TTL.
pub async fn heartbeat_keeps_alive(b: &Backend) {
    let reg = &*b.registry;
    let name = unique("heartbeat");
    let svc = service(&name, "n1");
    reg.register(&svc, ttl(SHORT_TTL)).await.unwrap();
    // Once it shows, it must never be missing.
    assert_ids(b, &name, &["n1"]).await;
    let start = Instant::now();
    while start.elapsed() < SHORT_TTL * 2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        reg.register(&svc, ttl(SHORT_TTL)).await.unwrap();
        assert_eq!(
            node_ids(reg, &name).await,
            ["n1"],
            "after {:?}",
            start.elapsed()
        );
    }
}

/// Broken raw records (not JSON, no name) are skipped: the good ones of the same service are
/// still returned, listing works, and a watch goes on.
pub async fn broken_records(b: &Backend) {
    let write = b.write_raw.as_ref().expect(
        "broken_records needs a backend with a raw writer: leave the check out of that \
         backend's list, with a comment saying why",
    );
    let reg = &*b.registry;
    let name = unique("broken");
    let mut w = reg.watch(Some(&name)).await.unwrap();
    write(&name, "not-json", "{not json");
    write(
        &name,
        "no-name",
        r#"{"name":"","nodes":[{"id":"no-name","address":"x"}]}"#,
    );
    write(&name, "wrong-types", r#"{"name":7,"nodes":"x"}"#);
    reg.register(&service(&name, "good"), no_ttl())
        .await
        .unwrap();
    assert_ids(b, &name, &["good"]).await;
    let listed = reg.list_services().await.unwrap();
    assert!(listed.iter().any(|s| s.name == name), "{listed:?}");
    let ev = next_event(&mut w).await;
    assert_eq!(ev.action, Action::Create, "{ev:?}");
    assert_eq!(ev.service.nodes[0].id, "good");
}
