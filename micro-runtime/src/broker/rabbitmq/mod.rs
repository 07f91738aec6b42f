//! The RabbitMQ broker (feature `rabbitmq`), laid out as go-micro's rabbitmq plugin: Go and
//! Rust services publish to and subscribe from the same exchange.
//!
//! # Layout
//! Every message is published to one durable topic exchange (`micro` unless
//! [`RabbitOptions::exchange`] says otherwise) with the topic as its routing key, so a
//! subscription's topic may use AMQP's wildcards (`*` for one word, `#` for any number of
//! words, words separated by dots). Messages are persistent (delivery mode 2); their headers
//! are AMQP headers (long strings), and `Content-Type` is also the AMQP content type.
//!
//! A subscription with a queue group `Q` consumes from the durable queue named `Q` (go-micro's
//! name for it), bound to its topic: the members of the group, in this process or any other,
//! share that queue, so each message goes to one of them, and messages published while no
//! member runs wait in it. A durable queue outlives its subscribers: delete a retired group's
//! queue with [`RabbitBroker::delete_queue`]. A subscription without a queue group gets its own
//! exclusive, auto-deleted, server-named queue: it gets every message published while it runs,
//! and its queue is deleted with it.
//!
//! # Delivery
//! - `publish` returns once RabbitMQ confirmed that it has the message (publisher confirms);
//!   a refusal (a `nack`) or a lost connection is an `UNAVAILABLE` error, and then the message
//!   may or may not have been stored.
//! - Subscriptions acknowledge each message at the AMQP level after their handler returns:
//!   `Ok` acknowledges it (unless [`SubscribeOptions::manual_ack`], where the handler does,
//!   with [`Event::ack`]); an error puts it back in its queue to be delivered again (to this
//!   subscriber or another member of its group), except an `INVALID_ARGUMENT` error, which
//!   drops it (`basic.reject` without requeue: dead-lettered where the queue is set up so).
//!   A subscriber that dies or disconnects with messages unacknowledged gets them redelivered
//!   to the group's other members, or to itself when it comes back. With `manual_ack`, a
//!   message the handler neither acknowledges nor fails stays unacknowledged, holding one of
//!   the subscription's prefetch places, until the subscription ends; then it is delivered
//!   again.
//! - So with a queue group, delivery is **at least once**: a message is handled again after a
//!   handler error or a crash between handling and acknowledging; handlers should be
//!   idempotent. A handler that always fails is redelivered forever: return
//!   `INVALID_ARGUMENT` for messages that can never succeed.
//! - Without a queue group, messages published while the subscriber is not running (before it
//!   subscribed, after it ended, while it reconnects) are not delivered to it: its queue only
//!   exists while it does.
//!
//! Each subscription has its own channel, a prefetch of [`RabbitOptions::prefetch`] messages
//! (256 by default) and one task that handles its messages one at a time, in order.
//!
//! # Connection
//! One connection per broker, made on first use (or by [`Broker::connect`]) and shared by
//! publishing (one channel in confirm mode) and every subscription (a channel each). When it
//! breaks (RabbitMQ restarted, the network failed), a `publish` in flight fails with
//! `UNAVAILABLE` and the next one reconnects; subscriptions reconnect by themselves, with a
//! backoff of up to 5 s, and declare and bind their queue again (a broadcast subscription
//! gets a new queue). Connecting, declaring and each confirmation are bounded by
//! [`RabbitOptions::timeout`]. [`Broker::disconnect`] ends the subscriptions, lets publishes
//! in flight finish and closes the connection; a later `publish` or `subscribe` connects
//! again.
//!
//! # Settings
//! `--broker rabbitmq --broker_address amqp://user:password@host:port/vhost`, by default
//! [`DEFAULT_ADDRESS`] (RabbitMQ's `guest` user on this host; the vhost `/` is written `%2f`).
//! `amqps://` connects over TLS (rustls, the system's trusted roots). An address without a
//! scheme, `host:port`, is taken as `amqp://host:port` with the `guest` user.
//!
//! ```no_run
//! use std::sync::Arc;
//! use micro_runtime::broker::{self, Broker, Envelope, Event, SubscribeOptions};
//! use micro_runtime::broker::rabbitmq::{RabbitBroker, RabbitOptions};
//!
//! # async fn run() -> micro_runtime::Result<()> {
//! let broker = RabbitBroker::new(RabbitOptions::new("amqp://guest:guest@127.0.0.1:5672/%2f"))?;
//! let handler = broker::handler(|event: Event| async move {
//!     println!("{} bytes", event.message().body.len());
//!     Ok(())
//! });
//! let sub = broker
//!     .subscribe("orders.created", handler, SubscribeOptions::new().queue("billing"))
//!     .await?;
//! broker.publish("orders.created", Envelope::new("hello")).await?;
//! sub.unsubscribe().await?;
//! broker.disconnect().await
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ErrorKind, ExchangeKind,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::{
    Acker, Broker, CONTENT_TYPE_HEADER, Envelope, Event, EventHandler, Header, Outcome,
    SubscribeOptions, Subscription, dispatch,
};
use crate::error::{Code, Error, Result};

