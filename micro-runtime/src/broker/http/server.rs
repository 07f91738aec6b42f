//! The subscribers' side: the listener's connections, served over HTTP/1.1 within limits,
//! and each POSTed message handed to the handler of the subscription its `id` names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::wire::{BROKER_ID, decode_message};
use crate::broker::{Event, EventHandler, dispatch};
use crate::error::{Error, Result};
use crate::registry::Record;
use crate::transport::DEFAULT_MAX_MESSAGE_SIZE;

/// Room for the JSON and base64 around the largest message.
const MAX_REQUEST: usize = DEFAULT_MAX_MESSAGE_SIZE / 3 * 4 + 64 * 1024;

/// A subscription, as the listener finds it by its node id: its handler, and the record it
/// is registered with.
#[derive(Clone)]
pub(super) struct Sub {
    pub(super) topic: Arc<str>,
    pub(super) handler: EventHandler,
    pub(super) record: Record,
}

/// How long a publisher's request head may take to arrive; also how long a kept-alive
/// connection may idle between messages.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections a subscriber's listener serves at once; more are refused.
const MAX_CONNECTIONS: usize = 1024;

/// Largest request head (request line and headers) a subscriber reads.
const MAX_HEAD: usize = 64 << 10;

/// Serves subscribers' HTTP until aborted; aborting it ends its connections too. A
/// connection whose request head does not arrive within [`HEADER_TIMEOUT`] is closed, and
/// at most [`MAX_CONNECTIONS`] are served at once.
pub(super) async fn accept_loop(listener: TcpListener, subs: Arc<Mutex<HashMap<String, Sub>>>) {
    let mut conns = tokio::task::JoinSet::new();
    let mut warned: Option<tokio::time::Instant> = None;
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff = Duration::from_millis(5);
                    conn
                }
                Err(e) => {
                    if warned.is_none_or(|w| w.elapsed() >= Duration::from_secs(10)) {
                        warned = Some(tokio::time::Instant::now());
                        tracing::warn!(error = %e, "http broker: accept failed");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        if conns.len() >= MAX_CONNECTIONS {
            drop(stream);
            if warned.is_none_or(|w| w.elapsed() >= Duration::from_secs(10)) {
                warned = Some(tokio::time::Instant::now());
                tracing::warn!(%remote, "http broker: connection refused: {MAX_CONNECTIONS} open");
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let subs = subs.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let subs = subs.clone();
                async move { Ok::<_, std::convert::Infallible>(deliver(req, &subs).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "http broker: connection ended with an error");
            }
        });
    }
}

/// Handles one POSTed message: finds the subscription its `id` names and runs its handler.
async fn deliver(
    req: Request<Incoming>,
    subs: &Mutex<HashMap<String, Sub>>,
) -> Response<Full<Bytes>> {
    match receive(req, subs).await {
        Ok(()) => Response::new(Full::default()),
        Err(e) => {
            let mut rsp = Response::new(Full::new(Bytes::from(e.to_json())));
            *rsp.status_mut() =
                StatusCode::from_u16(e.http_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            rsp
        }
    }
}

async fn receive(req: Request<Incoming>, subs: &Mutex<HashMap<String, Sub>>) -> Result<()> {
    const ID: &str = BROKER_ID;
    if req.method() != Method::POST {
        return Err(Error::with_http_code(405, ID, "method not allowed"));
    }
    let id = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "id")
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let body = Limited::new(req.into_body(), MAX_REQUEST)
        .collect()
        .await
        .map_err(|e| Error::with_http_code(413, ID, format!("reading the message: {e}")))?
        .to_bytes();
    let (topic, message) = decode_message(&body)?;
    let sub = subs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .filter(|s| *s.topic == topic)
        .cloned()
        .ok_or_else(|| Error::not_found(ID, format!("no subscription {id:?} to {topic}")))?;
    let event = Event::new(sub.topic.clone(), message, None);
    dispatch(&sub.handler, event, None, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::http::{HttpBroker, SERVICE_NAME};
    use crate::broker::{Broker, SubscribeOptions};
    use crate::registry::Registry;
    use crate::registry::memory::MemoryRegistry;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A publisher that opens a connection and sends nothing, or trickles its request head,
    /// is closed at the header timeout (the clock is paused: the wait is not real).
    #[tokio::test(start_paused = true)]
    async fn silent_and_trickling_publishers_are_closed_at_the_header_timeout() {
        let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
        let broker = HttpBroker::new("127.0.0.1:0", registry.clone()).unwrap();
        let handler = crate::broker::handler(|_event| async { Ok(()) });
        let _sub = broker
            .subscribe("t", handler, SubscribeOptions::new())
            .await
            .unwrap();
        let address = registry.get_service(SERVICE_NAME).await.unwrap()[0].nodes[0]
            .address
            .clone();
        let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
        let mut trickling = tokio::net::TcpStream::connect(&address).await.unwrap();
        let started = tokio::time::Instant::now();
        let trickle = async {
            for byte in b"POST /?id=x HTTP/1.1\r\n".iter().cycle() {
                if trickling.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                if started.elapsed() > HEADER_TIMEOUT * 3 {
                    break;
                }
            }
        };
        trickle.await;
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(HEADER_TIMEOUT * 2, async {
            while silent.read(&mut buf).await.unwrap_or(0) > 0 {}
        });
        closed.await.expect("the silent connection stayed open");
        assert!(
            started.elapsed() < HEADER_TIMEOUT * 3,
            "the trickling connection stayed open past {:?}",
            HEADER_TIMEOUT * 3
        );
    }
}
