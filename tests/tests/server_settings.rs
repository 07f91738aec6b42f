//! The server's connection settings, set by flags, seen from raw TCP and HTTP/2: a socket
//! that sends nothing is dropped after the handshake timeout, a client that does not answer
//! keepalive pings is dropped, one that does stays, the SETTINGS frame advertises the
//! configured limits, and the cap on connections makes room by closing the idlest.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use micro_runtime::{Options, Service};
use micro_tests::{TestGreeter, memory, start_greeter_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Bounds every wait of these tests: far above what the settings ask for.
const PATIENCE: Duration = Duration::from_secs(5);

/// A greeter on 127.0.0.1 with these flags; returns it and its address.
async fn greeter(flags: &[&str]) -> (Service, SocketAddr) {
    let options = Options::parse_from(std::iter::once("greeter").chain(flags.iter().copied()))
        .expect("the flags parse");
    let builder = Service::builder()
        .name("greeter")
        .registry(memory())
        .options(options);
    let service = start_greeter_with(builder, TestGreeter::default()).await;
    let addr = service.server().local_addr().expect("started");
    (service, addr)
}

/// One HTTP/2 frame.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    payload: Vec<u8>,
}

fn encode(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 0];
    out.extend_from_slice(payload);
    out
}

/// The next frame; `None` once the server has closed the connection.
async fn read_frame(conn: &mut TcpStream) -> Option<Frame> {
    let mut head = [0u8; 9];
    conn.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    conn.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        payload,
    })
}

/// A raw HTTP/2 client past its preface and (empty) SETTINGS; returns it with the server's
/// SETTINGS frame.
async fn http2_client(addr: SocketAddr) -> (TcpStream, Frame) {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(PREFACE).await.unwrap();
    conn.write_all(&encode(SETTINGS, 0, &[])).await.unwrap();
    let settings = tokio::time::timeout(PATIENCE, read_frame(&mut conn))
        .await
        .expect("the server's SETTINGS in time")
        .expect("the server's SETTINGS, not a closed connection");
    assert_eq!(settings.kind, SETTINGS, "{settings:?}");
    conn.write_all(&encode(SETTINGS, ACK, &[])).await.unwrap();
    (conn, settings)
}

/// Reads (and drops) what comes until the server closes the connection; how long it took.
async fn until_closed(conn: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(PATIENCE, async {
        while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    closed.await.expect("the server left the connection open");
    started.elapsed()
}

#[tokio::test]
async fn a_socket_that_sends_nothing_is_dropped_after_the_handshake_timeout() {
    let (service, addr) = greeter(&["--server_handshake_timeout", "200ms"]).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    until_closed(&mut silent).await;
    let took = started.elapsed();
    // The default (10 s) would be past PATIENCE's bound.
    assert!(took >= Duration::from_millis(190), "closed after {took:?}");

    // A client that sends its preface in time is served.
    let (conn, _) = http2_client(addr).await;
    drop(conn);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_answer_keepalive_pings_is_dropped() {
    let (service, addr) = greeter(&[
        "--server_keepalive",
        "200ms",
        "--server_keepalive_timeout",
        "300ms",
        "--server_idle_timeout",
        "0",
    ])
    .await;
    let (mut conn, _) = http2_client(addr).await;
    let started = Instant::now();
    // Frames come (a SETTINGS acknowledgement, window updates), then the ping, which is
    // never answered.
    let pinged = tokio::time::timeout(PATIENCE, async {
        loop {
            match read_frame(&mut conn).await {
                Some(f) if f.kind == PING && f.flags & ACK == 0 => return Some(started.elapsed()),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .expect("no ping within the bound");
    let pinged = pinged.expect("closed before any ping");
    // Lower bounds with room: the server's timers began before the client's clock did.
    assert!(
        pinged >= Duration::from_millis(100),
        "pinged after {pinged:?}"
    );
    let unanswered = until_closed(&mut conn).await;
    assert!(
        unanswered >= Duration::from_millis(150),
        "closed {unanswered:?} after the ping"
    );
    service.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_answers_keepalive_pings_keeps_its_connection() {
    let (service, addr) = greeter(&[
        "--server_keepalive",
        "100ms",
        "--server_keepalive_timeout",
        "500ms",
        "--server_idle_timeout",
        "0",
    ])
    .await;
    // The h2 crate answers pings by itself.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.expect("handshake");
    let driver = tokio::spawn(conn);
    // Several pings, each answered.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(!driver.is_finished(), "the connection ended");
    let request = http::Request::post(format!("http://{addr}/greeter.Greeter/Nothing"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, _) = send
        .ready()
        .await
        .expect("the connection is open")
        .send_request(request, true)
        .expect("a request on the same connection");
    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .expect("an answer in time")
        .expect("an answer on the same connection");
    assert_eq!(response.status(), http::StatusCode::OK);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn the_settings_frame_advertises_the_configured_limits() {
    let (service, addr) = greeter(&[
        "--server_max_concurrent_streams",
        "7",
        "--server_max_header_list_size",
        "4096",
    ])
    .await;
    let (conn, settings) = http2_client(addr).await;
    drop(conn);
    let values: Vec<(u16, u32)> = settings
        .payload
        .chunks_exact(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect();
    assert!(
        values.contains(&(SETTINGS_MAX_CONCURRENT_STREAMS, 7)),
        "{values:?}"
    );
    assert!(
        values.contains(&(SETTINGS_MAX_HEADER_LIST_SIZE, 4096)),
        "{values:?}"
    );
    service.stop().await.unwrap();
}

#[tokio::test]
async fn at_its_connection_cap_the_server_closes_the_idlest_for_a_new_one() {
    let (service, addr) = greeter(&["--server_max_connections", "2"]).await;
    let (mut oldest, _) = http2_client(addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (mut second, _) = http2_client(addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The third is served; the one idle the longest made room for it.
    let (third, _) = http2_client(addr).await;
    until_closed(&mut oldest).await;
    // The second stays: what it gets (window updates, acknowledgements) is no GOAWAY and no
    // end.
    let second_stays = tokio::time::timeout(Duration::from_millis(300), async {
        while let Some(frame) = read_frame(&mut second).await {
            assert_ne!(
                frame.kind, GOAWAY,
                "the second connection was told to go away"
            );
        }
    })
    .await;
    assert!(second_stays.is_err(), "the second connection was closed");
    // A raw client answers no ping: closed here, it does not hold the stop's drain.
    drop((second, third));
    service.stop().await.unwrap();
}
