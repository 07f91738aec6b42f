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

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::Poll;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_nats::client::traits::Publisher as _;
use async_nats::connection::State;
use async_nats::header::{HeaderName, IntoHeaderName, IntoHeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, AckKind, stream};
use async_nats::message::OutboundMessage;
use async_nats::{ConnectOptions, HeaderMap, ServerAddr, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{
    Acker, Broker, Envelope, Event, EventHandler, Header, ID_HEADER, Outcome, SubscribeOptions,
    Subscription, dispatch, poll_once,
};
use crate::error::{Code, Error, Result};

/// Where the broker connects when given no address.
pub const DEFAULT_ADDRESS: &str = "nats://127.0.0.1:4222";
/// What the name of each topic's JetStream stream starts with.
pub const STREAM_PREFIX: &str = "MICRO_";

/// How long connecting to a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one JetStream API request (stream or consumer info, creation) may take.
const API_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `disconnect` lets a handler finish before it is cancelled.
const GRACE: Duration = Duration::from_secs(1);
/// Messages a JetStream subscriber asks for at a time.
const BATCH: usize = 128;
/// The server's heartbeat on an idle JetStream pull; two missed ones end the pull.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long an ephemeral consumer outlives its subscriber (a crash, a long outage).
const EPHEMERAL_INACTIVE: Duration = Duration::from_secs(120);
/// How many topics' subjects each thread keeps ready.
const RECENT_SUBJECTS: usize = 16;
/// How many topics' subjects are kept for the life of the program.
const INTERNED_TOPICS: usize = 1024;
/// The first and the longest pause before retrying after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Core,
    JetStream,
}

#[derive(Clone, Debug)]
struct Config {
    mode: Mode,
    address: String,
    /// The servers without credentials (async-nats logs its addresses as they are).
    servers: Vec<ServerAddr>,
    /// The credentials the address held, handed to async-nats apart.
    credentials: Option<Credentials>,
    ack_wait: Duration,
    max_ack_pending: usize,
    publish_timeout: Duration,
}

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

#[derive(Default)]
struct Shared {
    conn: ArcSwapOption<Conn>,
    /// Serialises connecting and disconnecting.
    connecting: tokio::sync::Mutex<()>,
    subs: Mutex<HashMap<u64, Arc<Control>>>,
    next_id: AtomicU64,
}

impl Drop for Shared {
    /// The broker and its subscribers are all gone: so are the subscriptions' tasks (and
    /// with them the connection).
    fn drop(&mut self) {
        let subs = self.subs.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, control) in subs.drain() {
            control.stop();
            control.abort();
        }
    }
}

