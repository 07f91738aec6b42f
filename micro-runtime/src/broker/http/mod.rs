//! The default broker: no broker server, just HTTP between publishers and subscribers, in
//! go-micro's HTTP broker format so Go and Rust services share topics.
//!
//! - `connect` starts an HTTP/1.1 listener (default `127.0.0.1:0`; `--broker_address` sets
//!   it). Each subscription is registered as a node of the service `micro.http.broker`:
//!   id `<topic>-go.micro.http.broker-<uuid>`, the listener's address, metadata
//!   `broker: http`, `topic` and `secure: false`, and version the queue group's name, or
//!   `ff.http.broadcast` for broadcast. Registrations live 60 s and are refreshed every 30 s.
//! - `publish` looks the subscribers up (through a registry cache, kept current by a watch)
//!   and POSTs the message as JSON (`{"Header": {...}, "Body": "<base64>"}`) to
//!   `http://<node>/?id=<node id>`: to every broadcast subscriber of the topic, and to one
//!   member of each queue group, picked at random (another member when it cannot be reached:
//!   nothing listens, or the connection broke before an answer; never when it answered).
//!
//! Unlike go-micro's, `publish` returns once the subscribers have handled the message, and
//! returns their error: a handler that fails makes the publish fail. Delivery is at most once
//! beyond that: nothing is stored, and a message to a topic without subscribers goes nowhere.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{
    Broker, Envelope, Event, EventHandler, SubscribeOptions, Subscription, TOPIC_HEADER, dispatch,
};
use crate::error::{Code, Error, Result};
use crate::registry::cache::Cache;
use crate::registry::{Node, Record, RegisterOptions, Registry};
use crate::transport::DEFAULT_MAX_MESSAGE_SIZE;

/// The registry service subscribers are nodes of.
pub const SERVICE_NAME: &str = "micro.http.broker";
/// The version of broadcast subscriptions (queue groups use their name).
pub const BROADCAST_VERSION: &str = "ff.http.broadcast";
/// Where subscribers listen when no address is given.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:0";

/// The id of the errors the broker itself answers with (not a handler's).
const BROKER_ID: &str = "go.micro.broker";
const REGISTER_TTL: Duration = Duration::from_secs(60);
const REGISTER_INTERVAL: Duration = Duration::from_secs(30);
/// Room for the JSON and base64 around the largest message.
const MAX_REQUEST: usize = DEFAULT_MAX_MESSAGE_SIZE / 3 * 4 + 64 * 1024;

/// go-micro's HTTP broker. Cheap to clone; clones share the listener and subscriptions.
#[derive(Clone)]
pub struct HttpBroker {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    listen: String,
    registry: Arc<dyn Registry>,
    /// Made on first use, so a service that never publishes carries none of it.
    cache: OnceLock<Cache>,
    client: OnceLock<HttpClient<HttpConnector, Full<Bytes>>>,
    subs: Arc<Mutex<HashMap<String, Sub>>>,
    running: tokio::sync::Mutex<Option<Running>>,
}

#[derive(Clone)]
struct Sub {
    topic: Arc<str>,
    handler: EventHandler,
    record: Record,
}

struct Running {
    address: SocketAddr,
    accept: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
}

/// The JSON of a message on the wire: go's encoding of `broker.Message`.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "Header", default)]
    header: Option<HashMap<String, String>>,
    #[serde(rename = "Body", default)]
    body: Option<String>,
}

impl HttpBroker {
    /// A broker whose subscribers listen on `address` (`host:port`; empty for
    /// `127.0.0.1:0`) and are registered in `registry`.
    pub fn new(address: &str, registry: Arc<dyn Registry>) -> Result<HttpBroker> {
        let listen = if address.is_empty() {
            DEFAULT_ADDRESS.to_owned()
        } else {
            address.to_owned()
        };
        Ok(HttpBroker {
            inner: Arc::new(Inner {
                id: crate::id::prefixed("go.micro.http.broker"),
                listen,
                registry,
                cache: OnceLock::new(),
                client: OnceLock::new(),
                subs: Arc::default(),
                running: tokio::sync::Mutex::new(None),
            }),
        })
    }

