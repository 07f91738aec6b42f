//! The RabbitMQ broker against the RabbitMQ at 127.0.0.1:5672 (user `guest`): the
//! conformance suite, redelivery after handler errors, a queue group surviving a member's
//! crash, reconnecting after the connection breaks, and errors when RabbitMQ is unreachable.
//!
//! RabbitMQ must be running (`rabbitmq-server -detached`); without it these tests fail, they
//! do not skip. Crashes and broken connections are made with a TCP proxy on a free
//! 127.0.0.1 port between a broker and RabbitMQ, cut when the test says so. The durable
//! queues the tests create are deleted when each test ends, passed or failed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use micro_runtime::broker::rabbitmq::RabbitBroker;
use micro_runtime::broker::{
    self, Broker, Envelope, Event, EventHandler, SubscribeOptions, Subscription,
};
use micro_runtime::{Code, Error, Result};
use micro_tests::broker::{self as suite, PATIENCE, Received, numbered, recorder, unique_topic};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The RabbitMQ the tests use.
const ADDRESS: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Bound on each test.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .unwrap_or_else(|_| panic!("the test took over {TEST_TIMEOUT:?}"));
}

/// A connected broker at `address`; fails the test, saying why, when RabbitMQ is not there.
async fn connect(address: &str) -> RabbitBroker {
    let b = RabbitBroker::from_address(address).expect("address");
    if let Err(e) = b.connect().await {
        panic!(
            "RabbitMQ is not reachable at {address} ({e}); these tests need it running \
             (`rabbitmq-server -detached`)"
        );
    }
    b
}

/// Deletes the durable queues registered with it when dropped, also when the test panicked.
#[derive(Clone, Default)]
struct Cleanup(Arc<Mutex<BTreeSet<String>>>);

impl Cleanup {
    fn queue(&self, name: &str) -> String {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned());
        name.to_owned()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) > 1 {
            return;
        }
        let queues = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        if queues.is_empty() {
            return;
        }
        // A runtime of its own: this may run while the test's runtime is panicking.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(b) = RabbitBroker::from_address(ADDRESS) else {
                    return;
                };
                for q in &queues {
                    if let Err(e) = b.delete_queue(q).await {
                        eprintln!("cleanup: deleting queue {q}: {e}");
                    }
                }
                let _ = b.disconnect().await;
            });
        })
        .join();
    }
}

/// A RabbitBroker that registers the queue groups it subscribes with for [`Cleanup`].
struct Recording {
    broker: RabbitBroker,
    cleanup: Cleanup,
}

#[async_trait::async_trait]
impl Broker for Recording {
    fn name(&self) -> &'static str {
        self.broker.name()
    }
    fn address(&self) -> String {
        self.broker.address()
    }
    async fn connect(&self) -> Result<()> {
        self.broker.connect().await
    }
    async fn disconnect(&self) -> Result<()> {
        self.broker.disconnect().await
    }
    async fn publish(&self, topic: &str, message: Envelope) -> Result<()> {
        self.broker.publish(topic, message).await
    }
    async fn subscribe(
        &self,
        topic: &str,
        handler: EventHandler,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        if let Some(q) = options.get_queue() {
            self.cleanup.queue(q);
        }
        self.broker.subscribe(topic, handler, options).await
    }
}

