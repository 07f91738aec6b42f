//! The etcd registry against real etcd servers (started by `micro_tests::etcd` on free
//! 127.0.0.1 ports): a cluster losing a member, go-micro's record format as `etcdctl` shows
//! it, renewals on one keepalive stream without re-puts, a killed server's record expiring,
//! etcd going away and coming back, TLS with client certificates, and authentication.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::registry::etcd::{EtcdRegistry, node_key};
use micro_runtime::registry::{Action, Change, Node, Record, RegisterOptions, Watcher};
use micro_runtime::{Code, Options, Registry, Service};
use micro_tests::etcd::{Etcd, eventually};
use micro_tests::*;
use serde::Deserialize;

/// Bound on each test.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The record a go-micro v5 greeter wrote (from the reference doc).
const GO_MICRO_KEY: &str = "/micro/registry/greeter/greeter-7619ed0a-6a94-4152-9335-55c693fe026c";
const GO_MICRO_RECORD: &str = r#"{"name":"greeter","version":"latest","metadata":null,"endpoints":[{"request":{"name":"HelloRequest","type":"HelloRequest","values":[{"name":"name","type":"string","values":null}]},"response":{"name":"HelloResponse","type":"HelloResponse","values":[{"name":"greeting","type":"string","values":null}]},"metadata":{},"name":"Greeter.Hello"}],"nodes":[{"metadata":{"broker":"http","protocol":"grpc","registry":"etcd","server":"grpc","transport":"grpc"},"id":"greeter-7619ed0a-6a94-4152-9335-55c693fe026c","address":"127.0.0.1:42135"}]}"#;

/// go-micro's `registry.Service`, with its JSON names and nothing else: decoding our records
/// with it shows a Go service can read them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoService {
    name: String,
    version: String,
    metadata: Option<HashMap<String, String>>,
    endpoints: Option<Vec<GoEndpoint>>,
    nodes: Option<Vec<GoNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoEndpoint {
    name: String,
    request: Option<GoValue>,
    response: Option<GoValue>,
    metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoValue {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    values: Option<Vec<GoValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoNode {
    id: String,
    address: String,
    metadata: Option<HashMap<String, String>>,
}

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
}

fn record(name: &str, node: &str) -> Record {
    Record {
        name: name.into(),
        version: "latest".into(),
        nodes: vec![Node {
            id: node.into(),
            address: "127.0.0.1:9".into(),
            ..Node::default()
        }],
        ..Record::default()
    }
}

fn ttl(secs: u64) -> RegisterOptions {
    RegisterOptions {
        ttl: Duration::from_secs(secs),
    }
}

/// Node ids of `name`; empty when `NOT_FOUND`, `None` on other errors.
async fn node_ids(reg: &dyn Registry, name: &str) -> Option<Vec<String>> {
    match reg.get_service(name).await {
        Ok(v) => {
            let mut ids: Vec<String> = v.into_iter().flat_map(|s| s.nodes).map(|n| n.id).collect();
            ids.sort();
            Some(ids)
        }
        Err(e) if e.code() == Code::NotFound => Some(Vec::new()),
        Err(_) => None,
    }
}

/// The next event of `w` that concerns node `id` (any node for `""`), within 15 s.
async fn event_for(w: &mut Watcher, id: &str) -> Change {
    let limit = Duration::from_secs(15);
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, w.next()).await {
            Ok(Some(Ok(ev))) if id.is_empty() || ev.service.nodes.iter().any(|n| n.id == id) => {
                return ev;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("watch error: {e}"),
            Ok(None) => panic!("the watch ended"),
            Err(_) => panic!("no event for {id} within {limit:?}"),
        }
    }
}