    fn cache(&self) -> &Cache {
        self.inner
            .cache
            .get_or_init(|| Cache::new(self.inner.registry.clone(), REGISTER_TTL))
    }

    fn client(&self) -> &HttpClient<HttpConnector, Full<Bytes>> {
        self.inner.client.get_or_init(|| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(Duration::from_secs(5)));
            HttpClient::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .build(connector)
        })
    }

    fn subs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sub>> {
        self.inner.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address subscribers are reached at, once connected.
    async fn advertised(&self) -> Result<SocketAddr> {
        self.connect().await?;
        self.inner
            .running
            .lock()
            .await
            .as_ref()
            .map(|r| r.address)
            .ok_or_else(|| Error::new(Code::Unavailable, "http broker is not connected"))
    }

    /// POSTs `body` to one of `members`: a random one, the next when it cannot be reached
    /// or no longer subscribes. A member that left (the broker answers that it no longer
    /// subscribes) or died (nothing listens, or the connection broke before an answer) while
    /// still in the registry is skipped, and the registry is asked again on the next publish.
    /// Only a queue group none of whose members can be reached is an error: a broadcast
    /// subscriber that died is just gone.
    ///
    /// A member that answered with its handler's error (whatever its code, `UNAVAILABLE`
    /// included) has run the handler: its error is returned as it is, and the message is not
    /// posted to another member.
    async fn post_to_one(&self, mut members: Vec<&Node>, body: Bytes, group: bool) -> Result<()> {
        fastrand::shuffle(&mut members);
        let mut unreachable = None;
        for node in members {
            match self.post(node, body.clone()).await {
                Ok(()) => return Ok(()),
                Err(Failure::Unreachable(e)) => {
                    tracing::debug!(node = %node.id, error = %e, "http broker: subscriber unreachable");
                    self.cache().invalidate(SERVICE_NAME);
                    unreachable = Some(e);
                }
                Err(Failure::Answered(e)) if e.code() == Code::NotFound && e.id() == BROKER_ID => {
                    self.cache().invalidate(SERVICE_NAME);
                }
                Err(Failure::Answered(e)) => return Err(e),
            }
        }
        match unreachable {
            Some(e) if group => Err(e),
            _ => Ok(()),
        }
    }

    /// POSTs `body` to one subscriber node.
    async fn post(&self, node: &Node, body: Bytes) -> std::result::Result<(), Failure> {
        let scheme = if node.metadata.get("secure").is_some_and(|s| s == "true") {
            "https"
        } else {
            "http"
        };
        let id: String =
            percent_encoding::utf8_percent_encode(&node.id, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let uri = format!("{scheme}://{}/?id={id}", node.address);
        let req = Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            // A broken registry record: skipped like a subscriber that cannot be reached.
            .map_err(|e| {
                Failure::Unreachable(Error::new(
                    Code::Unavailable,
                    format!("bad subscriber address {:?}: {e}", node.address),
                ))
            })?;
        let rsp = self.client().request(req).await.map_err(|e| {
            Failure::Unreachable(Error::new(
                Code::Unavailable,
                format!("subscriber {} at {}: {e}", node.id, node.address),
            ))
        })?;
        // From here on the subscriber has answered.
        let status = rsp.status();
        let body = rsp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body);
        let err = Error::from_json(&text);
        Err(Failure::Answered(
            if err.code() == Code::Unknown && !text.starts_with('{') {
                Error::new(
                    Code::from_http(status.as_u16()),
                    format!("subscriber {}: {status} {text}", node.id),
                )
            } else {
                err
            },
        ))
    }
}

/// Why a POST to a subscriber failed.
enum Failure {
    /// No answer: nothing listens there, the connection broke before the subscriber
    /// answered, or its record's address is unusable. Another member of its group may be
    /// tried.
    Unreachable(Error),
    /// The subscriber answered with this error: its handler's, or the broker's own (no such
    /// subscription, a malformed message).
    Answered(Error),
}

