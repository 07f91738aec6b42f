//! Publish throughput of the brokers that need no server: `memory`, and `http` (go-micro's
//! HTTP broker) side by side with a bare hyper HTTP/1.1 client POSTing the same bytes to the
//! same subscriber, the floor of what an HTTP publish costs. Each publish waits until the
//! subscriber handled the message (the http broker's contract), one at a time.
//! The NATS and RabbitMQ brokers have their own benches (`broker_nats`, `broker_rabbitmq`)
//! against their raw client crates.
//!
//! `cargo bench -p micro-bench --bench broker -- [--messages N] [--rounds R] [--size B]`
//! (defaults 20000, 3, 64).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use micro_runtime::Registry;
use micro_runtime::broker::http::{HttpBroker, SERVICE_NAME};
use micro_runtime::broker::memory::MemoryBroker;
use micro_runtime::broker::{self, Broker, Envelope, SubscribeOptions};
use micro_runtime::registry::memory::MemoryRegistry;

struct Args {
    messages: u64,
    rounds: usize,
    size: usize,
}

fn args() -> Args {
    let mut a = Args {
        messages: 20_000,
        rounds: 3,
        size: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--messages" => a.messages = value() as u64,
            "--rounds" => a.rounds = value(),
            "--size" => a.size = value(),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

fn message(size: usize) -> Envelope {
    Envelope::new(vec![b'x'; size]).with_header("Content-Type", "application/protobuf")
}

fn counting(count: &Arc<AtomicU64>) -> broker::EventHandler {
    let count = count.clone();
    broker::handler(move |_| {
        count.fetch_add(1, Ordering::Relaxed);
        async { Ok(()) }
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    println!(
        "broker publish: {} messages of {} bytes, one at a time, median of {} rounds",
        a.messages, a.size, a.rounds
    );

    // memory: publish returns once queued; the rate counts until all were handled.
    let mem = MemoryBroker::new();
    let handled = Arc::new(AtomicU64::new(0));
    let _s = mem
        .subscribe("bench", counting(&handled), SubscribeOptions::new())
        .await
        .expect("subscribe");
    let mut rates = Vec::new();
    for _ in 0..a.rounds {
        handled.store(0, Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..a.messages {
            mem.publish("bench", message(a.size))
                .await
                .expect("publish");
        }
        while handled.load(Ordering::Relaxed) < a.messages {
            tokio::task::yield_now().await;
        }
        rates.push(a.messages as f64 / start.elapsed().as_secs_f64());
    }
    println!("memory: {:>10.0} msgs/s", median(rates));

    // http: ours (registry cache, JSON + base64, POST, wait for the handler) against a bare
    // hyper client POSTing the already-encoded JSON to the same subscriber.
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let sub = HttpBroker::new("", registry.clone()).expect("broker");
    let _s = sub
        .subscribe("bench", counting(&handled), SubscribeOptions::new())
        .await
        .expect("subscribe");
    let publisher = HttpBroker::new("", registry.clone()).expect("broker");
    let node = registry
        .get_service(SERVICE_NAME)
        .await
        .expect("subscriber")[0]
        .nodes[0]
        .clone();
    let mut wire = message(a.size);
    wire.header.insert("Micro-Topic".into(), "bench".into());
    let json = serde_json::json!({
        "Header": wire.header,
        "Body": base64_of(&wire.body),
    });
    let body = Bytes::from(serde_json::to_vec(&json).expect("json"));
    let uri: http::Uri = format!("http://{}/?id={}", node.address, node.id)
        .parse()
        .expect("uri");
    let raw = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();

    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        let start = Instant::now();
        for _ in 0..a.messages {
            publisher
                .publish("bench", message(a.size))
                .await
                .expect("publish");
        }
        ours.push(a.messages as f64 / start.elapsed().as_secs_f64());

        let start = Instant::now();
        for _ in 0..a.messages {
            let req = http::Request::post(uri.clone())
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .expect("request");
            let rsp = raw.request(req).await.expect("post");
            assert!(rsp.status().is_success());
            let _ = rsp.into_body().collect().await;
        }
        floor.push(a.messages as f64 / start.elapsed().as_secs_f64());
    }
    let (ours, floor) = (median(ours), median(floor));
    println!(
        "http:   {ours:>10.0} msgs/s   bare hyper POST: {floor:>10.0} msgs/s   ratio {:.2}",
        ours / floor
    );
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
