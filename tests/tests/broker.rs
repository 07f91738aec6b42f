//! The broker backends against the conformance suite (`micro_tests::broker`), and typed
//! publishing and subscribing through services.

use std::sync::Arc;

use micro_runtime::broker::memory::MemoryBroker;
use micro_runtime::broker::{Broker, SubscribeOptions};
use micro_tests::broker as suite;

fn memory() -> impl Fn() -> std::future::Ready<Arc<dyn Broker>> {
    let shared: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    move || std::future::ready(shared.clone())
}

#[tokio::test]
async fn memory_broadcast_to_three() {
    suite::broadcast_to_three(memory()).await;
}

#[tokio::test]
async fn memory_queue_group_of_three() {
    suite::queue_group_of_three(memory()).await;
}

#[tokio::test]
async fn memory_ten_thousand() {
    suite::ten_thousand(memory(), SubscribeOptions::new()).await;
}

#[tokio::test]
async fn memory_unsubscribe_stops() {
    suite::unsubscribe_stops(memory()).await;
}

#[tokio::test]
async fn memory_survives_a_panicking_handler() {
    suite::survives_a_panicking_handler(
        memory(),
        SubscribeOptions::new(),
        suite::AfterPanic::Dropped,
    )
    .await;
}

// --- http (the default) -------------------------------------------------------------------

use micro_runtime::broker::http::{BROADCAST_VERSION, HttpBroker, SERVICE_NAME};
use micro_runtime::registry::memory::MemoryRegistry;
use micro_runtime::{Context, Registry};

/// Each call: a new HTTP broker (its own listener), all in one registry.
fn http() -> impl Fn() -> std::future::Ready<Arc<dyn Broker>> {
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    move || {
        let b: Arc<dyn Broker> =
            Arc::new(HttpBroker::new("127.0.0.1:0", registry.clone()).unwrap());
        std::future::ready(b)
    }
}

#[tokio::test]
async fn http_broadcast_to_three() {
    suite::broadcast_to_three(http()).await;
}

#[tokio::test]
async fn http_queue_group_of_three() {
    suite::queue_group_of_three(http()).await;
}

#[tokio::test]
async fn http_ten_thousand() {
    suite::ten_thousand(http(), SubscribeOptions::new()).await;
}

#[tokio::test]
async fn http_unsubscribe_stops() {
    suite::unsubscribe_stops(http()).await;
}

#[tokio::test]
async fn http_survives_a_panicking_handler() {
    suite::survives_a_panicking_handler(
        http(),
        SubscribeOptions::new(),
        suite::AfterPanic::Reported,
    )
    .await;
}

/// Subscribers are registered as go-micro's HTTP broker registers them, and a message in
/// go-micro's JSON (as a Go publisher POSTs it) reaches the handler.
#[tokio::test]
async fn http_speaks_go_micro_format() {
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let broker = HttpBroker::new("", registry.clone()).unwrap();
    let (tx, mut received) = suite::Received::channel();
    let _bcast = broker
        .subscribe("go.topic", suite::recorder(&tx, 0), SubscribeOptions::new())
        .await
        .unwrap();
    let _queued = broker
        .subscribe(
            "go.topic",
            suite::recorder(&tx, 1),
            SubscribeOptions::new().queue("workers"),
        )
        .await
        .unwrap();
    let mut versions = registry.get_service(SERVICE_NAME).await.unwrap();
    versions.sort_by(|a, b| a.version.cmp(&b.version));
    let found: Vec<_> = versions.iter().map(|s| s.version.as_str()).collect();
    assert_eq!(found, [BROADCAST_VERSION, "workers"]);
    for svc in &versions {
        let node = &svc.nodes[0];
        assert!(
            node.id.starts_with("go.topic-go.micro.http.broker-"),
            "{}",
            node.id
        );
        assert!(node.address.starts_with("127.0.0.1:"), "{}", node.address);
        assert_eq!(node.metadata["broker"], "http");
        assert_eq!(node.metadata["topic"], "go.topic");
        assert_eq!(node.metadata["secure"], "false");
    }

    // What go-micro's publisher sends: JSON, base64 body, the topic in a header.
    let node = &versions[0].nodes[0];
    let json = r#"{"Header":{"Micro-Topic":"go.topic","Content-Type":"text/plain"},"Body":"NDI="}"#;
    let status = post(&node.address, &format!("/?id={}", node.id), json).await;
    assert_eq!(status, 200);
    assert_eq!(received.collect(1).await, vec![(0, 42)]);

    // Broken input: a clear HTTP error, nothing delivered, the subscriber keeps working.
    assert_eq!(
        post(&node.address, &format!("/?id={}", node.id), "{not json").await,
        400
    );
    let unknown = r#"{"Header":{"Micro-Topic":"go.topic"},"Body":"MQ=="}"#;
    assert_eq!(post(&node.address, "/?id=nobody", unknown).await, 404);
    let no_topic = r#"{"Header":{},"Body":"MQ=="}"#;
    assert_eq!(
        post(&node.address, &format!("/?id={}", node.id), no_topic).await,
        400
    );
    let status = post(&node.address, &format!("/?id={}", node.id), json).await;
    assert_eq!(status, 200);
    assert_eq!(received.collect(1).await, vec![(0, 42)]);

    broker.disconnect().await.unwrap();
    assert!(
        registry.get_service(SERVICE_NAME).await.is_err(),
        "deregistered"
    );
}

