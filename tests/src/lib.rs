//! Support for the integration tests: generated test protos, a greeter with test behaviours,
//! servers on free ports, a raw HTTP/2 gRPC caller, and Python peers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use examples::greeter::{self, HelloRequest, HelloResponse};
use http_body_util::{BodyExt, Full};
use micro_runtime::registry::memory::MemoryRegistry;
use micro_runtime::{Context, Error, Registry, Service};

pub mod broker;
pub mod conformance;
pub mod etcd;
pub mod outside;

/// Generated from `tests/proto` (nested packages, cross-package references, well-known types).
#[allow(missing_docs)] // the test protos leave most things undocumented
pub mod kitchen {
    /// `package kitchen.sink`.
    pub mod sink {
        micro_runtime::include_proto!("kitchen.sink");
    }
}

/// `package common`, imported by `kitchen.sink`.
#[allow(missing_docs)]
pub mod common {
    micro_runtime::include_proto!("common");
}

/// `package edge`: names and types that once made the generated code not compile.
#[allow(missing_docs)]
pub mod edge {
    micro_runtime::include_proto!("edge");

    /// `package edge.enums`: enums only, so nothing uses its descriptors at run time: no
    /// unused static of them may be generated.
    #[deny(dead_code)]
    pub mod enums {
        micro_runtime::include_proto!("edge.enums");
    }
}

/// A greeter whose request name picks a behaviour:
/// - `sleep:<ms>`: sleeps, then answers; counts handler futures dropped before finishing;
/// - `panic`: panics;
/// - `fail`: returns a bad request error;
/// - `whoami`: answers with the `x-user` metadata and the caller's address;
/// - anything else: `Hello, <name>!` from the node named `tag`.
#[derive(Clone, Debug, Default)]
pub struct TestGreeter {
    /// Tag added to plain greetings (`Hello, World! from a`), empty for none.
    pub tag: String,
    /// Added to every call (a slow node).
    pub delay: Duration,
    /// Calls that started.
    pub started: Arc<AtomicUsize>,
    /// Handler futures dropped before they finished.
    pub dropped: Arc<AtomicUsize>,
}

struct DropCount(Arc<AtomicUsize>, bool);

impl Drop for DropCount {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl greeter::Greeter for TestGreeter {
    async fn hello(&self, ctx: Context, req: HelloRequest) -> Result<HelloResponse, Error> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = DropCount(self.dropped.clone(), false);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let greeting = if let Some(ms) = req.name.strip_prefix("sleep:") {
            let ms: u64 = ms
                .parse()
                .map_err(|_| Error::bad_request("test", "bad sleep"))?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            format!("slept {ms}")
        } else if req.name == "panic" {
            panic!("asked to panic");
        } else if req.name == "fail" {
            return Err(Error::bad_request("greeter", "asked to fail"));
        } else if req.name == "whoami" {
            let user = ctx.metadata().get("X-User").unwrap_or("nobody");
            let from = ctx
                .remote_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            format!("{user} from {from}")
        } else if self.tag.is_empty() {
            format!("Hello, {}!", req.name)
        } else {
            format!("Hello, {}! from {}", req.name, self.tag)
        };
        guard.1 = true;
        Ok(HelloResponse { greeting })
    }
}

/// A started greeter service on 127.0.0.1 with a [`TestGreeter`].
pub async fn start_greeter(
    name: &str,
    registry: Arc<dyn Registry>,
    greeter: TestGreeter,
) -> Service {
    start_greeter_with(Service::builder().name(name).registry(registry), greeter).await
}

/// Like [`start_greeter`], from a builder.
pub async fn start_greeter_with(
    builder: micro_runtime::ServiceBuilder,
    greeter: TestGreeter,
) -> Service {
    let service = builder
        .address("127.0.0.1:0")
        .build()
        .expect("build service");
    greeter::register_greeter_handler(service.server(), greeter).expect("register handler");
    service.start().await.expect("start service");
    service
}