/// A live connection.
struct Conn {
    client: async_nats::Client,
    /// Set in JetStream mode.
    js: Option<jetstream::Context>,
    /// The topics whose stream is known to exist.
    streams: RwLock<HashSet<String>>,
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
        let (address, servers, credentials) = parse_address(address)?;
        Ok(NatsBroker {
            config: Arc::new(Config {
                mode,
                address,
                servers,
                credentials,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 1024,
                publish_timeout: Duration::from_secs(30),
            }),
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
        Box::pin(self.open())
    }

    #[inline(never)]
    fn publish_jetstream_boxed<'a>(
        &'a self,
        conn: Arc<Conn>,
        topic: &'a str,
        message: Envelope,
    ) -> super::BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.publish_jetstream(&conn, topic, message).await })
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
        Box::pin(self.finish_publish(topic, send))
    }

    async fn open(&self) -> Result<Arc<Conn>> {
        let _guard = self.shared.connecting.lock().await;
        if let Some(conn) = self.shared.conn.load_full() {
            return Ok(conn);
        }
        let address = self.config.address.clone();
        let options = ConnectOptions::new()
            .name("micro")
            .connection_timeout(CONNECT_TIMEOUT)
            .event_callback(move |event| {
                let address = address.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(%address, "nats: connected")
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(%address, "nats: disconnected, reconnecting")
                        }
                        // Messages dropped for a subscriber that fell behind: lost, so
                        // seen at the default level.
                        async_nats::Event::SlowConsumer(sid) => {
                            tracing::warn!(%address, subscription = sid, "nats: slow consumer, messages dropped")
                        }
                        other => tracing::debug!(%address, event = %other, "nats"),
                    }
                }
            });
        let options = match &self.config.credentials {
            Some(Credentials::UserPassword(user, password)) => {
                options.user_and_password(user.clone(), password.clone())
            }
            Some(Credentials::Token(token)) => options.token(token.clone()),
            None => options,
        };
        let client = options
            .connect(self.config.servers.clone())
            .await
            .map_err(|e| {
                unavailable(format!(
                    "nats: cannot connect to {}: {e}",
                    self.config.address
                ))
            })?;
        let js = match self.config.mode {
            Mode::Core => None,
            Mode::JetStream => {
                let js = jetstream::ContextBuilder::new()
                    .timeout(API_TIMEOUT)
                    .backpressure_on_inflight(true)
                    .build(client.clone());
                // Any answer will do: without JetStream, nobody answers.
                let info = client.request("$JS.API.INFO", Bytes::new());
                if let Err(e) = tokio::time::timeout(API_TIMEOUT, info)
                    .await
                    .map_err(|_| "no answer".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    let _ = client.drain().await;
                    return Err(unavailable(format!(
                        "nats: JetStream is not available at {} (is the server started with -js?): {e}",
                        self.config.address
                    )));
                }
                Some(js)
            }
        };
        let conn = Arc::new(Conn {
            client,
            js,
            streams: RwLock::default(),
        });
        self.shared.conn.store(Some(conn.clone()));
        Ok(conn)
    }

    fn register(&self, control: &Arc<Control>) {
        self.shared
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(control.id, control.clone());
    }

    /// A core publish the client could not take at once (its buffer is full): waits up to the
    /// publish timeout.
    async fn finish_publish<F>(&self, topic: &str, send: Pin<&mut F>) -> Result<()>
    where
        F: Future<Output = std::result::Result<(), async_nats::PublishError>>,
    {
        match tokio::time::timeout(self.config.publish_timeout, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(format!("nats: publish to {topic}: {e}"))),
            Err(_) => Err(unavailable(format!(
                "nats: publish to {topic}: disconnected for {:?} with a full buffer",
                self.config.publish_timeout
            ))),
        }
    }

    async fn publish_jetstream(&self, conn: &Conn, topic: &str, message: Envelope) -> Result<()> {
        let subject = subject(topic)?;
        let js = conn.jetstream()?;
        let deadline = crate::transport::deadline_in(self.config.publish_timeout);
        let mut pause = BACKOFF_MIN;
        let mut known = conn.has_stream(topic);
        loop {
            let attempt = async {
                if !known {
                    conn.create_stream(topic).await?;
                    known = true;
                }
                let mut headers =
                    headers(message.header.iter().map(|(k, v)| (k.clone(), v.as_str())))?;
                if let Some(id) = message.header(ID_HEADER) {
                    headers.insert(NATS_MESSAGE_ID, id);
                }
                let ack = async {
                    js.publish_with_headers(subject.clone(), headers, message.body.clone())
                        .await?
                        .await
                };
                ack.await.map(drop).map_err(Failure::Publish)
            };
            let failure = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(failure)) => failure,
                Err(_) => {
                    return Err(unavailable(format!(
                        "nats: publish to {topic}: not confirmed within {:?}",
                        self.config.publish_timeout
                    )));
                }
            };
            let retry = match &failure {
                Failure::Final(e) => return Err(e.clone()),
                Failure::Stream(_) => true,
                Failure::Publish(e) => match e.kind() {
                    PublishErrorKind::StreamNotFound => {
                        // Deleted, or the server's JetStream is still starting: make sure.
                        conn.forget_stream(topic);
                        known = false;
                        true
                    }
                    PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => true,
                    _ => false,
                },
            };
            let now = Instant::now();
            if !retry || now + pause >= deadline {
                return Err(failure.to_error(topic));
            }
            tracing::debug!(%topic, error = %failure.to_error(topic), "nats: retrying a publish");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }

    async fn subscribe_core(
        &self,
        conn: &Conn,
        topic: &str,
        handler: EventHandler,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        check_topic(topic, true)?;
        let subscribed = match options.get_queue() {
            Some(queue) => {
                check_queue(queue)?;
                conn.client
                    .queue_subscribe(topic.to_owned(), queue.to_owned())
                    .await
            }
            None => conn.client.subscribe(topic.to_owned()).await,
        };
        let subscription =
            subscribed.map_err(|e| unavailable(format!("nats: subscribe to {topic}: {e}")))?;
        // The subscription is live once the server answered a ping sent after it.
        match tokio::time::timeout(self.config.publish_timeout, conn.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(unavailable(format!("nats: subscribe to {topic}: {e}"))),
            Err(_) => {
                return Err(unavailable(format!(
                    "nats: subscribe to {topic}: not confirmed within {:?}",
                    self.config.publish_timeout
                )));
            }
        }
        let control = Control::new(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let task = tokio::spawn(run_core(
            subscription,
            Arc::from(topic),
            handler,
            options.is_manual_ack(),
            control.clone(),
        ));
        control.set_task(task);
        self.register(&control);
        Ok(Box::new(NatsSubscription {
            shared: self.shared.clone(),
            topic: topic.to_owned(),
            options,
            control,
        }))
    }

    async fn subscribe_jetstream(
        &self,
        conn: &Conn,
        topic: &str,
        handler: EventHandler,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        check_topic(topic, false)?;
        if let Some(queue) = options.get_queue() {
            check_queue(queue)?;
        }
        let control = Control::new(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let mut sub = JetStreamSub {
            js: conn.jetstream()?.clone(),
            topic: Arc::from(topic),
            durable: options.get_queue().map(js_name),
            config: self.config.clone(),
            handler,
            manual_ack: options.is_manual_ack(),
            control: control.clone(),
            next_seq: 0,
            nacked: BTreeSet::new(),
        };
        let consumer = match tokio::time::timeout(self.config.publish_timeout, sub.open()).await {
            Ok(Ok(consumer)) => consumer,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(unavailable(format!(
                    "nats: subscribe to {topic}: JetStream did not answer within {:?}",
                    self.config.publish_timeout
                )));
            }
        };
        conn.remember_stream(topic);
        let task = tokio::spawn(sub.run(consumer));
        control.set_task(task);
        self.register(&control);
        Ok(Box::new(NatsSubscription {
            shared: self.shared.clone(),
            topic: topic.to_owned(),
            options,
            control,
        }))
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
            Mode::Core => self.subscribe_core(&conn, topic, handler, options).await,
            Mode::JetStream => {
                self.subscribe_jetstream(&conn, topic, handler, options)
                    .await
            }
        }
    }
}

