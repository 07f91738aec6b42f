//! Client load, side by side: our `GreeterClient` (registry lookup, selector, pool) and
//! tonic's client call the same server (ours) in one run; prints requests/s and latency
//! percentiles for each.
//!
//! `cargo bench -p micro-bench --bench load -- [--calls N] [--concurrency C] [--rounds R]`
//! (defaults 100000, 32, 3). The server runs on one worker thread, the clients on another.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use examples::greeter::{GreeterClient, HelloRequest};
use hdrhistogram::Histogram;
use micro_runtime::Service;
use micro_runtime::registry::memory::MemoryRegistry;
use support::tonic_greeter;

struct Args {
    calls: usize,
    concurrency: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        calls: 100_000,
        concurrency: 32,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--calls" => a.calls = value(),
            "--concurrency" => a.concurrency = value(),
            "--rounds" => a.rounds = value(),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// One measured run: requests/s and the latency histogram (µs).
struct Run {
    rps: f64,
    hist: Histogram<u64>,
}

/// Runs `calls` calls from `concurrency` tasks, each call made by `call`.
async fn drive<F, Fut>(calls: usize, concurrency: usize, call: F) -> Run
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let left = Arc::new(AtomicUsize::new(calls));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (left, call) = (left.clone(), call.clone());
            tokio::spawn(async move {
                let mut hist =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let t = Instant::now();
                    call().await;
                    let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
                }
                hist
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for t in tasks {
        hist.add(t.await.expect("task")).expect("merge");
    }
    Run {
        rps: calls as f64 / start.elapsed().as_secs_f64(),
        hist,
    }
}

fn main() {
    let a = args();
    let server_rt = support::runtime("server", 1);
    let client_rt = support::runtime("client", 1);
    let registry = Arc::new(MemoryRegistry::new());
    let (_server, addr) = support::start_micro(&server_rt, registry.clone());

    let micro_client = {
        let _guard = client_rt.enter();
        let service = Service::builder()
            .name("bench")
            .registry(registry)
            .build()
            .expect("client");
        GreeterClient::new("greeter", service.client())
    };
    let tonic_client = client_rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connect tonic");
        tonic_greeter::greeter_client::GreeterClient::new(channel)
    });

    let run_micro = |calls| {
        let client = micro_client.clone();
        client_rt.block_on(drive(calls, a.concurrency, move || {
            let client = client.clone();
            async move {
                let rsp = client
                    .hello(HelloRequest {
                        name: "World".into(),
                    })
                    .await
                    .expect("micro call");
                assert_eq!(rsp.greeting.len(), 13);
            }
        }))
    };
    let run_tonic = |calls| {
        let client = tonic_client.clone();
        client_rt.block_on(drive(calls, a.concurrency, move || {
            let mut client = client.clone();
            async move {
                let req = tonic_greeter::HelloRequest {
                    name: "World".into(),
                };
                let rsp = client.hello(req).await.expect("tonic call").into_inner();
                assert_eq!(rsp.greeting.len(), 13);
            }
        }))
    };

    // Warm both up, then alternate which goes first.
    run_micro(a.calls / 10);
    run_tonic(a.calls / 10);
    let (mut micro, mut tonic) = (Vec::new(), Vec::new());
    for round in 0..a.rounds {
        if round % 2 == 0 {
            micro.push(run_micro(a.calls));
            tonic.push(run_tonic(a.calls));
        } else {
            tonic.push(run_tonic(a.calls));
            micro.push(run_micro(a.calls));
        }
    }
    let median = |runs: &mut Vec<Run>| {
        runs.sort_by(|x, y| x.rps.total_cmp(&y.rps));
        runs.swap_remove(runs.len() / 2)
    };
    let (m, t) = (median(&mut micro), median(&mut tonic));
    println!(
        "client load: {} calls x {} rounds, {} concurrent callers, 1 server thread + 1 client thread",
        a.calls, a.rounds, a.concurrency
    );
    println!(
        "{:<8} {:>10} {:>9} {:>9} {:>9}",
        "client", "req/s", "p50 us", "p99 us", "p999 us"
    );
    for (name, r) in [("micro", &m), ("tonic", &t)] {
        println!(
            "{:<8} {:>10.0} {:>9} {:>9} {:>9}",
            name,
            r.rps,
            r.hist.value_at_quantile(0.5),
            r.hist.value_at_quantile(0.99),
            r.hist.value_at_quantile(0.999)
        );
    }
    println!(
        "micro/tonic throughput {:.2}, p99 {:.2}",
        m.rps / t.rps,
        m.hist.value_at_quantile(0.99) as f64 / t.hist.value_at_quantile(0.99) as f64
    );
    drop(server_rt);
    let _ = Duration::ZERO;
}