async fn post(address: &str, path: &str, body: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(address).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut rsp = String::new();
    conn.read_to_string(&mut rsp).await.unwrap();
    rsp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A subscriber that fails makes the publish fail, with its error.
#[tokio::test]
async fn http_handler_error_reaches_the_publisher() {
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let sub = HttpBroker::new("", registry.clone()).unwrap();
    let _s = sub
        .subscribe(
            "fails",
            micro_runtime::broker::handler(|_| async {
                Err(micro_runtime::Error::new(
                    micro_runtime::Code::PermissionDenied,
                    "not today",
                ))
            }),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    let publisher = HttpBroker::new("", registry).unwrap();
    let err = publisher
        .publish("fails", suite::numbered(1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), micro_runtime::Code::PermissionDenied);
    assert!(err.detail().contains("not today"), "{err}");
    // A topic nobody subscribes to: nothing to do.
    publisher
        .publish("nobody.listens", suite::numbered(1))
        .await
        .unwrap();
}

/// A queue group member that died (still registered) is skipped for a live one.
#[tokio::test]
async fn http_queue_group_skips_a_dead_member() {
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let (tx, mut received) = suite::Received::channel();
    let live = HttpBroker::new("", registry.clone()).unwrap();
    let _l = live
        .subscribe(
            "q.topic",
            suite::recorder(&tx, 0),
            SubscribeOptions::new().queue("g"),
        )
        .await
        .unwrap();
    // A dead member: registered at an address where nothing listens.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = micro_runtime::registry::Record {
        name: SERVICE_NAME.into(),
        version: "g".into(),
        nodes: vec![micro_runtime::registry::Node {
            id: "q.topic-dead".into(),
            address: format!("127.0.0.1:{dead_port}"),
            metadata: [
                ("broker".to_owned(), "http".to_owned()),
                ("topic".to_owned(), "q.topic".to_owned()),
            ]
            .into(),
        }],
        ..Default::default()
    };
    registry.register(&dead, Default::default()).await.unwrap();
    let publisher = HttpBroker::new("", registry).unwrap();
    suite::publish_numbered(&publisher, "q.topic", 50).await;
    let got = received.collect(50).await;
    assert_eq!(got.len(), 50);
}

/// A subscriber on the HTTP broker that calls `calls` each time its handler runs, then fails
/// with `UNAVAILABLE` or panics.
async fn failing_subscriber(
    registry: &Arc<dyn Registry>,
    topic: &str,
    options: SubscribeOptions,
    calls: &Arc<std::sync::atomic::AtomicUsize>,
    panics: bool,
) -> (HttpBroker, Box<dyn micro_runtime::broker::Subscription>) {
    let broker = HttpBroker::new("", registry.clone()).unwrap();
    let calls = calls.clone();
    let s = broker
        .subscribe(
            topic,
            micro_runtime::broker::handler(move |_| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if panics {
                        panic!("test: the handler panics");
                    }
                    Err(micro_runtime::Error::new(
                        micro_runtime::Code::Unavailable,
                        "busy, try later",
                    ))
                }
            }),
            options,
        )
        .await
        .unwrap();
    (broker, s)
}

