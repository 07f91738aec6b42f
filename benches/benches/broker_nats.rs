//! Publish throughput on NATS, side by side: our `Broker::publish` on a `NatsBroker` and raw
//! `async-nats` doing the same work, in alternating rounds against the same server.
//!
//! Both sides publish the same messages (a body of B bytes, headers `Content-Type` and
//! `Micro-Topic`) to the same subject, each on its own connection. Each message is built the
//! way each API is used: ours an `Envelope` with two `with_header`s, raw a `HeaderMap` with two
//! `insert`s (`--prepared`: each side clones a message, or header map, prepared once
//! instead, raw's cheapest way, which leaves ours a conversion to NATS headers more). Core
//! NATS: ours `publish` N times then `flush`; raw `client.publish_with_headers` N times then
//! `flush`. JetStream: ours `publish` (which waits for the server's confirmation); raw
//! `jetstream.publish_with_headers(..).await?.await?`. The stream has a durable consumer that
//! reads nothing, so every message is stored.
//!
//! `--typed` compares what a service does instead, an event published with
//! [`micro_runtime::Client::publish`]: ours `client.publish(topic, &Event { id, text })` (a
//! `Client` over the same `NatsBroker`); raw the same work by hand, the event encoded with
//! prost, headers `Content-Type`, `Micro-Topic` and a new v4 UUID as `Micro-Id`, and
//! `publish_with_headers` (core) or a confirmed JetStream publish.
//!
//! `cargo bench -p micro-bench --bench broker_nats -- [--mode core|jetstream|both]
//! [--messages N] [--rounds R] [--size B] [--prepared] [--no-headers] [--typed]
//! [--address nats://127.0.0.1:4222]`
//! (defaults both, core 200,000 and JetStream 20,000 messages, 3 rounds, 64 bytes). Needs
//! nats-server with JetStream (`-js`) at the address. The client runs on one worker thread.
//! Prints each round, all rounds together, and the best round of each side (the least
//! disturbed by other work on the machine).
//!
//! Measured on a 2-core VM (nats-server 2.9.10 on the same host), 5 rounds, ours/raw (all
//! rounds), 2026-11-29, six runs each: core, messages built per publish 0.92-0.95 (about 1.4 M
//! msg/s against 1.5 M); core `--typed` 0.92-0.93 (1.1 M against 1.2 M); JetStream 0.96-1.01
//! (10,000-15,000 msg/s each, bound by the server's confirmations). What is left of the gap
//! on core is per-publish CPU: the boxed `async_trait` future, converting the header map to
//! NATS headers and checking it (raw sends whatever it is given).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use async_nats::HeaderMap;
use bytes::Bytes;
use examples::events::Event;
use micro_runtime::broker::nats::{NatsBroker, stream_name};
use micro_runtime::broker::{self, Broker, Envelope, SubscribeOptions};
use micro_runtime::registry::memory::MemoryRegistry;
use prost::Message as _;

const CONTENT_TYPE: &str = "application/octet-stream";

struct Args {
    mode: String,
    messages: Option<usize>,
    rounds: usize,
    size: usize,
    address: String,
    prepared: bool,
    /// Messages without headers.
    bare: bool,
    /// Typed events through `Client::publish`.
    typed: bool,
}