/// The address used when none is given: RabbitMQ's `guest` user, on this host, vhost `/`.
pub const DEFAULT_ADDRESS: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The exchange used when none is given (go-micro's).
pub const DEFAULT_EXCHANGE: &str = "micro";

/// Messages a subscription may hold unacknowledged when none is given.
pub const DEFAULT_PREFETCH: u16 = 256;

/// How long connecting, declaring and each publish confirmation may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `unsubscribe` waits for a handler in progress by default.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// First and longest wait between attempts to re-establish a broken subscription.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// AMQP's limit on short strings: routing keys, queue and exchange names, header names.
const MAX_SHORT_STRING: usize = 255;

/// Where RabbitMQ is and how to use it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RabbitOptions {
    /// `amqp://user:password@host:port/vhost` (or `amqps://`); empty for [`DEFAULT_ADDRESS`].
    pub address: String,
    /// The topic exchange messages are published to ([`DEFAULT_EXCHANGE`]).
    pub exchange: String,
    /// Messages a subscription may hold unacknowledged ([`DEFAULT_PREFETCH`]; at least 1).
    pub prefetch: u16,
    /// Bound on connecting, declaring and each publish confirmation ([`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// How long `unsubscribe` and `disconnect` wait for a handler in progress before
    /// abandoning it ([`DEFAULT_DRAIN`]); its message is then delivered again.
    pub drain: Duration,
}

impl RabbitOptions {
    /// The defaults, at `address` (empty for [`DEFAULT_ADDRESS`]).
    pub fn new(address: impl Into<String>) -> RabbitOptions {
        RabbitOptions {
            address: address.into(),
            exchange: DEFAULT_EXCHANGE.to_owned(),
            prefetch: DEFAULT_PREFETCH,
            timeout: DEFAULT_TIMEOUT,
            drain: DEFAULT_DRAIN,
        }
    }

    /// Publishes to and subscribes from `exchange` instead of [`DEFAULT_EXCHANGE`].
    pub fn exchange(mut self, exchange: impl Into<String>) -> RabbitOptions {
        self.exchange = exchange.into();
        self
    }
}

impl Default for RabbitOptions {
    fn default() -> RabbitOptions {
        RabbitOptions::new(DEFAULT_ADDRESS)
    }
}

/// A RabbitMQ broker. Cheap to clone; clones share the connection and the subscriptions.
#[derive(Clone)]
pub struct RabbitBroker {
    inner: Arc<Inner>,
}

struct Inner {
    options: RabbitOptions,
    uri: AMQPUri,
    /// The address without its password, for messages and [`Broker::address`].
    shown: String,
    /// The live connection, or none before the first use and after `disconnect`.
    conn: ArcSwapOption<Conn>,
    /// Held while (re)connecting, so concurrent callers make one connection.
    connecting: tokio::sync::Mutex<()>,
    subs: Mutex<HashMap<u64, Arc<Sub>>>,
    next_id: AtomicU64,
    /// Read-held by each `publish`; `disconnect` write-locks it, so that publishes in flight
    /// finish before the connection closes.
    publishing: tokio::sync::RwLock<()>,
}

