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

mod publish;
mod registration;
mod server;
mod wire;

pub use registration::{BROADCAST_VERSION, SERVICE_NAME};
pub use wire::decode_message;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use self::publish::Publisher;
use self::server::Sub;
use super::{Broker, Envelope, EventHandler, SubscribeOptions, Subscription};
use crate::error::{Code, Error, Result};
use crate::registry::cache::Cache;
use crate::registry::{Record, Registry};

/// Where subscribers listen when no address is given.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:0";

/// go-micro's HTTP broker. Cheap to clone; clones share the listener and subscriptions.
#[derive(Clone)]
pub struct HttpBroker {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    listen: String,
    registry: Arc<dyn Registry>,
    /// The registry cache and the HTTP client, made on first use.
    publisher: Publisher,
    subs: Arc<Mutex<HashMap<String, Sub>>>,
    running: tokio::sync::Mutex<Option<Running>>,
}

struct Running {
    address: SocketAddr,
    accept: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
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
                publisher: Publisher::new(registry.clone()),
                registry,
                subs: Arc::default(),
                running: tokio::sync::Mutex::new(None),
            }),
        })
    }

    fn cache(&self) -> &Cache {
        self.inner.publisher.cache()
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
        let accept = tokio::spawn(server::accept_loop(listener, self.inner.subs.clone()));
        let heartbeat = tokio::spawn(registration::heartbeat(
            self.inner.registry.clone(),
            self.inner.subs.clone(),
        ));
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
        self.inner.publisher.publish(topic, message).await
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
        let record = registration::record(&id, address, topic, &options);
        self.subs().insert(
            id.clone(),
            Sub {
                topic: Arc::from(topic),
                handler,
                record: record.clone(),
            },
        );
        if let Err(e) = registration::register(&*self.inner.registry, &record).await {
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