impl std::fmt::Debug for HttpBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBroker")
            .field("id", &self.inner.id)
            .field("listen", &self.inner.listen)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Broker for HttpBroker {
    fn name(&self) -> &'static str {
        "http"
    }

    fn address(&self) -> String {
        match self.inner.running.try_lock() {
            Ok(r) => r
                .as_ref()
                .map_or_else(|| self.inner.listen.clone(), |r| r.address.to_string()),
            Err(_) => self.inner.listen.clone(),
        }
    }

    async fn connect(&self) -> Result<()> {
        let mut running = self.inner.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(&self.inner.listen).await.map_err(|e| {
            Error::new(
                Code::Unavailable,
                format!("http broker: listen on {}: {e}", self.inner.listen),
            )
        })?;
        let bound = listener.local_addr()?;
        let address = if bound.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
        } else {
            bound
        };
        let accept = tokio::spawn(accept_loop(listener, self.inner.subs.clone()));
        let heartbeat = {
            let registry = self.inner.registry.clone();
            let subs = self.inner.subs.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(REGISTER_INTERVAL);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let records: Vec<Record> = subs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .values()
                        .map(|s| s.record.clone())
                        .collect();
                    for record in records {
                        let ttl = RegisterOptions { ttl: REGISTER_TTL };
                        if let Err(e) = registry.register(&record, ttl).await {
                            tracing::warn!(error = %e, "http broker: re-registration failed");
                        }
                    }
                }
            })
        };
        tracing::debug!(%address, "http broker listening");
        *running = Some(Running {
            address,
            accept,
            heartbeat,
        });
        Ok(())
    }

    async fn disconnect(&self) -> Result<()> {
        let Some(running) = self.inner.running.lock().await.take() else {
            return Ok(());
        };
        running.heartbeat.abort();
        let records: Vec<Record> = self.subs().drain().map(|(_, s)| s.record).collect();
        let mut result = Ok(());
        for record in records {
            if let Err(e) = self.inner.registry.deregister(&record).await {
                result = Err(e);
            }
        }
        running.accept.abort();
        result
    }

    async fn publish(&self, topic: &str, message: Envelope) -> Result<()> {
        let nodes = match self.cache().get(SERVICE_NAME).await {
            Ok(nodes) => nodes,
            // Nobody subscribes to anything.
            Err(e) if e.code() == Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // Broadcast subscribers each, queue groups by name.
        let mut broadcast = Vec::new();
        let mut groups: HashMap<&str, Vec<&Node>> = HashMap::new();
        for c in nodes.as_slice() {
            let md = &c.node.metadata;
            if md.get("broker").map(String::as_str) != Some("http")
                || md.get("topic").map(String::as_str) != Some(topic)
            {
                continue;
            }
            if c.version == BROADCAST_VERSION {
                broadcast.push(&c.node);
            } else {
                groups.entry(&c.version).or_default().push(&c.node);
            }
        }
        if broadcast.is_empty() && groups.is_empty() {
            return Ok(());
        }
        let mut header: HashMap<String, String> = message
            .header
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v))
            .collect();
        header.insert(TOPIC_HEADER.to_owned(), topic.to_owned());
        let wire = Wire {
            header: Some(header),
            body: Some(base64::engine::general_purpose::STANDARD.encode(&message.body)),
        };
        let body = Bytes::from(
            serde_json::to_vec(&wire)
                .map_err(|e| Error::new(Code::Internal, format!("encode message: {e}")))?,
        );

        let deliveries = broadcast
            .into_iter()
            .map(|node| self.post_to_one(vec![node], body.clone(), false))
            .chain(
                groups
                    .into_values()
                    .map(|members| self.post_to_one(members, body.clone(), true)),
            );
        let results = futures_util::future::join_all(deliveries).await;
        let failed: Vec<Error> = results.into_iter().filter_map(|r| r.err()).collect();
        match failed.len() {
            0 => Ok(()),
            1 => Err(failed
                .into_iter()
                .next()
                .unwrap_or_else(|| Error::new(Code::Internal, "a delivery failed"))),
            n => {
                let first = &failed[0];
                Err(Error::new(
                    first.code(),
                    format!(
                        "{n} deliveries of {topic} failed; the first: {}",
                        first.detail()
                    ),
                ))
            }
        }
    }

    async fn subscribe(
        &self,
        topic: &str,
        handler: EventHandler,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        let address = self.advertised().await?;
        let id = format!(
            "{topic}-{}-{}",
            self.inner.id,
            crate::id::uuid_v4().simple()
        );
        let record = Record {
            name: SERVICE_NAME.to_owned(),
            version: options.get_queue().unwrap_or(BROADCAST_VERSION).to_owned(),
            metadata: Default::default(),
            endpoints: Vec::new(),
            nodes: vec![Node {
                id: id.clone(),
                address: address.to_string(),
                metadata: [
                    ("secure".to_owned(), "false".to_owned()),
                    ("broker".to_owned(), "http".to_owned()),
                    ("topic".to_owned(), topic.to_owned()),
                ]
                .into(),
            }],
        };
        self.subs().insert(
            id.clone(),
            Sub {
                topic: Arc::from(topic),
                handler,
                record: record.clone(),
            },
        );
        let ttl = RegisterOptions { ttl: REGISTER_TTL };
        if let Err(e) = self.inner.registry.register(&record, ttl).await {
            self.subs().remove(&id);
            return Err(e);
        }
        // This process's next publish looks the subscribers up again, so it sees this one
        // (other processes see it as their caches refresh, as in go-micro).
        self.cache().invalidate(SERVICE_NAME);
        Ok(Box::new(HttpSubscription {
            broker: self.clone(),
            topic: topic.to_owned(),
            options,
            id,
            record,
            done: AtomicBool::new(false),
        }))
    }
}

