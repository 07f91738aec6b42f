//! Streaming calls end to end, in one process: all four call kinds through the registry, flow
//! control (a reader that stops reading holds its writer), cancellation both ways, errors
//! mid-stream, deadlines and metadata. The examples' `Echo` is the service; `Probe` is an
//! echo with counters, for what the plain echo can't show.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use examples::echo::{self, EchoClient, EchoRequest, EchoResponse};
use futures_util::StreamExt;
use micro_runtime::stream::channel;
use micro_runtime::{BoxStream, CallOptions, Code, Context, Error, Service, Streaming};
use micro_tests::*;
use tokio::sync::Notify;

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        count: 0,
    }
}

fn many(message: &str, count: u32) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        count,
    }
}

/// An echo server under `name` in `registry`, running `handler`.
async fn start<H: echo::Echo>(
    name: &str,
    registry: Arc<dyn micro_runtime::Registry>,
    handler: H,
) -> Service {
    let service = Service::builder()
        .name(name)
        .registry(registry)
        .address("127.0.0.1:0")
        .build()
        .expect("build");
    echo::register_echo_handler(service.server(), handler).expect("register");
    service.start().await.expect("start");
    service
}

async fn echo_pair() -> (Service, EchoClient) {
    let registry = memory();
    let server = start("echo", registry.clone(), examples::Echo).await;
    let client = EchoClient::new("echo", caller(registry).client());
    (server, client)
}

/// What a [`Probe`] saw.
#[derive(Default)]
struct Seen {
    /// Replies its response streams handed over so far.
    sent: AtomicUsize,
    /// Requests its request streams read so far.
    read: AtomicUsize,
    /// Response streams dropped (finished or cancelled).
    dropped: AtomicUsize,
    changed: Notify,
}

impl Seen {
    async fn wait_dropped(&self, n: usize) {
        loop {
            let notified = self.changed.notified();
            if self.dropped.load(Ordering::SeqCst) >= n {
                return;
            }
            notified.await;
        }
    }
}

