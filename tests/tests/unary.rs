//! Unary calls end to end, in process: discovery, codecs, metadata, paths, limits, deadlines,
//! bad input, failures, load balancing and graceful stop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::registry::RegisterOptions;
use micro_runtime::{CallOptions, Code, Codec, Service};
use micro_tests::*;

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

#[tokio::test]
async fn call_by_name_through_the_registry() {
    let reg = memory();
    let server = start_greeter("greeter", reg.clone(), TestGreeter::default()).await;
    let client = GreeterClient::new("greeter", caller(reg.clone()).client());
    assert_eq!(
        client.hello(hello("World")).await.unwrap().greeting,
        "Hello, World!"
    );

    // The registry holds go-micro's record: endpoint described with its fields.
    let svc = &reg.get_service("greeter").await.unwrap()[0];
    assert_eq!(svc.version, "latest");
    let ep = &svc.endpoints[0];
    assert_eq!(ep.name, "Greeter.Hello");
    assert_eq!(ep.request.as_ref().unwrap().name, "HelloRequest");
    assert_eq!(ep.request.as_ref().unwrap().values[0].name, "name");
    assert_eq!(ep.request.as_ref().unwrap().values[0].kind, "string");
    assert_eq!(ep.response.as_ref().unwrap().values[0].name, "greeting");
    assert_eq!(ep.metadata["stream"], "false");
    let node = &svc.nodes[0];
    assert!(node.id.starts_with("greeter-"), "{}", node.id);
    assert_eq!(node.metadata["transport"], "grpc");
    assert_eq!(node.metadata["registry"], "memory");
    assert_eq!(
        Some(node.address.parse().unwrap()),
        server.server().local_addr()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn json_codec_and_metadata() {
    let reg = memory();
    let server = start_greeter("greeter", reg.clone(), TestGreeter::default()).await;
    let client = GreeterClient::new("greeter", caller(reg).client());
    let opts = CallOptions::new().codec(Codec::Json);
    assert_eq!(
        client
            .hello_with(hello("Json"), &opts)
            .await
            .unwrap()
            .greeting,
        "Hello, Json!"
    );
    let opts = CallOptions::new().metadata("X-User", "ada");
    assert_eq!(
        client
            .hello_with(hello("whoami"), &opts)
            .await
            .unwrap()
            .greeting,
        "ada from 127.0.0.1"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn json_on_the_wire_uses_proto_field_names() {
    let reg = memory();
    let server = start_greeter("greeter", reg, TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &[
            ("content-type", "application/grpc+json"),
            ("te", "trailers"),
        ],
        grpc_frame(br#"{"name":"Raw"}"#),
    )
    .await;
    assert_eq!(rsp.grpc_status(), Some(0), "{rsp:?}");
    assert_eq!(rsp.headers["content-type"], "application/grpc+json");
    assert_eq!(&rsp.body[5..], br#"{"greeting":"Hello, Raw!"}"#);

    // No bytes is the zero message, as go-micro's JSON codec reads it.
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &[("content-type", "application/grpc+json")],
        grpc_frame(b""),
    )
    .await;
    assert_eq!(rsp.grpc_status(), Some(0), "{rsp:?}");
    assert_eq!(&rsp.body[5..], br#"{"greeting":"Hello, !"}"#);

    // Other gRPC subtypes (go-micro's raw `bytes` frames) are read as protobuf, as grpc-go
    // does, and answered with a gRPC status.
    for (subtype, status) in [("bytes", 0), ("thrift", Code::InvalidArgument as u8)] {
        let ct = format!("application/grpc+{subtype}");
        let rsp = raw_call(
            addr,
            "/greeter.Greeter/Hello",
            &[("content-type", &ct)],
            grpc_frame(if status == 0 {
                b"\x0a\x01x"
            } else {
                b"\xff\xff"
            }),
        )
        .await;
        assert_eq!(rsp.status, 200, "{ct}: {rsp:?}");
        assert_eq!(rsp.grpc_status(), Some(status), "{ct}: {rsp:?}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn answers_the_package_path_and_go_micros_path() {
    let reg = memory();
    // Registered under a name other than the proto package, like most go-micro services.
    let server = start_greeter("helloworld", reg, TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();
    for path in ["/greeter.Greeter/Hello", "/helloworld.Greeter/Hello"] {
        let rsp = raw_call(
            addr,
            path,
            &[("content-type", "application/grpc")],
            grpc_frame(b"\x0a\x01x"),
        )
        .await;
        assert_eq!(rsp.grpc_status(), Some(0), "{path}: {rsp:?}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_the_right_codes() {
    let reg = memory();
    let server = start_greeter("greeter", reg, TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();
    let grpc = [("content-type", "application/grpc")];

    let rsp = raw_call(addr, "/greeter.Greeter/Nope", &grpc, grpc_frame(b"")).await;
    assert_eq!(
        rsp.grpc_status(),
        Some(Code::Unimplemented as u8),
        "{rsp:?}"
    );
    assert!(
        rsp.grpc_message().contains("Nope"),
        "{}",
        rsp.grpc_message()
    );
    let rsp = raw_call(addr, "/nope.Nope/Hello", &grpc, grpc_frame(b"")).await;
    assert_eq!(rsp.grpc_status(), Some(Code::Unimplemented as u8));
    let rsp = raw_call(addr, "/", &grpc, grpc_frame(b"")).await;
    assert_eq!(rsp.grpc_status(), Some(Code::Unimplemented as u8));

    // Field 1 claims 100 bytes that are not there.
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &grpc,
        grpc_frame(b"\x0a\x64ab"),
    )
    .await;
    assert_eq!(
        rsp.grpc_status(),
        Some(Code::InvalidArgument as u8),
        "{rsp:?}"
    );
    let json = [("content-type", "application/grpc+json")];
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &json,
        grpc_frame(b"{not json"),
    )
    .await;
    assert_eq!(
        rsp.grpc_status(),
        Some(Code::InvalidArgument as u8),
        "{rsp:?}"
    );

    // Broken framing: cut short, bad flag, compressed.
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &grpc,
        b"\0\0\0\0\x09ab".to_vec(),
    )
    .await;
    assert_eq!(rsp.grpc_status(), Some(Code::Internal as u8), "{rsp:?}");
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &grpc,
        b"\x05\0\0\0\x00".to_vec(),
    )
    .await;
    assert_eq!(rsp.grpc_status(), Some(Code::Internal as u8), "{rsp:?}");
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &grpc,
        b"\x01\0\0\0\x01a".to_vec(),
    )
    .await;
    assert_eq!(rsp.grpc_status(), Some(Code::Internal as u8), "{rsp:?}");
    // A compression we do not speak: UNIMPLEMENTED (tests/compression.rs has the rest).
    let snappy = [grpc.as_slice(), &[("grpc-encoding", "snappy")]].concat();
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &snappy,
        b"\x01\0\0\0\x01a".to_vec(),
    )
    .await;
    assert_eq!(
        rsp.grpc_status(),
        Some(Code::Unimplemented as u8),
        "{rsp:?}"
    );

    // Not gRPC: HTTP 415.
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &[("content-type", "text/plain")],
        vec![],
    )
    .await;
    assert_eq!(rsp.status, http::StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // The server still serves after all that.
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &grpc,
        grpc_frame(b"\x0a\x01x"),
    )
    .await;
    assert_eq!(rsp.grpc_status(), Some(0));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_malformed_grpc_timeout_is_internal() {
    let server = start_greeter("greeter", memory(), TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();
    // No unit, a sign, nine digits, an unknown unit, no digits.
    for bad in ["5", "-1S", "100000000m", "1x", "S"] {
        let headers = [("content-type", "application/grpc"), ("grpc-timeout", bad)];
        let rsp = raw_call(
            addr,
            "/greeter.Greeter/Hello",
            &headers,
            grpc_frame(b"\x0a\x01x"),
        )
        .await;
        // Trailers-only, as grpc-go answers.
        assert_eq!(
            rsp.headers.get("grpc-status").unwrap(),
            "13",
            "{bad}: {rsp:?}"
        );
        assert!(rsp.body.is_empty() && rsp.trailers.is_none(), "{rsp:?}");
        assert_eq!(rsp.grpc_message(), format!("malformed grpc-timeout: {bad}"));
    }
    let headers = [
        ("content-type", "application/grpc"),
        ("grpc-timeout", "99999999m"),
    ];
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &headers,
        grpc_frame(b"\x0a\x01x"),
    )
    .await;
    assert_eq!(rsp.grpc_status(), Some(0), "{rsp:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn messages_over_the_limit_are_resource_exhausted() {
    let reg = memory();
    let builder = Service::builder().name("greeter").registry(reg.clone());
    let builder = builder
        .options(micro_runtime::Options::parse_from(["t", "--max_message_size", "1024"]).unwrap());
    let server = start_greeter_with(builder, TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();

    // The server refuses a large request from any client (a raw frame header claiming 5 MB).
    let grpc = [("content-type", "application/grpc")];
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &grpc,
        b"\0\0\x4c\x4b\x40".to_vec(),
    )
    .await;
    assert_eq!(
        rsp.grpc_status(),
        Some(Code::ResourceExhausted as u8),
        "{rsp:?}"
    );
    let big = "x".repeat(2000);
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &grpc,
        grpc_frame(&[&b"\x0a\xd0\x0f"[..], big.as_bytes()].concat()),
    )
    .await;
    assert_eq!(
        rsp.grpc_status(),
        Some(Code::ResourceExhausted as u8),
        "{rsp:?}"
    );

    // Our client refuses to send one over its own limit (the default 4 MiB here).
    let client = GreeterClient::new("greeter", caller(reg).client());
    let err = client.hello(hello(&"y".repeat(5 << 20))).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // And a reply over the server's limit is refused by the server.
    // (1018 bytes in, 1026 out.)
    let err = client.hello(hello(&"z".repeat(1015))).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn deadlines_end_the_call_and_drop_the_handler() {
    let reg = memory();
    let greeter = TestGreeter::default();
    let server = start_greeter("greeter", reg.clone(), greeter.clone()).await;
    let client = GreeterClient::new("greeter", caller(reg).client());
    let opts = CallOptions::new().timeout(Duration::from_millis(200));
    let err = client
        .hello_with(hello("sleep:3000"), &opts)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert!(err.detail().contains("timed out"), "{err}");
    // The server enforced the same deadline: the handler's future was dropped, not left running.
    for _ in 0..100 {
        if greeter.dropped.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(greeter.dropped.load(Ordering::SeqCst), 1);

    // Deadline enforced by the server for a client that does not enforce it itself.
    let addr = server.server().local_addr().unwrap();
    let headers = [
        ("content-type", "application/grpc"),
        ("grpc-timeout", "100m"),
    ];
    let rsp = raw_call(
        addr,
        "/greeter.Greeter/Hello",
        &headers,
        grpc_frame(b"\x0a\x0asleep:3000"),
    )
    .await;
    assert_eq!(
        rsp.grpc_status(),
        Some(Code::DeadlineExceeded as u8),
        "{rsp:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn handler_errors_and_panics_reach_the_client() {
    let reg = memory();
    let server = start_greeter("greeter", reg.clone(), TestGreeter::default()).await;
    let client = GreeterClient::new("greeter", caller(reg).client());
    let err = client.hello(hello("fail")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.http_code(), 400);
    assert_eq!(err.id(), "greeter");
    assert_eq!(err.detail(), "asked to fail");
    let err = client.hello(hello("panic")).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    // The connection survived the panic.
    assert_eq!(
        client.hello(hello("again")).await.unwrap().greeting,
        "Hello, again!"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_service_is_not_found() {
    let client = GreeterClient::new("nobody", caller(memory()).client());
    let err = client.hello(hello("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.detail().contains("service nobody: not found"), "{err}");
}

#[tokio::test]
async fn dead_node_is_retried_elsewhere_and_then_not_found() {
    let reg = memory();
    let live = start_greeter(
        "greeter",
        reg.clone(),
        TestGreeter {
            tag: "live".into(),
            ..Default::default()
        },
    )
    .await;
    // A node that is registered but not listening (a crashed process whose record remains).
    let ghost_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut ghost = reg.get_service("greeter").await.unwrap().remove(0);
    ghost.nodes[0].id = "greeter-ghost".into();
    ghost.nodes[0].address = format!("127.0.0.1:{ghost_port}");
    reg.register(&ghost, RegisterOptions::default())
        .await
        .unwrap();

    let client = GreeterClient::new("greeter", caller(reg.clone()).client());
    for _ in 0..20 {
        let rsp = client
            .hello(hello("x"))
            .await
            .expect("retried onto the live node");
        assert_eq!(rsp.greeting, "Hello, x! from live");
    }
    live.stop().await.unwrap();
    reg.deregister(&ghost).await.unwrap();
    let err = client.hello(hello("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
}

#[tokio::test]
async fn fixed_address_skips_the_registry() {
    let server = start_greeter("greeter", memory(), TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();
    // A client whose registry knows nothing.
    let client = GreeterClient::new("anything", caller(memory()).client());
    let opts = CallOptions::new().address(addr.to_string());
    assert_eq!(
        client
            .hello_with(hello("Fixed"), &opts)
            .await
            .unwrap()
            .greeting,
        "Hello, Fixed!"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn round_robin_rotates_across_calls() {
    let reg = memory();
    let mut servers = Vec::new();
    for tag in ["a", "b", "c"] {
        servers.push(
            start_greeter(
                "greeter",
                reg.clone(),
                TestGreeter {
                    tag: tag.into(),
                    ..Default::default()
                },
            )
            .await,
        );
    }
    let caller = Service::builder()
        .name("rr")
        .registry(reg)
        .selector(Arc::new(micro_runtime::selector::RoundRobin))
        .build()
        .unwrap();
    let client = GreeterClient::new("greeter", caller.client());
    let mut tags = Vec::new();
    for _ in 0..9 {
        let g = client.hello(hello("x")).await.unwrap().greeting;
        tags.push(g.rsplit(' ').next().unwrap().to_owned());
    }
    // Each node once per round, in the same order every round.
    assert_eq!(tags[0..3], tags[3..6]);
    assert_eq!(tags[3..6], tags[6..9]);
    let mut round = tags[0..3].to_vec();
    round.sort();
    assert_eq!(round, ["a", "b", "c"]);
    for s in servers {
        s.stop().await.unwrap();
    }
}

#[tokio::test]
async fn graceful_stop_deregisters_then_drains() {
    let reg = memory();
    let greeter = TestGreeter::default();
    let server = Arc::new(start_greeter("greeter", reg.clone(), greeter.clone()).await);
    let client = GreeterClient::new("greeter", caller(reg.clone()).client());
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { client.hello(hello("sleep:500")).await })
    };
    while greeter.started.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopping = {
        let server = server.clone();
        tokio::spawn(async move { server.stop().await })
    };
    // Deregistered at once, while the call is still running.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        reg.get_service("greeter").await.unwrap_err().code(),
        Code::NotFound
    );
    // The in-flight call finished normally.
    assert_eq!(in_flight.await.unwrap().unwrap().greeting, "slept 500");
    stopping.await.unwrap().unwrap();
    assert_eq!(greeter.dropped.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_silent_connection_does_not_hold_up_stop() {
    use tokio::io::AsyncReadExt;
    // The default drain timeout: 30 s.
    let server = start_greeter("greeter", memory(), TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server's SETTINGS arrive: it accepted the connection and waits for our preface,
    // which never comes.
    let mut buf = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf))
        .await
        .expect("the server's settings")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("stop waited for the silent connection")
        .unwrap();
    drop(silent);
}

#[tokio::test]
async fn kitchen_sink_types_cross_the_wire() {
    use micro_tests::kitchen::sink::{self, Order, PlaceRequest, PlaceResponse, order};

    struct K;
    impl sink::Kitchen for K {
        async fn place(
            &self,
            _: micro_runtime::Context,
            req: PlaceRequest,
        ) -> micro_runtime::Result<PlaceResponse> {
            let order = req.order.unwrap_or_default();
            Ok(PlaceResponse {
                id: format!("{}:{}:{}", order.id, order.lines.len(), order.r#type),
            })
        }
        async fn get_order(
            &self,
            _: micro_runtime::Context,
            req: PlaceResponse,
        ) -> micro_runtime::Result<Order> {
            Ok(Order {
                id: req.id,
                state: order::State::Done as i32,
                ..Default::default()
            })
        }
        async fn ping(&self, _: micro_runtime::Context, _: ()) -> micro_runtime::Result<()> {
            Ok(())
        }
    }
    let reg = memory();
    let service = Service::builder()
        .name("kitchen")
        .registry(reg.clone())
        .address("127.0.0.1:0")
        .build()
        .unwrap();
    sink::register_kitchen_handler(service.server(), K).unwrap();
    service.start().await.unwrap();
    let client = sink::KitchenClient::new("kitchen", caller(reg.clone()).client());
    let order = Order {
        id: "o1".into(),
        r#type: "dine-in".into(),
        lines: vec![order::Line {
            dish: "soup".into(),
            count: 2,
            extras: vec![],
        }],
        tags: [("table".to_owned(), 7)].into(),
        payment: Some(order::Payment::Card("visa".into())),
        created: Some(micro_runtime::codegen::prost_types::Timestamp {
            seconds: 10,
            nanos: 0,
        }),
        page: Some(micro_tests::common::Page { number: 1, size: 2 }),
        ..Default::default()
    };
    for codec in [Codec::Proto, Codec::Json] {
        let opts = CallOptions::new().codec(codec);
        let rsp = client
            .place_with(
                PlaceRequest {
                    order: Some(order.clone()),
                },
                &opts,
            )
            .await
            .unwrap();
        assert_eq!(rsp.id, "o1:1:dine-in", "{codec:?}");
        let got = client
            .get_order_with(PlaceResponse { id: "o2".into() }, &opts)
            .await
            .unwrap();
        assert_eq!(got.state, order::State::Done as i32);
        client.ping_with((), &opts).await.unwrap();
    }
    // Endpoint descriptions nest message fields and stop at recursion.
    let svc = &reg.get_service("kitchen").await.unwrap()[0];
    let names: Vec<_> = svc.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Kitchen.Place", "Kitchen.GetOrder", "Kitchen.Ping"]);
    let order_value = &svc.endpoints[0].request.as_ref().unwrap().values[0];
    assert_eq!(
        (order_value.name.as_str(), order_value.kind.as_str()),
        ("order", "Order")
    );
    let lines = order_value
        .values
        .iter()
        .find(|v| v.name == "lines")
        .unwrap();
    assert_eq!(lines.kind, "[]Line");
    let extras = lines.values.iter().find(|v| v.name == "extras").unwrap();
    assert!(extras.values.is_empty(), "recursion stops");
    let tags = order_value
        .values
        .iter()
        .find(|v| v.name == "tags")
        .unwrap();
    assert_eq!(tags.kind, "map<string,int64>");
    service.stop().await.unwrap();
}

#[tokio::test]
async fn registration_is_refreshed_before_its_ttl_runs_out() {
    let reg = memory();
    let builder = Service::builder()
        .name("greeter")
        .registry(reg.clone())
        .register_ttl(Duration::from_millis(600), Duration::from_millis(200));
    let server = start_greeter_with(builder, TestGreeter::default()).await;
    // Well past one TTL, the heartbeats keep the node registered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(reg.get_service("greeter").await.unwrap()[0].nodes.len(), 1);
    server.stop().await.unwrap();
    assert_eq!(
        reg.get_service("greeter").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn lifecycle_hooks_run_in_order() {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = |name: &'static str| {
        let log = log.clone();
        move || {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(name);
                Ok(())
            }
        }
    };
    let builder = Service::builder()
        .name("greeter")
        .registry(memory())
        .before_start(hook("before_start"))
        .after_start(hook("after_start"))
        .before_stop(hook("before_stop"))
        .after_stop(hook("after_stop"));
    let server = start_greeter_with(builder, TestGreeter::default()).await;
    server.stop().await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["before_start", "after_start", "before_stop", "after_stop"]
    );
}

#[tokio::test]
async fn a_failing_after_start_hook_stops_the_server() {
    let reg = memory();
    let service = Service::builder()
        .name("greeter")
        .registry(reg.clone())
        .address("127.0.0.1:0")
        .register_ttl(Duration::from_secs(60), Duration::from_millis(50))
        .after_start(|| async { Err(micro_runtime::Error::internal_server_error("test", "no")) })
        .build()
        .unwrap();
    examples::greeter::register_greeter_handler(service.server(), TestGreeter::default()).unwrap();
    let err = service.start().await.unwrap_err();
    assert_eq!(err.detail(), "no");
    assert_eq!(service.server().local_addr(), None, "still running");
    // Deregistered, and no heartbeat registers it again.
    for _ in 0..2 {
        assert_eq!(
            reg.get_service("greeter").await.unwrap_err().code(),
            Code::NotFound
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_stop_called_while_the_start_hooks_run_stops_the_service_once_started() {
    let reg = memory();
    let entered = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let service = Service::builder()
        .name("greeter")
        .registry(reg.clone())
        .address("127.0.0.1:0")
        .before_start({
            let (entered, gate) = (entered.clone(), gate.clone());
            move || {
                let (entered, gate) = (entered.clone(), gate.clone());
                async move {
                    entered.notify_one();
                    gate.acquire().await.unwrap().forget();
                    Ok(())
                }
            }
        })
        .build()
        .unwrap();
    examples::greeter::register_greeter_handler(service.server(), TestGreeter::default()).unwrap();
    let (started, stopped) = tokio::join!(service.start(), async {
        entered.notified().await;
        let stop = service.stop();
        gate.add_permits(1);
        stop.await
    });
    started.unwrap();
    stopped.unwrap();
    assert_eq!(
        service.server().local_addr(),
        None,
        "still running after stop"
    );
    assert_eq!(
        reg.get_service("greeter").await.unwrap_err().code(),
        Code::NotFound
    );
}

/// A SIGTERM that comes while the service starts (here from its `after_start` hook) stops it
/// once started, deregistered, instead of killing the process with its node registered.
#[tokio::test]
async fn a_signal_during_start_stops_the_service_gracefully() {
    let reg = memory();
    let service = Service::builder()
        .name("greeter")
        .registry(reg.clone())
        .address("127.0.0.1:0")
        .after_start(|| async {
            let pid = std::process::id().to_string();
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
            assert!(sent.is_ok_and(|s| s.success()), "kill -TERM failed");
            // The signal lands while the start is still under way.
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        })
        .build()
        .unwrap();
    examples::greeter::register_greeter_handler(service.server(), TestGreeter::default()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), service.run())
        .await
        .expect("the signal was lost: still running")
        .unwrap();
    assert_eq!(
        reg.get_service("greeter").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn dropping_a_running_server_ends_its_heartbeat() {
    let reg = memory();
    let builder = Service::builder()
        .name("greeter")
        .registry(reg.clone())
        .register_ttl(Duration::from_secs(60), Duration::from_millis(50));
    let service = start_greeter_with(builder, TestGreeter::default()).await;
    let record = reg.get_service("greeter").await.unwrap().remove(0);
    drop(service);
    reg.deregister(&record).await.unwrap();
    // Several intervals later, nothing registered it again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reg.get_service("greeter").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn the_status_in_the_trailers_wins_over_a_missing_message() {
    // grpc-go answers so when a failing handler has set header metadata: headers, no
    // message, the error in the trailers.
    let addr = scripted_server(Script {
        data: vec![],
        trailers: vec![("grpc-status", "5"), ("grpc-message", "no such greeting")],
    })
    .await;
    let client = GreeterClient::new("anything", caller(memory()).client());
    let opts = CallOptions::new().address(addr.to_string());
    let err = client.hello_with(hello("x"), &opts).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert_eq!(err.detail(), "no such greeting");

    // No message and an OK status is the server's fault.
    let addr = scripted_server(Script {
        data: vec![],
        trailers: vec![("grpc-status", "0")],
    })
    .await;
    let opts = CallOptions::new().address(addr.to_string());
    let err = client.hello_with(hello("x"), &opts).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
}

#[tokio::test]
async fn a_timeout_too_long_for_the_clock_is_no_limit() {
    let server = start_greeter("greeter", memory(), TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();
    let client = GreeterClient::new("greeter", caller(memory()).client());
    let opts = CallOptions::new()
        .address(addr.to_string())
        .timeout(Duration::MAX);
    assert_eq!(
        client
            .hello_with(hello("Forever"), &opts)
            .await
            .unwrap()
            .greeting,
        "Hello, Forever!"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_reset_stream_gets_the_grpc_code_of_its_http2_error() {
    use h2::Reason;
    let client = GreeterClient::new("anything", caller(memory()).client());
    for (reason, code) in [
        (Reason::CANCEL, Code::Cancelled),
        (Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
        (Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
        (Reason::INTERNAL_ERROR, Code::Internal),
        (Reason::PROTOCOL_ERROR, Code::Internal),
        (Reason::REFUSED_STREAM, Code::Unavailable),
    ] {
        for answer in [H2Answer::Reset(reason), H2Answer::ResetAfterHeaders(reason)] {
            let (addr, seen) = h2_server(answer).await;
            let opts = CallOptions::new().address(addr.to_string()).retries(1);
            let err = client.hello_with(hello("x"), &opts).await.unwrap_err();
            assert_eq!(err.code(), code, "{answer:?}: {err}");
            // Only a stream refused before any answer never reached a handler, and is tried
            // again (`Hello` is not idempotent); a stream the server reset for another
            // reason is its answer.
            let refused = matches!(answer, H2Answer::Reset(Reason::REFUSED_STREAM));
            let attempts = if refused { 2 } else { 1 };
            assert_eq!(seen.load(Ordering::SeqCst), attempts, "{answer:?}");
        }
    }
}
