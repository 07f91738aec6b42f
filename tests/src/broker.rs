//! The broker conformance suite: what every backend must do, run by each backend's tests.
//!
//! A backend is given as a factory of connections: each subscriber and the publisher get
//! their own (for the network backends, what separate processes would have); the memory
//! backend's factory hands out one shared broker.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use micro_runtime::broker::{self, Broker, Envelope, Event, EventHandler, SubscribeOptions};
use tokio::sync::mpsc;

/// How long a test waits for a message it expects before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// How long a test watches for messages it does not expect (duplicates, strays).
pub const QUIET: Duration = Duration::from_millis(500);

thread_local! {
    /// The topics this thread's test made, for [`delete_jetstream_streams`].
    static TOPICS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A topic no other test (nor an earlier run, on a shared server) uses.
pub fn unique_topic(prefix: &str) -> String {
    let topic = format!("{prefix}.{}", uuid_like());
    TOPICS.with(|t| t.borrow_mut().push(topic.clone()));
    topic
}

/// Deletes the JetStream streams (and with them their consumers) of the topics this thread
/// made with [`unique_topic`], so test runs leave nothing on a shared NATS server. Topics
/// without a stream are skipped.
pub async fn delete_jetstream_streams(address: &str) {
    let topics = TOPICS.with(|t| std::mem::take(&mut *t.borrow_mut()));
    let Ok(client) = async_nats::connect(address).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    for topic in topics {
        let _ = js
            .delete_stream(micro_runtime::broker::nats::stream_name(&topic))
            .await;
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    )
}

/// What subscribers received: (subscriber number, message id), in arrival order.
pub struct Received {
    rx: mpsc::UnboundedReceiver<(usize, u64)>,
}

/// A handler that records each message's id (its body, in decimal) as received by `n`.
pub fn recorder(tx: &mpsc::UnboundedSender<(usize, u64)>, n: usize) -> EventHandler {
    let tx = tx.clone();
    broker::handler(move |event: Event| {
        let tx = tx.clone();
        async move {
            let id = std::str::from_utf8(&event.message().body)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| micro_runtime::Error::bad_request("test", "body is not an id"))?;
            let _ = tx.send((n, id));
            Ok(())
        }
    })
}

impl Received {
    /// A channel for [`recorder`]s.
    pub fn channel() -> (mpsc::UnboundedSender<(usize, u64)>, Received) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, Received { rx })
    }

    /// Waits for `count` deliveries (failing after [`PATIENCE`] without one), then watches
    /// [`QUIET`] for more; returns them all.
    pub async fn collect(&mut self, count: usize) -> Vec<(usize, u64)> {
        let mut got = Vec::with_capacity(count);
        while got.len() < count {
            match tokio::time::timeout(PATIENCE, self.rx.recv()).await {
                Ok(Some(d)) => got.push(d),
                Ok(None) => panic!("recorders gone after {} of {count}", got.len()),
                Err(_) => panic!("only {} of {count} deliveries arrived", got.len()),
            }
        }
        while let Ok(Some(d)) = tokio::time::timeout(QUIET, self.rx.recv()).await {
            got.push(d);
        }
        got
    }
}

/// Message `id`: the id in decimal as its body.
pub fn numbered(id: u64) -> Envelope {
    Envelope::new(id.to_string()).with_header("Content-Type", "text/plain")
}

/// Publishes ids `1..=count` to `topic`, one after another.
pub async fn publish_numbered(broker: &dyn Broker, topic: &str, count: u64) {
    for id in 1..=count {
        broker
            .publish(topic, numbered(id))
            .await
            .unwrap_or_else(|e| panic!("publish {id}: {e}"));
    }
}

fn assert_each_once(ids: impl Iterator<Item = u64>, count: u64, who: &str) {
    let mut seen = BTreeMap::new();
    for id in ids {
        *seen.entry(id).or_insert(0) += 1;
    }
    let missing: Vec<_> = (1..=count).filter(|i| !seen.contains_key(i)).collect();
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && dup.is_empty() && seen.len() as u64 == count,
        "{who}: {} missing (first {:?}), {} duplicated (first {:?})",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        dup.len(),
        dup.iter().take(5).collect::<Vec<_>>()
    );
}