/// Counts on drop: the end of a response stream, however it ended.
struct OnDrop(Arc<Seen>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// An echo that counts. `ServerStream` sends `count` replies of the request's message through
/// a channel of one; `ClientStream` counts without keeping; `Bidi` echoes. The message
/// `metadata` is answered with the call's `x-tag` metadata; `forever` makes `ServerStream`
/// wait between replies without end.
#[derive(Clone, Default)]
struct Probe(Arc<Seen>);

impl echo::Echo for Probe {
    async fn unary(&self, _ctx: Context, req: EchoRequest) -> Result<EchoResponse, Error> {
        Ok(EchoResponse {
            message: req.message,
            index: 0,
        })
    }

    async fn server_stream(
        &self,
        ctx: Context,
        req: EchoRequest,
    ) -> Result<BoxStream<EchoResponse>, Error> {
        let message = match req.message.as_str() {
            "metadata" => ctx.metadata().get("x-tag").unwrap_or_default().to_owned(),
            _ => req.message.clone(),
        };
        let forever = req.message == "forever";
        let (tx, rx) = channel(1);
        let seen = self.0.clone();
        tokio::spawn(async move {
            let _drop = OnDrop(seen.clone());
            for index in 0..req.count {
                if forever {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let reply = EchoResponse {
                    message: message.clone(),
                    index,
                };
                if tx.send(reply).await.is_err() {
                    return;
                }
                seen.sent.fetch_add(1, Ordering::SeqCst);
                seen.changed.notify_waiters();
            }
        });
        Ok(rx)
    }

    async fn client_stream(
        &self,
        _ctx: Context,
        mut requests: Streaming<EchoRequest>,
    ) -> Result<EchoResponse, Error> {
        let mut count = 0;
        while requests.recv().await?.is_some() {
            count += 1;
            self.0.read.fetch_add(1, Ordering::SeqCst);
        }
        Ok(EchoResponse {
            message: String::new(),
            index: count,
        })
    }

    async fn bidi(
        &self,
        _ctx: Context,
        requests: Streaming<EchoRequest>,
    ) -> Result<BoxStream<EchoResponse>, Error> {
        let drop_guard = OnDrop(self.0.clone());
        let replies = requests.enumerate().map(move |(index, req)| {
            let _held = &drop_guard;
            let req = req?;
            Ok(EchoResponse {
                message: req.message,
                index: index as u32,
            })
        });
        Ok(Box::pin(replies))
    }
}

async fn probe_pair() -> (Service, EchoClient, Arc<Seen>) {
    let registry = memory();
    let probe = Probe::default();
    let seen = probe.0.clone();
    let server = start("probe", registry.clone(), probe).await;
    let client = EchoClient::new("probe", caller(registry).client());
    (server, client, seen)
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn each_call_kind_round_trips_through_the_registry() {
    let (_server, client) = echo_pair().await;

    let rsp = client.unary(req("hi")).await.unwrap();
    assert_eq!((rsp.message.as_str(), rsp.index), ("hi", 0));

    let replies: Vec<EchoResponse> = client
        .server_stream(many("tick", 5))
        .await
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(
        replies.iter().map(|r| r.index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert!(replies.iter().all(|r| r.message == "tick"));

    let mut upload = client.client_stream().await.unwrap();
    for m in ["a", "b", "c"] {
        upload.send(req(m)).await.unwrap();
    }
    let rsp = upload.finish().await.unwrap();
    assert_eq!((rsp.message.as_str(), rsp.index), ("a,b,c", 3));

    // Ping-pong: each reply arrives before the next request is sent, so both directions
    // really stream.
    let mut chat = client.bidi().await.unwrap();
    for (i, m) in ["x", "y", "z"].into_iter().enumerate() {
        chat.send(req(m)).await.unwrap();
        let rsp = chat.recv().await.unwrap().expect("a reply");
        assert_eq!((rsp.message.as_str(), rsp.index), (m, i as u32));
    }
    chat.close_send();
    assert!(
        chat.recv().await.unwrap().is_none(),
        "ends after close_send"
    );

    // An empty server stream and an empty client stream.
    let mut none = client.server_stream(many("none", 0)).await.unwrap();
    assert!(none.recv().await.unwrap().is_none());
    let rsp = client
        .client_stream()
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!((rsp.message.as_str(), rsp.index), ("", 0));
}

#[tokio::test]
async fn streaming_endpoints_are_marked_in_the_registry() {
    let (server, _client) = echo_pair().await;
    let endpoints = server.server().endpoints();
    let stream = |name: &str| {
        endpoints
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.metadata.get("stream"))
            .cloned()
    };
    assert_eq!(stream("Echo.Unary").as_deref(), Some("false"));
    for name in ["Echo.ServerStream", "Echo.ClientStream", "Echo.Bidi"] {
        assert_eq!(stream(name).as_deref(), Some("true"), "{name}");
    }
}

#[tokio::test]
async fn a_handler_error_mid_stream_reaches_the_client_with_code_and_message() {
    let (_server, client) = echo_pair().await;

    // Server stream: the first reply, then the error.
    let mut replies = client.server_stream(many("fail", 5)).await.unwrap();
    assert_eq!(replies.recv().await.unwrap().unwrap().index, 0);
    let err = replies.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.detail().contains("asked to fail"), "{err}");
    assert!(
        replies.recv().await.unwrap().is_none(),
        "nothing after the status"
    );

    // Bidi: replies so far, then the error.
    let mut chat = client.bidi().await.unwrap();
    chat.send(req("ok")).await.unwrap();
    assert_eq!(chat.recv().await.unwrap().unwrap().message, "ok");
    chat.send(req("fail")).await.unwrap();
    let err = chat.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    // Client stream: the error instead of the response.
    let mut upload = client.client_stream().await.unwrap();
    upload.send(req("ok")).await.unwrap();
    upload.send(req("fail")).await.unwrap();
    let err = upload.finish().await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.detail().contains("asked to fail"), "{err}");

    // Unary: the same error.
    let err = client.unary(req("fail")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_hundred_thousand_messages_stream_with_bounded_memory() {
    const N: u32 = 100_000;
    let (_server, client, seen) = probe_pair().await;
    let text = "m".repeat(1000); // 100 MB in all, each way
    let before = rss_kib();

    let mut replies = client.server_stream(many(&text, N)).await.unwrap();
    let mut expected = 0;
    while let Some(rsp) = replies.recv().await.unwrap() {
        assert_eq!(rsp.index, expected, "in order, none lost");
        expected += 1;
    }
    assert_eq!(expected, N);

    let mut upload = client.client_stream().await.unwrap();
    for _ in 0..N {
        upload.send(req(&text)).await.unwrap();
    }
    assert_eq!(upload.finish().await.unwrap().index, N);
    assert_eq!(seen.read.load(Ordering::SeqCst), N as usize);

    // Bidi, the halves in two tasks: replies are read while requests go out.
    let (mut tx, mut rx) = client.bidi().await.unwrap().split();
    let sending = tokio::spawn(async move {
        for _ in 0..N {
            tx.send(req(&text)).await.unwrap();
        }
        tx.close_send();
    });
    let mut got = 0;
    while let Some(rsp) = rx.recv().await.unwrap() {
        assert_eq!(rsp.index, got);
        got += 1;
    }
    sending.await.unwrap();
    assert_eq!(got, N);

    // 300 MB crossed the connection; what stays resident is a few windows' worth.
    let grown = rss_kib().saturating_sub(before);
    eprintln!("resident memory grew by {grown} KiB over 300 MB streamed");
    assert!(grown < 64 * 1024, "resident memory grew by {grown} KiB");
}

#[tokio::test]
async fn a_client_that_stops_reading_makes_the_server_send_wait() {
    const N: u32 = 100_000;
    let (_server, client, seen) = probe_pair().await;
    let text = "w".repeat(1000);
    let mut replies = client.server_stream(many(&text, N)).await.unwrap();
    assert_eq!(replies.recv().await.unwrap().unwrap().index, 0);

    // Stop reading: the handler's sends stop once the windows and buffers are full.
    let mut last = usize::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = seen.sent.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    let held = seen.sent.load(Ordering::SeqCst);
    eprintln!("replies sent while the client read none: {held}");
    assert_eq!(
        held, last,
        "the handler kept sending to a client that reads nothing"
    );
    // The HTTP/2 windows (1 MiB per stream) and send buffer (1 MiB) hold ~2,000 replies
    // of 1 KB; nothing buffers the rest.
    assert!(
        held < 10_000,
        "{held} replies sent to a client that read one"
    );

    // Reading again lets it finish, with nothing lost.
    let mut count = 1;
    while let Some(rsp) = replies.recv().await.unwrap() {
        assert_eq!(rsp.index, count);
        count += 1;
    }
    assert_eq!(count, N);
}

#[tokio::test]
async fn dropping_the_client_stream_cancels_the_handler_within_a_second() {
    let (_server, client, seen) = probe_pair().await;

    // Bidi: the handler's response stream is dropped.
    let mut chat = client.bidi().await.unwrap();
    chat.send(req("one")).await.unwrap();
    assert_eq!(chat.recv().await.unwrap().unwrap().message, "one");
    drop(chat);
    tokio::time::timeout(Duration::from_secs(1), seen.wait_dropped(1))
        .await
        .expect("the bidi handler was not cancelled within a second");

    // Server stream: the producing task sees its channel closed.
    let mut replies = client
        .server_stream(many("forever", u32::MAX))
        .await
        .unwrap();
    assert_eq!(replies.recv().await.unwrap().unwrap().index, 0);
    drop(replies);
    tokio::time::timeout(Duration::from_secs(1), seen.wait_dropped(2))
        .await
        .expect("the server-stream handler was not cancelled within a second");
}

#[tokio::test]
async fn a_server_that_dies_ends_the_client_stream_within_a_second() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Proc(
        std::process::Command::new(example_binary("echo-server"))
            .args(["--server_address", &addr, "--registry", "memory"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start echo-server"),
    );
    let client = EchoClient::new("echo", caller(memory()).client());
    let at = CallOptions::new().address(addr.clone());
    // Wait for it to listen.
    for _ in 0..100 {
        if client.unary_with(req("up"), &at).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut chat = client.bidi_with(&at).await.unwrap();
    chat.send(req("before")).await.unwrap();
    assert_eq!(chat.recv().await.unwrap().unwrap().message, "before");

    server.0.kill().unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(1), chat.recv())
        .await
        .expect("the stream did not end within a second of the server dying");
    let err = ended.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}

#[tokio::test]
async fn a_deadline_ends_a_stream_on_both_sides() {
    let (_server, client, seen) = probe_pair().await;
    let opts = CallOptions::new().timeout(Duration::from_millis(300));
    let mut replies = client
        .server_stream_with(many("forever", u32::MAX), &opts)
        .await
        .unwrap();
    let mut got = 0;
    let err = loop {
        match replies.recv().await {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("the stream ended without the deadline"),
            Err(e) => break e,
        }
    };
    assert!(got > 0, "replies came before the deadline");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    // The server dropped the handler's stream too.
    tokio::time::timeout(Duration::from_secs(1), seen.wait_dropped(1))
        .await
        .expect("the handler outlived the deadline");
}

#[tokio::test]
async fn a_deadline_ends_a_stream_whose_client_stopped_reading() {
    // The server's sends wait on the client's window; the deadline must end that wait too,
    // or the handler and its stream live on as long as the connection.
    let (_server, client, seen) = probe_pair().await;
    let text = "w".repeat(1000);
    let opts = CallOptions::new().timeout(Duration::from_millis(500));
    let mut replies = client
        .server_stream_with(many(&text, u32::MAX), &opts)
        .await
        .unwrap();
    assert_eq!(replies.recv().await.unwrap().unwrap().index, 0);
    // Read no more, and keep the stream open.
    tokio::time::timeout(Duration::from_secs(5), seen.wait_dropped(1))
        .await
        .expect("the handler's stream outlived its deadline while the client read nothing");
    drop(replies);
}

#[tokio::test]
async fn a_deadline_ends_a_client_stream_whose_server_stopped_reading() {
    // The client's sends wait on the server's window; the call's deadline must end that wait,
    // or a caller blocked in `send` waits as long as the connection lives.
    let (addr, _) = h2_server(H2Answer::Stall).await;
    let client = EchoClient::new("anything", caller(memory()).client());
    let opts = CallOptions::new()
        .address(addr.to_string())
        .timeout(Duration::from_millis(300));
    let text = "w".repeat(16 * 1024);
    let mut call = client.client_stream_with(&opts).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = call.send(req(&text)).await {
                return e;
            }
        }
    })
    .await
    .expect("send waited for the server's window past the call's deadline");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");

    // The same for a batch.
    let mut call = client.bidi_with(&opts).await.unwrap();
    let requests = futures_util::stream::iter((0..1000).map(|_| req(&text)));
    let err = tokio::time::timeout(Duration::from_secs(10), call.send_all(requests))
        .await
        .expect("send_all waited for the server's window past the call's deadline")
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
}

#[tokio::test]
async fn no_request_goes_out_after_the_deadline() {
    // A server that reads everything and ignores the deadline: the window never fills, and
    // sends must still stop at the deadline, and keep saying why.
    let (addr, _) = h2_server(H2Answer::Drain).await;
    let client = EchoClient::new("anything", caller(memory()).client());
    let opts = CallOptions::new()
        .address(addr.to_string())
        .timeout(Duration::from_millis(300));
    let mut call = client.client_stream_with(&opts).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = call.send(req("tick")).await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("requests went on past the call's deadline");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    let again = call.send(req("late")).await.unwrap_err();
    assert_eq!(again.code(), Code::DeadlineExceeded, "{again}");
}

#[tokio::test]
async fn a_reset_response_stream_gets_the_grpc_code_of_its_http2_error() {
    use h2::Reason;
    let client = EchoClient::new("anything", caller(memory()).client());
    for (answer, code) in [
        (H2Answer::Reset(Reason::INTERNAL_ERROR), Code::Internal),
        (
            H2Answer::ResetAfterHeaders(Reason::ENHANCE_YOUR_CALM),
            Code::ResourceExhausted,
        ),
        (H2Answer::ResetAfterHeaders(Reason::CANCEL), Code::Cancelled),
        (
            H2Answer::ResetAfterHeaders(Reason::HTTP_1_1_REQUIRED),
            Code::Unknown,
        ),
    ] {
        let (addr, _) = h2_server(answer).await;
        let opts = CallOptions::new().address(addr.to_string());
        let mut replies = client.server_stream_with(req("x"), &opts).await.unwrap();
        let err = replies.recv().await.unwrap_err();
        assert_eq!(err.code(), code, "{answer:?}: {err}");
    }
}

#[tokio::test]
async fn an_undecodable_message_in_a_response_stream_is_internal() {
    let addr = scripted_server(Script {
        data: vec![grpc_frame(b"\xff\xff\xff")],
        trailers: vec![("grpc-status", "0")],
    })
    .await;
    let client = EchoClient::new("anything", caller(memory()).client());
    let opts = CallOptions::new().address(addr.to_string());
    let mut replies = client.server_stream_with(req("x"), &opts).await.unwrap();
    let err = replies.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
}

#[tokio::test]
async fn metadata_is_sent_at_open() {
    let (_server, client, _seen) = probe_pair().await;
    let opts = CallOptions::new().metadata("x-tag", "blue");
    let mut replies = client
        .server_stream_with(many("metadata", 1), &opts)
        .await
        .unwrap();
    assert_eq!(replies.recv().await.unwrap().unwrap().message, "blue");
}

#[tokio::test]
async fn bad_streams_get_clear_errors() {
    let (server, client) = echo_pair().await;
    let addr = server.server().local_addr().unwrap();
    let c = caller(memory()).client();
    let at = CallOptions::new().address(addr.to_string());

    // An unknown method: UNIMPLEMENTED as the stream's status.
    const NOPE: micro_runtime::Method = micro_runtime::Method {
        path: "/echo.Echo/Nope",
        endpoint: "Echo.Nope",
        idempotent: false,
    };
    let mut s = c
        .stream::<EchoRequest, EchoResponse>("echo", &NOPE, &at)
        .await
        .unwrap();
    let err = s.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err}");

    // Over the client's own limit: refused before sending.
    let mut chat = client.bidi().await.unwrap();
    let err = chat.send(req(&"x".repeat(5 << 20))).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");

    // Over the server's limit mid-stream (from a client allowing more): RESOURCE_EXHAUSTED
    // as the status, after the replies to the messages before it.
    let big = Service::builder()
        .name("test.big")
        .registry(server.server().registry().clone())
        .client_options(micro_runtime::ClientOptions {
            max_message_size: 16 << 20,
            ..Default::default()
        })
        .build()
        .unwrap();
    let mut chat = EchoClient::new("echo", big.client()).bidi().await.unwrap();
    chat.send(req("small")).await.unwrap();
    assert_eq!(chat.recv().await.unwrap().unwrap().message, "small");
    chat.send(req(&"x".repeat(5 << 20))).await.unwrap();
    let err = chat.recv().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");

    // An unknown service name: NOT_FOUND from the registry, before any stream is opened.
    let err = EchoClient::new("nobody", c.clone())
        .bidi()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
}
