//! Failures the client rides out: a node killed mid-load and the registry itself gone
//! (against a real etcd), and a node that froze with a connection to it open.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::registry::etcd::EtcdRegistry;
use micro_runtime::{CallOptions, ClientOptions, Registry, Service};
use micro_tests::etcd::{Etcd, eventually};
use micro_tests::*;

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

async fn node_count(reg: &dyn Registry) -> usize {
    reg.get_service("greeter")
        .await
        .map(|v| v.iter().map(|s| s.nodes.len()).sum())
        .unwrap_or(0)
}

fn start_server(etcd: &Etcd) -> Proc {
    let child = Command::new(example_binary("greeter-server"))
        .args(["--server_address", "127.0.0.1:0", "--registry", "etcd"])
        .args(["--registry_address", &etcd.endpoints()])
        .args(["--register_ttl", "2", "--register_interval", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start greeter-server");
    Proc(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_costs_no_idempotent_call() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let etcd = Etcd::single();
        let reg: Arc<dyn Registry> = Arc::new(EtcdRegistry::new(etcd.options()).unwrap());
        let mut servers: Vec<Proc> = (0..3).map(|_| start_server(&etcd)).collect();
        eventually(Duration::from_secs(30), "three nodes", || async {
            (node_count(&*reg).await == 3).then_some(())
        })
        .await;

        let caller = Service::builder()
            .name("caller")
            .registry(reg.clone())
            .selector(Arc::new(micro_runtime::selector::RoundRobin))
            .build()
            .unwrap();
        let client = GreeterClient::new("greeter", caller.client());
        let opts = CallOptions::new()
            .idempotent(true)
            .timeout(Duration::from_secs(10));
        const CALLS: usize = 600;
        let done = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (client, opts, done, failed) =
                    (client.clone(), opts.clone(), done.clone(), failed.clone());
                tokio::spawn(async move {
                    while done.fetch_add(1, Ordering::SeqCst) < CALLS {
                        match client
                            .hello_with(HelloRequest { name: "x".into() }, &opts)
                            .await
                        {
                            Ok(rsp) => assert_eq!(rsp.greeting, "Hello, x!"),
                            Err(e) => {
                                eprintln!("call failed: {e}");
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        // A third of the way in, one node dies without a word.
        while done.load(Ordering::SeqCst) < CALLS / 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        servers[0].0.kill().unwrap();
        servers[0].0.wait().unwrap();
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!(failed.load(Ordering::SeqCst), 0, "idempotent calls failed");

        // Within its TTL the dead node leaves the registry, and the calls go on.
        eventually(
            Duration::from_secs(6),
            "the dead node to expire",
            || async { (node_count(&*reg).await == 2).then_some(()) },
        )
        .await;
        for _ in 0..30 {
            client
                .hello_with(HelloRequest { name: "x".into() }, &opts)
                .await
                .expect("call after expiry");
        }
        drop(servers);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_keep_calling_known_nodes_while_etcd_is_down() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut etcd = Etcd::single();
        let reg: Arc<dyn Registry> = Arc::new(EtcdRegistry::new(etcd.options()).unwrap());
        let builder = Service::builder()
            .name("greeter")
            .registry(reg.clone())
            .register_ttl(Duration::from_secs(5), Duration::from_secs(1));
        let server = start_greeter_with(builder, TestGreeter::default()).await;

        // A short cache TTL: every call past it asks the registry again.
        let client_options = ClientOptions {
            cache_ttl: Duration::from_millis(100),
            ..ClientOptions::default()
        };
        let caller_reg: Arc<dyn Registry> = Arc::new(EtcdRegistry::new(etcd.options()).unwrap());
        let caller = Service::builder()
            .name("caller")
            .registry(caller_reg)
            .client_options(client_options)
            .build()
            .unwrap();
        let client = GreeterClient::new("greeter", caller.client());
        let hello = || HelloRequest { name: "x".into() };
        client.hello(hello()).await.unwrap();
        assert!(caller.client().registry_health().reachable);

        etcd.stop(0);
        for _ in 0..20 {
            let rsp = client
                .hello(hello())
                .await
                .expect("known node called while etcd is down");
            assert_eq!(rsp.greeting, "Hello, x!");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let health = caller.client().registry_health();
        assert!(!health.reachable, "the outage is reported");
        assert!(health.last_error.is_some());

        etcd.restart(0);
        eventually(
            Duration::from_secs(20),
            "the registry to be reachable again",
            || async {
                client.hello(hello()).await.unwrap();
                caller.client().registry_health().reachable.then_some(())
            },
        )
        .await;
        server.stop().await.unwrap();
    })
    .await
    .expect("test timed out");
}

/// A node that froze (SIGSTOP: its socket stays open, nothing answers) with a connection
/// to it in the pool: with keepalive on, the pings go unanswered, the connection is
/// dropped, and the call on it fails UNAVAILABLE instead of waiting out its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_drops_the_connection_to_a_frozen_node() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        let server = Proc(
            Command::new(example_binary("greeter-server"))
                .args(["--server_address", "127.0.0.1:0"])
                .args(["--registry", "local", "--registry_address", dir_arg])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start greeter-server"),
        );
        let reg: Arc<dyn Registry> =
            Arc::new(micro_runtime::registry::local::LocalRegistry::new(dir.path()).unwrap());
        let client_options = ClientOptions {
            keepalive: Some(Duration::from_millis(200)),
            // Generous, for a loaded machine: a live node answers well within it.
            keepalive_timeout: Duration::from_secs(3),
            retries: 0,
            ..ClientOptions::default()
        };
        let caller = Service::builder()
            .name("caller")
            .registry(reg)
            .client_options(client_options)
            .build()
            .unwrap();
        let client = GreeterClient::new("greeter", caller.client());
        let hello = || HelloRequest { name: "x".into() };
        eventually(Duration::from_secs(20), "the greeter to answer", || async {
            client.hello(hello()).await.ok()
        })
        .await;
        // Pings answered: the connection stays.
        tokio::time::sleep(Duration::from_millis(800)).await;
        client
            .hello(hello())
            .await
            .expect("a call on a live connection");

        let signal = |name: &str| {
            let sent = Command::new("kill")
                .args([name, &server.0.id().to_string()])
                .status()
                .expect("kill");
            assert!(sent.success());
        };
        signal("-STOP");
        // A deadline far beyond the keepalive's: only the keepalive ends this call early.
        let options = CallOptions::new().timeout(Duration::from_secs(60));
        let err = client
            .hello_with(hello(), &options)
            .await
            .expect_err("a frozen node answers nothing");
        signal("-CONT");
        assert_eq!(err.code(), micro_runtime::Code::Unavailable, "{err}");
    })
    .await
    .expect("test timed out");
}
