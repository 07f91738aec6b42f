//! Message compression on the wire (`grpc-encoding` gzip and zstd): with the reference
//! implementation (Python `grpcio`) both ways, between our own client and server for every
//! call kind, and what a raw HTTP/2 peer gets for what no client of ours sends (an encoding
//! we do not speak, a compressed flag without one, a zip bomb).
//!
//! What crossed the wire is read off a TCP tap between the peers: the message frames of each
//! direction, their compressed flag, and their bytes decompressed here. A test passes only if
//! the messages really went compressed, not merely if the call worked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use examples::echo::{EchoClient, EchoRequest, EchoResponse};
use examples::greeter::{GreeterClient, HelloRequest, HelloResponse};
use futures_util::StreamExt;
use micro_runtime::transport::compression::{self, ACCEPT_ENCODING};
use micro_runtime::transport::frame;
use micro_runtime::{CallOptions, ClientOptions, Code, Codec, Compression, Message, Service};
use micro_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The bytes of one proxied connection, each way.
#[derive(Clone, Default)]
struct Conn {
    to_server: Arc<Mutex<Vec<u8>>>,
    to_client: Arc<Mutex<Vec<u8>>>,
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that keeps what passes, per connection.
async fn tap(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<Conn>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns: Arc<Mutex<Vec<Conn>>> = Arc::default();
    let seen = conns.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            let conn = Conn::default();
            seen.lock().unwrap().push(conn.clone());
            let (client_r, client_w) = client.into_split();
            let (server_r, server_w) = server.into_split();
            tokio::spawn(pipe(client_r, server_w, conn.to_server));
            tokio::spawn(pipe(server_r, client_w, conn.to_client));
        }
    });
    (addr, conns)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        log.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A gRPC message as it crossed the wire.
#[derive(Debug)]
struct Wired {
    compressed: bool,
    bytes: Vec<u8>,
}

/// The gRPC messages of one direction of an HTTP/2 connection, stream by stream (in stream
/// order): the DATA frames of each stream joined, then cut into message frames.
fn messages(wire: &[u8]) -> Vec<Wired> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut rest = wire.strip_prefix(PREFACE).unwrap_or(wire);
    let mut streams: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let (kind, flags) = (rest[3], rest[4]);
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        let Some(payload) = rest.get(9..9 + len) else {
            break;
        };
        if kind == 0 {
            let data = if flags & 0x8 != 0 {
                let pad = usize::from(payload[0]);
                &payload[1..payload.len() - pad]
            } else {
                payload
            };
            streams.entry(stream).or_default().extend_from_slice(data);
        }
        rest = &rest[9 + len..];
    }
    let mut out = Vec::new();
    for data in streams.values() {
        let mut at = &data[..];
        while at.len() >= 5 {
            let len = u32::from_be_bytes([at[1], at[2], at[3], at[4]]) as usize;
            out.push(Wired {
                compressed: match at[0] {
                    0 => false,
                    1 => true,
                    f => panic!("frame flag {f}"),
                },
                bytes: at[5..5 + len].to_vec(),
            });
            at = &at[5 + len..];
        }
        assert!(at.is_empty(), "a message frame cut short");
    }
    out
}

/// What went each way on connection `i` of a tap: (requests, responses).
fn wired(conns: &Mutex<Vec<Conn>>, i: usize) -> (Vec<Wired>, Vec<Wired>) {
    let conns = conns.lock().unwrap();
    let conn = &conns[i];
    let up = messages(&conn.to_server.lock().unwrap());
    let down = messages(&conn.to_client.lock().unwrap());
    (up, down)
}

/// `m`, decompressed with `c` when it went compressed, decoded as `M`.
fn open<M: Message>(m: &Wired, c: Compression) -> M {
    let bytes = if m.compressed {
        compression::decompress(c, &m.bytes, 64 << 20).expect("decompress")
    } else {
        m.bytes.clone()
    };
    M::decode(Codec::Proto, Bytes::from(bytes)).expect("decode")
}