/// Three broadcast subscribers each get every message exactly once.
pub async fn broadcast_to_three<F, Fut>(connect: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    const N: u64 = 100;
    let topic = unique_topic("conformance.broadcast");
    let (tx, mut received) = Received::channel();
    let mut subs = Vec::new();
    for n in 0..3 {
        let b = connect().await;
        let s = b
            .subscribe(&topic, recorder(&tx, n), SubscribeOptions::new())
            .await
            .expect("subscribe");
        subs.push((b, s));
    }
    let publisher = connect().await;
    publish_numbered(publisher.as_ref(), &topic, N).await;
    let got = received.collect(3 * N as usize).await;
    for n in 0..3 {
        assert_each_once(
            got.iter().filter(|d| d.0 == n).map(|d| d.1),
            N,
            &format!("subscriber {n}"),
        );
    }
    for (b, s) in subs {
        s.unsubscribe().await.expect("unsubscribe");
        b.disconnect().await.expect("disconnect");
    }
    publisher.disconnect().await.expect("disconnect");
}

/// A queue group of three: each message goes to exactly one member, and every member
/// gets some.
pub async fn queue_group_of_three<F, Fut>(connect: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    const N: u64 = 300;
    let topic = unique_topic("conformance.queue");
    let queue = format!("group-{}", uuid_like());
    let (tx, mut received) = Received::channel();
    let mut subs = Vec::new();
    for n in 0..3 {
        let b = connect().await;
        let s = b
            .subscribe(
                &topic,
                recorder(&tx, n),
                SubscribeOptions::new().queue(&queue),
            )
            .await
            .expect("subscribe");
        subs.push((b, s));
    }
    let publisher = connect().await;
    publish_numbered(publisher.as_ref(), &topic, N).await;
    let got = received.collect(N as usize).await;
    assert_each_once(got.iter().map(|d| d.1), N, "the group");
    for n in 0..3 {
        assert!(
            got.iter().any(|d| d.0 == n),
            "member {n} got none of {N} messages"
        );
    }
    for (b, s) in subs {
        s.unsubscribe().await.expect("unsubscribe");
        b.disconnect().await.expect("disconnect");
    }
    publisher.disconnect().await.expect("disconnect");
}

/// 10,000 messages to one subscriber: none lost, none duplicated.
pub async fn ten_thousand<F, Fut>(connect: F, options: SubscribeOptions)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    const N: u64 = 10_000;
    let topic = unique_topic("conformance.many");
    let (tx, mut received) = Received::channel();
    let b = connect().await;
    let s = b
        .subscribe(&topic, recorder(&tx, 0), options)
        .await
        .expect("subscribe");
    let publisher = connect().await;
    publish_numbered(publisher.as_ref(), &topic, N).await;
    let got = received.collect(N as usize).await;
    assert_each_once(got.iter().map(|d| d.1), N, "the subscriber");
    s.unsubscribe().await.expect("unsubscribe");
    b.disconnect().await.expect("disconnect");
    publisher.disconnect().await.expect("disconnect");
}

/// After `unsubscribe` returns, nothing more is delivered.
pub async fn unsubscribe_stops<F, Fut>(connect: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let topic = unique_topic("conformance.unsub");
    let (tx, mut received) = Received::channel();
    let b = connect().await;
    let s = b
        .subscribe(&topic, recorder(&tx, 0), SubscribeOptions::new())
        .await
        .expect("subscribe");
    let publisher = connect().await;
    publish_numbered(publisher.as_ref(), &topic, 1).await;
    assert_eq!(received.collect(1).await, vec![(0, 1)]);
    s.unsubscribe().await.expect("unsubscribe");
    publish_numbered(publisher.as_ref(), &topic, 3).await;
    assert!(
        tokio::time::timeout(QUIET, received.rx.recv())
            .await
            .is_err(),
        "delivered after unsubscribe"
    );
    b.disconnect().await.expect("disconnect");
    publisher.disconnect().await.expect("disconnect");
}

/// The message [`survives_a_panicking_handler`]'s handler panics on (the first time).
pub const PANICS_ON: u64 = 3;

/// What becomes of a message whose handler panicked: as of one whose handler failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterPanic {
    /// Gone (memory, NATS core).
    Dropped,
    /// Gone, and the publish fails with an `INTERNAL` error (HTTP: the publisher gets the
    /// handler's failure).
    Reported,
    /// Delivered again, and handled (JetStream, RabbitMQ).
    Redelivered,
}