/// A connection and its publishing channel (in confirm mode).
struct Conn {
    /// Shared with the next `Conn` when only the publishing channel is replaced.
    connection: Arc<Connection>,
    publisher: Channel,
}

impl Conn {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

impl fmt::Debug for RabbitBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitBroker")
            .field("address", &self.inner.shown)
            .field("exchange", &self.inner.options.exchange)
            .finish_non_exhaustive()
    }
}

impl RabbitBroker {
    /// A broker with these options; connects on first use. Fails only on a malformed
    /// address or exchange name.
    pub fn new(options: RabbitOptions) -> Result<RabbitBroker> {
        let address = match options.address.trim() {
            "" => DEFAULT_ADDRESS.to_owned(),
            a if a.contains("://") => a.to_owned(),
            a => format!("amqp://{a}"),
        };
        let uri = AMQPUri::from_str(&address).map_err(|e| {
            Error::new(
                Code::InvalidArgument,
                format!(
                    "rabbitmq: bad address {:?}: {e}",
                    crate::redact::address(&address)
                ),
            )
        })?;
        check_short("exchange name", &options.exchange)?;
        if options.exchange.is_empty() {
            // "" is AMQP's default exchange, which cannot be declared nor bound to.
            return Err(Error::new(
                Code::InvalidArgument,
                "rabbitmq: the exchange needs a name",
            ));
        }
        let shown = format!(
            "{}://{}@{}:{}/{}",
            match uri.scheme {
                lapin::uri::AMQPScheme::AMQP => "amqp",
                lapin::uri::AMQPScheme::AMQPS => "amqps",
            },
            uri.authority.userinfo.username,
            uri.authority.host,
            uri.authority.port,
            percent_encoding::utf8_percent_encode(&uri.vhost, percent_encoding::NON_ALPHANUMERIC)
        );
        Ok(RabbitBroker {
            inner: Arc::new(Inner {
                options,
                uri,
                shown,
                conn: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
                subs: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                publishing: tokio::sync::RwLock::new(()),
            }),
        })
    }

    /// A broker with the default options at `address` (empty for [`DEFAULT_ADDRESS`]).
    pub fn from_address(address: &str) -> Result<RabbitBroker> {
        RabbitBroker::new(RabbitOptions::new(address))
    }

    /// Its options.
    pub fn options(&self) -> &RabbitOptions {
        &self.inner.options
    }

    /// Deletes the durable queue of the queue group `queue`, with the messages waiting in
    /// it; returns how many there were. For retiring a group (queues of groups outlive their
    /// subscribers); members still subscribed are cut off and subscribe again, re-creating it.
    pub async fn delete_queue(&self, queue: &str) -> Result<u32> {
        check_short("queue name", queue)?;
        let conn = self.inner.conn().await?;
        let t = self.inner.options.timeout;
        let result = timeout(t, async {
            let channel = conn.connection.create_channel().await?;
            let count = channel
                .queue_delete(queue, QueueDeleteOptions::default())
                .await;
            let _ = channel.close(200, "OK").await;
            count
        })
        .await;
        match result {
            Ok(Ok(count)) => Ok(count),
            Ok(Err(e)) => Err(amqp_error(&format!("deleting queue {queue:?}"), &e)),
            Err(_) => Err(timed_out(&format!("deleting queue {queue:?}"), t)),
        }
    }
}

impl Inner {
    /// The live connection, connecting (again) when there is none or it broke.
    async fn conn(&self) -> Result<Arc<Conn>> {
        if let Some(c) = self.conn.load_full() {
            if c.usable() {
                return Ok(c);
            }
        }
        // Bounded too: callers queue here while another one connects.
        let t = self.options.timeout;
        let Ok(_connecting) = timeout(t, self.connecting.lock()).await else {
            return Err(timed_out(&format!("connecting to {}", self.shown), t));
        };
        let old = self.conn.load_full();
        if let Some(c) = &old {
            if c.usable() {
                return Ok(c.clone());
            }
            if c.connection.status().connected() {
                // Only the publishing channel broke (a channel error): a new one will do.
                let publisher = self.open_publisher(&c.connection).await?;
                let fresh = Arc::new(Conn {
                    connection: c.connection.clone(),
                    publisher,
                });
                self.conn.store(Some(fresh.clone()));
                return Ok(fresh);
            }
            tracing::warn!(address = %self.shown, "rabbitmq: connection lost; reconnecting");
        }
        let fresh = Arc::new(self.open().await?);
        self.conn.store(Some(fresh.clone()));
        Ok(fresh)
    }

