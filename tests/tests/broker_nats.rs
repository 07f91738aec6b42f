//! The NATS brokers, core and JetStream, against the conformance suite (`micro_tests::broker`),
//! and what only JetStream promises: a failed message comes back, a crashed subscriber's
//! messages go to another member of its group; and both surviving a server restart.
//!
//! The suite runs against the NATS server (with JetStream) at 127.0.0.1:4222, and fails when
//! there is none; the restart tests start their own `nats-server` on a free port.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use micro_runtime::Error;
use micro_runtime::broker::nats::NatsBroker;
use micro_runtime::broker::{self, Broker, Event, SubscribeOptions};
use micro_tests::broker::{self as suite, numbered, unique_topic};
use tokio::sync::mpsc;

/// The shared server the suite runs against.
const ADDRESS: &str = "nats://127.0.0.1:4222";
/// Where the restart tests find the server binary.
const NATS_SERVER: &str = "/usr/sbin/nats-server";
/// Bound on each test.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
    // The JetStream streams the test made on the shared server.
    suite::delete_jetstream_streams(ADDRESS).await;
}

/// Connects `broker`, failing the test with how to start NATS when it is not there.
async fn connected(broker: NatsBroker) -> Arc<dyn Broker> {
    if let Err(e) = broker.connect().await {
        panic!(
            "these tests need nats-server with JetStream at {} ({e}); start it with \
             `start-stop-daemon --start --oknodo --background --exec {NATS_SERVER} -- \
             -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log`",
            broker.address()
        );
    }
    Arc::new(broker)
}

async fn core() -> Arc<dyn Broker> {
    connected(NatsBroker::new(ADDRESS).expect("address")).await
}

async fn jetstream() -> Arc<dyn Broker> {
    connected(NatsBroker::jetstream(ADDRESS).expect("address")).await
}

fn group(prefix: &str) -> String {
    unique_topic(prefix).replace('.', "-")
}

/// The id in a message's body.
fn id_of(event: &Event) -> Result<u64, Error> {
    std::str::from_utf8(&event.message().body)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::bad_request("test", "body is not an id"))
}

/// Receives ids until `done` says the collection is complete, failing after `limit`.
async fn receive_until(
    rx: &mut mpsc::UnboundedReceiver<u64>,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(u64) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(id)) => {
                if done(id) {
                    return;
                }
            }
            Ok(None) => panic!("handlers gone before {what}"),
            Err(_) => panic!("no {what} within {limit:?}"),
        }
    }
}