impl Conn {
    fn jetstream(&self) -> Result<&jetstream::Context> {
        self.js.as_ref().ok_or_else(|| {
            Error::new(
                Code::Internal,
                "nats: JetStream used on a core NATS connection",
            )
        })
    }

    fn has_stream(&self, topic: &str) -> bool {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(topic)
    }

    fn remember_stream(&self, topic: &str) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_owned());
    }

    fn forget_stream(&self, topic: &str) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
    }

    async fn create_stream(&self, topic: &str) -> std::result::Result<(), Failure> {
        let js = self.jetstream().map_err(Failure::Final)?;
        js.get_or_create_stream(stream_config(topic))
            .await
            .map_err(|e| Failure::Stream(format!("stream {}: {e}", stream_name(topic))))?;
        self.remember_stream(topic);
        Ok(())
    }
}

/// Why a JetStream publish attempt failed.
enum Failure {
    /// Not worth retrying.
    Final(Error),
    /// Creating or looking up the stream failed.
    Stream(String),
    /// The publish failed.
    Publish(jetstream::context::PublishError),
}

impl Failure {
    fn to_error(&self, topic: &str) -> Error {
        match self {
            Failure::Final(e) => e.clone(),
            Failure::Stream(e) => unavailable(format!("nats: publish to {topic}: {e}")),
            Failure::Publish(e) => unavailable(format!("nats: publish to {topic}: {e}")),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Final(e)
    }
}

impl From<jetstream::context::PublishError> for Failure {
    fn from(e: jetstream::context::PublishError) -> Failure {
        Failure::Publish(e)
    }
}

/// What a subscription's task and its [`NatsSubscription`] share.
struct Control {
    id: u64,
    stopped: watch::Sender<bool>,
    /// Held while a message is handled, so stopping can wait for the delivery in progress.
    gate: tokio::sync::Mutex<()>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// The ephemeral JetStream consumer of the subscription, to delete when it ends.
    ephemeral: Mutex<Option<(jetstream::Context, String, String)>>,
}

impl Control {
    fn new(id: u64) -> Arc<Control> {
        Arc::new(Control {
            id,
            stopped: watch::Sender::new(false),
            gate: tokio::sync::Mutex::new(()),
            task: Mutex::new(None),
            ephemeral: Mutex::new(None),
        })
    }