struct HttpSubscription {
    broker: HttpBroker,
    topic: String,
    options: SubscribeOptions,
    id: String,
    record: Record,
    done: AtomicBool,
}

#[async_trait::async_trait]
impl Subscription for HttpSubscription {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn unsubscribe(&self) -> Result<()> {
        if self.done.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.broker.subs().remove(&self.id);
        let deregistered = self.broker.inner.registry.deregister(&self.record).await;
        self.broker.cache().invalidate(SERVICE_NAME);
        deregistered
    }
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
async fn accept_loop(listener: TcpListener, subs: Arc<Mutex<HashMap<String, Sub>>>) {
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

/// A message as go-micro's HTTP broker POSTs it (`{"Header": {...}, "Body": "<base64>"}`),
/// with its topic (its `Micro-Topic` header). Errors are go-micro's error JSON's: 400 for a
/// body that is no such message.
///
/// ```
/// let (topic, message) = micro_runtime::broker::http::decode_message(
///     br#"{"Header": {"Micro-Topic": "events"}, "Body": "aGk="}"#,
/// )?;
/// assert_eq!(topic, "events");
/// assert_eq!(&message.body[..], b"hi");
/// # Ok::<(), micro_runtime::Error>(())
/// ```
pub fn decode_message(json: &[u8]) -> Result<(String, Envelope)> {
    const ID: &str = BROKER_ID;
    let wire: Wire = serde_json::from_slice(json)
        .map_err(|e| Error::bad_request(ID, format!("not a broker message: {e}")))?;
    let header: super::Header = wire
        .header
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.into(), v))
        .collect();
    let topic = header
        .get(TOPIC_HEADER)
        .cloned()
        .ok_or_else(|| Error::bad_request(ID, "the message has no Micro-Topic header"))?;
    let body = match wire.body {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| Error::bad_request(ID, format!("the body is not base64: {e}")))?,
        None => Vec::new(),
    };
    Ok((
        topic,
        Envelope {
            header,
            body: body.into(),
        },
    ))
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
    use crate::registry::memory::MemoryRegistry;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A publisher that opens a connection and sends nothing, or trickles its request head,
    /// is closed at the header timeout (the clock is paused: the wait is not real).
    #[tokio::test(start_paused = true)]
    async fn silent_and_trickling_publishers_are_closed_at_the_header_timeout() {
        let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
        let broker = HttpBroker::new("127.0.0.1:0", registry.clone()).unwrap();
        let handler = super::super::handler(|_event| async { Ok(()) });
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
