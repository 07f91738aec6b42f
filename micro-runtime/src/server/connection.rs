//! Serving connections: the accept loop, with its cap on connections, and each connection's
//! task, with HTTP/2's limits, its calls, its keepalive pings and its idle timeout.
//!
//! # Bounds
//! What an attacker (or a broken client) can make a server hold is bounded: a connection's
//! request headers by `max_header_list_size` per call (HPACK-decoded, as HTTP/2 counts them,
//! so a compressed "bomb" is refused before it is expanded beyond it) times
//! `max_concurrent_streams`; its request bodies by `connection_request_buffer`; a connection
//! that does not send the HTTP/2 preface within `handshake_timeout` is dropped, one that
//! stays without a call for `idle_timeout` is closed (so is one past its preface that sends
//! nothing more: without a call it is idle); and the connections themselves by
//! `max_connections`, kept below the process's open-files limit (raised to its hard limit at
//! start, as Go's runtime does). At the cap, the connection idle the longest makes room for
//! a new one; when none is idle, the new one is refused, with a warning at most every 10 s.
//!
//! # Keepalive
//! Every `keepalive` the connection's task sends an HTTP/2 PING; a connection whose PING is
//! not answered within `keepalive_timeout` (a client that went away without closing, a cut
//! link) is dropped, its calls failing. One timer per connection, no work per call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use super::call::{Deadline, ResponseBody};
use super::options::ServerOptions;
use super::router::{ConnFuture, ConnService, Router};
use crate::stream::BoxStream;

/// Open files kept for what is not a connection (registry files, broker and client
/// connections, logs) when the connection cap follows the open-files limit.
const RESERVED_FILES: u64 = 64;

/// How often a refused connection or a failing accept is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What the accept loop needs of the server's settings.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    drain_timeout: Duration,
    max_header_list_size: u32,
    max_concurrent_streams: u32,
    max_connections: usize,
    idle_timeout: Duration,
    handshake_timeout: Duration,
    keepalive: Duration,
    keepalive_timeout: Duration,
}

impl Settings {
    pub(super) fn new(o: &ServerOptions) -> Settings {
        Settings {
            drain_timeout: o.drain_timeout,
            max_header_list_size: o.max_header_list_size.max(1024),
            max_concurrent_streams: o.max_concurrent_streams.max(1),
            max_connections: o.max_connections.max(1),
            idle_timeout: o.idle_timeout,
            handshake_timeout: o.handshake_timeout,
            keepalive: o.keepalive,
            keepalive_timeout: o.keepalive_timeout,
        }
    }
}

/// A connection as the accept loop sees it: whether it has calls, and how to close it.
struct Slot {
    /// Milliseconds (of the loop's clock) since which it has had no call; 0 while it has.
    idle_since: AtomicU64,
    /// Tells it to go away (HTTP/2 GOAWAY) and close.
    shed: Notify,
}

/// The connections being served, for the cap.
#[derive(Default)]
struct Slots {
    next: u64,
    open: HashMap<u64, Arc<Slot>>,
}

impl Slots {
    fn add(&mut self) -> (u64, Arc<Slot>) {
        self.next += 1;
        let slot = Arc::new(Slot {
            idle_since: AtomicU64::new(now_ms()),
            shed: Notify::new(),
        });
        self.open.insert(self.next, slot.clone());
        (self.next, slot)
    }

