//! Resident memory of an idle greeter server, ours and tonic's: fresh, and idle again after
//! serving one call (the code of the request path is then resident too); and its growth
//! per 1,000 open idle HTTP/2 connections. Each server runs alone in a child process (this bench
//! binary re-run in a server mode), so its resident set is its own.
//!
//! `cargo bench -p micro-bench --bench memory -- [--connections N]` (default 1000).

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use micro_runtime::registry::memory::MemoryRegistry;

/// (resident, anonymous) KiB of a process. Resident includes the pages of the binary's code
/// read from disk (clean, shared, evictable); anonymous is heap and stacks.
fn memory_kib(pid: u32) -> (u64, u64) {
    let rollup =
        std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("read smaps_rollup");
    let field = |name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("smaps_rollup field")
    };
    (field("Rss:"), field("Anonymous:"))
}

/// Serves until killed: `--serve micro|tonic ADDR`.
fn serve(kind: &str, addr: &str) -> ! {
    let rt = support::runtime("server", 2);
    match kind {
        "micro" => {
            let registry = Arc::new(MemoryRegistry::new());
            rt.block_on(async {
                let service = micro_runtime::Service::builder()
                    .name("greeter")
                    .address(addr)
                    .registry(registry)
                    .build()
                    .expect("service");
                examples::greeter::register_greeter_handler(service.server(), examples::Hello)
                    .expect("register");
                service.start().await.expect("start");
                println!("ready");
                std::future::pending::<()>().await;
            });
        }
        _ => {
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
                println!("ready");
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                tonic::transport::Server::builder()
                    .add_service(support::tonic_greeter::greeter_server::GreeterServer::new(
                        support::TonicHello,
                    ))
                    .serve_with_incoming(incoming)
                    .await
                    .expect("serve");
            });
        }
    }
    std::process::exit(0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(kind: &str, addr: &str) -> Server {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--serve", kind, addr])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");
    Server(child)
}

/// Opens `n` HTTP/2 connections, each after one call, and keeps them open and idle.
async fn open_idle(
    addr: &str,
    n: usize,
) -> Vec<hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("handshake");
        tokio::spawn(conn);
        let req = http::Request::post(format!("http://{addr}/greeter.Greeter/Hello"))
            .header("content-type", "application/grpc")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"\0\0\0\0\x07\x0a\x05World",
            )))
            .expect("request");
        let rsp = send.send_request(req).await.expect("call");
        let _ = http_body_util::BodyExt::collect(rsp.into_body()).await;
        conns.push(send);
    }
    conns
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve(&args[i + 1], &args[i + 2]);
    }
    let n: usize = args
        .iter()
        .position(|a| a == "--connections")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1000);
    let rt = support::runtime("client", 1);
    println!(
        "server memory in KiB: idle before any call, idle after one call (its connection closed), \
         and with {n} idle HTTP/2 connections (rss: resident; anon: heap and stacks):"
    );
    println!(
        "{:<8} {:>10} {:>10} {:>11} {:>11} {:>12} {:>12} {:>14}",
        "server",
        "idle rss",
        "idle anon",
        "served rss",
        "served anon",
        "loaded rss",
        "loaded anon",
        "anon per 1000"
    );
    for kind in ["micro", "tonic"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let server = start(kind, &addr);
        std::thread::sleep(Duration::from_millis(300));
        let (idle_rss, idle_anon) = memory_kib(server.0.id());
        drop(rt.block_on(open_idle(&addr, 1)));
        std::thread::sleep(Duration::from_millis(300));
        let (served_rss, served_anon) = memory_kib(server.0.id());
        let conns = rt.block_on(open_idle(&addr, n));
        std::thread::sleep(Duration::from_millis(500));
        let (loaded_rss, loaded_anon) = memory_kib(server.0.id());
        drop(conns);
        let per_1000 = loaded_anon.saturating_sub(served_anon) as f64 * 1000.0 / n as f64;
        println!(
            "{kind:<8} {idle_rss:>10} {idle_anon:>10} {served_rss:>11} {served_anon:>11} {loaded_rss:>12} {loaded_anon:>12} {per_1000:>14.0}"
        );
    }
}