    fn set_task(&self, task: JoinHandle<()>) {
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    fn stop(&self) {
        self.stopped.send_replace(true);
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    /// After [`Control::stop`]: waits for the delivery in progress (at most `grace`), then
    /// cancels the task (wherever it waits: a pull, re-creating a consumer) and deletes the
    /// ephemeral consumer.
    async fn end(&self, grace: Option<Duration>) {
        match grace {
            Some(grace) => drop(tokio::time::timeout(grace, self.gate.lock()).await),
            None => drop(self.gate.lock().await),
        }
        self.abort();
        self.delete_ephemeral().await;
    }

    fn abort(&self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
        }
    }

    async fn delete_ephemeral(&self) {
        let ephemeral = self
            .ephemeral
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((js, stream, consumer)) = ephemeral {
            let delete = js.delete_consumer_from_stream(&consumer, &stream);
            match tokio::time::timeout(API_TIMEOUT, delete).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%stream, %consumer, error = %e, "nats: deleting a consumer")
                }
                Err(_) => {
                    tracing::debug!(%stream, %consumer, "nats: deleting a consumer timed out")
                }
            }
        }
    }

    /// Resolves once the subscription is stopped.
    async fn stopped(stop: &mut watch::Receiver<bool>) {
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// Handles a core subscription's messages, one at a time, until stopped.
async fn run_core(
    mut subscription: async_nats::Subscriber,
    topic: Arc<str>,
    handler: EventHandler,
    manual_ack: bool,
    control: Arc<Control>,
) {
    let mut stop = control.stopped.subscribe();
    loop {
        let msg = tokio::select! {
            biased;
            _ = Control::stopped(&mut stop) => break,
            msg = subscription.next() => match msg {
                Some(msg) => msg,
                None => break,
            },
        };
        let _gate = control.gate.lock().await;
        if control.is_stopped() {
            break;
        }
        let event = Event::new(topic.clone(), message(msg.headers, msg.payload), None);
        let _ = dispatch(&handler, event, None, manual_ack).await;
    }
    // Dropping the subscription unsubscribes on the server.
}

/// A JetStream subscription: its consumer, re-created when lost, and the task handling it.
struct JetStreamSub {
    js: jetstream::Context,
    topic: Arc<str>,
    /// The queue group's consumer name; `None` for an ephemeral consumer.
    durable: Option<String>,
    config: Arc<Config>,
    handler: EventHandler,
    manual_ack: bool,
    control: Arc<Control>,
    /// Ephemeral consumers: the stream sequence after the last message received, and
    /// those refused and not handled since: where a re-created consumer starts.
    next_seq: u64,
    nacked: BTreeSet<u64>,
}

impl JetStreamSub {
    /// Creates (or finds) the stream and the consumer.
    async fn open(&mut self) -> Result<PullConsumer> {
        let stream_name = stream_name(&self.topic);
        let stream = self
            .js
            .get_or_create_stream(stream_config(&self.topic))
            .await
            .map_err(|e| unavailable(format!("nats: stream {stream_name}: {e}")))?;
        let mut config = pull::Config {
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            max_ack_pending: i64::try_from(self.config.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        match &self.durable {
            Some(name) => {
                config.durable_name = Some(name.clone());
                stream
                    .get_or_create_consumer(name, config)
                    .await
                    .map_err(|e| {
                        unavailable(format!("nats: consumer {name} of {stream_name}: {e}"))
                    })
            }
            None => {
                if self.next_seq == 0 {
                    self.next_seq = stream.cached_info().state.last_sequence + 1;
                }
                let start = self
                    .nacked
                    .first()
                    .map_or(self.next_seq, |&n| n.min(self.next_seq));
                config.deliver_policy = DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                };
                config.inactive_threshold = EPHEMERAL_INACTIVE;
                let consumer = stream
                    .create_consumer(config)
                    .await
                    .map_err(|e| unavailable(format!("nats: a consumer of {stream_name}: {e}")))?;
                let name = consumer.cached_info().name.clone();
                let old = self
                    .control
                    .ephemeral
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace((self.js.clone(), stream_name, name));
                if let Some((js, stream, name)) = old {
                    // The consumer this one replaces, should it still exist.
                    tokio::spawn(async move {
                        let delete = js.delete_consumer_from_stream(&name, &stream);
                        let _ = tokio::time::timeout(API_TIMEOUT, delete).await;
                    });
                }
                Ok(consumer)
            }
        }
    }

    /// Handles messages until stopped; re-creates the consumer when it is lost.
    async fn run(mut self, consumer: PullConsumer) {
        let mut stop = self.control.stopped.subscribe();
        let mut consumer = Some(consumer);
        let mut pause = BACKOFF_MIN;
        while !self.control.is_stopped() {
            let current = match consumer.take() {
                Some(c) => Ok(c),
                None => self.open().await,
            };
            let messages = match current {
                Ok(c) => c
                    .stream()
                    .max_messages_per_batch(BATCH)
                    .heartbeat(HEARTBEAT)
                    .messages()
                    .await
                    .map_err(|e| unavailable(format!("nats: pulling from {}: {e}", self.topic))),
                Err(e) => Err(e),
            };
            match messages {
                Ok(mut messages) => loop {
                    let next = tokio::select! {
                        biased;
                        _ = Control::stopped(&mut stop) => return,
                        next = messages.next() => next,
                    };
                    match next {
                        Some(Ok(msg)) => {
                            pause = BACKOFF_MIN;
                            self.handle(msg).await;
                        }
                        Some(Err(e))
                            if e.kind() == MessagesErrorKind::MissingHeartbeat
                                && self.js.client().connection_state() != State::Connected =>
                        {
                            // Disconnected: the pull resumes by itself on reconnection.
                        }
                        Some(Err(e)) => {
                            tracing::warn!(topic = %self.topic, error = %e, "nats: JetStream pull failed, re-creating the consumer");
                            break;
                        }
                        None => break,
                    }
                },
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "nats: JetStream consumer unavailable, retrying");
                }
            }
            tokio::select! {
                biased;
                _ = Control::stopped(&mut stop) => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }

    async fn handle(&mut self, msg: jetstream::Message) {
        let seq = msg.info().map(|info| info.stream_sequence).ok();
        let (msg, acker) = msg.split();
        let acker: Arc<dyn Acker> = Arc::new(JetStreamAcker {
            acker,
            settled: AtomicBool::new(false),
        });
        let _gate = self.control.gate.lock().await;
        if self.control.is_stopped() {
            // Handed back at once, for another member of the group.
            let _ = acker.settle(Outcome::Nack).await;
            return;
        }
        let event = Event::new(
            self.topic.clone(),
            message(msg.headers, msg.payload),
            Some(acker.clone()),
        );
        let result = dispatch(&self.handler, event, Some(&acker), self.manual_ack).await;
        if let (None, Some(seq)) = (&self.durable, seq) {
            if Outcome::of(&result) == Outcome::Nack {
                self.nacked.insert(seq);
            } else {
                self.nacked.remove(&seq);
            }
            self.next_seq = self.next_seq.max(seq + 1);
        }
    }
}

/// Settles a JetStream message: `+ACK`, `-NAK` (delivered again) or `+TERM` (never again).
struct JetStreamAcker {
    acker: jetstream::message::Acker,
    settled: AtomicBool,
}

#[async_trait::async_trait]
impl Acker for JetStreamAcker {
    async fn settle(&self, outcome: Outcome) -> Result<()> {
        if self.settled.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let kind = match outcome {
            Outcome::Ack => AckKind::Ack,
            Outcome::Nack => AckKind::Nak(None),
            Outcome::Reject => AckKind::Term,
        };
        self.acker
            .ack_with(kind)
            .await
            .map_err(|e| unavailable(format!("nats: acknowledging a message: {e}")))
    }
}

struct NatsSubscription {
    shared: Arc<Shared>,
    topic: String,
    options: SubscribeOptions,
    control: Arc<Control>,
}

#[async_trait::async_trait]
impl Subscription for NatsSubscription {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn unsubscribe(&self) -> Result<()> {
        self.control.stop();
        self.shared
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.control.id);
        // The delivery in progress finishes; no other starts.
        self.control.end(None).await;
        Ok(())
    }
}

fn unavailable(detail: String) -> Error {
    Error::new(Code::Unavailable, detail)
}

/// Credentials a NATS address carries (`nats://user:password@host`, `nats://token@host`).
#[derive(Clone)]
enum Credentials {
    UserPassword(String, String),
    Token(String),
}

/// Never shows the secrets.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::UserPassword(user, _) => write!(f, "UserPassword({user:?}, ***)"),
            Credentials::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// `nats://host:port[,host:port...]` (scheme optional after the first): the address as
/// reported (passwords hidden), the servers without their credentials, and the credentials
/// (the first server's that has any: a cluster's servers share them).
fn parse_address(address: &str) -> Result<(String, Vec<ServerAddr>, Option<Credentials>)> {
    let address = match address.trim() {
        "" => DEFAULT_ADDRESS,
        a => a,
    };
    // Reported (in logs, errors and `Broker::address`) without its passwords and tokens.
    let shown = crate::redact::address(address);
    let mut credentials = None;
    let mut servers = Vec::new();
    for s in address.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |e: &dyn std::fmt::Display| {
            Error::new(
                Code::InvalidArgument,
                format!(
                    "nats: bad server address {:?}: {e}",
                    crate::redact::address(s)
                ),
            )
        };
        let server = s.parse::<ServerAddr>().map_err(|e| bad(&e))?;
        if credentials.is_none() {
            credentials = match (server.username(), server.password()) {
                (Some(user), Some(password)) => Some(Credentials::UserPassword(
                    user.to_owned(),
                    password.to_owned(),
                )),
                (Some(token), None) => Some(Credentials::Token(token.to_owned())),
                _ => None,
            };
        }
        let host = match server.host() {
            h if h.contains(':') => format!("[{h}]"),
            h => h.to_owned(),
        };
        let bare = format!("{}://{host}:{}", server.scheme(), server.port());
        servers.push(bare.parse::<ServerAddr>().map_err(|e| bad(&e))?);
    }
    if servers.is_empty() {
        return Err(Error::new(
            Code::InvalidArgument,
            format!("nats: no server in {shown:?}"),
        ));
    }
    Ok((shown, servers, credentials))
}