/// Runs a Python script of `tests/python` to completion: (exit code, stdout).
async fn run_python(args: Vec<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = python().args(&args).output().expect("run python3");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(
            out.status.code(),
            Some(2),
            "bad usage or missing dependency: {stderr}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.code().unwrap_or(-1), stdout)
    })
    .await
    .unwrap()
}

async fn py_hello(addr: SocketAddr, name: &str, compression: &str) -> (i32, String) {
    let args = [
        "tests/python/greeter_client.py",
        "--address",
        &addr.to_string(),
        "--name",
        name,
        "--compression",
        compression,
    ];
    run_python(args.map(str::to_owned).to_vec()).await
}

/// A name that compresses well: grpcio sends a message uncompressed (flag 0, as the spec
/// allows) when compressing would not make it smaller, so small ones go as they are.
fn long_name(name: &str) -> String {
    [name; 100].join(" ")
}

#[tokio::test]
async fn a_grpcio_client_compressing_with_gzip_gets_gzip_back() {
    let server = start_greeter("greeter", memory(), TestGreeter::default()).await;
    let (addr, conns) = tap(server.server().local_addr().unwrap()).await;

    let ada = long_name("Ada");
    assert_eq!(
        py_hello(addr, &ada, "gzip").await,
        (0, format!("Hello, {ada}!"))
    );
    let (up, down) = wired(&conns, 0);
    assert_eq!((up.len(), down.len()), (1, 1), "{up:?} {down:?}");
    assert!(up[0].compressed, "grpcio sent its request uncompressed");
    assert_eq!(open::<HelloRequest>(&up[0], Compression::Gzip).name, ada);
    // Our server answered in gzip, the encoding grpcio used (and accepts).
    assert!(down[0].compressed, "the response went uncompressed");
    assert!(down[0].bytes.len() < 100, "{} bytes", down[0].bytes.len());
    assert_eq!(
        open::<HelloResponse>(&down[0], Compression::Gzip).greeting,
        format!("Hello, {ada}!")
    );

    // A small request grpcio sends as it is, under grpc-encoding gzip: our server answers
    // in gzip all the same (it compresses whatever the size).
    assert_eq!(
        py_hello(addr, "Ada", "gzip").await,
        (0, "Hello, Ada!".to_owned())
    );
    let (up, down) = wired(&conns, 1);
    assert!(!up[0].compressed);
    assert!(down[0].compressed, "the response went uncompressed");
    assert_eq!(
        open::<HelloResponse>(&down[0], Compression::Gzip).greeting,
        "Hello, Ada!"
    );

    // Uncompressed requests get uncompressed answers.
    let bob = long_name("Bob");
    assert_eq!(
        py_hello(addr, &bob, "none").await,
        (0, format!("Hello, {bob}!"))
    );
    let (up, down) = wired(&conns, 2);
    assert!(!up[0].compressed && !down[0].compressed, "{up:?} {down:?}");
    assert_eq!(
        open::<HelloResponse>(&down[0], Compression::Identity).greeting,
        format!("Hello, {bob}!")
    );

    // deflate, which grpcio speaks and we do not: UNIMPLEMENTED, as the spec says.
    let (code, out) = py_hello(addr, &long_name("Cy"), "deflate").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("ERROR UNIMPLEMENTED"), "{out}");
    assert!(
        out.contains("deflate") && out.contains(ACCEPT_ENCODING),
        "{out}"
    );
    server.stop().await.unwrap();
}

/// Our echo service started, and a tap in front of it: the address to call, and what
/// crosses each connection.
async fn echo_behind_a_tap() -> (Service, SocketAddr, Arc<Mutex<Vec<Conn>>>) {
    let service = Service::builder()
        .name("echo")
        .registry(memory())
        .address("127.0.0.1:0")
        .build()
        .unwrap();
    examples::echo::register_echo_handler(service.server(), examples::Echo).unwrap();
    let server = service.start().await.unwrap();
    let (addr, conns) = tap(server).await;
    (service, addr, conns)
}