// The conformance suite, core NATS.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_broadcast_to_three() {
    bounded(suite::broadcast_to_three(core)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_queue_group_of_three() {
    bounded(suite::queue_group_of_three(core)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_ten_thousand() {
    bounded(suite::ten_thousand(core, SubscribeOptions::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_unsubscribe_stops() {
    bounded(suite::unsubscribe_stops(core)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_survives_a_panicking_handler() {
    bounded(suite::survives_a_panicking_handler(
        core,
        SubscribeOptions::new(),
        suite::AfterPanic::Dropped,
    ))
    .await;
}

// The conformance suite, JetStream.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_broadcast_to_three() {
    bounded(suite::broadcast_to_three(jetstream)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_queue_group_of_three() {
    bounded(suite::queue_group_of_three(jetstream)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_ten_thousand() {
    let options = SubscribeOptions::new().queue(group("many"));
    bounded(suite::ten_thousand(jetstream, options)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_unsubscribe_stops() {
    bounded(suite::unsubscribe_stops(jetstream)).await;
}

/// In a queue group (a durable consumer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_survives_a_panicking_handler() {
    let options = SubscribeOptions::new().queue(group("panic"));
    bounded(suite::survives_a_panicking_handler(
        jetstream,
        options,
        suite::AfterPanic::Redelivered,
    ))
    .await;
}

/// Broadcast (an ephemeral consumer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_broadcast_survives_a_panicking_handler() {
    bounded(suite::survives_a_panicking_handler(
        jetstream,
        SubscribeOptions::new(),
        suite::AfterPanic::Redelivered,
    ))
    .await;
}

// JetStream's guarantees.

/// A handler that fails the first delivery of every third message gets those again, and
/// each message is finally handled exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_redelivers_failed_messages() {
    bounded(async {
        const N: u64 = 60;
        let topic = unique_topic("nats.redelivery");
        let deliveries = Arc::new(Mutex::new(BTreeMap::<u64, usize>::new()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handler = {
            let deliveries = deliveries.clone();
            broker::handler(move |event: Event| {
                let deliveries = deliveries.clone();
                let tx = tx.clone();
                async move {
                    let id = id_of(&event)?;
                    let n = {
                        let mut d = deliveries.lock().unwrap();
                        let n = d.entry(id).or_insert(0);
                        *n += 1;
                        *n
                    };
                    if id % 3 == 0 && n == 1 {
                        return Err(Error::internal_server_error("test", "first delivery fails"));
                    }
                    let _ = tx.send(id);
                    Ok(())
                }
            })
        };
        let subscriber = jetstream().await;
        let sub = subscriber
            .subscribe(
                &topic,
                handler,
                SubscribeOptions::new().queue(group("redelivery")),
            )
            .await
            .expect("subscribe");
        let publisher = jetstream().await;
        suite::publish_numbered(publisher.as_ref(), &topic, N).await;
        let mut handled = BTreeSet::new();
        receive_until(
            &mut rx,
            suite::PATIENCE,
            "handling of every message",
            |id| {
                handled.insert(id);
                handled.len() as u64 == N
            },
        )
        .await;
        // Nothing handled twice once acknowledged.
        assert!(
            tokio::time::timeout(suite::QUIET, rx.recv()).await.is_err(),
            "a handled message came again"
        );
        let deliveries = deliveries.lock().unwrap().clone();
        for id in 1..=N {
            let expected = if id % 3 == 0 { 2 } else { 1 };
            assert_eq!(deliveries.get(&id), Some(&expected), "deliveries of {id}");
        }
        sub.unsubscribe().await.expect("unsubscribe");
        subscriber.disconnect().await.expect("disconnect");
        publisher.disconnect().await.expect("disconnect");
    })
    .await;
}

/// Subscriber A of a queue group handles some messages, then hangs, then it is dropped
/// abruptly; B joins the group. Every one of 10,000 messages is handled at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_crashed_subscriber_messages_go_to_another() {
    bounded(async {
        const N: u64 = 10_000;
        const A_HANDLES: usize = 500;
        let ack_wait = Duration::from_secs(1);
        let topic = unique_topic("nats.crash");
        let queue = group("crash");
        let (tx, mut rx) = mpsc::unbounded_channel();

        let a = connected(
            NatsBroker::jetstream(ADDRESS)
                .unwrap()
                .with_ack_wait(ack_wait),
        )
        .await;
        let a_count = Arc::new(AtomicUsize::new(0));
        let a_handler = {
            let tx = tx.clone();
            let a_count = a_count.clone();
            broker::handler(move |event: Event| {
                let tx = tx.clone();
                let a_count = a_count.clone();
                async move {
                    let id = id_of(&event)?;
                    if a_count.fetch_add(1, Ordering::SeqCst) >= A_HANDLES {
                        // Hung: never acknowledges.
                        std::future::pending::<()>().await;
                    }
                    let _ = tx.send(id);
                    Ok(())
                }
            })
        };
        let a_sub = a
            .subscribe(&topic, a_handler, SubscribeOptions::new().queue(&queue))
            .await
            .expect("subscribe A");

        let publisher = jetstream().await;
        for id in 1..=N / 2 {
            publisher
                .publish(&topic, numbered(id))
                .await
                .expect("publish");
        }
        let mut handled = BTreeSet::new();
        receive_until(&mut rx, suite::PATIENCE, "A handling its share", |id| {
            handled.insert(id);
            handled.len() >= A_HANDLES
        })
        .await;
        // A crashes: dropped without unsubscribing or disconnecting, with deliveries
        // unacknowledged (one hung in its handler, more waiting behind it).
        drop(a_sub);
        drop(a);

        let b = connected(
            NatsBroker::jetstream(ADDRESS)
                .unwrap()
                .with_ack_wait(ack_wait),
        )
        .await;
        let b_handler = {
            let tx = tx.clone();
            broker::handler(move |event: Event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(id_of(&event)?);
                    Ok(())
                }
            })
        };
        let b_sub = b
            .subscribe(&topic, b_handler, SubscribeOptions::new().queue(&queue))
            .await
            .expect("subscribe B");
        for id in N / 2 + 1..=N {
            publisher
                .publish(&topic, numbered(id))
                .await
                .expect("publish");
        }
        receive_until(
            &mut rx,
            Duration::from_secs(60),
            "handling of all 10,000",
            |id| {
                handled.insert(id);
                handled.len() as u64 == N
            },
        )
        .await;
        assert_eq!(handled, (1..=N).collect::<BTreeSet<_>>());
        b_sub.unsubscribe().await.expect("unsubscribe");
        b.disconnect().await.expect("disconnect");
        publisher.disconnect().await.expect("disconnect");
    })
    .await;
}

/// A message published twice with the same `Micro-Id` (a retried publish) is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_drops_a_message_published_twice() {
    bounded(async {
        let topic = unique_topic("nats.dedup");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handler = broker::handler(move |event: Event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(id_of(&event)?);
                Ok(())
            }
        });
        let subscriber = jetstream().await;
        let sub = subscriber
            .subscribe(&topic, handler, SubscribeOptions::new())
            .await
            .expect("subscribe");
        let publisher = jetstream().await;
        let id = format!("dedup-{topic}");
        for n in [1, 1, 2] {
            let message = numbered(n).with_header(broker::ID_HEADER, format!("{id}-{n}"));
            publisher.publish(&topic, message).await.expect("publish");
        }
        let mut got = Vec::new();
        receive_until(&mut rx, suite::PATIENCE, "both messages", |n| {
            got.push(n);
            n == 2
        })
        .await;
        assert!(
            tokio::time::timeout(suite::QUIET, rx.recv()).await.is_err(),
            "more deliveries"
        );
        assert_eq!(got, vec![1, 2]);
        sub.unsubscribe().await.expect("unsubscribe");
        subscriber.disconnect().await.expect("disconnect");
        publisher.disconnect().await.expect("disconnect");
    })
    .await;
}

/// Connecting to an address where no server listens fails at once, saying so.
#[tokio::test]
async fn unreachable_server_is_an_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("local address").port()
    };
    let broker = NatsBroker::new(&format!("nats://127.0.0.1:{port}")).unwrap();
    let started = Instant::now();
    let error = broker
        .publish("nats.unreachable", numbered(1))
        .await
        .expect_err("published with no server");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(error.code(), micro_runtime::Code::Unavailable);
    assert!(error.detail().contains("cannot connect"), "{error}");
}

// Server restarts.

/// A `nats-server` of the test's own on a free port, killed when dropped.
struct NatsServer {
    port: u16,
    /// The JetStream store (`-js -sd`), if JetStream is on.
    store: Option<tempfile::TempDir>,
    process: Option<Child>,
}

impl NatsServer {
    fn start(jetstream: bool) -> NatsServer {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("local address").port()
        };
        let store = jetstream.then(|| tempfile::tempdir().expect("a store directory"));
        let mut server = NatsServer {
            port,
            store,
            process: None,
        };
        server.run();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let mut command = Command::new(NATS_SERVER);
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(store) = &self.store {
            let dir: PathBuf = store.path().to_owned();
            command.arg("-js").arg("-sd").arg(dir);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NATS_SERVER}: {e}"));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nats-server on port {} exited: {status}", self.port);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server not listening on port {} after 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.process = Some(child);
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, on the same port and store.
    fn restart(&mut self) {
        self.kill();
        self.run();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Core NATS: the subscription outlives a server restart; messages published after the
/// restart arrive; a publish while the server is down does not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_survives_a_server_restart() {
    bounded(async {
        let mut server = NatsServer::start(false);
        let topic = unique_topic("nats.restart");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handler = broker::handler(move |event: Event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(id_of(&event)?);
                Ok(())
            }
        });
        let subscriber = connected(NatsBroker::new(&server.url()).unwrap()).await;
        let sub = subscriber
            .subscribe(&topic, handler, SubscribeOptions::new())
            .await
            .expect("subscribe");
        let publisher = connected(
            NatsBroker::new(&server.url())
                .unwrap()
                .with_publish_timeout(Duration::from_secs(2)),
        )
        .await;
        suite::publish_numbered(publisher.as_ref(), &topic, 10).await;
        let mut got = BTreeSet::new();
        receive_until(&mut rx, suite::PATIENCE, "the first 10", |id| {
            got.insert(id);
            got.len() == 10
        })
        .await;

        server.kill();
        let started = Instant::now();
        let during = publisher.publish(&topic, numbered(1_000_000)).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a publish while the server is down took {:?} ({during:?})",
            started.elapsed()
        );
        server.restart();

        // At most once: what is published before the subscription is back is lost, so keep
        // publishing until something arrives.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut id = 11;
        loop {
            assert!(
                Instant::now() < deadline,
                "nothing published after the restart arrived within 30 s"
            );
            let _ = publisher.publish(&topic, numbered(id)).await;
            id += 1;
            match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                Ok(Some(n)) if (11..1_000_000).contains(&n) => break,
                _ => {}
            }
        }
        sub.unsubscribe().await.expect("unsubscribe");
        subscriber.disconnect().await.expect("disconnect");
        publisher.disconnect().await.expect("disconnect");
    })
    .await;
}

