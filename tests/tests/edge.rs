//! Generated code for the inputs that once did not compile (tests/proto/edge.proto): wrapper
//! well-known types as requests and responses, rpcs named `New`, `HelloWith` next to `Hello`,
//! `Clone`, `Drop`, `Into` and `AsRef`, messages named `Send`, `Sync`, `Option`, `Result`,
//! `Box`, `String`, `Vec`, `Future` and `H`, and a package of enums only. That this file
//! builds is half the test; each method is then served and called, in both codecs.

use std::sync::Arc;

use futures_util::StreamExt;
use micro_runtime::stream::channel;
use micro_runtime::{BoxStream, CallOptions, Codec, Context, Registry, Result, Service};
use micro_tests::edge::{self, enums::Color};
use micro_tests::*;

struct E;

impl edge::Edge for E {
    async fn exists(&self, _: Context, key: String) -> Result<bool> {
        Ok(key == "here")
    }
    async fn half(&self, _: Context, x: f64) -> Result<f32> {
        Ok((x / 2.0) as f32)
    }
    async fn abs(&self, _: Context, x: i64) -> Result<u64> {
        Ok(x.unsigned_abs())
    }
    async fn square(&self, _: Context, x: i32) -> Result<u32> {
        Ok(x.unsigned_abs().pow(2))
    }
    async fn reverse(&self, _: Context, mut bytes: Vec<u8>) -> Result<Vec<u8>> {
        bytes.reverse();
        Ok(bytes)
    }
    async fn countdown(&self, _: Context, from: u32) -> Result<BoxStream<u32>> {
        let (tx, rx) = channel(4);
        tokio::spawn(async move {
            for n in (0..=from).rev() {
                if tx.send(n).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
    async fn new(&self, _: Context, send: edge::Send) -> Result<edge::Sync> {
        Ok(edge::Sync { send: Some(send) })
    }
    async fn hello(&self, _: Context, o: edge::Option) -> Result<edge::Result> {
        Ok(edge::Result {
            value: format!("hello {}", o.value),
        })
    }
    async fn hello_with(&self, _: Context, b: edge::Box) -> Result<edge::Future> {
        let value = b.option.unwrap_or_default().value;
        Ok(edge::Future {
            vec: Some(edge::Vec {
                items: vec![edge::String { value }],
            }),
        })
    }
    async fn clone(&self, _: Context, h: edge::H) -> Result<edge::H> {
        Ok(edge::H { n: h.n + 1 })
    }
    async fn drop(&self, _: Context, s: edge::String) -> Result<edge::Vec> {
        Ok(edge::Vec {
            items: vec![s.clone(), s],
        })
    }
    async fn into(&self, _: Context, h: edge::H) -> Result<edge::H> {
        Ok(edge::H { n: h.n * 10 })
    }
    async fn as_ref(&self, _: Context, h: edge::H) -> Result<edge::H> {
        Ok(edge::H { n: -h.n })
    }
}

/// The edge service on a free port, registered in a fresh memory registry; a client of it.
async fn start() -> (Service, edge::EdgeClient, Arc<dyn Registry>) {
    let reg = memory();
    let service = Service::builder()
        .name("edge")
        .registry(reg.clone())
        .address("127.0.0.1:0")
        .build()
        .unwrap();
    edge::register_edge_handler(service.server(), E).unwrap();
    service.start().await.unwrap();
    let client = edge::EdgeClient::new("edge", caller(reg.clone()).client());
    (service, client, reg)
}

#[tokio::test]
async fn every_method_round_trips_in_both_codecs() {
    let (service, client, _) = start().await;
    for codec in [Codec::Proto, Codec::Json] {
        let opts = &CallOptions::new().codec(codec);
        // The nine wrappers.
        assert!(client.exists_with("here".into(), opts).await.unwrap());
        assert!(!client.exists_with(String::new(), opts).await.unwrap());
        assert_eq!(client.half_with(5.0, opts).await.unwrap(), 2.5);
        assert_eq!(client.abs_with(i64::MIN, opts).await.unwrap(), 1 << 63);
        assert_eq!(client.square_with(-3, opts).await.unwrap(), 9);
        assert_eq!(
            client.reverse_with(vec![0, 1, 255], opts).await.unwrap(),
            [255, 1, 0]
        );
        let counted: Vec<u32> = client
            .countdown_with(3, opts)
            .await
            .unwrap()
            .map(|n| n.unwrap())
            .collect()
            .await;
        assert_eq!(counted, [3, 2, 1, 0], "{codec:?}");

        // `rpc New` is the client's `new_`; the constructor is still `new`.
        let send = edge::Send {
            text: "t".into(),
            color: Color::Red as i32,
        };
        let sync = client.new_with(send.clone(), opts).await.unwrap();
        assert_eq!(sync.send, Some(send), "{codec:?}");

        // `rpc Hello` keeps `hello` and `hello_with`; `rpc HelloWith` is `hello_with_`.
        let o = edge::Option { value: "o".into() };
        assert_eq!(client.hello_with(o, opts).await.unwrap().value, "hello o");
        let b = edge::Box {
            option: Some(edge::Option { value: "b".into() }),
        };
        let future = client.hello_with_with(b, opts).await.unwrap();
        assert_eq!(future.vec.unwrap().items[0].value, "b");

        // Named like `Arc`'s methods, served by the trait's.
        assert_eq!(
            client.clone_with(edge::H { n: 1 }, opts).await.unwrap().n,
            2
        );
        let s = edge::String { value: "s".into() };
        assert_eq!(client.drop_with(s, opts).await.unwrap().items.len(), 2);
        assert_eq!(
            client.into_with(edge::H { n: 2 }, opts).await.unwrap().n,
            20
        );
        assert_eq!(
            client.as_ref_with(edge::H { n: 3 }, opts).await.unwrap().n,
            -3
        );
    }

    // The calls without options, of the renamed methods too.
    assert!(client.exists("here".into()).await.unwrap());
    assert_eq!(
        client.new_(edge::Send::default()).await.unwrap().send,
        Some(edge::Send::default())
    );
    let b = edge::Box::default();
    assert_eq!(
        client
            .hello_with_(b)
            .await
            .unwrap()
            .vec
            .unwrap()
            .items
            .len(),
        1
    );
    // `rpc Clone` is `clone_`: the client's own `clone` is still `Clone::clone`.
    let copy: edge::EdgeClient = client.clone();
    assert_eq!(copy.clone_(edge::H { n: 4 }).await.unwrap().n, 5);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn wrappers_are_bare_json_values_on_the_wire() {
    let (service, _, _) = start().await;
    let addr = service.server().local_addr().unwrap();
    let json = [
        ("content-type", "application/grpc+json"),
        ("te", "trailers"),
    ];
    // proto3 JSON: Int64Value and UInt64Value are strings, BytesValue base64.
    for (method, request, response) in [
        ("Exists", &br#""here""#[..], &br#"true"#[..]),
        ("Half", b"3", b"1.5"),
        ("Abs", br#""-9007199254740993""#, br#""9007199254740993""#),
        ("Square", b"-4", b"16"),
        ("Reverse", br#""AAH/""#, br#""/wEA""#),
    ] {
        let rsp = raw_call(
            addr,
            &format!("/edge.Edge/{method}"),
            &json,
            grpc_frame(request),
        )
        .await;
        assert_eq!(rsp.grpc_status(), Some(0), "{method}: {rsp:?}");
        assert_eq!(
            std::str::from_utf8(&rsp.body[5..]).unwrap(),
            std::str::from_utf8(response).unwrap(),
            "{method}"
        );
    }
    // A wrapper's JSON is the bare value, not an object.
    let rsp = raw_call(
        addr,
        "/edge.Edge/Exists",
        &json,
        grpc_frame(br#"{"value":"here"}"#),
    )
    .await;
    assert_eq!(rsp.grpc_status(), Some(3), "{rsp:?}");
    service.stop().await.unwrap();
}

#[tokio::test]
async fn wrapper_endpoints_are_described_as_the_wrappers() {
    let (service, _, reg) = start().await;
    let svc = &reg.get_service("edge").await.unwrap()[0];
    let exists = svc
        .endpoints
        .iter()
        .find(|e| e.name == "Edge.Exists")
        .unwrap();
    let request = exists.request.as_ref().unwrap();
    assert_eq!(
        (request.name.as_str(), request.kind.as_str()),
        ("StringValue", "StringValue")
    );
    assert_eq!(request.values[0].kind, "string");
    assert_eq!(exists.response.as_ref().unwrap().name, "BoolValue");
    service.stop().await.unwrap();
}
