//! The client among failing nodes, against three `flaky-greeter` processes found by name in
//! one local registry directory: a node's circuit breaker opens, probes and closes; a retry
//! budget caps retries; call layers see every attempt, its node and its outcome.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::client::{CallLayer, CallNext, OutgoingCall, RetryBudget};
use micro_runtime::registry::local::LocalRegistry;
use micro_runtime::selector::{CircuitBreaker, RoundRobin};
use micro_runtime::{CallOptions, Code, Registry, Result, Service, ServiceBuilder};
use micro_tests::Proc;

/// Three greeters registered in `dir`; the first answers `UNAVAILABLE` while its file
/// exists (it does at the start).
struct Nodes {
    _procs: Vec<Proc>,
    /// The node that fails, and the file that makes it.
    flaky: String,
    fail_file: PathBuf,
    /// Every node's address, the flaky one first.
    addresses: Vec<String>,
    registry: Arc<dyn Registry>,
}

fn start(dir: &Path, fail_file: &Path) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_flaky-greeter"))
        .arg("--fail-while")
        .arg(fail_file)
        .args(["--server_address", "127.0.0.1:0"])
        .args(["--registry", "local", "--registry_address"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start flaky-greeter");
    Proc(child)
}

async fn addresses(registry: &dyn Registry, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let addresses: Vec<String> = registry
            .get_service("greeter")
            .await
            .unwrap_or_default()
            .iter()
            .flat_map(|r| r.nodes.iter().map(|n| n.address.clone()))
            .collect();
        if addresses.len() >= n {
            return addresses;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{n} greeters did not register"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn nodes(dir: &Path) -> Nodes {
    let registry: Arc<dyn Registry> = Arc::new(LocalRegistry::new(dir).unwrap());
    let fail_file = dir.join("fail");
    std::fs::write(&fail_file, b"").unwrap();
    let mut procs = vec![start(dir, &fail_file)];
    let flaky = addresses(&*registry, 1).await.remove(0);
    let healthy = dir.join("never");
    procs.push(start(dir, &healthy));
    procs.push(start(dir, &healthy));
    let mut all = addresses(&*registry, 3).await;
    all.retain(|a| *a != flaky);
    all.insert(0, flaky.clone());
    Nodes {
        _procs: procs,
        flaky,
        fail_file,
        addresses: all,
        registry,
    }
}

impl Nodes {
    /// A client of the nodes, round robin, built from `builder`.
    fn client(&self, builder: ServiceBuilder) -> GreeterClient {
        let caller = builder
            .name("caller")
            .registry(self.registry.clone())
            .selector(Arc::new(RoundRobin))
            .build()
            .unwrap();
        GreeterClient::new("greeter", caller.client())
    }

    /// The calls `address` has had.
    async fn calls(&self, client: &GreeterClient, address: &str) -> u64 {
        let options = CallOptions::new().address(address);
        let rsp = client
            .hello_with(
                HelloRequest {
                    name: "count".into(),
                },
                &options,
            )
            .await
            .expect("count");
        rsp.greeting.parse().unwrap()
    }

    /// The calls every node has had.
    async fn all_calls(&self, client: &GreeterClient) -> u64 {
        let mut sum = 0;
        for address in &self.addresses {
            sum += self.calls(client, address).await;
        }
        sum
    }
}

fn hello() -> HelloRequest {
    HelloRequest { name: "x".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_node_is_opened_probed_and_closed_when_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path()).await;
    let breaker = CircuitBreaker::new()
        .failures_in_row(3)
        .no_failure_ratio()
        .open_for(Duration::from_millis(200))
        .max_open(Duration::from_millis(400));
    let client = nodes.client(Service::builder().circuit_breaker(breaker));
    // Not idempotent: a failed answer is not retried, each call shows where it went.
    let options = CallOptions::new().retries(0);

    // 1.5 s of calls while the node fails: it takes three, then only the probes of its
    // half-open states (every 200-400 ms); the others take the rest.
    let (mut ok, mut failed) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        match client.hello_with(hello(), &options).await {
            Ok(rsp) => {
                assert_eq!(rsp.greeting, "Hello, x!");
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e}");
                failed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let flaky_calls = nodes.calls(&client, &nodes.flaky).await;
    println!("while failing: {ok} ok, {failed} failed; the failing node had {flaky_calls}");
    assert_eq!(
        flaky_calls, failed,
        "every call the failing node took failed"
    );
    assert!(
        failed > 3,
        "the open node was probed once half-open ({failed} calls)"
    );
    assert!(
        failed <= 3 + 8,
        "an open node gets probes only, not a third of the calls ({failed} of {})",
        ok + failed
    );
    assert!(
        ok > 20 * failed,
        "calls went to the healthy nodes ({ok} ok)"
    );

    // It recovers: the next probe closes its breaker and it takes its share again.
    std::fs::remove_file(&nodes.fail_file).unwrap();
    let before = flaky_calls;
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        let rsp = client.hello_with(hello(), &options).await.unwrap();
        assert_eq!(rsp.greeting, "Hello, x!");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let after = nodes.calls(&client, &nodes.flaky).await - before;
    println!("recovered: the node took {after} of {calls} calls");
    assert!(
        after * 8 >= calls,
        "a closed node takes its share of round robin ({after} of {calls})"
    );
}

/// Counts attempts (client side), and notes first and later attempts.
#[derive(Default)]
struct Attempts {
    all: AtomicU32,
    retries: AtomicU32,
}

impl CallLayer for Attempts {
    async fn call(&self, call: OutgoingCall, next: CallNext<'_>) -> Result<()> {
        self.all.fetch_add(1, Ordering::SeqCst);
        if call.attempt() > 0 {
            self.retries.fetch_add(1, Ordering::SeqCst);
        }
        next.run(call).await
    }
}

/// Makes `calls` idempotent calls, 30 at a time; how many answered well.
async fn make_calls(client: &GreeterClient, calls: u32) -> u32 {
    let options = CallOptions::new().idempotent(true).retries(3);
    let ok = Arc::new(AtomicU32::new(0));
    let next = Arc::new(AtomicU32::new(0));
    let workers: Vec<_> = (0..30)
        .map(|_| {
            let (client, options, ok, next) =
                (client.clone(), options.clone(), ok.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::SeqCst) < calls {
                    match client.hello_with(hello(), &options).await {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => assert_eq!(e.code(), Code::Unavailable, "{e}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    ok.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_budget_caps_the_attempts_of_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path()).await;
    const CALLS: u32 = 300;

    // No budget: every call that met the failing node tries again elsewhere.
    let plain = nodes.client(Service::builder());
    let counted = Arc::new(Attempts::default());
    let client = nodes.client(Service::builder().wrap_call(counted.clone()));
    let before = nodes.all_calls(&plain).await;
    let ok = make_calls(&client, CALLS).await;
    let attempts = nodes.all_calls(&plain).await - before;
    println!("no budget: {attempts} attempts for {CALLS} calls, {ok} ok");
    assert_eq!(ok, CALLS, "the retries saved every call");
    assert_eq!(u64::from(counted.all.load(Ordering::SeqCst)), attempts);
    assert!(
        attempts * 10 > u64::from(CALLS) * 12,
        "without a budget, a third of the calls retry ({attempts} attempts)"
    );

    // A budget of 20 % (and no reserve): attempts ≤ 1.2 × calls.
    let counted = Arc::new(Attempts::default());
    let client = nodes.client(
        Service::builder()
            .retry_budget(RetryBudget::percent(20).min_per_second(0))
            .wrap_call(counted.clone()),
    );
    let before = nodes.all_calls(&plain).await;
    let ok = make_calls(&client, CALLS).await;
    let attempts = nodes.all_calls(&plain).await - before;
    let retries = counted.retries.load(Ordering::SeqCst);
    println!("budget 20%: {attempts} attempts ({retries} retries) for {CALLS} calls, {ok} ok");
    assert_eq!(u64::from(counted.all.load(Ordering::SeqCst)), attempts);
    // tower's budget reads, then takes: two retries at once may overdraw it by one.
    assert!(
        attempts * 10 <= u64::from(CALLS) * 12 + 30,
        "attempts ≤ 1.2 × calls ({attempts} for {CALLS})"
    );
    assert!(retries > 0, "the budget allowed some retries");
    assert!(ok >= CALLS - CALLS / 3, "{ok} ok");
}

/// Notes what it sees of each attempt, under `name`.
struct Note {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl CallLayer for Note {
    async fn call(&self, mut call: OutgoingCall, next: CallNext<'_>) -> Result<()> {
        let seen = format!(
            "{} in {} {} #{} {:?}",
            self.name,
            call.service(),
            call.endpoint(),
            call.attempt(),
            call.kind()
        );
        self.log.lock().unwrap().push(seen);
        call.metadata_mut().insert("x-layer", self.name)?;
        let address = call.address().to_owned();
        let outcome = next.run(call).await;
        let code = outcome.as_ref().err().map_or(Code::Ok, |e| e.code());
        self.log
            .lock()
            .unwrap()
            .push(format!("{} out {address} {code:?}", self.name));
        outcome
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_layers_see_each_attempt_its_node_and_outcome_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path()).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = nodes.client(
        Service::builder()
            .wrap_call(Note {
                name: "outer",
                log: log.clone(),
            })
            .wrap_call(Note {
                name: "inner",
                log: log.clone(),
            }),
    );
    // To the failing node first (fixed address): one attempt, its failure seen by both.
    let options = CallOptions::new().address(nodes.flaky.as_str());
    let err = client.hello_with(hello(), &options).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let seen = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(
        seen,
        [
            "outer in greeter Greeter.Hello #0 Unary".to_owned(),
            "inner in greeter Greeter.Hello #0 Unary".to_owned(),
            format!("inner out {} Unavailable", nodes.flaky),
            format!("outer out {} Unavailable", nodes.flaky),
        ]
    );

    // By name, idempotent: whatever meets the failing node is tried again elsewhere, and the
    // layers see the retry as attempt #1 on another node.
    let options = CallOptions::new().idempotent(true);
    for _ in 0..6 {
        client.hello_with(hello(), &options).await.unwrap();
    }
    let seen = std::mem::take(&mut *log.lock().unwrap());
    let failed = format!("inner out {} Unavailable", nodes.flaky);
    let at = seen
        .iter()
        .position(|s| *s == failed)
        .expect("round robin met the failing node");
    assert_eq!(seen[at + 2], "outer in greeter Greeter.Hello #1 Unary");
    assert!(seen[at + 4].starts_with("inner out ") && seen[at + 4].ends_with(" Ok"));
    assert!(!seen[at + 4].contains(&nodes.flaky));
}

/// A layer that refuses every attempt.
struct Refuse;

impl CallLayer for Refuse {
    async fn call(&self, _: OutgoingCall, _: CallNext<'_>) -> Result<()> {
        Err(micro_runtime::Error::new(
            Code::PermissionDenied,
            "not from here",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_layer_refuses_with_its_own_code_and_nothing_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path()).await;
    let plain = nodes.client(Service::builder());
    let before = nodes.all_calls(&plain).await;
    let client = nodes.client(Service::builder().wrap_call(Refuse));
    let err = client
        .hello_with(hello(), &CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        nodes.all_calls(&plain).await,
        before,
        "nothing reached a node"
    );
}