/// A handler that panics on the first delivery of message [`PANICS_ON`] keeps its
/// subscription: the messages after it are handled, each once; the one it panicked on is
/// treated as one whose handler failed (see [`AfterPanic`]). Every other publish succeeds.
pub async fn survives_a_panicking_handler<F, Fut>(
    connect: F,
    options: SubscribeOptions,
    after: AfterPanic,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    const N: u64 = 10;
    let topic = unique_topic("conformance.panic");
    let (tx, mut received) = Received::channel();
    let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handler = {
        let record = recorder(&tx, 0);
        let panicked = panicked.clone();
        broker::handler(move |event: Event| {
            let record = record.clone();
            let panicked = panicked.clone();
            async move {
                if event.message().body == PANICS_ON.to_string().as_bytes()
                    && !panicked.swap(true, std::sync::atomic::Ordering::AcqRel)
                {
                    panic!("test: panicking on message {PANICS_ON}");
                }
                record(event).await
            }
        })
    };
    let b = connect().await;
    let s = b
        .subscribe(&topic, handler, options)
        .await
        .expect("subscribe");
    let publisher = connect().await;
    for id in 1..=N {
        let result = publisher.publish(&topic, numbered(id)).await;
        if id == PANICS_ON && after == AfterPanic::Reported {
            let e = result.expect_err("the handler panicked: the publish must fail");
            assert_eq!(e.code(), micro_runtime::Code::Internal, "{e}");
        } else {
            result.unwrap_or_else(|e| panic!("publish {id}: {e}"));
        }
    }
    let redelivers = after == AfterPanic::Redelivered;
    let expected = if redelivers { N } else { N - 1 };
    let got = received.collect(expected as usize).await;
    assert!(
        panicked.load(std::sync::atomic::Ordering::Acquire),
        "the handler never panicked"
    );
    let ids = got.iter().map(|d| d.1);
    if redelivers {
        assert_each_once(ids, N, "the subscriber");
    } else {
        let handled: Vec<u64> = ids.collect();
        assert!(
            !handled.contains(&PANICS_ON),
            "message {PANICS_ON} handled after the panic on a backend that does not redeliver"
        );
        assert_each_once(
            handled
                .into_iter()
                .map(|id| if id > PANICS_ON { id - 1 } else { id }),
            N - 1,
            "the subscriber",
        );
    }
    s.unsubscribe().await.expect("unsubscribe");
    b.disconnect().await.expect("disconnect");
    publisher.disconnect().await.expect("disconnect");
}

/// An `event-subscriber` example process: its printed ids arrive on a channel.
pub struct EventSubscriber {
    proc: crate::Proc,
    ids: std::sync::mpsc::Receiver<u64>,
}

impl EventSubscriber {
    /// Starts `event-subscriber` with `args`; returns once it has subscribed (it logged
    /// `<name> started on <address>`).
    pub fn start(args: &[&str]) -> EventSubscriber {
        use std::io::BufRead;
        let mut child = std::process::Command::new(crate::example_binary("event-subscriber"))
            .args(["--server_address", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start event-subscriber");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let proc = crate::Proc(child);
        let (tx, ids) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("received ").and_then(|s| s.parse().ok())
                    && tx.send(id).is_err()
                {
                    break;
                }
            }
        });
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut log = Vec::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(" started on ") {
                    let _ = ready_tx.send(Ok(()));
                }
                log.push(line);
            }
            let _ = ready_tx.send(Err(log.join("\n")));
        });
        match ready.recv_timeout(PATIENCE) {
            Ok(Ok(())) => {}
            Ok(Err(log)) => panic!("event-subscriber exited before subscribing:\n{log}"),
            Err(_) => panic!("event-subscriber did not subscribe within {PATIENCE:?}"),
        }
        EventSubscriber { proc, ids }
    }

    /// The next printed id, waiting up to `limit`.
    pub fn next(&self, limit: Duration) -> Option<u64> {
        self.ids.recv_timeout(limit).ok()
    }

    /// Kills the process at once (SIGKILL): no goodbye to the broker. Returns the ids it
    /// printed that were not read yet: it may have handled (and acknowledged) them just
    /// before it died.
    pub fn kill(mut self) -> Vec<u64> {
        let _ = self.proc.0.kill();
        let _ = self.proc.0.wait();
        // The reader ends at the pipe's end, so this ends too.
        self.ids.iter().collect()
    }
}

/// Runs `event-publisher` with `args` to the end; panics when it fails.
pub fn run_event_publisher(args: &[&str]) {
    let out = std::process::Command::new(crate::example_binary("event-publisher"))
        .args(["--server_address", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("run event-publisher");
    assert!(
        out.status.success(),
        "event-publisher failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