    async fn open(&self) -> Result<Conn> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                Code::FailedPrecondition,
                "rabbitmq: the broker runs on tokio; connect from within a tokio runtime",
            )
        })?;
        let properties = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::default().with_handle(handle.clone()))
            .with_reactor(tokio_reactor_trait::Tokio::default().with_handle(handle))
            .with_connection_name("micro".into());
        let t = self.options.timeout;
        let what = format!("connecting to {}", self.shown);
        let connection =
            match timeout(t, Connection::connect_uri(self.uri.clone(), properties)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(amqp_error(&what, &e)),
                Err(_) => return Err(timed_out(&what, t)),
            };
        match self.open_publisher(&connection).await {
            Ok(publisher) => Ok(Conn {
                connection: Arc::new(connection),
                publisher,
            }),
            Err(e) => {
                let _ = timeout(t, connection.close(200, "OK")).await;
                Err(e)
            }
        }
    }

    /// A channel in confirm mode, with the exchange declared (publishing to a missing
    /// exchange would close the channel).
    async fn open_publisher(&self, connection: &Connection) -> Result<Channel> {
        let t = self.options.timeout;
        let result = timeout(t, async {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            self.declare_exchange(&channel).await?;
            Ok::<_, lapin::Error>(channel)
        })
        .await;
        match result {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(e)) => Err(amqp_error("opening the publishing channel", &e)),
            Err(_) => Err(timed_out("opening the publishing channel", t)),
        }
    }

    async fn declare_exchange(&self, channel: &Channel) -> lapin::Result<()> {
        channel
            .exchange_declare(
                &self.options.exchange,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
    }

    /// A channel consuming from the subscription's queue, declared and bound to `topic`.
    async fn attach(&self, topic: &str, options: &SubscribeOptions) -> Result<(Channel, Consumer)> {
        let conn = self.conn().await?;
        let t = self.options.timeout;
        let prefetch = self.options.prefetch.max(1);
        let channel = match timeout(t, conn.connection.create_channel()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(amqp_error("opening a channel", &e)),
            Err(_) => return Err(timed_out("opening a channel", t)),
        };
        let setup = timeout(t, async {
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await?;
            self.declare_exchange(&channel).await?;
            let queue = match options.get_queue() {
                Some(group) => {
                    let durable = QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    };
                    channel
                        .queue_declare(group, durable, FieldTable::default())
                        .await?
                }
                None => {
                    let private = QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..QueueDeclareOptions::default()
                    };
                    channel
                        .queue_declare("", private, FieldTable::default())
                        .await?
                }
            };
            let queue = queue.name().as_str();
            channel
                .queue_bind(
                    queue,
                    &self.options.exchange,
                    topic,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            channel
                .basic_consume(
                    queue,
                    "",
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
        })
        .await;
        let what = format!("subscribing to {topic:?}");
        let error = match setup {
            Ok(Ok(consumer)) => return Ok((channel, consumer)),
            Ok(Err(e)) => amqp_error(&what, &e),
            Err(_) => timed_out(&what, t),
        };
        let _ = timeout(t, channel.close(200, "OK")).await;
        Err(error)
    }

    fn subs(&self) -> MutexGuard<'_, HashMap<u64, Arc<Sub>>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl Broker for RabbitBroker {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    fn address(&self) -> String {
        self.inner.shown.clone()
    }

    async fn connect(&self) -> Result<()> {
        self.inner.conn().await.map(|_| ())
    }

    async fn disconnect(&self) -> Result<()> {
        let subs: Vec<Arc<Sub>> = self.inner.subs().drain().map(|(_, s)| s).collect();
        let drain = self.inner.options.drain;
        let t = self.inner.options.timeout;
        futures_util::future::join_all(subs.iter().map(|s| s.stop(drain, t))).await;
        // Publishes are bounded by the timeout (connecting, then the confirmation).
        let _quiet = timeout(t * 2, self.inner.publishing.write()).await;
        let _connecting = self.inner.connecting.lock().await;
        if let Some(conn) = self.inner.conn.swap(None) {
            if conn.connection.status().connected() {
                match timeout(t, conn.connection.close(200, "OK")).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "rabbitmq: closing the connection"),
                    Err(_) => tracing::debug!("rabbitmq: closing the connection timed out"),
                }
            }
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, message: Envelope) -> Result<()> {
        check_short("topic", topic)?;
        let properties = properties(&message)?;
        let _publishing = self.inner.publishing.read().await;
        let conn = self.inner.conn().await?;
        let t = self.inner.options.timeout;
        let confirmed = timeout(t, async {
            conn.publisher
                .basic_publish(
                    &self.inner.options.exchange,
                    topic,
                    BasicPublishOptions::default(),
                    &message.body,
                    properties,
                )
                .await?
                .await
        })
        .await;
        match confirmed {
            Ok(Ok(Confirmation::Ack(_) | Confirmation::NotRequested)) => Ok(()),
            Ok(Ok(Confirmation::Nack(_))) => Err(Error::new(
                Code::Unavailable,
                format!("rabbitmq: publishing to {topic:?}: RabbitMQ refused the message (nack)"),
            )),
            Ok(Err(e)) => Err(amqp_error(&format!("publishing to {topic:?}"), &e)),
            Err(_) => Err(timed_out(&format!("publishing to {topic:?}"), t)),
        }
    }

    async fn subscribe(
        &self,
        topic: &str,
        handler: EventHandler,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        check_short("topic", topic)?;
        if let Some(queue) = options.get_queue() {
            check_short("queue name", queue)?;
        }
        let (channel, consumer) = self.inner.attach(topic, &options).await?;
        let (stop, _) = watch::channel(false);
        let sub = Arc::new(Sub {
            stop,
            current: Mutex::new(None),
            task: Mutex::new(None),
        });
        sub.set_current(&channel, consumer.tag());
        let task = tokio::spawn(run(
            self.inner.clone(),
            sub.clone(),
            Arc::from(topic),
            handler,
            options.clone(),
            (channel, consumer),
        ));
        *sub.task() = Some(task);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.subs().insert(id, sub.clone());
        Ok(Box::new(RabbitSubscription {
            inner: self.inner.clone(),
            id,
            topic: topic.to_owned(),
            options,
            sub,
        }))
    }
}

