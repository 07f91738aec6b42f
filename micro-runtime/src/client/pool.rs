//! HTTP/2 connections by address, shared by every call to that address.
//!
//! Each address holds `size` connections used in turn. Reads take no lock: the address map
//! and each connection slot are swapped whole. A lock is taken only to dial, so concurrent
//! calls to a new address dial once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use http::uri::Authority;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::error::{Code, Error, Result};
use crate::transport::body::Unary;

/// A connection ready to carry requests, and the authority for their URIs.
#[derive(Clone)]
pub(crate) struct Conn {
    pub(crate) send: SendRequest<Unary>,
    pub(crate) authority: Authority,
}

pub(crate) struct Pool {
    size: usize,
    dial_timeout: Duration,
    addrs: ArcSwap<HashMap<Box<str>, Arc<Address>>>,
}

struct Address {
    authority: Authority,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    conn: ArcSwapOption<SendRequest<Unary>>,
    dialing: tokio::sync::Mutex<()>,
}

impl Pool {
    pub(crate) fn new(size: usize, dial_timeout: Duration) -> Pool {
        Pool {
            size: size.max(1),
            dial_timeout,
            addrs: ArcSwap::default(),
        }
    }

    /// A connection to `addr` (`host:port`), dialed when there is none or it closed.
    pub(crate) async fn get(&self, addr: &str) -> Result<Conn> {
        let address = match self.addrs.load().get(addr) {
            Some(a) => a.clone(),
            None => self.add(addr)?,
        };
        let slot =
            &address.slots[address.next.fetch_add(1, Ordering::Relaxed) % address.slots.len()];
        if let Some(send) = slot.conn.load().as_deref() {
            if !send.is_closed() {
                return Ok(Conn {
                    send: send.clone(),
                    authority: address.authority.clone(),
                });
            }
        }
        let _dialing = slot.dialing.lock().await;
        // Someone else may have dialed while we waited.
        if let Some(send) = slot.conn.load().as_deref() {
            if !send.is_closed() {
                return Ok(Conn {
                    send: send.clone(),
                    authority: address.authority.clone(),
                });
            }
        }
        let send = self.dial(addr).await?;
        slot.conn.store(Some(Arc::new(send.clone())));
        Ok(Conn {
            send,
            authority: address.authority.clone(),
        })
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

    async fn dial(&self, addr: &str) -> Result<SendRequest<Unary>> {
        let unavailable = |e: &dyn std::fmt::Display| {
            Error::new(Code::Unavailable, format!("connect {addr}: {e}"))
        };
        let stream = tokio::time::timeout(self.dial_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| unavailable(&format!("timed out after {:?}", self.dial_timeout)))?
            .map_err(|e| unavailable(&e))?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(2 << 20)
            .max_send_buf_size(1 << 20)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unavailable(&e))?;
        let addr = addr.to_owned();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "client connection ended");
            }
        });
        Ok(send)
    }
}
