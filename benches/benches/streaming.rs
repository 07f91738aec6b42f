//! Streaming throughput, side by side: our echo (server and `EchoClient`) and tonic's (server
//! and client), the same messages over loopback in one run. Prints messages/s for each call
//! kind: a server stream of N replies, a client stream of N requests, and a bidirectional
//! stream echoing N requests (sent and read at once, from two tasks).
//!
//! `cargo bench -p micro-bench --bench streaming -- [--messages N] [--rounds R] [--size B]
//! [--kind server|client|bidi] [--only micro|tonic]` (defaults 200000, 3, 16: the message
//! text is B bytes; all kinds, both sides). The servers run on one worker
//! thread, the clients on another.

mod support;

use std::sync::Arc;
use std::time::Instant;

use examples::echo::{EchoClient, EchoRequest};
use futures_util::StreamExt;
use micro_runtime::Service;
use micro_runtime::registry::memory::MemoryRegistry;
use support::tonic_echo;

struct Args {
    messages: u32,
    rounds: usize,
    size: usize,
    /// Only this call kind (`server`, `client` or `bidi`), e.g. to profile one.
    kind: Option<String>,
    /// Only this side (`micro` or `tonic`), e.g. to profile one.
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        messages: 200_000,
        rounds: 3,
        size: 16,
        kind: None,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--kind" || flag == "--only" {
            let v = it.next();
            if flag == "--kind" {
                a.kind = v
            } else {
                a.only = v
            }
            continue;
        }
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--messages" => a.messages = value() as u32,
            "--rounds" => a.rounds = value(),
            "--size" => a.size = value(),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

#[derive(Clone, Copy)]
enum Kind {
    Server,
    Client,
    Bidi,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Server => "server stream",
            Kind::Client => "client stream",
            Kind::Bidi => "bidi stream",
        }
    }
}

async fn micro_run(client: &EchoClient, kind: Kind, n: u32, text: &str) {
    let req = |count| EchoRequest {
        message: text.to_owned(),
        count,
    };
    match kind {
        Kind::Server => {
            let mut replies = client.server_stream(req(n)).await.expect("open");
            let mut got = 0;
            while replies.recv().await.expect("reply").is_some() {
                got += 1;
            }
            assert_eq!(got, n);
        }
        Kind::Client => {
            // The same work as tonic's client: a stream of requests.
            let mut upload = client.client_stream().await.expect("open");
            let requests = futures_util::stream::iter(0..n).map(|_| req(0));
            upload.send_all(requests).await.expect("send");
            let rsp = upload.finish().await.expect("finish");
            assert_eq!(rsp.index, n);
        }
        Kind::Bidi => {
            let (mut tx, mut rx) = client.bidi().await.expect("open").split();
            let text = text.to_owned();
            let sending = tokio::spawn(async move {
                let requests = futures_util::stream::iter(0..n).map(move |_| EchoRequest {
                    message: text.clone(),
                    count: 0,
                });
                tx.send_all(requests).await.expect("send");
                tx.close_send();
            });
            let mut got = 0;
            while rx.recv().await.expect("reply").is_some() {
                got += 1;
            }
            sending.await.expect("sender");
            assert_eq!(got, n);
        }
    }
}

async fn tonic_run(
    client: &tonic_echo::echo_client::EchoClient<tonic::transport::Channel>,
    kind: Kind,
    n: u32,
    text: &str,
) {
    let mut client = client.clone();
    let req = |count| tonic_echo::EchoRequest {
        message: text.to_owned(),
        count,
    };
    match kind {
        Kind::Server => {
            let mut replies = client
                .server_stream(req(n))
                .await
                .expect("open")
                .into_inner();
            let mut got = 0;
            while replies.message().await.expect("reply").is_some() {
                got += 1;
            }
            assert_eq!(got, n);
        }
        Kind::Client => {
            let text = text.to_owned();
            let reqs = futures_util::stream::iter(0..n).map(move |_| tonic_echo::EchoRequest {
                message: text.clone(),
                count: 0,
            });
            let rsp = client.client_stream(reqs).await.expect("call").into_inner();
            assert_eq!(rsp.index, n);
        }
        Kind::Bidi => {
            let text = text.to_owned();
            let reqs = futures_util::stream::iter(0..n).map(move |_| tonic_echo::EchoRequest {
                message: text.clone(),
                count: 0,
            });
            let mut replies = client.bidi(reqs).await.expect("open").into_inner();
            let mut got = 0;
            while replies.message().await.expect("reply").is_some() {
                got += 1;
            }
            assert_eq!(got, n);
        }
    }
}

/// Messages per second of `n` messages moved by `call`.
fn rate(rt: &tokio::runtime::Runtime, n: u32, call: impl std::future::Future<Output = ()>) -> f64 {
    let start = Instant::now();
    rt.block_on(call);
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn main() {
    let a = args();
    let text = "x".repeat(a.size);
    let server_rt = support::runtime("server", 1);
    let client_rt = support::runtime("client", 1);
    let registry = Arc::new(MemoryRegistry::new());
    let _server = support::start_micro_echo(&server_rt, registry.clone());
    let tonic_addr = support::start_tonic_echo(&server_rt);

    let micro = {
        let _guard = client_rt.enter();
        let service = Service::builder()
            .name("bench")
            .registry(registry)
            .build()
            .expect("client");
        EchoClient::new("echo", service.client())
    };
    let tonic = client_rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{tonic_addr}"))
            .expect("endpoint")
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connect tonic");
        tonic_echo::echo_client::EchoClient::new(channel)
    });

    println!(
        "streaming: {} messages of {} bytes per call, median of {} rounds, 1 server thread + 1 client thread",
        a.messages, a.size, a.rounds
    );
    println!(
        "{:<14} {:>14} {:>14} {:>8}",
        "call", "micro msg/s", "tonic msg/s", "ratio"
    );
    for kind in [Kind::Server, Kind::Client, Kind::Bidi] {
        if a.kind
            .as_deref()
            .is_some_and(|k| !kind.name().starts_with(k))
        {
            continue;
        }
        // Warm up, then alternate which goes first.
        client_rt.block_on(micro_run(&micro, kind, a.messages / 10, &text));
        client_rt.block_on(tonic_run(&tonic, kind, a.messages / 10, &text));
        let (mut m, mut t) = (Vec::new(), Vec::new());
        for round in 0..a.rounds {
            let skip = |side: &str| a.only.as_deref().is_some_and(|o| o != side);
            let run_m = || {
                if skip("micro") {
                    return 1.0;
                }
                rate(
                    &client_rt,
                    a.messages,
                    micro_run(&micro, kind, a.messages, &text),
                )
            };
            let run_t = || {
                if skip("tonic") {
                    return 1.0;
                }
                rate(
                    &client_rt,
                    a.messages,
                    tonic_run(&tonic, kind, a.messages, &text),
                )
            };
            if round % 2 == 0 {
                m.push(run_m());
                t.push(run_t());
            } else {
                t.push(run_t());
                m.push(run_m());
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (m, t) = (median(&mut m), median(&mut t));
        println!("{:<14} {:>14.0} {:>14.0} {:>8.2}", kind.name(), m, t, m / t);
    }
    drop(server_rt);
}