/// The suite's factory: a new connection each time.
fn rabbit(
    cleanup: &Cleanup,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Arc<dyn Broker>>>> {
    let cleanup = cleanup.clone();
    move || {
        let cleanup = cleanup.clone();
        Box::pin(async move {
            Arc::new(Recording {
                broker: connect(ADDRESS).await,
                cleanup,
            }) as Arc<dyn Broker>
        })
    }
}

fn unique_queue(prefix: &str) -> String {
    unique_topic(&format!("micro-test.{prefix}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_to_three() {
    let cleanup = Cleanup::default();
    bounded(suite::broadcast_to_three(rabbit(&cleanup))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_of_three() {
    let cleanup = Cleanup::default();
    bounded(suite::queue_group_of_three(rabbit(&cleanup))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand() {
    let cleanup = Cleanup::default();
    let queue = cleanup.queue(&unique_queue("many"));
    bounded(suite::ten_thousand(
        rabbit(&cleanup),
        SubscribeOptions::new().queue(queue),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops() {
    let cleanup = Cleanup::default();
    bounded(suite::unsubscribe_stops(rabbit(&cleanup))).await;
}

/// In a queue group (a durable queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_panicking_handler() {
    let cleanup = Cleanup::default();
    let queue = cleanup.queue(&unique_queue("panic"));
    bounded(suite::survives_a_panicking_handler(
        rabbit(&cleanup),
        SubscribeOptions::new().queue(queue),
        suite::AfterPanic::Redelivered,
    ))
    .await;
}

/// Broadcast (the subscription's own queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_survives_a_panicking_handler() {
    let cleanup = Cleanup::default();
    bounded(suite::survives_a_panicking_handler(
        rabbit(&cleanup),
        SubscribeOptions::new(),
        suite::AfterPanic::Redelivered,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_name_makes_a_rabbit_broker() {
    let registry = Arc::new(micro_runtime::registry::memory::MemoryRegistry::new());
    let b = broker::from_name("rabbitmq", ADDRESS, registry).expect("from_name");
    assert_eq!(b.name(), "rabbitmq");
    assert_eq!(b.address(), "amqp://guest@127.0.0.1:5672/%2F");
}

/// Each message's id; a handler that fails the first delivery of every third id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_messages_are_delivered_again() {
    const N: u64 = 300;
    let cleanup = Cleanup::default();
    bounded(async {
        let topic = unique_topic("rabbit.redeliver");
        let queue = cleanup.queue(&unique_queue("redeliver"));
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, bool)>();
        let failed_once = Arc::new(Mutex::new(BTreeSet::new()));
        let handler = broker::handler(move |event: Event| {
            let tx = tx.clone();
            let failed_once = failed_once.clone();
            async move {
                let id: u64 = std::str::from_utf8(&event.message().body)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| Error::bad_request("test", "body is not an id"))?;
                let fail = id.is_multiple_of(3)
                    && failed_once
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id);
                let _ = tx.send((id, fail));
                if fail {
                    return Err(Error::internal_server_error("test", "failing once"));
                }
                Ok(())
            }
        });
        let sub_broker = connect(ADDRESS).await;
        let sub = sub_broker
            .subscribe(&topic, handler, SubscribeOptions::new().queue(&queue))
            .await
            .expect("subscribe");
        let publisher = connect(ADDRESS).await;
        suite::publish_numbered(&publisher, &topic, N).await;

        let mut handled = BTreeSet::new();
        let mut deliveries: BTreeMap<u64, usize> = BTreeMap::new();
        while handled.len() < N as usize {
            let (id, failed) = tokio::time::timeout(PATIENCE, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {N} handled", handled.len()))
                .expect("handler gone");
            *deliveries.entry(id).or_default() += 1;
            if !failed {
                handled.insert(id);
            }
        }
        for id in 1..=N {
            let expected = if id % 3 == 0 { 2 } else { 1 };
            assert_eq!(deliveries[&id], expected, "deliveries of {id}");
        }
        sub.unsubscribe().await.expect("unsubscribe");
        sub_broker.disconnect().await.expect("disconnect");
        publisher.disconnect().await.expect("disconnect");
    })
    .await;
}

/// A TCP proxy on a free 127.0.0.1 port to RabbitMQ: `cut` drops every connection through it
/// at once (what RabbitMQ sees when a process dies), `close` also stops accepting new ones.
struct Proxy {
    port: u16,
    accept: JoinHandle<()>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let pipes = pipes.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let pipe = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect("127.0.0.1:5672").await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    pipes.lock().unwrap_or_else(|e| e.into_inner()).push(pipe);
                }
            }
        });
        Proxy {
            port,
            accept,
            pipes,
        }
    }

    fn address(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn cut(&self) {
        for pipe in self
            .pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            pipe.abort();
        }
    }

    fn close(&self) {
        self.accept.abort();
        self.cut();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.close();
    }
}

/// Subscriber A of a queue group handles 500 messages, then hangs in its handler without
/// acknowledging, and its process "crashes" (its connection is cut); B joins the group
/// later. Every one of 10,000 messages, published before, during and after, is handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_survives_a_crashed_member() {
    const N: u64 = 10_000;
    const BEFORE_HANG: usize = 500;
    let cleanup = Cleanup::default();
    bounded(async {
        let topic = unique_topic("rabbit.crash");
        let queue = cleanup.queue(&unique_queue("crash"));
        let (tx, mut received) = Received::channel();

        // A: through the proxy, so that cutting it is a crash as RabbitMQ sees one.
        let proxy = Proxy::start().await;
        let a = connect(&proxy.address()).await;
        let (release_tx, release) = watch::channel(false);
        let handled_by_a = Arc::new(AtomicUsize::new(0));
        let a_handler = {
            let record = recorder(&tx, 0);
            let handled_by_a = handled_by_a.clone();
            broker::handler(move |event: Event| {
                let record = record.clone();
                let handled_by_a = handled_by_a.clone();
                let mut release = release.clone();
                async move {
                    if handled_by_a.load(Ordering::SeqCst) >= BEFORE_HANG {
                        // Hung: never acknowledges (until the test ends).
                        let _ = release.wait_for(|r| *r).await;
                        return Err(Error::internal_server_error("test", "was hung"));
                    }
                    record(event).await?;
                    handled_by_a.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
        };
        let _a_sub = a
            .subscribe(&topic, a_handler, SubscribeOptions::new().queue(&queue))
            .await
            .expect("subscribe A");

        let publisher = connect(ADDRESS).await;
        // While A runs: it handles 500, then hangs holding up to its prefetch unacknowledged.
        for id in 1..=4000 {
            publisher
                .publish(&topic, numbered(id))
                .await
                .unwrap_or_else(|e| panic!("publish {id}: {e}"));
        }
        let got = received.collect(BEFORE_HANG).await;
        assert_eq!(got.len(), BEFORE_HANG, "A handled more than it should");

        // The crash: A's connection is gone without an AMQP goodbye.
        proxy.close();
        // While no member runs: the messages wait in the group's queue.
        for id in 4001..=7000 {
            publisher
                .publish(&topic, numbered(id))
                .await
                .unwrap_or_else(|e| panic!("publish {id}: {e}"));
        }
        // B joins the group and gets the rest, A's unacknowledged ones included.
        let b = connect(ADDRESS).await;
        let b_sub = b
            .subscribe(
                &topic,
                recorder(&tx, 1),
                SubscribeOptions::new().queue(&queue),
            )
            .await
            .expect("subscribe B");
        for id in 7001..=N {
            publisher
                .publish(&topic, numbered(id))
                .await
                .unwrap_or_else(|e| panic!("publish {id}: {e}"));
        }
        let rest = received.collect(N as usize - BEFORE_HANG).await;
        let seen: BTreeSet<u64> = got.iter().chain(&rest).map(|d| d.1).collect();
        let missing: Vec<u64> = (1..=N).filter(|id| !seen.contains(id)).collect();
        assert!(
            missing.is_empty(),
            "{} ids never handled (first {:?})",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert!(
            rest.iter().all(|d| d.0 == 1),
            "A handled messages after its crash"
        );

        b_sub.unsubscribe().await.expect("unsubscribe B");
        b.disconnect().await.expect("disconnect B");
        let _ = release_tx.send(true);
        a.disconnect().await.expect("disconnect A");
        publisher.disconnect().await.expect("disconnect");
    })
    .await;
}

/// The connection breaks under a subscriber and a publisher: publishing fails with
/// `UNAVAILABLE` at most until it reconnects, and the subscription comes back by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_connection_breaks() {
    const N: u64 = 100;
    let cleanup = Cleanup::default();
    bounded(async {
        let topic = unique_topic("rabbit.reconnect");
        let queue = cleanup.queue(&unique_queue("reconnect"));
        let proxy = Proxy::start().await;
        let (tx, mut received) = Received::channel();
        let sub_broker = connect(&proxy.address()).await;
        let sub = sub_broker
            .subscribe(
                &topic,
                recorder(&tx, 0),
                SubscribeOptions::new().queue(&queue),
            )
            .await
            .expect("subscribe");
        let publisher = connect(&proxy.address()).await;
        suite::publish_numbered(&publisher, &topic, N).await;
        assert_eq!(received.collect(N as usize).await.len(), N as usize);

        proxy.cut();
        let mut failures = 0;
        for id in N + 1..=2 * N {
            loop {
                match publisher.publish(&topic, numbered(id)).await {
                    Ok(()) => break,
                    Err(e) => {
                        assert_eq!(e.code(), Code::Unavailable, "publish {id}: {e}");
                        failures += 1;
                        assert!(failures < 50, "publish keeps failing: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        // Messages published before the subscription came back waited in its queue.
        let got = received.collect(N as usize).await;
        let seen: BTreeSet<u64> = got.iter().map(|d| d.1).collect();
        assert!(
            (N + 1..=2 * N).all(|id| seen.contains(&id)),
            "missing after reconnecting: {:?}",
            (N + 1..=2 * N)
                .filter(|id| !seen.contains(id))
                .take(5)
                .collect::<Vec<_>>()
        );
        sub.unsubscribe().await.expect("unsubscribe");
        sub_broker.disconnect().await.expect("disconnect");
        publisher.disconnect().await.expect("disconnect");
    })
    .await;
}

/// Nothing listens: connecting, publishing and subscribing fail at once with `UNAVAILABLE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_is_unavailable() {
    bounded(async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let b = RabbitBroker::from_address(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f"))
            .expect("address");
        let started = std::time::Instant::now();
        let e = b.connect().await.expect_err("connect");
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        let e = b
            .publish("t", Envelope::new("x"))
            .await
            .expect_err("publish");
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        let e = b
            .subscribe(
                "t",
                recorder(&mpsc::unbounded_channel().0, 0),
                SubscribeOptions::new(),
            )
            .await
            .err()
            .expect("subscribe fails");
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}

/// Wrong credentials are refused, not retried forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_an_error() {
    bounded(async {
        connect(ADDRESS)
            .await
            .disconnect()
            .await
            .expect("disconnect");
        let b =
            RabbitBroker::from_address("amqp://guest:wrong@127.0.0.1:5672/%2f").expect("address");
        let e = b.connect().await.expect_err("connect");
        assert!(
            matches!(e.code(), Code::PermissionDenied | Code::Unavailable),
            "{e}"
        );
    })
    .await;
}