/// A subscriber that answers with an error is not one that cannot be reached, whatever the
/// error's code: a queue group's handler that fails with `UNAVAILABLE` (or panics) has
/// handled the message once, and the publisher gets its error, the message not posted to
/// the other member; a broadcast subscriber failing with `UNAVAILABLE` fails the publish.
#[tokio::test]
async fn http_handler_unavailable_is_an_answer_not_unreachable() {
    use micro_runtime::Code;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    // A publisher per case, made once its subscribers are registered: a publisher's view
    // of the registry catches up with new subscribers through a watch, not at once.
    for (topic, panics, code) in [
        ("unavailable.group", false, Code::Unavailable),
        ("panics.group", true, Code::Internal),
    ] {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut members = Vec::new();
        for _ in 0..2 {
            let options = SubscribeOptions::new().queue("g");
            members.push(failing_subscriber(&registry, topic, options, &calls, panics).await);
        }
        let publisher = HttpBroker::new("", registry.clone()).unwrap();
        for n in 1..=10 {
            let err = publisher
                .publish(topic, suite::numbered(n))
                .await
                .unwrap_err();
            assert_eq!(err.code(), code, "{topic}: {err}");
            if !panics {
                assert!(err.detail().contains("busy, try later"), "{err}");
            }
            assert_eq!(
                calls.load(Ordering::SeqCst),
                n as usize,
                "{topic}: message {n} handled more than once"
            );
        }
    }

    let calls = Arc::new(AtomicUsize::new(0));
    let _broadcast = failing_subscriber(
        &registry,
        "unavailable.broadcast",
        SubscribeOptions::new(),
        &calls,
        false,
    )
    .await;
    let publisher = HttpBroker::new("", registry).unwrap();
    let err = publisher
        .publish("unavailable.broadcast", suite::numbered(1))
        .await
        .expect_err("the broadcast subscriber failed: the publish must fail");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.detail().contains("busy, try later"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// --- typed publishing and subscribing through services -----------------------------------

use examples::greeter::HelloRequest;
use micro_runtime::server::Subscriber;
use micro_runtime::{Service, register_subscriber};
use tokio::sync::mpsc;

async fn typed_round_trip(broker_name: &str) {
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let options = micro_runtime::Options::parse_from(["t", "--broker", broker_name]).unwrap();
    let mk = |name: &str| {
        Service::builder()
            .name(name)
            .address("127.0.0.1:0")
            .registry(registry.clone())
            .options(options.clone())
    };
    // memory is per process: both services share one instance.
    let (sub_svc, pub_svc) = if broker_name == "memory" {
        let b: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
        (
            mk("listener").broker(b.clone()).build().unwrap(),
            mk("talker").broker(b).build().unwrap(),
        )
    } else {
        (
            mk("listener").build().unwrap(),
            mk("talker").build().unwrap(),
        )
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tx2 = tx.clone();
    register_subscriber(
        sub_svc.server(),
        "greetings",
        move |ctx: Context, req: HelloRequest| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((req.name, ctx.metadata().get("x-trace").map(str::to_owned)));
                Ok(())
            }
        },
    )
    .unwrap();
    sub_svc
        .server()
        .subscribe(
            Subscriber::new("json.greetings", move |_ctx: Context, req: HelloRequest| {
                let tx = tx2.clone();
                async move {
                    let _ = tx.send((format!("json:{}", req.name), None));
                    Ok(())
                }
            })
            .queue("readers"),
        )
        .unwrap();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    sub_svc.server().wrap_subscriber(move |next| {
        let seen = seen.clone();
        Arc::new(move |event| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            next(event)
        })
    });
    sub_svc.start().await.unwrap();

    // The subscribers are endpoints of the service, with go-micro's metadata.
    let record = &registry.get_service("listener").await.unwrap()[0];
    let ep = record
        .endpoints
        .iter()
        .find(|e| e.name == "greetings")
        .unwrap();
    assert_eq!(ep.metadata["subscriber"], "true");
    assert_eq!(ep.metadata["topic"], "greetings");
    assert_eq!(ep.request.as_ref().unwrap().name, "HelloRequest");
    let ep = record
        .endpoints
        .iter()
        .find(|e| e.name == "json.greetings")
        .unwrap();
    assert_eq!(ep.metadata["queue"], "readers");
    assert_eq!(record.nodes[0].metadata["broker"], broker_name);

    let client = pub_svc.client();
    client
        .publish_with(
            "greetings",
            &HelloRequest { name: "ada".into() },
            &micro_runtime::CallOptions::new().metadata("x-trace", "t-1"),
        )
        .await
        .unwrap();
    client
        .publish_with(
            "json.greetings",
            &HelloRequest { name: "bob".into() },
            &micro_runtime::CallOptions::new().codec(micro_runtime::Codec::Json),
        )
        .await
        .unwrap();
    let mut got = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    got.sort();
    assert_eq!(
        got,
        [
            ("ada".to_owned(), Some("t-1".to_owned())),
            ("json:bob".to_owned(), None)
        ]
    );
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "middleware saw both"
    );

    // Stopping deregisters and unsubscribes.
    sub_svc.stop().await.unwrap();
    client
        .publish(
            "greetings",
            &HelloRequest {
                name: "late".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(suite::QUIET, rx.recv()).await.is_err(),
        "delivered after stop"
    );
}

