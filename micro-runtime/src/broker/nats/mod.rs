//! NATS: core subjects and queue groups (`--broker nats`), or JetStream streams and durable
//! consumers (`--broker jetstream`). Feature `nats`, on the `async-nats` crate.
//!
//! A topic is a NATS subject; a message's headers travel as NATS headers and its body as the
//! payload, unchanged.
//!
//! # Delivery
//! - **Core NATS** ([`NatsBroker::new`]): at most once. A message reaches the subscribers
//!   connected when it is published; a handler's error is logged and the message is gone; a
//!   subscriber that is down, or disconnected at that moment, misses it. Queue groups are
//!   NATS queue subscriptions: each message goes to one member.
//! - **JetStream** ([`NatsBroker::jetstream`]): at least once. Each topic has a stream
//!   (`MICRO_` and the topic, see below), created on first use, in files, kept while some
//!   consumer still needs a message (interest retention). `publish` returns once the server
//!   confirmed it stored the message. A queue group is a durable pull consumer named after
//!   the group: its members share it, each message goes to one of them, and messages
//!   published while no member runs wait for one. A subscriber without a queue group has
//!   an ephemeral consumer of its own that delivers the messages published after it
//!   subscribed. A message whose handler fails is delivered again at once (a `NAK`); one that
//!   is not acknowledged within the ack wait ([`NatsBroker::with_ack_wait`], 30 s by default:
//!   a crashed or hung subscriber) is delivered again, to any member of the group. A handler
//!   error with code `INVALID_ARGUMENT` ends the message's deliveries (`TERM`). Handlers must
//!   therefore tolerate duplicates; a `Micro-Id` header becomes `Nats-Msg-Id`, so the server
//!   drops a message published twice within two minutes (a publish retried after a lost
//!   confirmation).
//!
//! Each subscription handles its messages one at a time, in order of arrival.
//!
//! # Names
//! JetStream names cannot contain `.`, `*`, `>` or spaces: the stream of topic `orders.new`
//! is `MICRO_orders_new` and the consumer of queue group `billing` is `billing`. A topic or
//! group with other characters than ASCII letters, digits, `-` and `.` (or a very long one)
//! gets a hash of its full name appended, so two topics never share a stream. JetStream
//! topics cannot contain wildcards (one stream per topic); core NATS subscriptions can.
//!
//! # Connection
//! The address is `nats://host:port`, several servers separated by commas
//! (`nats://10.0.0.1:4222,10.0.0.2:4222`); empty means `nats://127.0.0.1:4222`. `publish` and
//! `subscribe` connect on first use; connecting fails at once when no server answers.
//! Once connected, the client reconnects by itself, forever: subscriptions outlive a
//! server restart (JetStream consumers are re-created when the server lost them). Core
//! publishes made while disconnected are buffered and sent on reconnection; a publish fails
//! with `UNAVAILABLE` when it cannot be handed over within the publish timeout
//! ([`NatsBroker::with_publish_timeout`], 30 s by default). A JetStream publish retries until
//! the server confirms or the publish timeout passes.

mod connection;
mod consumer;
mod control;
mod core;
mod header;
mod jetstream;
mod names;
mod options;
mod subject;
mod subscription;

pub use names::{STREAM_PREFIX, stream_name};
pub use options::DEFAULT_ADDRESS;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_nats::client::traits::Publisher as _;
use async_nats::message::OutboundMessage;

use self::connection::{Conn, Shared, unavailable};
use self::control::Control;
use self::header::headers;
use self::options::{Config, Mode};
use self::subject::subject;
use super::{Broker, Envelope, EventHandler, SubscribeOptions, Subscription, poll_once};
use crate::error::Result;

/// How long `disconnect` lets a handler finish before it is cancelled.
const GRACE: Duration = Duration::from_secs(1);

/// A broker on a NATS server: core NATS or JetStream (see the [module docs](self)).
///
/// Cheap to clone; clones share the connection and the subscriptions.
///
/// ```no_run
/// # async fn run() -> micro_runtime::Result<()> {
/// use std::time::Duration;
/// use micro_runtime::broker::{Broker, Envelope, nats::NatsBroker};
/// let broker = NatsBroker::jetstream("nats://127.0.0.1:4222")?.with_ack_wait(Duration::from_secs(10));
/// broker.publish("orders.new", Envelope::new("42")).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NatsBroker {
    config: Arc<Config>,
    shared: Arc<Shared>,
}

impl NatsBroker {
    /// A core NATS broker (at most once) at `address` (see the [module docs](self)).
    pub fn new(address: &str) -> Result<NatsBroker> {
        NatsBroker::with_mode(address, Mode::Core)
    }

    /// A JetStream broker (at least once) at `address`; the server must run JetStream
    /// (`nats-server -js`).
    pub fn jetstream(address: &str) -> Result<NatsBroker> {
        NatsBroker::with_mode(address, Mode::JetStream)
    }

    fn with_mode(address: &str, mode: Mode) -> Result<NatsBroker> {
        Ok(NatsBroker {
            config: Arc::new(Config::new(address, mode)?),
            shared: Arc::default(),
        })
    }

    /// JetStream: how long a delivered message may stay unacknowledged before it is delivered
    /// again (30 s by default). Applies to consumers this broker creates; a queue group's
    /// consumer keeps the setting it was created with.
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> NatsBroker {
        Arc::make_mut(&mut self.config).ack_wait = ack_wait;
        self
    }

