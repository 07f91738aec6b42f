//! The hot pieces of a call, one at a time: framing, codecs, timeout headers, selectors.
//!
//! `cargo bench -p micro-bench --bench hot`

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use examples::greeter::{HelloRequest, HelloResponse};
use micro_runtime::Codec;
use micro_runtime::Message;
use micro_runtime::registry::Node;
use micro_runtime::selector::{
    ConsistentHash, LeastLoaded, Nodes, Random, RoundRobin, Selection, Selector, now_ms,
};
use micro_runtime::transport::{format_timeout, frame, parse_timeout};

fn framing(c: &mut Criterion) {
    let rsp = HelloResponse {
        greeting: "Hello, World!".into(),
    };
    c.bench_function("frame/encode proto", |b| {
        b.iter(|| frame::encode(std::hint::black_box(&rsp), Codec::Proto, 4 << 20).unwrap())
    });
    c.bench_function("frame/encode json", |b| {
        b.iter(|| frame::encode(std::hint::black_box(&rsp), Codec::Json, 4 << 20).unwrap())
    });
    let req = Bytes::from_static(b"\x0a\x05World");
    c.bench_function("codec/decode proto", |b| {
        b.iter(|| {
            <HelloRequest as Message>::decode(Codec::Proto, std::hint::black_box(req.clone()))
                .unwrap()
        })
    });
    let json = Bytes::from_static(br#"{"name":"World"}"#);
    c.bench_function("codec/decode json", |b| {
        b.iter(|| {
            <HelloRequest as Message>::decode(Codec::Json, std::hint::black_box(json.clone()))
                .unwrap()
        })
    });
    let mut decoder = frame::Decoder::new(4 << 20);
    c.bench_function("frame/decode", |b| {
        b.iter(|| {
            decoder.push(b"\0\0\0\0\x07\x0a\x05World");
            decoder.next_message().unwrap().unwrap()
        })
    });
}

fn headers(c: &mut Criterion) {
    c.bench_function("timeout/format", |b| {
        b.iter(|| format_timeout(std::hint::black_box(std::time::Duration::from_millis(1500))))
    });
    c.bench_function("timeout/parse", |b| {
        b.iter(|| parse_timeout(std::hint::black_box(b"1500m")))
    });
}

fn selectors(c: &mut Criterion) {
    let nodes = Nodes::from_nodes(
        "latest",
        (0..10)
            .map(|i| Node {
                id: format!("n{i}"),
                address: format!("127.0.0.1:{}", 1000 + i),
                ..Node::default()
            })
            .collect(),
    );
    let call = Selection {
        key: Some("user-42"),
        now_ms: now_ms(),
        ..Selection::default()
    };
    let selectors: [&dyn Selector; 4] = [&Random, &RoundRobin, &LeastLoaded, &ConsistentHash];
    for s in selectors {
        c.bench_function(&format!("selector/{}", s.name()), |b| {
            b.iter(|| s.select(std::hint::black_box(&nodes), &call).is_some())
        });
    }
}

criterion_group!(benches, framing, headers, selectors);
criterion_main!(benches);