#[tokio::test]
async fn typed_round_trip_memory() {
    typed_round_trip("memory").await;
}

#[tokio::test]
async fn typed_round_trip_http() {
    typed_round_trip("http").await;
}

/// A message that does not decode is an INVALID_ARGUMENT for the publisher (http) and
/// never reaches the typed handler.
#[tokio::test]
async fn typed_subscriber_rejects_undecodable_messages() {
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let svc = Service::builder()
        .name("strict")
        .address("127.0.0.1:0")
        .registry(registry.clone())
        .options(micro_runtime::Options::parse_from(["t", "--broker", "http"]).unwrap())
        .build()
        .unwrap();
    register_subscriber(
        svc.server(),
        "strict",
        |_: Context, _: HelloRequest| async { panic!("must not be called") },
    )
    .unwrap();
    svc.start().await.unwrap();
    let publisher = HttpBroker::new("", registry).unwrap();
    let bad = micro_runtime::broker::Envelope::new(vec![0xff, 0xff, 0xff])
        .with_header("Content-Type", "application/protobuf");
    let err = publisher.publish("strict", bad).await.unwrap_err();
    assert_eq!(err.code(), micro_runtime::Code::InvalidArgument, "{err}");
    svc.stop().await.unwrap();
}

/// A broken subscriber record in the registry (an address that is not one) is skipped: the
/// other subscribers still get the message, and the publish succeeds.
#[tokio::test]
async fn http_skips_a_broken_subscriber_record() {
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let (tx, mut received) = suite::Received::channel();
    let live = HttpBroker::new("", registry.clone()).unwrap();
    let _l = live
        .subscribe("b.topic", suite::recorder(&tx, 0), SubscribeOptions::new())
        .await
        .unwrap();
    let broken = micro_runtime::registry::Record {
        name: SERVICE_NAME.into(),
        version: BROADCAST_VERSION.into(),
        nodes: vec![micro_runtime::registry::Node {
            id: "b.topic-broken".into(),
            address: "not an address\r\n".into(),
            metadata: [
                ("broker".to_owned(), "http".to_owned()),
                ("topic".to_owned(), "b.topic".to_owned()),
            ]
            .into(),
        }],
        ..Default::default()
    };
    registry
        .register(&broken, Default::default())
        .await
        .unwrap();
    let publisher = HttpBroker::new("", registry).unwrap();
    suite::publish_numbered(&publisher, "b.topic", 3).await;
    assert_eq!(received.collect(3).await.len(), 3);
}

