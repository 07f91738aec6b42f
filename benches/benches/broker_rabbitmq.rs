//! RabbitMQ publish throughput, side by side: our `Broker::publish` on `RabbitBroker` and raw
//! lapin doing the same work (a channel in confirm mode, `basic_publish` to the same topic
//! exchange with the same properties and headers, awaiting each confirmation), one
//! connection each. Each round publishes N messages per side in alternating slices of 500 (so
//! both sides see the same load from whatever else runs on the machine), and prints
//! messages/s for each and the ratio ours/raw, and the CPU time this process spent per
//! message on each side (all its threads, lapin's I/O threads included; from
//! `/proc/self/task/*/schedstat`), which the machine's other load disturbs less.
//!
//! Needs RabbitMQ at 127.0.0.1:5672 (user `guest`): `rabbitmq-server -detached`.
//!
//! `cargo bench -p micro-bench --bench broker_rabbitmq -- [--messages N] [--rounds R]
//! [--size B] [--bound] [--only ours|raw]` (defaults 20000, 3, 64). Without `--bound` no
//! queue is bound to the topic, so RabbitMQ confirms as soon as it has routed the message
//! (nowhere): what is measured is the clients and the round trip. With `--bound` a durable
//! queue takes the messages, so each confirmation also waits for RabbitMQ to write it to disk
//! (the queue is deleted afterwards).

use std::time::{Duration, Instant};

/// Messages per side before the other side's turn.
const SLICE: u32 = 500;

use bytes::Bytes;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use micro_runtime::broker::rabbitmq::{DEFAULT_EXCHANGE, RabbitBroker};
use micro_runtime::broker::{Broker, Envelope};

const ADDRESS: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const CONTENT_TYPE: &str = "application/octet-stream";

struct Args {
    messages: u32,
    rounds: usize,
    size: usize,
    bound: bool,
    /// Only this side (`ours` or `raw`), e.g. to profile one.
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        messages: 20_000,
        rounds: 3,
        size: 64,
        bound: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bound" => a.bound = true,
            "--only" => a.only = it.next(),
            "--messages" | "--rounds" | "--size" => {
                let n = it
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("{flag} needs a number"));
                match flag.as_str() {
                    "--messages" => a.messages = n as u32,
                    "--rounds" => a.rounds = n,
                    _ => a.size = n,
                }
            }
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// Raw lapin, on tokio as ours is.
async fn raw_channel() -> (Connection, Channel) {
    let handle = tokio::runtime::Handle::current();
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::default().with_handle(handle.clone()))
        .with_reactor(tokio_reactor_trait::Tokio::default().with_handle(handle));
    let connection = Connection::connect(ADDRESS, properties)
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ at {ADDRESS}: {e} (rabbitmq-server -detached)"));
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");
    channel
        .exchange_declare(
            DEFAULT_EXCHANGE,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    (connection, channel)
}

/// What ours sends for a message with one `Content-Type` header.
fn raw_properties() -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from("Content-Type"),
        AMQPValue::LongString(LongString::from(CONTENT_TYPE)),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers)
        .with_content_type(ShortString::from(CONTENT_TYPE))
}

/// CPU time of all this process's threads so far, in nanoseconds (Linux).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

async fn raw_round(channel: &Channel, topic: &str, body: &Bytes, n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let confirm = channel
            .basic_publish(
                DEFAULT_EXCHANGE,
                topic,
                BasicPublishOptions::default(),
                body,
                raw_properties(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(matches!(confirm, Confirmation::Ack(_)), "nacked");
    }
    start.elapsed()
}

async fn our_round(broker: &RabbitBroker, topic: &str, message: &Envelope, n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        broker
            .publish(topic, message.clone())
            .await
            .expect("publish");
    }
    start.elapsed()
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench")
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let topic = format!("bench.publish.{}", std::process::id());
        let body = Bytes::from(vec![b'x'; a.size]);
        let message = Envelope::new(body.clone()).with_header("Content-Type", CONTENT_TYPE);

        let ours = RabbitBroker::from_address(ADDRESS).expect("address");
        ours.connect()
            .await
            .unwrap_or_else(|e| panic!("RabbitMQ at {ADDRESS}: {e} (rabbitmq-server -detached)"));
        let (raw_connection, raw) = raw_channel().await;
        let queue = format!("bench-publish-{}", std::process::id());
        if a.bound {
            raw.queue_declare(
                &queue,
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue");
            raw.queue_bind(
                &queue,
                DEFAULT_EXCHANGE,
                &topic,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        }

        // Warm up both connections.
        let warm = a.messages.min(1000);
        our_round(&ours, &topic, &message, warm).await;
        raw_round(&raw, &topic, &body, warm).await;

        println!(
            "publish with confirms, {} messages of {} bytes per round, {}",
            a.messages,
            a.size,
            if a.bound {
                "to a durable queue"
            } else {
                "routed to no queue"
            }
        );
        println!(
            "{:>6} {:>14} {:>14} {:>7} {:>14} {:>14}",
            "round", "ours msg/s", "raw msg/s", "ratio", "ours CPU µs", "raw CPU µs"
        );
        let (mut sum_ours, mut sum_raw) = (0.0, 0.0);
        let (mut sum_cpu_ours, mut sum_cpu_raw) = (0.0, 0.0);
        for round in 1..=a.rounds {
            let (mut t_ours, mut t_raw) = (Duration::ZERO, Duration::ZERO);
            let (mut cpu_ours, mut cpu_raw) = (0u64, 0u64);
            let mut left = a.messages;
            // Alternate which goes first, so neither always gets the warmer broker.
            let mut ours_next = round % 2 == 1;
            while left > 0 {
                let n = left.min(SLICE);
                for _ in 0..2 {
                    let cpu = cpu_ns();
                    if ours_next && a.only.as_deref() != Some("raw") {
                        t_ours += our_round(&ours, &topic, &message, n).await;
                        cpu_ours += cpu_ns().saturating_sub(cpu);
                    } else if !ours_next && a.only.as_deref() != Some("ours") {
                        t_raw += raw_round(&raw, &topic, &body, n).await;
                        cpu_raw += cpu_ns().saturating_sub(cpu);
                    }
                    ours_next = !ours_next;
                }
                ours_next = !ours_next;
                left -= n;
            }
            let o = f64::from(a.messages) / t_ours.as_secs_f64();
            let r = f64::from(a.messages) / t_raw.as_secs_f64();
            let per = |ns: u64| ns as f64 / 1000.0 / f64::from(a.messages);
            sum_ours += o;
            sum_raw += r;
            sum_cpu_ours += per(cpu_ours);
            sum_cpu_raw += per(cpu_raw);
            println!(
                "{round:>6} {o:>14.0} {r:>14.0} {:>7.3} {:>14.1} {:>14.1}",
                o / r,
                per(cpu_ours),
                per(cpu_raw)
            );
        }
        let n = a.rounds as f64;
        println!(
            "{:>6} {:>14.0} {:>14.0} {:>7.3} {:>14.1} {:>14.1}",
            "mean",
            sum_ours / n,
            sum_raw / n,
            sum_ours / sum_raw,
            sum_cpu_ours / n,
            sum_cpu_raw / n
        );

        if a.bound {
            let _ = raw
                .queue_delete(&queue, QueueDeleteOptions::default())
                .await;
        }
        let _ = ours.disconnect().await;
        let _ = raw_connection.close(200, "OK").await;
    });
}