/// A fresh in-memory registry.
pub fn memory() -> Arc<dyn Registry> {
    Arc::new(MemoryRegistry::new())
}

/// A client-only service on `registry`.
pub fn caller(registry: Arc<dyn Registry>) -> Service {
    Service::builder()
        .name("test.client")
        .registry(registry)
        .build()
        .expect("build client")
}

/// What a raw HTTP/2 call got back.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status.
    pub status: http::StatusCode,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The body's data.
    pub body: Bytes,
    /// The trailers, if any.
    pub trailers: Option<http::HeaderMap>,
}

impl RawResponse {
    /// `grpc-status`, from the trailers or (trailers-only) the headers.
    pub fn grpc_status(&self) -> Option<u8> {
        let v = self
            .trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or(self.headers.get("grpc-status"))?;
        v.to_str().ok()?.parse().ok()
    }

    /// `grpc-message`, from the trailers or the headers.
    pub fn grpc_message(&self) -> String {
        let v = self
            .trailers
            .as_ref()
            .and_then(|t| t.get("grpc-message"))
            .or(self.headers.get("grpc-message"));
        v.and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends one HTTP/2 request with any path, headers and body bytes: for what our client
/// would never send.
pub async fn raw_call(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> RawResponse {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("handshake");
    tokio::spawn(conn);
    let mut req = http::Request::post(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let rsp = send
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("send");
    let (parts, body) = rsp.into_parts();
    let collected = body.collect().await.expect("read body");
    let trailers = collected.trailers().cloned();
    RawResponse {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// What a [`scripted_server`] answers: after a `200 application/grpc` head, data chunks then
/// trailers.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Data chunks of the body, in order.
    pub data: Vec<Vec<u8>>,
    /// The trailers (`grpc-status` and the like).
    pub trailers: Vec<(&'static str, &'static str)>,
}

/// A bare HTTP/2 server (hyper) answering every request with `script`, whatever it asks:
/// for what our server would never send but other gRPC servers do (headers, no message and
/// an error in the trailers, as grpc-go sends when a handler set header metadata), or
/// broken responses. Serves until the test ends.
pub async fn scripted_server(script: Script) -> std::net::SocketAddr {
    use hyper::body::Frame;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            let service = hyper::service::service_fn(move |_req| {
                let script = script.clone();
                async move {
                    let mut frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = script
                        .data
                        .iter()
                        .map(|d| Ok(Frame::data(Bytes::from(d.clone()))))
                        .collect();
                    let mut trailers = http::HeaderMap::new();
                    for (k, v) in &script.trailers {
                        trailers.insert(*k, http::HeaderValue::from_static(v));
                    }
                    frames.push(Ok(Frame::trailers(trailers)));
                    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
                    http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
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

/// What an [`h2_server`] does with each request stream.
#[derive(Clone, Copy, Debug)]
pub enum H2Answer {
    /// Resets the stream with this HTTP/2 error code, before any response.
    Reset(h2::Reason),
    /// Sends `200 application/grpc` headers, then resets the stream with this code.
    ResetAfterHeaders(h2::Reason),
    /// Neither reads the request nor answers: the stream's window fills and stays full (a
    /// server that ignores deadlines, as a stuck one would).
    Stall,
    /// Reads every request and never answers (a server that ignores deadlines but keeps
    /// the window open).
    Drain,
}

/// A bare HTTP/2 server (the `h2` crate) doing `answer` to every request, for what no
/// well-behaved gRPC server sends: resets with any HTTP/2 error code, a peer that stops
/// reading. Returns its address and the count of requests it has seen; serves until the
/// test ends.
pub async fn h2_server(answer: H2Answer) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(stream).await else {
                    return;
                };
                // Stalled requests are kept here, unread, as long as the connection lives.
                let mut stalled = Vec::new();
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    match answer {
                        H2Answer::Reset(reason) => respond.send_reset(reason),
                        H2Answer::ResetAfterHeaders(reason) => {
                            let head = http::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(())
                                .expect("response head");
                            if let Ok(mut send) = respond.send_response(head, false) {
                                // A reset drops what the stream has queued: give the
                                // connection (polled by `accept`) time to write the headers.
                                tokio::spawn(async move {
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                    send.send_reset(reason);
                                });
                            }
                        }
                        H2Answer::Stall => stalled.push((request, respond)),
                        H2Answer::Drain => {
                            let mut body = request.into_body();
                            tokio::spawn(async move {
                                let _respond = respond;
                                while let Some(Ok(data)) = body.data().await {
                                    let _ = body.flow_control().release_capacity(data.len());
                                }
                                std::future::pending::<()>().await;
                            });
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A gRPC frame of `msg`.
pub fn grpc_frame(msg: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `python3` with `grpcio` importable; fails (never skips) when it is missing, saying how to
/// get it.
pub fn python() -> std::process::Command {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with grpcio and grpcio-tools is required: run scripts/test, or `python3 -m pip install grpcio grpcio-tools`"
    );
    let mut cmd = std::process::Command::new("python3");
    cmd.current_dir(repo_root());
    cmd
}

/// The protoc plugin's output for `proto/greeter.proto`, compiled as is: the golden file
/// that `protoc-gen-micro`'s tests prove equal to what `protoc --micro_out` writes.
pub mod plugin_output {
    include!("../../protoc-gen-micro/tests/golden/greeter/greeter.rs");
}

/// The example binaries: `MICRO_BIN_DIR` (scripts/test sets it to target/ci), else the newest
/// of the workspace's target/ci, target/release and target/debug.
pub fn example_binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("MICRO_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        assert!(
            path.exists(),
            "{} is missing: build it (`cargo build --profile ci --workspace --bins --all-features`) or run scripts/test",
            path.display()
        );
        return path;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    ["ci", "release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join(name))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| {
            panic!(
                "{name} is not built: run scripts/test, or `cargo build --profile ci --workspace --bins --all-features` (MICRO_BIN_DIR may name the directory)"
            )
        })
}

/// A process killed on drop.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The DOM of `url` as headless Chromium renders it (`--dump-dom`); fails (never skips) when
/// Chromium is missing, saying how to get it.
pub fn chromium_dom(url: &str) -> String {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Chromium is required: run scripts/test, or `apt-get install chromium`");
    let profile = tempfile::tempdir().expect("a profile directory");
    // No background traffic, and every host name but loopback's unresolvable: the browser
    // talks to the page's loopback server only.
    let mut child = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-domain-reliability",
            "--disable-sync",
            "--disable-extensions",
            "--disable-features=OptimizationHints,Translate,MediaRouter",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run chromium");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    // Bounded: a browser that hangs fails the test instead of holding the run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not render {url} within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let dom = stdout.join().unwrap_or_default();
    assert!(
        status.success(),
        "chromium failed on {url}: {}",
        stderr.join().unwrap_or_default()
    );
    dom
}

/// Reads `pipe` (a child's output) line by line until one starts with `prefix`; returns the
/// rest of that line, or `None` when the output ends first. The lines after it are read and
/// dropped in the background, so the child never blocks on a full pipe.
pub fn line_after(pipe: impl std::io::Read + Send + 'static, prefix: &str) -> Option<String> {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(pipe).lines();
    let rest = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))?;
    std::thread::spawn(move || lines.for_each(drop));
    Some(rest)
}

/// A grpcio server (`tests/python/<script>`) on a free port of 127.0.0.1, killed on drop.
pub struct PyServer {
    child: std::process::Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

impl PyServer {
    /// Runs `tests/python/<script> --address ADDR ARGS...` (a server that prints `listening`
    /// once bound) and waits until it does.
    pub fn start(script: &str, args: &[&str]) -> PyServer {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut child = python()
            .arg(format!("tests/python/{script}"))
            .args(["--address", &addr.to_string()])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {script}: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "listening", "{script} did not start");
        PyServer { child, addr }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