fn args() -> Args {
    let mut a = Args {
        mode: "both".into(),
        messages: None,
        rounds: 3,
        size: 64,
        address: "nats://127.0.0.1:4222".into(),
        prepared: false,
        bare: false,
        typed: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut text = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--prepared" => a.prepared = true,
            "--no-headers" => a.bare = true,
            "--typed" => a.typed = true,
            "--mode" => a.mode = text(),
            "--address" => a.address = text(),
            "--messages" | "--rounds" | "--size" => {
                let n: usize = text()
                    .parse()
                    .unwrap_or_else(|_| panic!("{flag} needs a number"));
                match flag.as_str() {
                    "--messages" => a.messages = Some(n),
                    "--rounds" => a.rounds = n,
                    _ => a.size = n,
                }
            }
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Core,
    JetStream,
}

/// One side's publishing, timed.
struct Side {
    ours: NatsBroker,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    topic: &'static str,
    message: Envelope,
    headers: HeaderMap,
    prepared: bool,
    bare: bool,
    /// For `--typed`: a client publishing on `ours`, and the event's text.
    typed: Option<(micro_runtime::Client, String)>,
}

impl Side {
    /// Our message: built, or cloned from the prepared one.
    fn message(&self) -> Envelope {
        if self.prepared || self.bare {
            return self.message.clone();
        }
        Envelope::new(self.message.body.clone())
            .with_header("Content-Type", CONTENT_TYPE)
            .with_header("Micro-Topic", self.topic)
    }

    /// Raw's headers: built, or cloned from the prepared ones.
    fn headers(&self) -> HeaderMap {
        if self.prepared || self.bare {
            return self.headers.clone();
        }
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", CONTENT_TYPE);
        headers.insert("Micro-Topic", self.topic);
        headers
    }

    async fn ours(&self, mode: Mode, n: usize) -> Result<Duration> {
        let start = Instant::now();
        if let Some((client, text)) = &self.typed {
            for id in 1..=n as u64 {
                let event = Event {
                    id,
                    text: text.clone(),
                };
                client.publish(self.topic, &event).await?;
            }
            if mode == Mode::Core {
                self.ours.flush().await?;
            }
            return Ok(start.elapsed());
        }
        for _ in 0..n {
            self.ours.publish(self.topic, self.message()).await?;
        }
        if mode == Mode::Core {
            self.ours.flush().await?;
        }
        Ok(start.elapsed())
    }

    /// Raw's share of `--typed`: what `Client::publish` does, by hand.
    fn typed_raw(&self, id: u64, text: &str) -> (HeaderMap, Bytes) {
        let event = Event {
            id,
            text: text.to_owned(),
        };
        let body = Bytes::from(event.encode_to_vec());
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", "application/protobuf");
        headers.insert("Micro-Topic", self.topic);
        // The same id generator as micro_runtime's (a v4 UUID from fastrand's thread-local RNG).
        let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
        headers.insert("Micro-Id", id.to_string().as_str());
        (headers, body)
    }

    async fn raw(&self, mode: Mode, n: usize) -> Result<Duration> {
        let start = Instant::now();
        if let Some((_, text)) = &self.typed {
            for id in 1..=n as u64 {
                let (headers, body) = self.typed_raw(id, text);
                match mode {
                    Mode::Core => {
                        self.client
                            .publish_with_headers(self.topic, headers, body)
                            .await?
                    }
                    Mode::JetStream => self
                        .js
                        .publish_with_headers(self.topic, headers, body)
                        .await?
                        .await
                        .map(drop)?,
                }
            }
            if mode == Mode::Core {
                self.client.flush().await?;
            }
            return Ok(start.elapsed());
        }
        match mode {
            Mode::Core => {
                for _ in 0..n {
                    self.client
                        .publish_with_headers(self.topic, self.headers(), self.message.body.clone())
                        .await?;
                }
                self.client.flush().await?;
            }
            Mode::JetStream => {
                for _ in 0..n {
                    self.js
                        .publish_with_headers(self.topic, self.headers(), self.message.body.clone())
                        .await?
                        .await?;
                }
            }
        }
        Ok(start.elapsed())
    }
}

async fn run(a: &Args, mode: Mode) -> Result<()> {
    let (name, default_n) = match mode {
        Mode::Core => ("core", 200_000),
        Mode::JetStream => ("jetstream", 20_000),
    };
    let n = a.messages.unwrap_or(default_n);
    let topic: &'static str =
        Box::leak(format!("bench.nats.{name}.{}", std::process::id()).into_boxed_str());
    let ours = match mode {
        Mode::Core => NatsBroker::new(&a.address)?,
        Mode::JetStream => NatsBroker::jetstream(&a.address)?,
    };
    ours.connect()
        .await
        .with_context(|| format!("nats-server with JetStream at {}", a.address))?;
    let client = async_nats::connect(a.address.as_str()).await?;
    let js = async_nats::jetstream::new(client.clone());
    if mode == Mode::JetStream {
        // A durable consumer that reads nothing: the stream keeps every message.
        let idle = broker::handler(|_| async { Ok(()) });
        let sub = ours
            .subscribe(topic, idle, SubscribeOptions::new().queue("bench"))
            .await?;
        sub.unsubscribe().await?;
    }
    let mut message = Envelope::new(Bytes::from(vec![b'x'; a.size]));
    if !a.bare {
        message = message
            .with_header("Content-Type", CONTENT_TYPE)
            .with_header("Micro-Topic", topic);
    }
    let mut headers = HeaderMap::new();
    for (k, v) in &message.header {
        headers.insert(k.as_ref(), v.as_str());
    }
    let typed = if a.typed {
        let client = micro_runtime::Client::new(
            micro_runtime::ClientOptions::default(),
            Arc::new(MemoryRegistry::new()),
            micro_runtime::selector::from_name("random")?,
        )
        .with_broker(Arc::new(ours.clone()));
        Some((client, "x".repeat(a.size)))
    } else {
        None
    };
    let side = Side {
        typed,
        ours,
        client,
        js,
        topic,
        message,
        headers,
        prepared: a.prepared,
        bare: a.bare,
    };
    // Warm up both (connections, the stream, allocator).
    side.ours(mode, n / 10).await?;
    side.raw(mode, n / 10).await?;

    println!(
        "{name}: {n} messages of {} bytes per round, {} rounds, {}",
        a.size,
        a.rounds,
        if a.typed {
            "typed events through Client::publish"
        } else if a.bare {
            "no headers"
        } else if a.prepared {
            "prepared messages cloned"
        } else {
            "messages built per publish"
        }
    );
    println!("  round      ours msg/s     raw msg/s   ours/raw");
    let (mut ours_total, mut raw_total) = (Duration::ZERO, Duration::ZERO);
    let (mut ours_best, mut raw_best) = (Duration::MAX, Duration::MAX);
    for round in 1..=a.rounds {
        // Alternate who goes first.
        let (ours, raw) = if round % 2 == 1 {
            let o = side.ours(mode, n).await?;
            (o, side.raw(mode, n).await?)
        } else {
            let r = side.raw(mode, n).await?;
            (side.ours(mode, n).await?, r)
        };
        ours_total += ours;
        raw_total += raw;
        ours_best = ours_best.min(ours);
        raw_best = raw_best.min(raw);
        let (o, r) = (rate(n, ours), rate(n, raw));
        println!("  {round:>5} {o:>14.0} {r:>13.0} {:>10.3}", o / r);
    }
    let rounds = a.rounds.max(1);
    let (o, r) = (rate(n * rounds, ours_total), rate(n * rounds, raw_total));
    println!("  {:>5} {o:>14.0} {r:>13.0} {:>10.3}", "all", o / r);
    // The fastest round of each: the least disturbed by whatever else the machine runs.
    let (o, r) = (rate(n, ours_best), rate(n, raw_best));
    println!("  {:>5} {o:>14.0} {r:>13.0} {:>10.3}", "best", o / r);

    if mode == Mode::JetStream {
        side.js.delete_stream(stream_name(topic)).await?;
    }
    side.ours.disconnect().await?;
    side.client.drain().await?;
    Ok(())
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn main() -> Result<()> {
    let a = args();
    let modes = match a.mode.as_str() {
        "core" => vec![Mode::Core],
        "jetstream" => vec![Mode::JetStream],
        "both" => vec![Mode::Core, Mode::JetStream],
        other => bail!("--mode {other}: expected core, jetstream or both"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("client")
        .enable_all()
        .build()?;
    // On the worker, beside the client's connection task, as a service's publishes would be.
    rt.block_on(async move {
        tokio::spawn(async move {
            for mode in modes {
                run(&a, mode).await?;
            }
            Ok(())
        })
        .await?
    })
}
