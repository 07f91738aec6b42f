//! A call's context across hops: three `relay-server` processes `a` → `b` → `c`, found by
//! name in one local registry directory, each calling the next with its own call's context
//! (`pass_with(request, &ctx)`). What the last hop sees of the first caller's deadline and
//! metadata, and what becomes of a chain whose deadline passes.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::relay::{PassRequest, RelayClient};
use micro_runtime::registry::local::LocalRegistry;
use micro_runtime::{CallOptions, Code, Registry, Service};
use micro_tests::{Proc, example_binary};

/// `relay-server` registered as `name` in the local registry at `dir`; its stdout piped.
/// Started itself (not under `timeout`, which a kill would orphan it from), so that the
/// test's end kills it.
fn start_relay(dir: &Path, name: &str) -> Proc {
    let child = Command::new(example_binary("relay-server"))
        .args(["--server_name", name, "--server_address", "127.0.0.1:0"])
        .args(["--registry", "local", "--registry_address"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start relay-server");
    Proc(child)
}

/// Three relays, `a`, `b` and `c`, registered and called through once (every hop has its
/// connection to the next); and a client of the same registry.
async fn chain(dir: &Path) -> (Vec<Proc>, Service) {
    let relays: Vec<Proc> = ["a", "b", "c"]
        .iter()
        .map(|name| start_relay(dir, name))
        .collect();
    let registry: Arc<dyn Registry> = Arc::new(LocalRegistry::new(dir).unwrap());
    let start = Instant::now();
    for name in ["a", "b", "c"] {
        while registry
            .get_service(name)
            .await
            .map_or(true, |records| records.iter().all(|r| r.nodes.is_empty()))
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name} did not register"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let caller = Service::builder()
        .name("caller")
        .registry(registry)
        .build()
        .unwrap();
    RelayClient::new("a", caller.client())
        .pass(through_b_and_c(0))
        .await
        .expect("the chain answers");
    (relays, caller)
}

fn through_b_and_c(sleep_ms: u32) -> PassRequest {
    PassRequest {
        next: vec!["b".into(), "c".into()],
        sleep_ms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_hop_sees_the_first_callers_metadata_and_what_is_left_of_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (_relays, caller) = chain(dir.path()).await;
    let client = RelayClient::new("a", caller.client());
    let options = CallOptions::new()
        .timeout(Duration::from_secs(5))
        .metadata("x-user", "ada")
        .metadata("x-request-id", "42")
        .metadata("user-agent", "caller/1");

    let reply = client
        .pass_with(through_b_and_c(0), &options)
        .await
        .unwrap();

    let names: Vec<&str> = reply.hops.iter().map(|h| h.service.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    for hop in &reply.hops {
        assert_eq!(
            hop.metadata.get("x-user").map(String::as_str),
            Some("ada"),
            "{hop:?}"
        );
        assert_eq!(
            hop.metadata.get("x-request-id").map(String::as_str),
            Some("42")
        );
    }
    // The headers of one hop stay there: the caller's user agent reaches `a` only.
    let agent = |i: usize| reply.hops[i].metadata.get("user-agent").map(String::as_str);
    assert_eq!(agent(0), Some("caller/1"));
    assert_eq!((agent(1), agent(2)), (None, None));
    // Each hop has what the hop before it had left, minus the time spent: never more.
    let left: Vec<i64> = reply.hops.iter().map(|h| h.deadline_left_ms).collect();
    assert!(
        left.iter().all(|&ms| ms > 0),
        "every hop has a deadline: {left:?}"
    );
    assert!(left[0] <= 5_000, "{left:?}");
    assert!(left[0] >= left[1] && left[1] >= left[2], "{left:?}");
    println!("deadline left at a, b, c (ms): {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passes_down_the_chain_ends_it_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (mut relays, caller) = chain(dir.path()).await;
    let client = RelayClient::new("a", caller.client());
    let options = CallOptions::new()
        .timeout(Duration::from_millis(300))
        .retries(0);

    let started = Instant::now();
    let err = client
        .pass_with(through_b_and_c(1_000), &options)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    // Not the second c sleeps: the deadline ended the chain.
    assert!(took < Duration::from_millis(900), "took {took:?}");
    println!("DEADLINE_EXCEEDED at the first caller after {took:?}");

    // c's handler was dropped before it answered: its future, and its work, are gone.
    let stdout = relays[2].0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let mut stdout = stdout;
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
            if out.contains("dropped unfinished") {
                let _ = tx.send(out.clone());
                break;
            }
        }
    });
    let out = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("c never said its handler was dropped");
    assert!(out.contains("relay: c dropped unfinished"), "{out}");
}

#[tokio::test]
async fn a_context_whose_deadline_has_passed_calls_nothing() {
    // No service at all: a call that were made would fail NOT_FOUND.
    let caller = micro_tests::caller(micro_tests::memory());
    let client = RelayClient::new("a", caller.client());
    let ctx = micro_runtime::Context::new().with_deadline(Instant::now());
    let err = client
        .pass_with(through_b_and_c(0), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert!(err.detail().contains("deadline had passed"), "{err}");
}