/// What a subscription's task and its [`RabbitSubscription`] share.
struct Sub {
    /// Set once, to end the subscription.
    stop: watch::Sender<bool>,
    /// The channel consumed from and the consumer's tag, to cancel it.
    current: Mutex<Option<(Channel, ShortString)>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Sub {
    fn current(&self) -> MutexGuard<'_, Option<(Channel, ShortString)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn task(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.task.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Records the channel now consumed from; false (and nothing recorded) when the
    /// subscription was stopped meanwhile, so that `stop` never misses a channel.
    fn set_current(&self, channel: &Channel, tag: ShortString) -> bool {
        let mut current = self.current();
        if self.stopped() {
            return false;
        }
        *current = Some((channel.clone(), tag));
        true
    }

    /// Ends the subscription: cancels the consumer, waits up to `drain` for a handler in
    /// progress, then closes the channel (unacknowledged messages go back to the queue).
    async fn stop(&self, drain: Duration, t: Duration) {
        self.stop.send_replace(true);
        let current = self.current().take();
        if let Some((channel, tag)) = &current {
            let _ = timeout(
                t,
                channel.basic_cancel(tag.as_str(), BasicCancelOptions::default()),
            )
            .await;
        }
        let task = self.task().take();
        if let Some(mut task) = task {
            if timeout(drain, &mut task).await.is_err() {
                tracing::warn!(
                    ?drain,
                    "rabbitmq: a handler was still running when unsubscribing; abandoned, its \
                     message will be delivered again"
                );
                task.abort();
            }
        }
        if let Some((channel, _)) = current {
            if channel.status().connected() {
                let _ = timeout(t, channel.close(200, "OK")).await;
            }
        }
    }
}

/// A subscription's task: handles its deliveries one at a time and, when its channel breaks,
/// subscribes again until stopped.
async fn run(
    inner: Arc<Inner>,
    sub: Arc<Sub>,
    topic: Arc<str>,
    handler: EventHandler,
    options: SubscribeOptions,
    first: (Channel, Consumer),
) {
    let mut stop = sub.stop.subscribe();
    let mut attached = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        let (channel, mut consumer) = match attached.take() {
            Some(a) => a,
            None => {
                let attempt = tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return,
                    a = inner.attach(&topic, &options) => a,
                };
                match attempt {
                    Ok((channel, consumer)) => {
                        if !sub.set_current(&channel, consumer.tag()) {
                            let _ = timeout(inner.options.timeout, channel.close(200, "OK")).await;
                            return;
                        }
                        tracing::info!(%topic, "rabbitmq: subscribed again");
                        backoff = MIN_BACKOFF;
                        (channel, consumer)
                    }
                    Err(e) => {
                        tracing::warn!(%topic, error = %e, ?backoff, "rabbitmq: subscribing again failed; retrying");
                        tokio::select! {
                            biased;
                            _ = stop.wait_for(|s| *s) => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                next = consumer.next() => next,
            };
            match next {
                Some(Ok(delivery)) => {
                    handle(&handler, &topic, delivery, options.is_manual_ack()).await;
                }
                Some(Err(e)) => {
                    tracing::warn!(%topic, error = %e, "rabbitmq: subscription's channel failed");
                }
                None => break,
            }
        }
        if sub.stopped() {
            return;
        }
        // The consumer ended without being stopped: the connection or the channel broke,
        // or the queue was deleted. Subscribe again.
        tracing::warn!(%topic, "rabbitmq: subscription lost; subscribing again");
        drop(channel);
    }
}

async fn handle(handler: &EventHandler, topic: &Arc<str>, delivery: Delivery, manual_ack: bool) {
    let Delivery {
        routing_key,
        properties,
        data,
        acker,
        ..
    } = delivery;
    let message = Envelope {
        header: headers(&properties),
        body: Bytes::from(data),
    };
    // The routing key says which topic a wildcard subscription's message went to.
    let topic = if routing_key.as_str() == &**topic {
        topic.clone()
    } else {
        Arc::from(routing_key.as_str())
    };
    let acker: Arc<dyn Acker> = Arc::new(RabbitAcker(acker));
    let event = Event::new(topic, message, Some(acker.clone()));
    let _ = dispatch(handler, event, Some(&acker), manual_ack).await;
}

/// Settles a delivery at the AMQP level; lapin's acker acts once, later outcomes do nothing.
struct RabbitAcker(lapin::acker::Acker);

#[async_trait::async_trait]
impl Acker for RabbitAcker {
    async fn settle(&self, outcome: Outcome) -> Result<()> {
        let result = match outcome {
            Outcome::Ack => self.0.ack(BasicAckOptions::default()).await,
            Outcome::Nack => {
                self.0
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await
            }
            Outcome::Reject => self.0.reject(BasicRejectOptions { requeue: false }).await,
        };
        result
            .map(|_| ())
            .map_err(|e| amqp_error("settling a message", &e))
    }
}

/// The subscription returned by [`RabbitBroker`]'s `subscribe`. Dropping it does not end the
/// subscription: `unsubscribe` (or the broker's `disconnect`) does.
struct RabbitSubscription {
    inner: Arc<Inner>,
    id: u64,
    topic: String,
    options: SubscribeOptions,
    sub: Arc<Sub>,
}

#[async_trait::async_trait]
impl Subscription for RabbitSubscription {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn unsubscribe(&self) -> Result<()> {
        self.inner.subs().remove(&self.id);
        self.sub
            .stop(self.inner.options.drain, self.inner.options.timeout)
            .await;
        Ok(())
    }
}

/// The AMQP properties of a message: persistent, its headers as long strings, its
/// `Content-Type` as the content type.
fn properties(message: &Envelope) -> Result<BasicProperties> {
    let mut table = BTreeMap::new();
    for (key, value) in &message.header {
        check_short("header name", key)?;
        table.insert(
            ShortString::from(key.as_ref()),
            AMQPValue::LongString(LongString::from(value.as_bytes())),
        );
    }
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(FieldTable::from(table));
    if let Some(ct) = message.header(CONTENT_TYPE_HEADER) {
        if ct.len() <= MAX_SHORT_STRING {
            properties = properties.with_content_type(ShortString::from(ct));
        }
    }
    Ok(properties)
}

/// A delivery's headers as strings (go-micro's subscriber formats them with `%v` too), plus
/// `Content-Type` from the AMQP content type when the headers lack it (a message from a
/// publisher that is not micro).
fn headers(properties: &BasicProperties) -> Header {
    // Collected, so sorted once: a message with many headers costs no quadratic inserts.
    let mut header: Header = properties
        .headers()
        .iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.to_string().into(), header_value(value)?)))
        .collect();
    if let Some(ct) = properties.content_type() {
        header
            .entry(CONTENT_TYPE_HEADER.into())
            .or_insert_with(|| ct.to_string());
    }
    header
}

