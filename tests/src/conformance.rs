//! The registry conformance suite: one set of checks that every [`Registry`] backend passes,
//! so that code written against one behaves the same on the others.
//!
//! Each check takes a [`Backend`]: the registry, and a way to write a raw, broken record
//! where the backend stores raw records. Checks use service names of their own, so they can
//! share a backend (one etcd server for the whole run). `tests/tests/registry_conformance.rs`
//! runs every check against every backend; adding a backend there is one line.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use micro_runtime::Code;
use micro_runtime::Registry;
use micro_runtime::registry::local::LocalRegistry;
use micro_runtime::registry::memory::MemoryRegistry;
use micro_runtime::registry::{
    Action, Endpoint, Event, Metadata, Node, RegisterOptions, Service, Value, Watcher,
};

/// Writes a raw record (`service`, `node id`, `content`) the way the backend stores records,
/// bypassing the registry.
pub type WriteRaw = Box<dyn Fn(&str, &str, &str) + Send + Sync>;

/// How long a watch event may take to arrive (the local backend polls every 250 ms).
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The TTL of the expiry checks: etcd's shortest lease with its default timings.
const SHORT_TTL: Duration = Duration::from_secs(2);

/// A backend under test.
pub struct Backend {
    /// The registry.
    pub registry: Arc<dyn Registry>,
    /// Writes a raw record; `None` for a backend that keeps no raw form.
    pub write_raw: Option<WriteRaw>,
    /// What the registry needs alive (a temporary directory).
    _keep: Option<Box<dyn Send + Sync>>,
}

impl Backend {
    /// A backend of `registry`, without raw records.
    pub fn new(registry: Arc<dyn Registry>) -> Backend {
        Backend {
            registry,
            write_raw: None,
            _keep: None,
        }
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
fn service(name: &str, node: &str) -> Service {
    Service {
        name: name.into(),
        version: "latest".into(),
        nodes: vec![Node {
            id: node.into(),
            address: "127.0.0.1:9".into(),
            metadata: Metadata::new(),
        }],
        ..Service::default()
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

/// The next event, which must come within [`EVENT_TIMEOUT`].
async fn next_event(w: &mut Watcher) -> Event {
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
    let got = reg.get_service(&name).await.unwrap();
    assert_eq!(got.len(), 1, "one version: {got:?}");
    assert_eq!(got[0].name, name);
    assert_eq!(node_ids(reg, &name).await, ["n1", "n2"]);
    // Registering again changes nothing.
    reg.register(&service(&name, "n1"), no_ttl()).await.unwrap();
    assert_eq!(node_ids(reg, &name).await, ["n1", "n2"]);

    reg.deregister(&service(&name, "n1")).await.unwrap();
    assert_eq!(node_ids(reg, &name).await, ["n2"]);
    reg.deregister(&service(&name, "n2")).await.unwrap();
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
    let listed = reg.list_services().await.unwrap();
    for name in [&a, &c] {
        let entries = listed.iter().filter(|s| s.name == *name).count();
        assert_eq!(entries, 1, "{name} in {listed:?}");
    }
    reg.deregister(&service(&c, "b1")).await.unwrap();
    let listed = reg.list_services().await.unwrap();
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
    let mut got = reg.get_service(&name).await.unwrap();
    got.sort_by(|x, y| x.version.cmp(&y.version));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].version, "1.0.0");
    assert_eq!(got[0].nodes[0].id, "old");
    assert_eq!(got[1].version, "2.0.0");
    assert_eq!(got[1].nodes[0].id, "new");
    let listed: BTreeSet<_> = reg
        .list_services()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.name == name)
        .map(|s| s.version)
        .collect();
    assert_eq!(listed, ["1.0.0".to_owned(), "2.0.0".to_owned()].into());
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
    let svc = Service {
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
    let got = reg.get_service(&name).await.unwrap();
    assert_eq!(got, [svc]);
}

/// `/` in a service name or node id (escaped in etcd keys and local file names) comes back
/// as registered.
pub async fn slashes_in_names(b: &Backend) {
    let reg = &*b.registry;
    let name = format!("{}/api", unique("slash"));
    reg.register(&service(&name, "node/1"), no_ttl())
        .await
        .unwrap();
    let got = reg.get_service(&name).await.unwrap();
    assert_eq!(got[0].name, name);
    assert_eq!(got[0].nodes[0].id, "node/1");
    reg.deregister(&service(&name, "node/1")).await.unwrap();
    assert_eq!(node_ids(reg, &name).await, Vec::<String>::new());
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
    assert_eq!(node_ids(reg, &name).await, ["short", "stays"]);
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
    assert_eq!(node_ids(reg, &name).await, ["good"]);
    let listed = reg.list_services().await.unwrap();
    assert!(listed.iter().any(|s| s.name == name), "{listed:?}");
    let ev = next_event(&mut w).await;
    assert_eq!(ev.action, Action::Create, "{ev:?}");
    assert_eq!(ev.service.nodes[0].id, "good");
}