/// The index of the cluster's leader, from `etcdctl endpoint status`.
fn leader(etcd: &Etcd) -> usize {
    let out = etcd.etcdctl_ok(&["endpoint", "status", "-w", "json"]);
    let status: Vec<serde_json::Value> = serde_json::from_str(&out).expect("endpoint status JSON");
    status
        .iter()
        .position(|s| {
            s["Status"]["leader"].as_u64().is_some()
                && s["Status"]["leader"] == s["Status"]["header"]["member_id"]
        })
        .unwrap_or_else(|| panic!("no leader in {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_keeps_working_when_a_member_dies() {
    bounded(async {
        const TTL: u64 = 5;
        let mut etcd = Etcd::cluster(3);
        let reg = etcd.registry();
        let a = record("cluster", "a");
        reg.register(&a, ttl(TTL)).await.unwrap();
        let mut w = reg.watch(Some("cluster")).await.unwrap();
        assert_eq!(node_ids(&*reg, "cluster").await.unwrap(), ["a"]);

        // The leader: losing it also costs an election.
        let dead = leader(&etcd);
        etcd.kill(dead);

        // Heartbeats past the TTL through the two members left: `a` renewed, `b` new. A
        // request already on its way to the dead member may fail; the next one must not.
        let b = record("cluster", "b");
        let start = Instant::now();
        let mut failures = Vec::new();
        while start.elapsed() < Duration::from_secs(TTL + 2) {
            for node in [&a, &b] {
                if let Err(e) = reg.register(node, ttl(TTL)).await {
                    failures.push(e);
                }
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        assert!(failures.len() <= 1, "failed heartbeats: {failures:?}");
        assert_eq!(node_ids(&*reg, "cluster").await.unwrap(), ["a", "b"]);

        // The watch went on too: `b` came and `a` never lapsed until it left. (`a` may be put
        // again if its keepalive was with the dead member: a re-put, not a lapse.)
        reg.deregister(&a).await.unwrap();
        let mut seen = Vec::new();
        while seen.last() != Some(&(Action::Delete, "a".to_owned())) {
            let ev = event_for(&mut w, "").await;
            seen.push((ev.action, ev.service.nodes[0].id.clone()));
        }
        let lapses = seen.iter().filter(|e| e.0 == Action::Delete).count();
        assert_eq!(lapses, 1, "only the final delete of a: {seen:?}");
        assert!(seen.contains(&(Action::Create, "b".to_owned())), "{seen:?}");
        assert_eq!(node_ids(&*reg, "cluster").await.unwrap(), ["b"]);
        // A registry made now, listing all three endpoints, works too.
        assert_eq!(node_ids(&*etcd.registry(), "cluster").await.unwrap(), ["b"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_shows_go_micro_records() {
    bounded(async {
        let etcd = Etcd::single();
        let reg = etcd.registry();
        // A node id with a `/`, escaped to `-` in the key only.
        let options = Options::parse_from(["greeter", "--server_id", "greeter/blue-1"]).unwrap();
        let server = start_greeter_with(
            Service::builder()
                .name("greeter")
                .registry(reg.clone())
                .options(options),
            TestGreeter::default(),
        )
        .await;
        let addr = server.server().local_addr().unwrap();

        let out = etcd.etcdctl_ok(&["get", "--prefix", "/micro/registry/"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "one key and its value: {out}");
        assert_eq!(lines[0], "/micro/registry/greeter/greeter-blue-1");
        let value = lines[1];
        assert!(
            !value.contains(": ") && !value.contains(", "),
            "compact JSON: {value}"
        );
        let rec: GoService = serde_json::from_str(value).expect("go-micro's Service");
        assert_eq!(rec.name, "greeter");
        assert_eq!(rec.version, "latest");
        assert_eq!(rec.metadata, Some(HashMap::new()), "no service metadata");
        let endpoints = rec.endpoints.unwrap();
        assert_eq!(endpoints.len(), 1);
        let ep = &endpoints[0];
        assert_eq!(ep.name, "Greeter.Hello");
        assert_eq!(ep.metadata.as_ref().unwrap()["stream"], "false");
        let req = ep.request.as_ref().unwrap();
        assert_eq!(
            (req.name.as_str(), req.kind.as_str()),
            ("HelloRequest", "HelloRequest")
        );
        let field = &req.values.as_ref().unwrap()[0];
        assert_eq!(
            (field.name.as_str(), field.kind.as_str()),
            ("name", "string")
        );
        assert!(
            field.values.is_none(),
            "a scalar's values are null, as go-micro writes"
        );
        let rsp = ep.response.as_ref().unwrap();
        assert_eq!(rsp.values.as_ref().unwrap()[0].name, "greeting");
        let nodes = rec.nodes.unwrap();
        assert_eq!(nodes.len(), 1, "one node per key");
        assert_eq!(nodes[0].id, "greeter/blue-1");
        assert_eq!(nodes[0].address, addr.to_string());
        let md = nodes[0].metadata.as_ref().unwrap();
        for (k, v) in [
            ("registry", "etcd"),
            ("transport", "grpc"),
            ("server", "grpc"),
            ("protocol", "grpc"),
        ] {
            assert_eq!(md[k], v, "node metadata {k}");
        }

        // Another process (here: another registry instance) finds the server and calls it.
        let client = GreeterClient::new("greeter", caller(etcd.registry()).client());
        let rsp = client
            .hello(HelloRequest {
                name: "etcd".into(),
            })
            .await
            .unwrap();
        assert_eq!(rsp.greeting, "Hello, etcd!");

        // A record a go-micro service wrote is read as is, next to ours.
        let go: GoService = serde_json::from_str(GO_MICRO_RECORD).expect("the fixture decodes");
        assert_eq!(go.nodes.unwrap()[0].address, "127.0.0.1:42135");
        assert_eq!(go.metadata, None);
        etcd.put_raw(GO_MICRO_KEY, GO_MICRO_RECORD);
        let got = reg.get_service("greeter").await.unwrap();
        assert_eq!(got.len(), 1, "one version, latest: {got:?}");
        assert_eq!(got[0].nodes.len(), 2);
        let go_node = got[0]
            .nodes
            .iter()
            .find(|n| n.address == "127.0.0.1:42135")
            .expect("the go-micro node");
        assert_eq!(go_node.id, "greeter-7619ed0a-6a94-4152-9335-55c693fe026c");
        assert_eq!(go_node.metadata["server"], "grpc");
        let go_ep = &got[0].endpoints[0];
        assert_eq!(go_ep.name, "Greeter.Hello");
        assert_eq!(go_ep.request.as_ref().unwrap().values[0].kind, "string");

        // Stopping deregisters: only the go-micro record is left.
        server.stop().await.unwrap();
        let out = etcd.etcdctl_ok(&["get", "--prefix", "--keys-only", "/micro/registry/"]);
        assert_eq!(out.split_whitespace().collect::<Vec<_>>(), [GO_MICRO_KEY]);
        assert_eq!(node_key("greeter", "greeter/blue-1"), lines[0]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_share_one_keepalive_stream_and_put_nothing() {
    bounded(async {
        const KEEPALIVE_STREAMS: &str = r#"grpc_server_started_total{grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"}"#;
        let etcd = Etcd::single();
        let reg = etcd.registry();
        let svc = record("steady", "n1");
        let key = node_key("steady", "n1");
        reg.register(&svc, ttl(2)).await.unwrap();
        let put_at = etcd.etcdctl_ok(&["get", &key, "-w", "json"]);
        // Ten renewals over 5 s, more than twice the TTL.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            reg.register(&svc, ttl(2)).await.unwrap();
        }
        assert_eq!(node_ids(&*reg, "steady").await.unwrap(), ["n1"]);
        // Not put again: the key's revisions are the first put's.
        let now = etcd.etcdctl_ok(&["get", &key, "-w", "json"]);
        let revisions = |json: &str| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let kv = &v["kvs"][0];
            (kv["mod_revision"].clone(), kv["version"].clone(), kv["lease"].clone())
        };
        assert_eq!(revisions(&now), revisions(&put_at));
        assert_eq!(etcd.metric(0, KEEPALIVE_STREAMS), 1.0, "one keepalive stream for all renewals");

        // A changed node is put again, on a new lease.
        let mut changed = svc.clone();
        changed.nodes[0].address = "127.0.0.1:10".into();
        reg.register(&changed, ttl(2)).await.unwrap();
        let after = revisions(&etcd.etcdctl_ok(&["get", &key, "-w", "json"]));
        assert_ne!(after.0, revisions(&put_at).0);
        assert_ne!(after.2, revisions(&put_at).2);
        assert_eq!(reg.get_service("steady").await.unwrap()[0].nodes[0].address, "127.0.0.1:10");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_vanishes_within_its_ttl() {
    bounded(async {
        const TTL: Duration = Duration::from_secs(2);
        let etcd = Etcd::single();
        let reg = etcd.registry();
        let mut w = reg.watch(Some("greeter")).await.unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        let server = Command::new(example_binary("greeter-server"))
            .args(["--server_address", "127.0.0.1:0", "--registry", "etcd"])
            .args(["--registry_address", &etcd.endpoints()])
            .args(["--register_ttl", "2", "--register_interval", "1"])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start greeter-server");
        let mut server = Proc(server);
        let started = Instant::now();
        let ids = loop {
            if let Ok(Some(status)) = server.0.try_wait() {
                let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
                panic!("greeter-server exited ({status}): {stderr}");
            }
            if let Some(ids) = node_ids(&*reg, "greeter")
                .await
                .filter(|ids| !ids.is_empty())
            {
                break ids;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "greeter-server did not register within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(ids.len(), 1);
        let ev = event_for(&mut w, &ids[0]).await;
        assert_eq!(ev.action, Action::Create);
        assert_eq!(ev.service.nodes[0].metadata["registry"], "etcd");

        // While it runs, its heartbeat keeps the record past the TTL.
        tokio::time::sleep(TTL + Duration::from_secs(1)).await;
        assert_eq!(node_ids(&*reg, "greeter").await.unwrap(), ids);

        // SIGKILL: no deregistration; the lease runs out.
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        let killed = Instant::now();
        eventually(
            TTL + Duration::from_secs(3),
            "the record to expire",
            || async {
                node_ids(&*reg, "greeter")
                    .await
                    .filter(|ids| ids.is_empty())
            },
        )
        .await;
        let gone = killed.elapsed();
        // etcd expires leases in rounds of 500 ms; allow for that and a poll.
        assert!(
            gone <= TTL + Duration::from_millis(1000),
            "gone {gone:?} after the kill, TTL {TTL:?}"
        );
        let ev = event_for(&mut w, &ids[0]).await;
        assert_eq!(ev.action, Action::Delete, "expiry is a delete: {ev:?}");
        assert_eq!(ev.service.name, "greeter");
    })
    .await;
}

/// Hex ids of etcd's leases, as `etcdctl lease list` prints them.
fn leases(etcd: &Etcd) -> Vec<String> {
    etcd.etcdctl_ok(&["lease", "list"])
        .lines()
        .skip(1)
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_comes_back_after_etcd_restarts() {
    bounded(async {
        let mut etcd = Etcd::single();
        let reg = etcd.registry();
        let server = start_greeter_with(
            Service::builder()
                .name("greeter")
                .registry(reg.clone())
                .register_ttl(Duration::from_secs(2), Duration::from_millis(500)),
            TestGreeter::default(),
        )
        .await;
        let ids = node_ids(&*reg, "greeter").await.unwrap();
        assert_eq!(ids.len(), 1);
        let mut w = reg.watch(Some("greeter")).await.unwrap();

        etcd.stop(0);
        // Down: errors, UNAVAILABLE, within the 5 s bound; no hang.
        for (what, reg) in [
            ("the connected registry", reg.clone()),
            ("a new registry", etcd.registry()),
        ] {
            let start = Instant::now();
            let err = reg.get_service("greeter").await.unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{what}: {err}");
            assert!(
                start.elapsed() < Duration::from_millis(5500),
                "{what}: {:?}",
                start.elapsed()
            );
            let err = reg.watch(None).await.unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{what}: {err}");
            let err = reg
                .register(&record("other", "x"), ttl(2))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{what}: {err}");
        }
        // Down for longer than the TTL while the server's heartbeats fail.
        tokio::time::sleep(Duration::from_secs(3)).await;

        etcd.restart(0);
        let back = eventually(
            Duration::from_secs(15),
            "the registration after the restart",
            || async { node_ids(&*reg, "greeter").await.filter(|now| *now == ids) },
        )
        .await;
        assert_eq!(back, ids);

        // The lease lost (revoked, as a replaced etcd would have lost it): the next heartbeat
        // grants a new lease and puts the record again. The watch, across the restart, sees
        // both.
        let old = leases(&etcd);
        assert!(!old.is_empty());
        for id in &old {
            etcd.etcdctl_ok(&["lease", "revoke", id]);
        }
        let ev = event_for(&mut w, &ids[0]).await;
        assert_eq!(ev.action, Action::Delete, "{ev:?}");
        let ev = event_for(&mut w, &ids[0]).await;
        assert_eq!(ev.action, Action::Create, "{ev:?}");
        assert_eq!(node_ids(&*reg, "greeter").await.unwrap(), ids);
        let now = leases(&etcd);
        assert!(
            now.iter().all(|l| !old.contains(l)),
            "a new lease: {old:?} then {now:?}"
        );
        server.stop().await.unwrap();
        assert_eq!(
            node_ids(&*reg, "greeter").await.unwrap(),
            Vec::<String>::new()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_across_an_etcd_whose_data_was_wiped_says_so() {
    bounded(async {
        let mut etcd = Etcd::single();
        let reg = etcd.registry();
        // Some history: the revision moves past what a fresh etcd starts at.
        for i in 0..10 {
            reg.register(&record("history", &format!("n{i}")), ttl(0))
                .await
                .unwrap();
        }
        let mut w = reg.watch(None).await.unwrap();
        reg.register(&record("greeter", "a"), ttl(0)).await.unwrap();
        assert_eq!(event_for(&mut w, "a").await.action, Action::Create);

        // Back on the same address with no data: revisions start again at 1. Resuming the
        // watch from the old revision would wait, silently, for changes numbered past it.
        etcd.kill(0);
        std::fs::remove_dir_all(etcd.data_dir(0)).unwrap();
        etcd.restart(0);
        let err = match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
            Ok(Some(Err(e))) => e,
            Ok(Some(Ok(ev))) => panic!("an event from a wiped etcd: {ev:?}"),
            Ok(None) => panic!("the watch ended without an error"),
            Err(_) => panic!("the watch said nothing within 30 s of etcd's reset"),
        };
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(err.detail().contains("reset"), "{err}");
        // A new watch works on the new etcd.
        let mut w = reg.watch(None).await.unwrap();
        reg.register(&record("greeter", "b"), ttl(0)).await.unwrap();
        assert_eq!(event_for(&mut w, "b").await.action, Action::Create);
    })
    .await;
}

/// A watch on a quiet prefix (nothing registered or removed for a while) resumes after its
/// etcd compacted the revisions it saw no changes in and its stream broke: etcd's progress
/// notifications move the resume point on (the watch ended with a "compacted away" error
/// although it had missed nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_watch_resumes_past_a_compaction() {
    bounded(async {
        let mut etcd =
            Etcd::single_with(&["--experimental-watch-progress-notify-interval", "200ms"]);
        let reg = etcd.registry();
        let mut w = reg.watch(None).await.unwrap();
        // The revision moves on, nothing changes under /micro/registry/.
        for i in 0..5 {
            etcd.put_raw(&format!("/elsewhere/{i}"), "x");
        }
        let status = etcd.etcdctl_ok(&["get", "/elsewhere/4", "-w", "json"]);
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        let revision = status["header"]["revision"].as_i64().unwrap();
        // A progress notification or more reaches the watch.
        tokio::time::sleep(Duration::from_secs(1)).await;
        etcd.etcdctl_ok(&["compact", &revision.to_string()]);
        etcd.kill(0);
        etcd.restart(0);
        eventually(Duration::from_secs(15), "etcd back", || async {
            reg.register(&record("greeter", "after"), ttl(0)).await.ok()
        })
        .await;
        let ev = match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
            Ok(Some(Ok(ev))) => ev,
            Ok(Some(Err(e))) => panic!("the watch failed: {e}"),
            Ok(None) => panic!("the watch ended"),
            Err(_) => panic!("no event within 30 s"),
        };
        assert_eq!(ev.action, Action::Create, "{ev:?}");
        assert_eq!(ev.service.nodes[0].id, "after");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate() {
    bounded(async {
        let etcd = Etcd::single_tls();
        let reg = etcd.registry();
        assert!(etcd.endpoints().starts_with("https://"));
        let mut w = reg.watch(Some("secure")).await.unwrap();
        reg.register(&record("secure", "n1"), ttl(5)).await.unwrap();
        assert_eq!(node_ids(&*reg, "secure").await.unwrap(), ["n1"]);
        assert_eq!(event_for(&mut w, "n1").await.action, Action::Create);

        // etcd wants a client certificate: without one, an error (no hang, no panic).
        let mut options = etcd.options();
        options.cert_file = None;
        options.key_file = None;
        let anonymous: Arc<dyn Registry> = Arc::new(EtcdRegistry::new(options).unwrap());
        let start = Instant::now();
        let err = anonymous.get_service("secure").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(start.elapsed() < Duration::from_millis(5500));
        // An unknown CA: the server is not trusted.
        let mut options = etcd.options();
        options.ca_file = None;
        let untrusting: Arc<dyn Registry> = Arc::new(EtcdRegistry::new(options).unwrap());
        assert!(untrusting.get_service("secure").await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_with_a_user_and_password() {
    bounded(async {
        // Tokens that expire quickly, to see the registry get a new one.
        let etcd = Etcd::single_with(&["--auth-token-ttl", "2"]);
        etcd.etcdctl_ok(&["user", "add", "root:rootpw"]);
        etcd.etcdctl_ok(&["user", "grant-role", "root", "root"]);
        etcd.etcdctl_ok(&["auth", "enable"]);

        let mut options = etcd.options();
        options.username = Some("root".into());
        options.password = Some("rootpw".into());
        let reg: Arc<dyn Registry> = Arc::new(EtcdRegistry::new(options.clone()).unwrap());
        reg.register(&record("private", "n1"), ttl(10))
            .await
            .unwrap();
        let mut w = reg.watch(Some("private")).await.unwrap();
        assert_eq!(node_ids(&*reg, "private").await.unwrap(), ["n1"]);
        // Past the token's TTL: a new token, transparently.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(node_ids(&*reg, "private").await.unwrap(), ["n1"]);
        reg.register(&record("private", "n2"), ttl(10))
            .await
            .unwrap();
        assert_eq!(event_for(&mut w, "n2").await.action, Action::Create);
        reg.register(&record("private", "n1"), ttl(10))
            .await
            .unwrap();

        // Without a user, or with a wrong password: refused, and said so.
        let anonymous: Arc<dyn Registry> = Arc::new(EtcdRegistry::new(etcd.options()).unwrap());
        let err = anonymous.get_service("private").await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err}");
        options.password = Some("wrong".into());
        let wrong: Arc<dyn Registry> = Arc::new(EtcdRegistry::new(options).unwrap());
        let err = wrong.get_service("private").await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err}");
        assert!(err.detail().contains("authentication failed"), "{err}");
    })
    .await;
}