/// The topics published to, checked and kept for the life of the program (up to
/// [`INTERNED_TOPICS`]): their subjects are static, made, cloned and dropped without an
/// allocation or an atomic. Programs publish to a handful of topics; past the limit, a topic's
/// subject is a copy made for each publish.
static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

thread_local! {
    /// The interned topics this thread published to last (up to [`RECENT_SUBJECTS`]): found
    /// again without a lock.
    static RECENT: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// The subject of `topic`, a literal subject.
fn subject(topic: &str) -> Result<Subject> {
    let recent = RECENT.with_borrow(|recent| recent.iter().rev().find(|t| **t == topic).copied());
    if let Some(topic) = recent {
        return Ok(Subject::from_static(topic));
    }
    check_topic(topic, false)?;
    let interned = {
        let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        match interned.get(topic) {
            Some(topic) => Some(*topic),
            None if interned.len() < INTERNED_TOPICS => {
                let topic: &'static str = Box::leak(topic.into());
                interned.insert(topic);
                Some(topic)
            }
            None => None,
        }
    };
    let Some(topic) = interned else {
        return Ok(Subject::from(topic));
    };
    RECENT.with_borrow_mut(|recent| {
        if recent.len() == RECENT_SUBJECTS {
            recent.remove(0);
        }
        recent.push(topic);
    });
    Ok(Subject::from_static(topic))
}

/// A NATS subject: dot-separated non-empty tokens without whitespace; `*` and a final `>`
/// are wildcards, allowed where `wildcards`.
fn check_topic(topic: &str, wildcards: bool) -> Result<()> {
    let mut tokens = topic.split('.').peekable();
    let mut ok = !topic.is_empty();
    while let Some(token) = tokens.next() {
        let last = tokens.peek().is_none();
        ok &= !token.is_empty() && !token.bytes().any(|c| c.is_ascii_whitespace());
        match token {
            "*" => ok &= wildcards,
            ">" => ok &= wildcards && last,
            _ => {}
        }
    }
    if ok {
        Ok(())
    } else if wildcards {
        Err(Error::new(
            Code::InvalidArgument,
            format!("nats: {topic:?} is not a subject (dot-separated tokens, no spaces)"),
        ))
    } else {
        Err(Error::new(
            Code::InvalidArgument,
            format!(
                "nats: {topic:?} is not a literal subject (dot-separated tokens, no spaces, no wildcards)"
            ),
        ))
    }
}

fn check_queue(queue: &str) -> Result<()> {
    if queue.bytes().any(|c| c.is_ascii_whitespace()) {
        return Err(Error::new(
            Code::InvalidArgument,
            format!("nats: queue group {queue:?} contains whitespace"),
        ));
    }
    Ok(())
}

/// NATS headers from a message's; fails on what would break the protocol (a name with `:`
/// or outside printable ASCII, a value with a line break). Names and values move over
/// without copies: a static name stays static, a `String` becomes the NATS name's bytes.
fn headers<V>(header: impl IntoIterator<Item = (Cow<'static, str>, V)>) -> Result<HeaderMap>
where
    V: AsRef<str> + IntoHeaderValue,
{
    let mut map = HeaderMap::new();
    for (key, value) in header {
        // Folds without early exits, which compile to a few vector instructions.
        let valid_key = !key.is_empty()
            && key
                .bytes()
                .fold(true, |ok, c| ok & c.is_ascii_graphic() & (c != b':'));
        let valid_value = !value
            .as_ref()
            .bytes()
            .fold(false, |bad, c| bad | (c == b'\r') | (c == b'\n'));
        if !(valid_key && valid_value) {
            return Err(Error::new(
                Code::InvalidArgument,
                format!(
                    "nats: header {:?}: {:?} cannot be sent",
                    key,
                    value.as_ref()
                ),
            ));
        }
        let name = match key {
            Cow::Borrowed(name) => HeaderName::from_static(name),
            Cow::Owned(name) => name.into_header_name(),
        };
        map.insert(name, value);
    }
    Ok(map)
}

/// A delivered NATS message as a broker message (the first value of each header).
fn message(headers: Option<HeaderMap>, body: Bytes) -> Envelope {
    // Collected, so sorted once: a message with many headers costs no quadratic inserts.
    let header: Header = headers
        .iter()
        .flat_map(HeaderMap::iter)
        .filter_map(|(key, values)| {
            let value = values.first()?;
            Some((key.to_string().into(), value.as_str().to_owned()))
        })
        .collect();
    Envelope { header, body }
}

fn stream_config(topic: &str) -> stream::Config {
    stream::Config {
        name: stream_name(topic),
        subjects: vec![topic.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Interest,
        ..Default::default()
    }
}

/// The JetStream stream of `topic`.
pub fn stream_name(topic: &str) -> String {
    format!("{STREAM_PREFIX}{}", js_name(topic))
}

/// A valid JetStream name for `raw`: `.` becomes `_`; anything lossier (other characters,
/// or truncation) appends `__` and a hash of `raw`, which plain names never contain.
fn js_name(raw: &str) -> String {
    const KEEP: usize = 64;
    let mut name: String = raw
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' => c,
            _ => '_',
        })
        .collect();
    let lossy = raw
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        || name.contains("__")
        || name.len() > KEEP;
    if lossy {
        name.truncate(KEEP - 18);
        name.push_str(&format!("__{:016x}", fnv1a(raw.as_bytes())));
    }
    name
}

/// FNV-1a: a hash that stays the same across builds and processes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let (address, servers, _) = parse_address("").unwrap();
        assert_eq!(address, DEFAULT_ADDRESS);
        assert_eq!(servers.len(), 1);
        let (_, servers, _) = parse_address("nats://127.0.0.1:4222, 127.0.0.1:4223").unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].port(), 4223);
        assert!(parse_address("http://127.0.0.1:4222").is_err());
        assert!(parse_address(",").is_err());
        // Credentials are taken apart from the servers, and hidden where shown.
        let (shown, servers, credentials) =
            parse_address("nats://u:s3cret@127.0.0.1:4222,tls://tok@[::1]:4223").unwrap();
        assert_eq!(shown, "nats://u:***@127.0.0.1:4222,tls://***@[::1]:4223");
        assert_eq!(servers[0].as_url_str(), "nats://127.0.0.1:4222");
        assert!(servers[1].tls_required() && servers[1].username().is_none());
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("***") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn topics() {
        assert!(check_topic("orders.new", false).is_ok());
        assert!(check_topic("orders.*", true).is_ok());
        assert!(check_topic("orders.>", true).is_ok());
        assert!(check_topic("orders.*", false).is_err());
        assert!(check_topic("orders.>.x", true).is_err());
        assert!(check_topic("orders..new", true).is_err());
        assert!(check_topic("orders.new.", true).is_err());
        assert!(check_topic("orders new", true).is_err());
        assert!(check_topic("", true).is_err());
    }

    #[test]
    fn subjects_of_topics() {
        // Checked on the way in, found again after; past the interning limit, still right.
        assert!(subject("orders.*").is_err());
        assert!(subject("orders new").is_err());
        for round in 0..2 {
            for i in 0..INTERNED_TOPICS + 100 {
                let topic = format!("subjects.test.{i}");
                let subject = subject(&topic).unwrap();
                assert_eq!(subject.as_str(), topic, "round {round}");
            }
        }
        assert_eq!(subject("orders.new").unwrap().as_str(), "orders.new");
        assert!(subject("orders.*").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(stream_name("orders.new"), "MICRO_orders_new");
        assert_eq!(js_name("billing"), "billing");
        let underscored = js_name("orders_new");
        assert!(underscored.starts_with("orders_new__"), "{underscored}");
        assert_ne!(js_name("a.b"), js_name("a_b"));
        assert_ne!(js_name("a b"), js_name("a_b"));
        let long = js_name(&"x".repeat(300));
        assert_eq!(long.len(), 64);
        assert_ne!(long, js_name(&"x".repeat(301)));
        assert!(
            js_name("a.*>/ é")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }

    #[test]
    fn header_conversion() {
        let mut header = crate::broker::Header::new();
        header.insert("Content-Type".into(), "text/plain".to_owned());
        header.insert(String::from("Micro-Topic").into(), "t".to_owned());
        let map = headers(header.clone()).unwrap();
        let back = message(Some(map), Bytes::from_static(b"x"));
        assert_eq!(back.header, header);
        assert!(headers([("Bad:Name".into(), "v")]).is_err());
        assert!(headers([("Bad Name".into(), "v")]).is_err());
        assert!(headers([(String::from("Bad\u{e9}").into(), "v")]).is_err());
        assert!(headers([("Name".into(), "line\r\nbreak")]).is_err());
        assert!(
            headers(Vec::<(Cow<'static, str>, String)>::new())
                .unwrap()
                .is_empty()
        );
    }
}
