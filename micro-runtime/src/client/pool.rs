//! HTTP/2 connections by address, shared by every call to that address.
//!
//! Each address holds `size` connections used in turn. Reads take no lock: the address map
//! and each connection slot are swapped whole. A lock is taken only to dial, so concurrent
//! calls to a new address dial once, and when that dial fails, the calls that waited for it
//! get its error rather than dialing again one after another.
//!
//! Connections speak `h2` directly: a call opens its stream from its own task, and only the
//! connection's I/O runs in the connection's task. (hyper's client sends each request through
//! a channel to the connection task and spawns a task per request body; this is the same
//! HTTP/2 with neither hop.)

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use http::uri::Authority;
use tokio::net::TcpStream;

use crate::error::{Code, Error, Result};

/// A connection ready to carry requests, and the authority for their URIs.
pub(crate) struct Conn {
    pub(crate) send: h2::client::SendRequest<Bytes>,
    pub(crate) authority: Authority,
    /// Whether it runs over TLS (`https` requests).
    pub(crate) secure: bool,
    closed: Arc<AtomicBool>,
}

impl Conn {
    /// Takes the connection out of use: it refused a new stream (it is closing, or went away),
    /// so the next call dials again.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

pub(crate) struct Pool {
    size: usize,
    dial_timeout: Duration,
    keepalive: Option<Keepalive>,
    /// Every connection over TLS, when set.
    #[cfg(feature = "tls")]
    tls: Option<crate::transport::tls::ClientTls>,
    addrs: ArcSwap<HashMap<Box<str>, Arc<Address>>>,
}

/// HTTP/2 pings on each connection: one every `interval`, each answered within `timeout`
/// or the connection is dropped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keepalive {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

struct Address {
    authority: Authority,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    conn: ArcSwapOption<Live>,
    /// Held while dialing; the last failed dial, for the callers that waited for it.
    dialing: tokio::sync::Mutex<Option<Failed>>,
}

/// A dial that failed, and when.
struct Failed {
    at: tokio::time::Instant,
    error: Error,
}

/// A dialed connection, and whether its connection task still runs.
struct Live {
    send: h2::client::SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

impl Live {
    fn usable(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }
}

impl Pool {
    pub(crate) fn new(size: usize, dial_timeout: Duration, keepalive: Option<Keepalive>) -> Pool {
        Pool {
            size: size.max(1),
            dial_timeout,
            keepalive,
            #[cfg(feature = "tls")]
            tls: None,
            addrs: ArcSwap::default(),
        }
    }

    /// Dials every connection over TLS.
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(mut self, tls: Option<crate::transport::tls::ClientTls>) -> Pool {
        self.tls = tls;
        self
    }

    fn secure(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        return false;
    }