fn header_value(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => s.to_string(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
        AMQPValue::Void => return None,
        other => format!("{other:?}"),
    })
}

fn check_short(what: &str, s: &str) -> Result<()> {
    if s.len() > MAX_SHORT_STRING {
        return Err(Error::new(
            Code::InvalidArgument,
            format!(
                "rabbitmq: {what} is {} bytes; AMQP allows {MAX_SHORT_STRING}",
                s.len()
            ),
        ));
    }
    Ok(())
}

/// A lapin error as ours: refusals by RabbitMQ keep their meaning, anything else (the
/// connection is gone, closed, or broke) is `UNAVAILABLE`.
fn amqp_error(what: &str, e: &lapin::Error) -> Error {
    let code = match e.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => Code::PermissionDenied,
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => Code::NotFound,
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => Code::FailedPrecondition,
            AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED) => Code::FailedPrecondition,
            AMQPErrorKind::Soft(AMQPSoftError::CONTENTTOOLARGE) => Code::InvalidArgument,
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => Code::PermissionDenied,
            _ => Code::Unavailable,
        },
        _ => Code::Unavailable,
    };
    Error::new(code, format!("rabbitmq: {what}: {e}"))
}

fn timed_out(what: &str, t: Duration) -> Error {
    Error::new(
        Code::Unavailable,
        format!("rabbitmq: {what}: no answer from RabbitMQ within {t:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let b = RabbitBroker::from_address("").unwrap();
        assert_eq!(b.address(), "amqp://guest@127.0.0.1:5672/%2F");
        let b = RabbitBroker::from_address("amqp://u:secret@mq:5673/prod").unwrap();
        assert_eq!(b.address(), "amqp://u@mq:5673/prod");
        let b = RabbitBroker::from_address("mq:5000").unwrap();
        assert_eq!(b.address(), "amqp://guest@mq:5000/%2F");
        assert_eq!(
            RabbitBroker::from_address("amqp://u:pw@mq:notaport/")
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        let e = RabbitBroker::new(RabbitOptions::default().exchange("")).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
    }

    #[test]
    fn headers_round_trip() {
        let msg = Envelope::new("x")
            .with_header("Content-Type", "application/json")
            .with_header("Micro-Id", "42");
        let props = properties(&msg).unwrap();
        assert_eq!(props.delivery_mode(), &Some(2));
        assert_eq!(
            props.content_type().as_ref().map(ShortString::as_str),
            Some("application/json")
        );
        assert_eq!(headers(&props), msg.header);

        // A foreign publisher: typed headers, content type only as the property.
        let mut table = FieldTable::default();
        table.insert("n".into(), AMQPValue::LongInt(-3));
        table.insert("b".into(), AMQPValue::Boolean(true));
        let props = BasicProperties::default()
            .with_headers(table)
            .with_content_type("text/plain".into());
        let h = headers(&props);
        assert_eq!(h.get("n").map(String::as_str), Some("-3"));
        assert_eq!(h.get("b").map(String::as_str), Some("true"));
        assert_eq!(
            h.get("Content-Type").map(String::as_str),
            Some("text/plain")
        );

        let long = "k".repeat(256);
        let err = properties(&Envelope::new("x").with_header(long, "v")).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