/// `Client::publish` sends go-micro's headers (`Content-Type`, `Micro-Topic`, a new v4
/// `Micro-Id` per message) and the call's metadata, in key order; the message's own headers
/// win over metadata of the same names.
#[tokio::test]
async fn client_publish_writes_go_micro_headers() {
    use micro_runtime::broker::{self, Event};
    let memory: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = broker::handler(move |event: Event| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event.into_message());
            Ok(())
        }
    });
    let _sub = memory
        .subscribe("headers", handler, SubscribeOptions::new())
        .await
        .unwrap();
    let client = Service::builder()
        .name("publisher")
        .registry(Arc::new(MemoryRegistry::new()))
        .broker(memory)
        .build()
        .unwrap()
        .client();
    let hello = HelloRequest { name: "ada".into() };
    let options = micro_runtime::CallOptions::new()
        .metadata("x-trace", "t-1")
        .metadata("a-first", "1")
        .metadata("z-last", "2")
        .codec(micro_runtime::Codec::Json);
    client
        .publish_with("headers", &hello, &options)
        .await
        .unwrap();
    client.publish("headers", &hello).await.unwrap();

    let with_metadata = rx.recv().await.unwrap();
    let keys: Vec<&str> = with_metadata
        .header
        .iter()
        .map(|(k, _)| k.as_ref())
        .collect();
    assert_eq!(
        keys,
        [
            "Content-Type",
            "Micro-Id",
            "Micro-Topic",
            "a-first",
            "x-trace",
            "z-last"
        ]
    );
    assert_eq!(
        with_metadata.header("Content-Type"),
        Some("application/json")
    );
    assert_eq!(with_metadata.header("Micro-Topic"), Some("headers"));
    assert_eq!(with_metadata.header("x-trace"), Some("t-1"));
    let plain = rx.recv().await.unwrap();
    let keys: Vec<&str> = plain.header.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys, ["Content-Type", "Micro-Id", "Micro-Topic"]);
    assert_eq!(plain.header("Content-Type"), Some("application/protobuf"));
    let ids = [&with_metadata, &plain].map(|m| {
        let id = m.header("Micro-Id").unwrap();
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4, "{id}");
        assert_eq!(
            id,
            parsed.hyphenated().to_string(),
            "lower-case, hyphenated"
        );
        parsed
    });
    assert_ne!(ids[0], ids[1], "a new id per message");
}

/// Stamps each event and refuses those of the topic `forbidden`.
struct Stamp;

impl micro_runtime::client::PublishLayer for Stamp {
    async fn publish(
        &self,
        mut event: micro_runtime::client::Publication,
        next: micro_runtime::client::PublishNext<'_>,
    ) -> micro_runtime::Result<()> {
        if event.topic() == "forbidden" {
            return Err(micro_runtime::Error::new(
                micro_runtime::Code::PermissionDenied,
                "not this topic",
            ));
        }
        assert!(
            event.header("Micro-Id").is_some(),
            "the layer sees the headers"
        );
        event.set_header("X-Stamp", "outer");
        next.run(event).await
    }
}

#[tokio::test]
async fn publish_layers_change_headers_and_refuse_events() {
    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = micro_runtime::broker::handler(move |event: micro_runtime::broker::Event| {
        let tx = tx.clone();
        async move {
            let stamp = event.message().header.get("X-Stamp").cloned();
            let _ = tx.send((event.topic().to_owned(), stamp));
            Ok(())
        }
    });
    let _sub = broker
        .subscribe("orders", handler.clone(), SubscribeOptions::new())
        .await
        .unwrap();
    let _forbidden = broker
        .subscribe("forbidden", handler, SubscribeOptions::new())
        .await
        .unwrap();
    let service = micro_runtime::Service::builder()
        .name("publisher")
        .registry(micro_tests::memory())
        .broker(broker)
        .wrap_publish(Stamp)
        .build()
        .unwrap();
    let client = service.client();
    client
        .publish("orders", &serde_json::json!({"id": 1}))
        .await
        .unwrap();
    let err = client
        .publish("forbidden", &serde_json::json!({"id": 2}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), micro_runtime::Code::PermissionDenied);
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ("orders".to_owned(), Some("outer".to_owned())));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        rx.try_recv().is_err(),
        "the refused event was not published"
    );
}
