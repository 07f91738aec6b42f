//! Interop with the reference gRPC implementation (Python `grpcio` from PyPI): its client
//! calls our server, and our client calls its server; unary calls (greeter) and all four
//! call kinds (echo).

use std::net::SocketAddr;
use std::time::Duration;

use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::registry::{Node, Record, RegisterOptions};
use micro_runtime::{CallOptions, Code};
use micro_tests::*;

/// Runs a Python script of `tests/python` to completion: (exit code, stdout).
async fn run_python(args: Vec<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = python()
            .arg(&args[0])
            .args(&args[1..])
            .output()
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(
            out.status.code(),
            Some(2),
            "bad usage or missing dependency: {stderr}"
        );
        (out.status.code().unwrap_or(-1), stdout)
    })
    .await
    .unwrap()
}

async fn py_hello(addr: SocketAddr, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "tests/python/greeter_client.py".to_owned(),
        "--address".into(),
        addr.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run_python(args).await
}

async fn py_raw(addr: SocketAddr, path: &str, body_hex: &str) -> (i32, String) {
    run_python(
        [
            "tests/python/raw_call.py",
            "--address",
            &addr.to_string(),
            "--path",
            path,
            "--body-hex",
            body_hex,
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await
}

#[tokio::test]
async fn grpcio_client_calls_our_server() {
    let server = start_greeter("greeter", memory(), TestGreeter::default()).await;
    let addr = server.server().local_addr().unwrap();

    assert_eq!(py_hello(addr, &[]).await, (0, "Hello, World!".to_owned()));
    assert_eq!(
        py_hello(addr, &["--name", "Ada"]).await,
        (0, "Hello, Ada!".to_owned())
    );
    assert_eq!(
        py_hello(addr, &["--name", "whoami", "--metadata", "x-user=grace"]).await,
        (0, "grace from 127.0.0.1".to_owned())
    );
    assert_eq!(
        py_hello(addr, &["--name", "fail"]).await,
        (1, "ERROR INVALID_ARGUMENT asked to fail".to_owned())
    );
    let (code, out) = py_hello(addr, &["--name", "sleep:5000", "--timeout", "0.3"]).await;
    assert_eq!(
        (code, out.split(' ').nth(1)),
        (1, Some("DEADLINE_EXCEEDED")),
        "{out}"
    );

    // Bad input through a real gRPC client.
    let (code, out) = py_raw(addr, "/greeter.Greeter/Nope", "").await;
    assert_eq!(
        (code, out.split(' ').nth(1)),
        (1, Some("UNIMPLEMENTED")),
        "{out}"
    );
    let (code, out) = py_raw(addr, "/nope.Nope/Hello", "").await;
    assert_eq!(
        (code, out.split(' ').nth(1)),
        (1, Some("UNIMPLEMENTED")),
        "{out}"
    );
    let (code, out) = py_raw(addr, "/greeter.Greeter/Hello", "0a64ffff").await;
    assert_eq!(
        (code, out.split(' ').nth(1)),
        (1, Some("INVALID_ARGUMENT")),
        "{out}"
    );
    let (code, out) = py_raw(addr, "/greeter.Greeter/Hello", "0a0141").await;
    assert_eq!(
        (code, out.as_str()),
        (0, "OK 0a0948656c6c6f2c204121"),
        "{out}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn our_client_calls_a_grpcio_server() {
    let py = tokio::task::spawn_blocking(|| PyServer::start("greeter_server.py", &[]))
        .await
        .unwrap();

    // At a fixed address.
    let client = GreeterClient::new("greeter", caller(memory()).client());
    let opts = CallOptions::new()
        .address(py.addr.to_string())
        .timeout(Duration::from_secs(10));
    let rsp = client
        .hello_with(
            HelloRequest {
                name: "Python".into(),
            },
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(rsp.greeting, "Hello, Python!");

    // And by name, once its node is in the registry.
    let reg = memory();
    let record = Record {
        name: "py-greeter".into(),
        version: "latest".into(),
        nodes: vec![Node {
            id: "py-1".into(),
            address: py.addr.to_string(),
            ..Node::default()
        }],
        ..Record::default()
    };
    reg.register(&record, RegisterOptions::default())
        .await
        .unwrap();
    let client = GreeterClient::new("py-greeter", caller(reg).client());
    let rsp = client
        .hello(HelloRequest {
            name: "Registry".into(),
        })
        .await
        .unwrap();
    assert_eq!(rsp.greeting, "Hello, Registry!");

    // A method the grpcio server does not have: its UNIMPLEMENTED comes back as such.
    let err = caller(memory())
        .client()
        .call::<HelloRequest, examples::greeter::HelloResponse>(
            "x",
            &micro_runtime::Method {
                path: "/greeter.Greeter/Nope",
                endpoint: "Greeter.Nope",
                idempotent: false,
            },
            &HelloRequest::default(),
            &opts,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err}");
}

/// `echo_client.py` against `addr`: (exit code, stdout lines).
async fn py_echo(
    addr: SocketAddr,
    kind: &str,
    messages: &[&str],
    count: u32,
) -> (i32, Vec<String>) {
    let mut args = vec![
        "tests/python/echo_client.py".to_owned(),
        "--address".into(),
        addr.to_string(),
        "--kind".into(),
        kind.into(),
        "--count".into(),
        count.to_string(),
    ];
    for m in messages {
        args.push(format!("--message={m}"));
    }
    let (code, out) = run_python(args).await;
    (code, out.lines().map(str::to_owned).collect())
}

#[tokio::test]
async fn a_grpcio_client_streams_each_call_kind_with_our_server() {
    let registry = memory();
    let service = micro_runtime::Service::builder()
        .name("echo")
        .registry(registry)
        .address("127.0.0.1:0")
        .build()
        .unwrap();
    examples::echo::register_echo_handler(service.server(), examples::Echo).unwrap();
    let addr = service.start().await.unwrap();

    // (kind, messages, count, exit code, output lines)
    type Case<'a> = (&'a str, &'a [&'a str], u32, i32, &'a [&'a str]);
    let cases: [Case; 8] = [
        ("unary", &["hi"], 0, 0, &["0 hi"]),
        ("server", &["tick"], 3, 0, &["0 tick", "1 tick", "2 tick"]),
        ("client", &["a", "b", "c"], 0, 0, &["3 a,b,c"]),
        ("bidi", &["x", "y", "z"], 0, 0, &["0 x", "1 y", "2 z"]),
        // Errors mid-stream: the replies so far, then the status.
        (
            "server",
            &["fail"],
            3,
            1,
            &["0 fail", "ERROR INVALID_ARGUMENT asked to fail"],
        ),
        (
            "client",
            &["ok", "fail"],
            0,
            1,
            &["ERROR INVALID_ARGUMENT asked to fail"],
        ),
        (
            "bidi",
            &["ok", "fail"],
            0,
            1,
            &["0 ok", "ERROR INVALID_ARGUMENT asked to fail"],
        ),
        (
            "unary",
            &["fail"],
            0,
            1,
            &["ERROR INVALID_ARGUMENT asked to fail"],
        ),
    ];
    for (kind, messages, count, want_code, want) in cases {
        let (code, lines) = py_echo(addr, kind, messages, count).await;
        assert_eq!(
            (code, lines.iter().map(String::as_str).collect::<Vec<_>>()),
            (want_code, want.to_vec()),
            "{kind} {messages:?}"
        );
    }
    service.stop().await.unwrap();
}

#[tokio::test]
async fn our_client_streams_each_call_kind_with_a_grpcio_server() {
    use examples::echo::{EchoClient, EchoRequest};
    use futures_util::TryStreamExt;

    let py = tokio::task::spawn_blocking(|| PyServer::start("echo_server.py", &[]))
        .await
        .unwrap();
    let client = EchoClient::new("echo", caller(memory()).client());
    let at = CallOptions::new()
        .address(py.addr.to_string())
        .timeout(Duration::from_secs(10));
    let req = |m: &str, count| EchoRequest {
        message: m.into(),
        count,
    };

    let rsp = client.unary_with(req("hi", 0), &at).await.unwrap();
    assert_eq!((rsp.index, rsp.message.as_str()), (0, "hi"));

    let replies: Vec<_> = client
        .server_stream_with(req("tick", 3), &at)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        replies
            .iter()
            .map(|r| (r.index, r.message.as_str()))
            .collect::<Vec<_>>(),
        [(0, "tick"), (1, "tick"), (2, "tick")]
    );

    let mut upload = client.client_stream_with(&at).await.unwrap();
    for m in ["a", "b", "c"] {
        upload.send(req(m, 0)).await.unwrap();
    }
    let rsp = upload.finish().await.unwrap();
    assert_eq!((rsp.index, rsp.message.as_str()), (3, "a,b,c"));

    let mut chat = client.bidi_with(&at).await.unwrap();
    for (i, m) in ["x", "y", "z"].into_iter().enumerate() {
        chat.send(req(m, 0)).await.unwrap();
        let rsp = chat.recv().await.unwrap().unwrap();
        assert_eq!((rsp.index, rsp.message.as_str()), (i as u32, m));
    }
    chat.close_send();
    assert!(chat.recv().await.unwrap().is_none());

    // grpcio's errors mid-stream reach our client with code and message.
    let mut replies = client
        .server_stream_with(req("fail", 3), &at)
        .await
        .unwrap();
    assert_eq!(replies.recv().await.unwrap().unwrap().index, 0);
    let err = replies.recv().await.unwrap_err();
    assert_eq!(
        (err.code(), err.detail()),
        (Code::InvalidArgument, "asked to fail")
    );
    let mut chat = client.bidi_with(&at).await.unwrap();
    chat.send(req("ok", 0)).await.unwrap();
    assert_eq!(chat.recv().await.unwrap().unwrap().message, "ok");
    chat.send(req("fail", 0)).await.unwrap();
    let err = chat.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let mut upload = client.client_stream_with(&at).await.unwrap();
    upload.send(req("fail", 0)).await.unwrap();
    let err = upload.finish().await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
}