    /// JetStream: how many messages a consumer (a whole queue group) may hold unacknowledged
    /// at once before the server pauses its deliveries (1,024 by default).
    pub fn with_max_ack_pending(mut self, max: usize) -> NatsBroker {
        Arc::make_mut(&mut self.config).max_ack_pending = max.max(1);
        self
    }

    /// How long `publish` (and confirming a subscription) may wait for the server before it
    /// fails with `UNAVAILABLE` (30 s by default), for instance while it is unreachable.
    pub fn with_publish_timeout(mut self, timeout: Duration) -> NatsBroker {
        Arc::make_mut(&mut self.config).publish_timeout = timeout;
        self
    }

    /// Waits until the server has received everything published so far (core NATS sends
    /// publishes in the background; JetStream publishes are confirmed one by one anyway).
    pub async fn flush(&self) -> Result<()> {
        let conn = self.conn().await?;
        match tokio::time::timeout(self.config.publish_timeout, conn.client.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(format!("nats: flush: {e}"))),
            Err(_) => Err(unavailable(format!(
                "nats: flush: the server did not answer within {:?}",
                self.config.publish_timeout
            ))),
        }
    }

    async fn conn(&self) -> Result<Arc<Conn>> {
        match self.shared.conn.load_full() {
            Some(conn) => Ok(conn),
            None => self.open_boxed().await,
        }
    }

    // The rare paths of a publish, boxed in functions of their own: the hot path's future
    // neither carries their large futures nor builds them in its stack frame.

    #[inline(never)]
    fn open_boxed(&self) -> super::BoxFuture<'_, Result<Arc<Conn>>> {
        Box::pin(self.shared.open(&self.config))
    }

    #[inline(never)]
    fn publish_jetstream_boxed<'a>(
        &'a self,
        conn: Arc<Conn>,
        topic: &'a str,
        message: Envelope,
    ) -> super::BoxFuture<'a, Result<()>> {
        Box::pin(async move { jetstream::publish(&self.config, &conn, topic, message).await })
    }

    #[inline(never)]
    fn finish_publish_boxed<'a, F>(
        &'a self,
        topic: &'a str,
        send: Pin<&'a mut F>,
    ) -> super::BoxFuture<'a, Result<()>>
    where
        F: Future<Output = std::result::Result<(), async_nats::PublishError>> + Send,
    {
        Box::pin(core::finish_publish(&self.config, topic, send))
    }
}

impl fmt::Debug for NatsBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBroker")
            .field("name", &self.name())
            .field("address", &self.config.address)
            .field("connected", &self.shared.conn.load().is_some())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Broker for NatsBroker {
    fn name(&self) -> &'static str {
        match self.config.mode {
            Mode::Core => "nats",
            Mode::JetStream => "jetstream",
        }
    }

    fn address(&self) -> String {
        self.config.address.clone()
    }

    async fn connect(&self) -> Result<()> {
        self.conn().await.map(drop)
    }

    async fn disconnect(&self) -> Result<()> {
        let _guard = self.shared.connecting.lock().await;
        let subs: Vec<Arc<Control>> = self
            .shared
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, c)| c)
            .collect();
        for control in &subs {
            control.stop();
        }
        futures_util::future::join_all(subs.iter().map(|c| c.end(Some(GRACE)))).await;
        if let Some(conn) = self.shared.conn.swap(None) {
            // Publishes in flight reach the server, then the connection closes.
            let _ = tokio::time::timeout(self.config.publish_timeout, conn.client.flush()).await;
            let _ = conn.client.drain().await;
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, message: Envelope) -> Result<()> {
        // The hot path, core publishing, is written out here and everything else boxed:
        // this future is allocated and moved for every publish, so it is kept small.
        // A guard, not a clone of the `Arc`: two atomic read-modify-writes fewer, which
        // show in the publish rate; a publish holds it for a moment.
        let guard = self.shared.conn.load();
        let opened;
        let conn = match guard.as_ref() {
            Some(conn) => conn,
            None => {
                opened = self.open_boxed().await?;
                &opened
            }
        };
        if self.config.mode == Mode::JetStream {
            return self
                .publish_jetstream_boxed(conn.clone(), topic, message)
                .await;
        }
        let subject = subject(topic)?;
        let headers = headers(message.header)?;
        // An outbound message hands the subject over as it is (`publish_with_headers` would
        // clone it once more).
        let mut send = std::pin::pin!(conn.client.publish_message(OutboundMessage {
            subject,
            reply: None,
            payload: message.body,
            headers: Some(headers),
        }));
        // Usually the client takes the message at once: no timer then.
        match poll_once(send.as_mut()).await {
            Poll::Ready(Ok(())) => Ok(()),
            Poll::Ready(Err(e)) => Err(unavailable(format!("nats: publish to {topic}: {e}"))),
            Poll::Pending => self.finish_publish_boxed(topic, send).await,
        }
    }

    async fn subscribe(
        &self,
        topic: &str,
        handler: EventHandler,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        let conn = self.conn().await?;
        match self.config.mode {
            Mode::Core => {
                core::subscribe(&self.config, &self.shared, &conn, topic, handler, options).await
            }
            Mode::JetStream => {
                consumer::subscribe(&self.config, &self.shared, &conn, topic, handler, options)
                    .await
            }
        }
    }
}