#[tokio::test]
async fn a_grpcio_client_streams_gzip_with_our_server() {
    let (service, addr, conns) = echo_behind_a_tap().await;
    let texts = ["one", "two", "three"].map(long_name);
    let mut args = vec![
        "tests/python/echo_client.py".to_owned(),
        "--address".into(),
        addr.to_string(),
        "--kind".into(),
        "bidi".into(),
        "--compression".into(),
        "gzip".into(),
    ];
    args.extend(texts.iter().map(|t| format!("--message={t}")));
    let (code, out) = run_python(args).await;
    let expected: Vec<String> = (0..).zip(&texts).map(|(i, t)| format!("{i} {t}")).collect();
    assert_eq!(
        (code, out.lines().collect::<Vec<_>>()),
        (0, expected.iter().map(String::as_str).collect())
    );
    let (up, down) = wired(&conns, 0);
    assert_eq!((up.len(), down.len()), (3, 3));
    assert!(
        up.iter().chain(&down).all(|m| m.compressed),
        "{up:?} {down:?}"
    );
    let echoed: Vec<String> = down
        .iter()
        .map(|m| open::<EchoResponse>(m, Compression::Gzip).message)
        .collect();
    assert_eq!(echoed, texts);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn our_client_and_a_grpcio_server_compressing_with_gzip() {
    let py = tokio::task::spawn_blocking(|| {
        PyServer::start("greeter_server.py", &["--compression", "gzip"])
    })
    .await
    .unwrap();
    let (addr, conns) = tap(py.addr).await;
    let client = GreeterClient::new("greeter", caller(memory()).client());
    let opts = CallOptions::new()
        .address(addr.to_string())
        .timeout(Duration::from_secs(10))
        .retries(0);
    let hello = |name: &str| HelloRequest { name: name.into() };

    // (grpcio compresses only what gets smaller: long names.)
    let (ada, bob) = (long_name("Ada"), long_name("Bob"));
    let gzip = opts.clone().compression(Compression::Gzip);
    let rsp = client.hello_with(hello(&ada), &gzip).await.unwrap();
    assert_eq!(rsp.greeting, format!("Hello, {ada}!"));
    // Uncompressed, we still offer gzip: grpcio answers in it, and we read it.
    let rsp = client.hello_with(hello(&bob), &opts).await.unwrap();
    assert_eq!(rsp.greeting, format!("Hello, {bob}!"));
    // Small: we compress it all the same, and grpcio takes it.
    let rsp = client.hello_with(hello("Cy"), &gzip).await.unwrap();
    assert_eq!(rsp.greeting, "Hello, Cy!");

    let (up, down) = wired(&conns, 0);
    assert_eq!((up.len(), down.len()), (3, 3), "{up:?} {down:?}");
    assert!(up[0].compressed, "our client sent its request uncompressed");
    assert_eq!(open::<HelloRequest>(&up[0], Compression::Gzip).name, ada);
    assert!(!up[1].compressed);
    assert!(
        up[2].compressed,
        "our client sent a small request uncompressed"
    );
    assert_eq!(open::<HelloRequest>(&up[2], Compression::Gzip).name, "Cy");
    for (m, name) in down.iter().zip([&ada, &bob]) {
        assert!(m.compressed, "grpcio answered uncompressed");
        assert_eq!(
            open::<HelloResponse>(m, Compression::Gzip).greeting,
            format!("Hello, {name}!")
        );
    }

    // zstd, which grpcio does not speak: it refuses the call (INTERNAL, "Error parsing
    // 'grpc-encoding' metadata"), and its answer comes back as it is.
    let zstd = opts.clone().compression(Compression::Zstd);
    let err = client.hello_with(hello("Cy"), &zstd).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(err.detail().contains("grpc-encoding"), "{err}");
}

#[tokio::test]
async fn zstd_both_ways_for_every_call_kind_between_our_client_and_server() {
    let (service, addr, conns) = echo_behind_a_tap().await;
    // zstd for every call, from the client's options.
    let caller = Service::builder()
        .name("caller")
        .registry(memory())
        .client_options(ClientOptions {
            compression: Compression::Zstd,
            ..ClientOptions::default()
        })
        .build()
        .unwrap();
    let client = EchoClient::new("echo", caller.client());
    let opts = CallOptions::new()
        .address(addr.to_string())
        .timeout(Duration::from_secs(10));
    let text = "compressible ".repeat(200);
    let req = |message: &str, count: u32| EchoRequest {
        message: message.into(),
        count,
    };

    let rsp = client.unary_with(req(&text, 0), &opts).await.unwrap();
    assert_eq!(rsp.message, text);

    let mut replies = client
        .server_stream_with(req(&text, 20), &opts)
        .await
        .unwrap();
    let mut n = 0;
    while let Some(rsp) = replies.next().await {
        assert_eq!(rsp.unwrap().message, text);
        n += 1;
    }
    assert_eq!(n, 20);

    let mut call = client.client_stream_with(&opts).await.unwrap();
    for m in ["a", "b", "c"] {
        call.send(req(m, 0)).await.unwrap();
    }
    assert_eq!(call.finish().await.unwrap().message, "a,b,c");

    let mut chat = client.bidi_with(&opts).await.unwrap();
    chat.send_all(futures_util::stream::iter((0..10).map(|_| req(&text, 0))))
        .await
        .unwrap();
    chat.close_send();
    let mut n = 0;
    while let Some(rsp) = chat.recv().await.unwrap() {
        assert_eq!(rsp.message, text);
        n += 1;
    }
    assert_eq!(n, 10);

    // Every message, each way, went as zstd, and small.
    let (up, down) = wired(&conns, 0);
    assert_eq!((up.len(), down.len()), (1 + 1 + 3 + 10, 1 + 20 + 1 + 10));
    for m in up.iter().chain(&down) {
        assert!(m.compressed, "a message went uncompressed");
        assert!(m.bytes.len() < 200, "{} bytes", m.bytes.len());
        let _: EchoResponse = open(m, Compression::Zstd);
    }
    assert_eq!(open::<EchoRequest>(&up[0], Compression::Zstd).message, text);

    // A call's own compression wins over the client's: gzip here, and gzip back.
    let gzip = opts.clone().compression(Compression::Gzip);
    let rsp = client.unary_with(req("g", 0), &gzip).await.unwrap();
    assert_eq!(rsp.message, "g");
    let identity = opts.clone().compression(Compression::Identity);
    client.unary_with(req("i", 0), &identity).await.unwrap();
    let (up, down) = wired(&conns, 0);
    let (up, down) = (&up[up.len() - 2..], &down[down.len() - 2..]);
    assert_eq!(open::<EchoRequest>(&up[0], Compression::Gzip).message, "g");
    assert_eq!(
        open::<EchoResponse>(&down[0], Compression::Gzip).message,
        "g"
    );
    assert!(up[0].compressed && down[0].compressed);
    assert!(!up[1].compressed && !down[1].compressed);
    service.stop().await.unwrap();
}

/// A gRPC frame of `msg` compressed with `c`.
fn compressed(msg: &impl Message, c: Compression) -> Vec<u8> {
    frame::encode_compressed(msg, Codec::Proto, 64 << 20, c)
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn raw_peers_get_the_codes_the_spec_gives() {
    let server = start_greeter("greeter", memory(), TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();
    let path = "/greeter.Greeter/Hello";
    let ada = HelloRequest { name: "Ada".into() };
    let grpc = ("content-type", "application/grpc");

    // An encoding we do not speak, message marked compressed: UNIMPLEMENTED, with what we do.
    let rsp = raw_call(
        addr,
        path,
        &[grpc, ("grpc-encoding", "snappy")],
        b"\x01\0\0\0\x03abc".to_vec(),
    )
    .await;
    assert_eq!(
        rsp.grpc_status(),
        Some(Code::Unimplemented as u8),
        "{rsp:?}"
    );
    let accepted = rsp
        .headers
        .get("grpc-accept-encoding")
        .expect("grpc-accept-encoding");
    assert_eq!(accepted, ACCEPT_ENCODING);
    for name in ["gzip", "zstd"] {
        assert!(compression::accepts(
            accepted.as_bytes(),
            name.parse().unwrap()
        ));
    }
    assert!(rsp.grpc_message().contains("snappy"), "{rsp:?}");

    // Marked compressed without an encoding (or with identity): INTERNAL.
    let gz = compressed(&ada, Compression::Gzip);
    for headers in [&[grpc][..], &[grpc, ("grpc-encoding", "identity")]] {
        let rsp = raw_call(addr, path, headers, gz.clone()).await;
        assert_eq!(rsp.grpc_status(), Some(Code::Internal as u8), "{rsp:?}");
    }

    // gzip, accepted back: the response is gzip, its flag set.
    let headers = [
        grpc,
        ("grpc-encoding", "gzip"),
        ("grpc-accept-encoding", "identity,gzip"),
    ];
    let rsp = raw_call(addr, path, &headers, gz.clone()).await;
    assert_eq!(rsp.grpc_status(), Some(0), "{rsp:?}");
    assert_eq!(rsp.headers["grpc-encoding"], "gzip");
    assert_eq!(rsp.headers["grpc-accept-encoding"], ACCEPT_ENCODING);
    assert_eq!(rsp.body[0], 1, "compressed flag");
    let message = compression::decompress(Compression::Gzip, &rsp.body[5..], 1 << 20).unwrap();
    let greeting = HelloResponse::decode(Codec::Proto, message.into()).unwrap();
    assert_eq!(greeting.greeting, "Hello, Ada!");

    // gzip not accepted back (no grpc-accept-encoding): the response goes uncompressed.
    let rsp = raw_call(addr, path, &headers[..2], gz.clone()).await;
    assert_eq!(rsp.grpc_status(), Some(0), "{rsp:?}");
    assert!(rsp.headers.get("grpc-encoding").is_none(), "{rsp:?}");
    assert_eq!(rsp.body[0], 0);
    // Messages not marked compressed are read as they are, whatever the encoding.
    let rsp = raw_call(addr, path, &headers, grpc_frame(b"\x0a\x01x")).await;
    assert_eq!(rsp.grpc_status(), Some(0), "{rsp:?}");

    // A zip bomb: 5 MiB of zeros in a few KiB, over the server's 4 MiB limit.
    let zeros = HelloRequest {
        name: "\0".repeat(5 << 20),
    };
    for (c, name) in [(Compression::Gzip, "gzip"), (Compression::Zstd, "zstd")] {
        let bomb = compressed(&zeros, c);
        assert!(bomb.len() < 64 << 10, "{name}: {}", bomb.len());
        let rsp = raw_call(addr, path, &[grpc, ("grpc-encoding", name)], bomb).await;
        assert_eq!(
            rsp.grpc_status(),
            Some(Code::ResourceExhausted as u8),
            "{name}: {rsp:?}"
        );
        // Bytes that do not decompress (cut short by a byte): INTERNAL.
        let mut garbage = compressed(&ada, c);
        garbage.pop();
        let len = (garbage.len() - 5) as u32;
        garbage[1..5].copy_from_slice(&len.to_be_bytes());
        let rsp = raw_call(addr, path, &[grpc, ("grpc-encoding", name)], garbage).await;
        assert_eq!(
            rsp.grpc_status(),
            Some(Code::Internal as u8),
            "{name}: {rsp:?}"
        );
    }

    // And the server still serves.
    let rsp = raw_call(addr, path, &[grpc], grpc_frame(b"\x0a\x01x")).await;
    assert_eq!(rsp.grpc_status(), Some(0));
    server.stop().await.unwrap();
}

/// A bare HTTP/2 server answering every call with `grpc-encoding: <encoding>` and `body`,
/// then `grpc-status: 0`: for responses no server of ours sends.
async fn compressing_server(encoding: &'static str, body: Vec<u8>) -> SocketAddr {
    use hyper::body::Frame;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(body);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            let service = hyper::service::service_fn(move |_req| {
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> =
                    vec![Ok(Frame::data(body.clone())), Ok(Frame::trailers(trailers))];
                async move {
                    http::Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-encoding", encoding)
                        .body(http_body_util::StreamBody::new(futures_util::stream::iter(
                            frames,
                        )))
                }
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

#[tokio::test]
async fn our_client_bounds_what_a_compressed_response_grows_to() {
    let client = GreeterClient::new(
        "greeter",
        Service::builder()
            .name("caller")
            .registry(memory())
            .client_options(ClientOptions {
                max_message_size: 1 << 20,
                ..ClientOptions::default()
            })
            .build()
            .unwrap()
            .client(),
    );
    let at = |addr: SocketAddr| {
        CallOptions::new()
            .address(addr.to_string())
            .retries(0)
            .timeout(Duration::from_secs(5))
    };
    let hello = || HelloRequest { name: "x".into() };

    // Within the limit: read, unary and streamed.
    let fine = HelloResponse {
        greeting: "Hello, zstd!".into(),
    };
    let addr = compressing_server("zstd", compressed(&fine, Compression::Zstd)).await;
    assert_eq!(client.hello_with(hello(), &at(addr)).await.unwrap(), fine);
    let method = micro_runtime::Method {
        path: "/greeter.Greeter/Hello",
        endpoint: "Greeter.Hello",
        idempotent: false,
    };
    let raw = caller(memory()).client();
    let mut streamed = raw
        .server_stream::<HelloRequest, HelloResponse>("x", &method, &hello(), &at(addr))
        .await
        .unwrap();
    assert_eq!(streamed.recv().await.unwrap(), Some(fine.clone()));
    assert_eq!(streamed.recv().await.unwrap(), None);

    // 2 MiB in a few KiB, over the client's 1 MiB: RESOURCE_EXHAUSTED, both ways of reading.
    let bomb = HelloResponse {
        greeting: "\0".repeat(2 << 20),
    };
    let addr = compressing_server("gzip", compressed(&bomb, Compression::Gzip)).await;
    let err = client.hello_with(hello(), &at(addr)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let small = Service::builder()
        .name("small")
        .registry(memory())
        .client_options(ClientOptions {
            max_message_size: 1 << 20,
            ..ClientOptions::default()
        })
        .build()
        .unwrap();
    let mut streamed = small
        .client()
        .server_stream::<HelloRequest, HelloResponse>("x", &method, &hello(), &at(addr))
        .await
        .unwrap();
    let err = streamed.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");

    // An encoding we do not speak: the server's fault, INTERNAL.
    let addr = compressing_server("snappy", compressed(&fine, Compression::Gzip)).await;
    let err = client.hello_with(hello(), &at(addr)).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(err.detail().contains("snappy"), "{err}");
}

#[test]
fn client_compression_is_a_setting() {
    let options =
        micro_runtime::Options::parse_from(["t", "--client_compression", "zstd"]).unwrap();
    assert_eq!(options.client_compression, Some(Compression::Zstd));
    let service = Service::builder()
        .name("caller")
        .registry(memory())
        .options(options)
        .build()
        .unwrap();
    assert_eq!(service.client().options().compression, Compression::Zstd);
    let err =
        micro_runtime::Options::parse_from(["t", "--client_compression", "snappy"]).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.detail().contains("snappy"), "{err}");
    // Unset: requests go uncompressed.
    let service = Service::builder()
        .name("caller")
        .registry(memory())
        .build()
        .unwrap();
    assert_eq!(
        service.client().options().compression,
        Compression::Identity
    );
}