/// JetStream: a queue group's and a broadcast subscriber's consumers outlive a server
/// restart (a kill in the middle of the stream); every message published before and after
/// reaches both; a publish while the server is down fails within its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_survives_a_server_restart() {
    bounded(async {
        const N: u64 = 1_000;
        let mut server = NatsServer::start(true);
        let topic = unique_topic("nats.restart");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let recorder = |n: usize| {
            let tx = tx.clone();
            broker::handler(move |event: Event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((n, id_of(&event)?));
                    Ok(())
                }
            })
        };
        let broker = |timeout: u64| {
            NatsBroker::jetstream(&server.url())
                .unwrap()
                .with_ack_wait(Duration::from_secs(2))
                .with_publish_timeout(Duration::from_secs(timeout))
        };
        let subscriber = connected(broker(30)).await;
        let grouped = subscriber
            .subscribe(&topic, recorder(0), SubscribeOptions::new().queue("restart"))
            .await
            .expect("subscribe");
        let broadcast = subscriber
            .subscribe(&topic, recorder(1), SubscribeOptions::new())
            .await
            .expect("subscribe");
        let publisher = connected(broker(30)).await;
        let impatient = connected(broker(2)).await;
        suite::publish_numbered(publisher.as_ref(), &topic, N / 2).await;

        server.kill();
        let started = Instant::now();
        let during = impatient.publish(&topic, numbered(1_000_000)).await;
        assert!(during.is_err(), "a publish was confirmed with the server down");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a publish while the server is down took {:?}",
            started.elapsed()
        );
        server.restart();

        for id in N / 2 + 1..=N {
            publisher
                .publish(&topic, numbered(id))
                .await
                .unwrap_or_else(|e| panic!("publish {id} after the restart: {e}"));
        }
        let mut got = [BTreeSet::new(), BTreeSet::new()];
        let all: BTreeSet<u64> = (1..=N).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !(all.is_subset(&got[0]) && all.is_subset(&got[1])) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((n, id))) => {
                    got[n].insert(id);
                }
                Ok(None) => panic!("handlers gone"),
                Err(_) => panic!(
                    "missing after 60 s: {} at the group (first {:?}), {} at the broadcast subscriber (first {:?})",
                    all.difference(&got[0]).count(),
                    all.difference(&got[0]).next(),
                    all.difference(&got[1]).count(),
                    all.difference(&got[1]).next(),
                ),
            }
        }
        grouped.unsubscribe().await.expect("unsubscribe");
        broadcast.unsubscribe().await.expect("unsubscribe");
        subscriber.disconnect().await.expect("disconnect");
        publisher.disconnect().await.expect("disconnect");
        impatient.disconnect().await.expect("disconnect");
    })
    .await;
}