    /// Tells the connection idle the longest to close; `false` when none is idle.
    fn shed_idlest(&self) -> bool {
        let idlest = self
            .open
            .values()
            .filter_map(|s| {
                let since = s.idle_since.load(Ordering::Relaxed);
                (since != 0).then_some((since, s))
            })
            .min_by_key(|(since, _)| *since);
        match idlest {
            Some((_, slot)) => {
                // Taken for busy, so that it is not picked again while it closes.
                slot.idle_since.store(0, Ordering::Relaxed);
                slot.shed.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Milliseconds on a monotonic clock (never 0: 0 means "busy").
fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The connections this process may serve: the setting, kept below the open-files limit
/// (raised to its hard limit first, once per process).
fn connection_cap(configured: usize) -> usize {
    match open_files_limit() {
        Some(files) => {
            let room = files.saturating_sub(RESERVED_FILES).max(1);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

/// Raises the soft open-files limit to the hard one (once per process) and returns it.
fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        static RAISED: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        *RAISED.get_or_init(|| {
            use rustix::process::{Resource, getrlimit, setrlimit};
            let mut limit = getrlimit(Resource::Nofile);
            if let (Some(current), Some(max)) = (limit.current, limit.maximum)
                && current < max
            {
                limit.current = Some(max);
                match setrlimit(Resource::Nofile, limit) {
                    Ok(()) => {
                        tracing::debug!(from = current, to = max, "raised the open-files limit")
                    }
                    Err(e) => tracing::debug!(error = %e, "could not raise the open-files limit"),
                }
            }
            getrlimit(Resource::Nofile).current
        })
    }
    #[cfg(not(unix))]
    None
}

/// Logs at most once every [`WARN_EVERY`], with how many times it was held back.
struct Throttled {
    last: Option<tokio::time::Instant>,
    held: u64,
}

impl Throttled {
    fn new() -> Throttled {
        Throttled {
            last: None,
            held: 0,
        }
    }

    /// Whether to log now; returns how many were held back since the last.
    fn due(&mut self) -> Option<u64> {
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|l| now < l + WARN_EVERY) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// Accepts connections until told to stop, then drains them: each connection is told to
/// go away (HTTP/2 GOAWAY) and finishes its in-flight calls, within the drain timeout.
pub(super) async fn accept_loop(
    listener: TcpListener,
    router: Arc<Router>,
    mut stop: watch::Receiver<bool>,
    settings: Settings,
) {
    let cap = connection_cap(settings.max_connections);
    let slots: Arc<Mutex<Slots>> = Arc::default();
    let mut conns = tokio::task::JoinSet::new();
    let mut refused = Throttled::new();
    let mut failing = Throttled::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff = Duration::from_millis(5);
                    conn
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning,
                    // and say so now and then, not at every try.
                    if let Some(held) = failing.due() {
                        tracing::warn!(error = %e, repeated = held, "accept failed");
                    }
                    // Room for the next: the connection idle the longest goes.
                    slots.lock().unwrap_or_else(|e| e.into_inner()).shed_idlest();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = stop.changed() => break,
        };
        let added = {
            let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
            if slots.open.len() >= cap && !slots.shed_idlest() {
                None
            } else {
                Some(slots.add())
            }
        };
        let Some((id, slot)) = added else {
            drop(stream);
            if let Some(held) = refused.due() {
                tracing::warn!(
                        %remote,
                        connections = cap,
                        repeated = held,
                    "connection refused: the server serves its most connections, none idle"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = ConnService::new(router.clone(), remote);
        let slots = slots.clone();
        let settings = settings.clone();
        let stop = stop.clone();
        conns.spawn(async move {
            serve_connection(stream, service, stop, &slot, &settings).await;
            slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .open
                .remove(&id);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(settings.drain_timeout, async {
        while conns.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!("in-flight calls did not finish within the drain timeout");
        conns.abort_all();
    }
}

/// Serves one HTTP/2 connection. Its calls run in this one task, polled next to the
/// connection itself: no task per call and no hand-off between tasks, which is what makes
/// this faster than a task per stream (see benches/README.md).
///
/// The handshake and the serving of calls are separate futures, and the connection is gone
/// before the calls left over are finished, so this task's state is as large as the larger
/// stage, not their sum: an open connection costs its task the handshake's room or the
/// connection's, never both.
async fn serve_connection(
    stream: TcpStream,
    service: ConnService,
    mut stop: watch::Receiver<bool>,
    slot: &Slot,
    settings: &Settings,
) {
    let calls = {
        // Bound in this block, not moved into serve_calls: a future keeps its arguments
        // twice (as given and as its own locals), and the connection is 1.25 KiB.
        let Some(mut conn) = handshake(stream, &service, &mut stop, settings).await else {
            return;
        };
        serve_calls(&mut conn, &service, &mut stop, slot, settings).await
    };
    // The connection is gone: what is left can only fail fast (a handler still running for a
    // stream the client reset runs to its end, then fails to send).
    if let Some(mut calls) = calls {
        while calls.next().await.is_some() {}
    }
}

/// The server's side of the HTTP/2 handshake. A client that connects and sends nothing must
/// not hold a task, nor make stop() wait out the drain timeout: the handshake is bounded
/// and ends on stop (no calls to drain).
async fn handshake(
    stream: TcpStream,
    service: &ConnService,
    stop: &mut watch::Receiver<bool>,
    settings: &Settings,
) -> Option<h2::server::Connection<TcpStream, Bytes>> {
    let handshake = h2::server::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(2 << 20)
        .max_concurrent_streams(settings.max_concurrent_streams)
        .max_header_list_size(settings.max_header_list_size)
        .max_send_buffer_size(1 << 20)
        .data_frame_budget(crate::transport::DATA_FRAME_BUDGET)
        .handshake::<_, Bytes>(stream);
    let bound = settings.handshake_timeout;
    let done = tokio::select! {
        done = handshake => done,
        _ = tokio::time::sleep(bound), if !bound.is_zero() => {
            tracing::debug!(remote = %service.remote(), timeout = ?bound, "HTTP/2 handshake timed out");
            return None;
        }
        _ = stop.wait_for(|stop| *stop) => return None,
    };
    done.inspect_err(|e| {
        tracing::debug!(remote = %service.remote(), error = %e, "HTTP/2 handshake failed");
    })
    .ok()
}

/// Accepts the connection's calls and polls them beside it until the connection ends; on
/// stop, after `idle_timeout` without a call, or when the accept loop sheds it, tells the
/// client to go away (GOAWAY) and goes on until it has. Pings the client every `keepalive`
/// and drops the connection when a ping goes unanswered for `keepalive_timeout`. Returns the
/// calls still running, to finish once the connection is dropped; none for a connection that
/// made no call (the set of calls is made on the first, ~600 bytes a connection never uses).
async fn serve_calls(
    conn: &mut h2::server::Connection<TcpStream, Bytes>,
    service: &ConnService,
    stop: &mut watch::Receiver<bool>,
    slot: &Slot,
    settings: &Settings,
) -> Option<FuturesUnordered<impl Future<Output = ()> + use<>>> {
    let idle = settings.idle_timeout;
    let mut calls: Option<FuturesUnordered<_>> = None;
    let mut stopping = *stop.borrow_and_update();
    if stopping {
        conn.graceful_shutdown();
    }
    // When the connection, without calls, goes away for being idle.
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let mut was_idle = true;
    // Keepalive: the timer runs to the next ping, then (while `unanswered`) to when the
    // ping's answer is overdue.
    let (every, patience) = (settings.keepalive, settings.keepalive_timeout);
    let mut pings = if every.is_zero() {
        None
    } else {
        conn.ping_pong()
    };
    let keepalive_timer = tokio::time::sleep(every);
    tokio::pin!(keepalive_timer);
    let mut unanswered = false;
    loop {
        let is_idle = calls.as_ref().is_none_or(|c| c.is_empty());
        if is_idle != was_idle {
            was_idle = is_idle;
            if is_idle {
                slot.idle_since.store(now_ms(), Ordering::Relaxed);
                idle_timer.as_mut().reset(after(idle));
            } else {
                slot.idle_since.store(0, Ordering::Relaxed);
            }
        }
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok((req, respond))) => calls
                    .get_or_insert_with(FuturesUnordered::new)
                    .push(answer(service.call(req), respond)),
                Some(Err(e)) => {
                    tracing::debug!(remote = %service.remote(), error = %e, "connection ended with an error");
                    break;
                }
                None => break,
            },
            Some(()) = async { calls.as_mut()?.next().await },
                if calls.as_ref().is_some_and(|calls| !calls.is_empty()) => {}
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.graceful_shutdown();
            }
            // Without calls, the connection closes at once (GOAWAY then close): a graceful
            // shutdown would wait for a ping the client may never answer.
            () = &mut idle_timer, if is_idle && !stopping && !idle.is_zero() => {
                tracing::debug!(remote = %service.remote(), ?idle, "closing an idle connection");
                stopping = true;
                conn.abrupt_shutdown(h2::Reason::NO_ERROR);
            }
            () = slot.shed.notified(), if !stopping => {
                tracing::debug!(remote = %service.remote(), "closing the idlest connection for a new one");
                stopping = true;
                if calls.as_ref().is_none_or(|c| c.is_empty()) {
                    conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                } else {
                    conn.graceful_shutdown();
                }
            }
            () = &mut keepalive_timer, if pings.is_some() && !(unanswered && patience.is_zero()) => {
                if unanswered {
                    // The client is gone or cut off: dropping the connection fails its
                    // calls now rather than at their deadlines.
                    tracing::debug!(remote = %service.remote(), timeout = ?patience, "keepalive ping unanswered, dropping the connection");
                    break;
                }
                if let Some(Err(e)) = pings.as_mut().map(|p| p.send_ping(h2::Ping::opaque())) {
                    tracing::debug!(remote = %service.remote(), error = %e, "keepalive ping not sent");
                    break;
                }
                unanswered = true;
                keepalive_timer
                    .as_mut()
                    .reset(after(patience));
            }
            pong = std::future::poll_fn(|cx| match pings.as_mut() {
                Some(pings) => pings.poll_pong(cx),
                None => std::task::Poll::Pending,
            }), if unanswered => {
                if let Err(e) = pong {
                    tracing::debug!(remote = %service.remote(), error = %e, "keepalive ping failed");
                    break;
                }
                unanswered = false;
                keepalive_timer
                    .as_mut()
                    .reset(after(every));
            }
        }
    }
    calls
}

/// The instant `d` from now; for a `d` past what the clock holds (a setting of centuries),
/// far enough to be never, as `tokio::time::sleep` takes it.
fn after(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
}

/// Writes the response of one call on its stream: headers (alone, for trailers-only
/// responses), the message or the stream of messages, the trailers.
async fn answer(call: ConnFuture, mut respond: h2::server::SendResponse<Bytes>) {
    let rsp = call.await;
    let (parts, body) = rsp.into_parts();
    let head = http::Response::from_parts(parts, ());
    let (data, trailers) = match body {
        ResponseBody::Unary(unary) => unary.into_parts(),
        ResponseBody::Stream(frames, deadline) => {
            let Ok(send) = respond.send_response(head, false) else {
                return;
            };
            return answer_stream(frames, deadline, send).await;
        }
    };
    if data.is_none() && trailers.is_none() {
        let _ = respond.send_response(head, true);
        return;
    }
    let Ok(mut send) = respond.send_response(head, false) else {
        return;
    };
    if let Some(data) = data
        && send.send_data(data, trailers.is_none()).is_err()
    {
        return;
    }
    if let Some(trailers) = trailers {
        let _ = send.send_trailers(trailers);
    }
}

/// Sends a response stream as the client's window allows (the stream is polled for its next
/// message only when there is room), then the status. A client that resets the stream ends
/// the call: the stream, and with it the handler's work, is dropped. The call's deadline
/// bounds the whole of it: when it passes while the next messages are made, the status is
/// `DEADLINE_EXCEEDED`; when it passes while the client's window is full (a client that
/// stopped reading), the stream is reset, since the status could not get past the data
/// queued before it either.
async fn answer_stream(
    mut frames: BoxStream<Bytes>,
    deadline: Option<Deadline>,
    mut send: h2::SendStream<Bytes>,
) {
    // Completes once, with the status; the loop ends as soon as it has.
    let expired = async {
        match deadline {
            Some(d) => {
                tokio::time::sleep_until(d.at).await;
                d.exceeded()
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    let mut unflushed = crate::transport::http2::Unflushed::default();
    let end = loop {
        let next = tokio::select! {
            biased;
            _ = std::future::poll_fn(|cx| send.poll_reset(cx)) => return,
            e = &mut expired => break Err(e),
            next = frames.next() => next,
        };
        // Each item is a batch: the messages the handler had ready, in one DATA frame.
        match next {
            Some(Ok(batch)) => {
                let len = batch.len();
                let sent = tokio::select! {
                    biased;
                    sent = crate::transport::http2::send_frame(&mut send, batch, false, None) => Some(sent),
                    _ = &mut expired => None,
                };
                match sent {
                    Some(Ok(())) => {}
                    Some(Err(_)) => return,
                    None => {
                        send.send_reset(h2::Reason::CANCEL);
                        return;
                    }
                }
                // The connection is polled by this same task: let it write the batches out
                // every few of them, while the next are made, rather than after a send
                // buffer's worth.
                unflushed.sent(len).await;
            }
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    drop(frames);
    let mut trailers = http::HeaderMap::new();
    match end {
        Ok(()) => {
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        }
        Err(e) => crate::transport::put_status(&mut trailers, &e),
    }
    let _ = send.send_trailers(trailers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::memory::MemoryRegistry;
    use crate::server::Server;
    use tokio::io::AsyncReadExt;

    /// Every open connection's task is one allocation the size of this future: the
    /// handshake's state and the connection's must share their room, not add up (they did,
    /// 4,200 bytes in a release build, before serve_connection was split into stages).
    #[tokio::test]
    async fn a_connection_task_holds_the_handshake_or_the_connection_not_both() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, remote) = listener.accept().await.unwrap();
        let router = Arc::new(Router::new(
            &ServerOptions::default(),
            &[],
            &Default::default(),
        ));
        let (_stop, stopped) = watch::channel(false);
        let slot = Slots::default().add().1;
        let settings = Settings::new(&ServerOptions::default());
        let task = serve_connection(
            stream,
            ConnService::new(router, remote),
            stopped,
            &slot,
            &settings,
        );
        let handshake = std::mem::size_of::<h2::server::Handshake<TcpStream, Bytes>>();
        let conn = std::mem::size_of::<h2::server::Connection<TcpStream, Bytes>>();
        let size = std::mem::size_of_val(&task);
        assert!(
            size < handshake + conn,
            "the task's future is {size} bytes: the handshake ({handshake}) and the connection ({conn}) both have room in it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_after_the_handshake_timeout() {
        let options = ServerOptions {
            name: "t".into(),
            address: "127.0.0.1:0".into(),
            ..ServerOptions::default()
        };
        let server = Server::new(options, Arc::new(MemoryRegistry::new()));
        let addr = server.start().await.unwrap();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // The server's SETTINGS, then nothing until it closes the connection (the clock is
        // paused: the wait is not real).
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(ServerOptions::default().handshake_timeout * 6, async {
            while silent.read(&mut buf).await.unwrap_or(0) > 0 {}
        });
        closed.await.expect("the silent connection stayed open");
        server.stop().await.unwrap();
    }
}