    /// A connection to `addr` (`host:port`), dialed when there is none or it closed.
    pub(crate) async fn get(&self, addr: &str) -> Result<Conn> {
        let address = match self.addrs.load().get(addr) {
            Some(a) => a.clone(),
            None => self.add(addr)?,
        };
        let slot =
            &address.slots[address.next.fetch_add(1, Ordering::Relaxed) % address.slots.len()];
        let secure = self.secure();
        let conn = |live: &Live| Conn {
            send: live.send.clone(),
            authority: address.authority.clone(),
            secure,
            closed: live.closed.clone(),
        };
        if let Some(live) = slot.conn.load().as_deref().filter(|l| l.usable()) {
            return Ok(conn(live));
        }
        let asked = tokio::time::Instant::now();
        let mut dialing = slot.dialing.lock().await;
        // Someone else may have dialed while we waited: with success, or with a failure
        // that answers us too (an unreachable node costs one dial timeout, not one per
        // waiting caller in turn).
        if let Some(live) = slot.conn.load().as_deref().filter(|l| l.usable()) {
            return Ok(conn(live));
        }
        if let Some(failed) = dialing.as_ref().filter(|f| f.at >= asked) {
            return Err(failed.error.clone());
        }
        match self.dial(addr).await {
            Ok(live) => {
                *dialing = None;
                let conn = conn(&live);
                slot.conn.store(Some(Arc::new(live)));
                Ok(conn)
            }
            Err(error) => {
                *dialing = Some(Failed {
                    at: tokio::time::Instant::now(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    fn add(&self, addr: &str) -> Result<Arc<Address>> {
        let authority: Authority = addr.parse().map_err(|e| {
            Error::new(
                Code::InvalidArgument,
                format!("bad node address {addr:?}: {e}"),
            )
        })?;
        let fresh = Arc::new(Address {
            authority,
            slots: (0..self.size).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        });
        let mut added = fresh.clone();
        self.addrs.rcu(|map| {
            let mut map = HashMap::clone(map);
            added = map
                .entry(addr.into())
                .or_insert_with(|| fresh.clone())
                .clone();
            map
        });
        Ok(added)
    }

    async fn dial(&self, addr: &str) -> Result<Live> {
        let unavailable = |e: &dyn std::fmt::Display| {
            Error::new(Code::Unavailable, format!("connect {addr}: {e}"))
        };
        let dial = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| unavailable(&e))?;
            let _ = stream.set_nodelay(true);
            #[cfg(feature = "tls")]
            if let Some(tls) = &self.tls {
                let stream = tls.connect(addr, stream).await?;
                return self.start(addr, stream).await;
            }
            self.start(addr, stream).await
        };
        tokio::time::timeout(self.dial_timeout, dial)
            .await
            .map_err(|_| unavailable(&format!("timed out after {:?}", self.dial_timeout)))?
    }

    /// The HTTP/2 connection over `io`, its task spawned.
    async fn start<IO>(&self, addr: &str, io: IO) -> Result<Live>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, mut conn) = h2::client::Builder::new()
            .enable_push(false)
            // hyper's client defaults (2 MiB per stream, 5 MiB per connection): a response
            // stream read a little slower than it is made keeps its sender busy.
            .initial_window_size(2 << 20)
            .initial_connection_window_size(5 << 20)
            .max_send_buffer_size(1 << 20)
            .data_frame_budget(crate::transport::DATA_FRAME_BUDGET)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| Error::new(Code::Unavailable, format!("connect {addr}: {e}")))?;
        let closed = Arc::new(AtomicBool::new(false));
        let done = closed.clone();
        let addr = addr.to_owned();
        let pings = self
            .keepalive
            .and_then(|k| conn.ping_pong().map(|pings| (pings, k)));
        tokio::spawn(async move {
            let ended = match pings {
                None => conn.await.map_err(|e| e.to_string()),
                // Dropping the connection fails the calls on it (UNAVAILABLE).
                Some((pings, k)) => tokio::select! {
                    ended = &mut conn => ended.map_err(|e| e.to_string()),
                    dead = keepalive(pings, k) => Err(dead),
                },
            };
            // Taken out of use before the calls on it learn it ended.
            done.store(true, Ordering::Release);
            if let Err(e) = ended {
                tracing::debug!(%addr, error = %e, "client connection ended");
            }
        });
        Ok(Live { send, closed })
    }
}

/// Pings the connection every `k.interval`; returns why it is taken for dead: a ping not
/// answered within `k.timeout`, or one that could not be sent.
async fn keepalive(mut pings: h2::PingPong, k: Keepalive) -> String {
    loop {
        tokio::time::sleep(k.interval).await;
        if let Err(e) = pings.send_ping(h2::Ping::opaque()) {
            return format!("keepalive ping: {e}");
        }
        let pong = std::future::poll_fn(|cx| pings.poll_pong(cx));
        match tokio::time::timeout(k.timeout, pong).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return format!("keepalive ping: {e}"),
            Err(_) => return format!("keepalive ping unanswered for {:?}", k.timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn callers_waiting_on_a_failing_dial_get_its_failure() {
        // A listener whose accept queue is full: the kernel drops further SYNs, so connects
        // hang until the dial timeout, as to a host that went away.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        for _ in 0..8 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => queued.push(s),
                Err(_) => break,
            }
        }
        assert!(queued.len() < 8, "the accept queue never filled");

        let pool = Arc::new(Pool::new(1, Duration::from_millis(300), None));
        let start = tokio::time::Instant::now();
        let callers: Vec<_> = (0..10)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.get(&addr.to_string()).await.map(|_| ()) })
            })
            .collect();
        for caller in callers {
            let err = caller.await.unwrap().unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{err}");
        }
        // The clock is paused and moves only to the next timer: one dial's timeout passed,
        // not one per caller (3 s).
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }
}
