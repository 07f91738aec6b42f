//! Pub/sub: publish a message to a topic; every subscriber, or one member of each queue
//! group, handles it.
//!
//! The [`Broker`] trait is go-micro's: `connect`, `disconnect`, `publish(topic, message)`,
//! `subscribe(topic, handler, options)`. An [`Envelope`] is a header map and a body; the header
//! `Content-Type` says how the body is encoded, so typed subscribers can decode it (the
//! client's `publish` and the server's subscribers, see [`crate::Client::publish`] and
//! [`crate::server::Subscriber`], do that for you).
//!
//! Backends:
//! - [`memory`]: in-process, for tests and single-process programs;
//! - [`http`]: the default, no server needed. Each subscriber is a node of the service
//!   `micro.http.broker` in the registry (version: the queue, or `ff.http.broadcast`), and a
//!   message is a JSON POST to it, as go-micro's HTTP broker does;
//! - `nats` (feature `nats`): NATS core subjects and queue groups, or JetStream durable
//!   consumers for at-least-once delivery (`--broker jetstream`);
//! - `rabbitmq` (feature `rabbitmq`): a durable topic exchange, durable queues per queue group,
//!   manual acknowledgements.
//!
//! # Delivery
//! A handler that returns `Ok` acknowledges its message (unless the subscription asked for
//! manual acknowledgement, see [`SubscribeOptions::manual_ack`]); one that returns an error
//! does not, and the message is delivered again where the backend can: JetStream and RabbitMQ.
//! The memory, HTTP and NATS core backends deliver at most once: a failed message is logged
//! and gone (HTTP reports the failure to the publisher, whose `publish` returns the error).
//! A handler that panics counts as one that failed (an `INTERNAL` error): the panic is
//! logged, and the subscription keeps handling its messages.
//! An error with code `INVALID_ARGUMENT` (a message that cannot be decoded) is never
//! redelivered: it would fail forever.

pub mod http;
pub mod memory;
mod named;

pub use named::from_name;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;

use crate::codec::Codec;
use crate::error::{Code, Error, Result};

/// The header that names a message's topic (set by publishers, as go-micro does).
pub const TOPIC_HEADER: &str = "Micro-Topic";
/// The header with a message's unique id (set by [`crate::Client::publish`]).
pub const ID_HEADER: &str = "Micro-Id";
/// The header that says how the body is encoded.
pub const CONTENT_TYPE_HEADER: &str = "Content-Type";

/// A message's headers: go-micro's `map[string]string`, case-sensitive, in key order.
///
/// A [`LiteMap`](litemap::LiteMap): a map kept as one sorted vector, with `BTreeMap`'s
/// methods (`insert`, `get`, `remove`, `iter`, `entry`, ...). A message has a handful of
/// headers, for which one vector is cheaper than a tree's nodes; building one from many
/// entries (`collect`, `extend`, decoding) sorts them once.
///
/// A key is a [`Cow`]: a `&'static str` key (the usual case: `"Content-Type"`, the header
/// constants of this module) is kept by reference and costs no allocation, on the way in or
/// on to a backend; a `String` key is kept as it is.
///
/// ```
/// use micro_runtime::broker::Header;
/// let mut header = Header::new();
/// header.insert("Micro-Topic".into(), "orders".to_owned());
/// header.insert("Content-Type".into(), "application/json".to_owned());
/// let keys: Vec<&str> = header.iter().map(|(k, _)| k.as_ref()).collect();
/// assert_eq!(keys, ["Content-Type", "Micro-Topic"]);
/// assert_eq!(header.get("Micro-Topic").map(String::as_str), Some("orders"));
/// ```
pub type Header = litemap::LiteMap<Cow<'static, str>, String>;

/// A message: headers and a body, go-micro's `broker.Message`.
///
/// ```
/// use micro_runtime::broker::Envelope;
/// let msg = Envelope::new("hello").with_header("Content-Type", "text/plain");
/// assert_eq!(msg.header("content-type"), None); // headers are case-sensitive, as in go-micro
/// assert_eq!(msg.header("Content-Type"), Some("text/plain"));
/// assert_eq!(&msg.body[..], b"hello");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Headers (`Content-Type`, `Micro-Topic`, `Micro-Id`, the publisher's metadata).
    pub header: Header,
    /// The encoded message.
    pub body: Bytes,
}

impl Envelope {
    /// A message with this body and no headers.
    pub fn new(body: impl Into<Bytes>) -> Envelope {
        Envelope {
            header: Header::new(),
            body: body.into(),
        }
    }

    /// Adds a header. The key is a `&'static str` (kept without a copy) or a `String`.
    pub fn with_header(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Envelope {
        put_header(&mut self.header, key.into(), value.into());
        self
    }

    /// A header's value.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.header.get(key).map(String::as_str)
    }

    /// The codec the body is in, from `Content-Type`: JSON for `application/json` and
    /// `application/grpc+json`, protobuf otherwise (go-micro's default).
    pub fn codec(&self) -> Codec {
        match self.header(CONTENT_TYPE_HEADER) {
            Some(ct) if ct.contains("json") => Codec::Json,
            _ => Codec::Proto,
        }
    }
}

/// Adds a header to `header`, replacing one of the same key: appended without a search when
/// it sorts after the last one (the usual case: headers added in key order).
pub(crate) fn put_header(header: &mut Header, key: Cow<'static, str>, value: String) {
    if let Some((key, value)) = header.try_append(key, value) {
        header.insert(key, value);
    }
}

/// The content type a publisher writes for `codec` (go-micro's names).
pub fn content_type(codec: Codec) -> &'static str {
    match codec {
        Codec::Json => "application/json",
        _ => "application/protobuf",
    }
}

/// What becomes of a delivered message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: not delivered again.
    Ack,
    /// Not handled: delivered again where the backend can.
    Nack,
    /// Never to be handled (it cannot be decoded): dropped, or dead-lettered where the
    /// backend is set up so.
    Reject,
}

impl Outcome {
    /// The outcome of a handler's result.
    pub fn of(result: &Result<()>) -> Outcome {
        match result {
            Ok(()) => Outcome::Ack,
            Err(e) if e.code() == Code::InvalidArgument => Outcome::Reject,
            Err(_) => Outcome::Nack,
        }
    }
}

/// Settles a delivered message with the backend. Backends make it idempotent: the first
/// outcome counts, later ones do nothing.
#[async_trait::async_trait]
pub trait Acker: Send + Sync {
    /// Settles the message.
    async fn settle(&self, outcome: Outcome) -> Result<()>;
}

/// Polls `future` once: its output if it is done at once, `Pending` (and `future` left to be
/// awaited) otherwise. Publishes are usually done at once, so they arm no timer until then.
pub(crate) async fn poll_once<F: Future + Unpin>(mut future: F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(Pin::new(&mut future).poll(cx))).await
}

/// A boxed future, as the broker's handlers return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A delivered message and its topic; go-micro's `broker.Event`.
pub struct Event {
    topic: Arc<str>,
    message: Envelope,
    acker: Option<Arc<dyn Acker>>,
}

impl Event {
    /// An event; `acker` settles it with the backend (`None` where nothing needs settling).
    pub fn new(topic: Arc<str>, message: Envelope, acker: Option<Arc<dyn Acker>>) -> Event {
        Event {
            topic,
            message,
            acker,
        }
    }

    /// The topic it was published to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The message.
    pub fn message(&self) -> &Envelope {
        &self.message
    }

    /// Takes the message out.
    pub fn into_message(self) -> Envelope {
        self.message
    }

    /// Acknowledges the message now (with [`SubscribeOptions::manual_ack`]; otherwise the
    /// handler's `Ok` does it).
    pub async fn ack(&self) -> Result<()> {
        match &self.acker {
            Some(a) => a.settle(Outcome::Ack).await,
            None => Ok(()),
        }
    }

    /// Refuses the message now: it is delivered again where the backend can.
    pub async fn nack(&self) -> Result<()> {
        match &self.acker {
            Some(a) => a.settle(Outcome::Nack).await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("topic", &self.topic)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// Handles the events of a subscription.
pub type EventHandler = Arc<dyn Fn(Event) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// An [`EventHandler`] from an async closure.
///
/// ```
/// use micro_runtime::broker::{self, Event};
/// let handler = broker::handler(|event: Event| async move {
///     println!("{} bytes on {}", event.message().body.len(), event.topic());
///     Ok(())
/// });
/// # let _ = handler;
/// ```
pub fn handler<F, Fut>(f: F) -> EventHandler
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}

/// Runs `handler` on an event and settles it by the result (unless `manual_ack`, where an
/// `Ok` leaves acknowledging to the handler). What backends call for each delivery.
///
/// A handler that panics fails like one that returns an error (`INTERNAL`, "the subscriber
/// panicked"): the panic is logged, the message refused (delivered again where the backend
/// can), and the subscription goes on with its next message.
pub async fn dispatch(
    handler: &EventHandler,
    event: Event,
    acker: Option<&Arc<dyn Acker>>,
    manual_ack: bool,
) -> Result<()> {
    let topic = event.topic.clone();
    // The call is inside the guarded future, so a panic building the handler's future is
    // caught as well as one while it runs.
    let run = AssertUnwindSafe(async move { handler(event).await }).catch_unwind();
    let result = match run.await {
        Ok(result) => {
            if let Err(e) = &result {
                tracing::warn!(%topic, error = %e, "subscriber failed");
            }
            result
        }
        Err(panic) => {
            let reason = panic_message(panic.as_ref());
            tracing::error!(%topic, panic = %reason, "subscriber panicked; the message is refused");
            Err(Error::new(
                Code::Internal,
                format!("the subscriber panicked: {reason}"),
            ))
        }
    };
    let outcome = Outcome::of(&result);
    if let Some(acker) = acker
        && !(manual_ack && outcome == Outcome::Ack)
        && let Err(e) = acker.settle(outcome).await
    {
        tracing::warn!(%topic, error = %e, ?outcome, "settling a message failed");
    }
    result
}

/// What a panic said: its message when it was given one (`panic!("...")`), or a placeholder.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Options of a subscription.
///
/// ```
/// use micro_runtime::broker::SubscribeOptions;
/// let opts = SubscribeOptions::new().queue("billing").manual_ack(true);
/// assert_eq!(opts.get_queue(), Some("billing"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    queue: Option<String>,
    manual_ack: bool,
}

impl SubscribeOptions {
    /// Broadcast (every subscriber gets every message), automatic acknowledgement.
    pub fn new() -> SubscribeOptions {
        SubscribeOptions::default()
    }

    /// Joins the queue group `queue`: each message goes to one member of the group. For the
    /// durable backends (JetStream, RabbitMQ) the group is also what persists: messages
    /// published while no member runs wait for one.
    pub fn queue(mut self, queue: impl Into<String>) -> SubscribeOptions {
        self.queue = Some(queue.into()).filter(|q: &String| !q.is_empty());
        self
    }

    /// The handler acknowledges messages itself with [`Event::ack`]; an `Ok` then does not.
    pub fn manual_ack(mut self, manual: bool) -> SubscribeOptions {
        self.manual_ack = manual;
        self
    }

    /// The queue group, if any.
    pub fn get_queue(&self) -> Option<&str> {
        self.queue.as_deref()
    }

    /// Whether the handler acknowledges messages itself.
    pub fn is_manual_ack(&self) -> bool {
        self.manual_ack
    }
}

/// A live subscription.
#[async_trait::async_trait]
pub trait Subscription: Send + Sync {
    /// Its topic.
    fn topic(&self) -> &str;

    /// Its options.
    fn options(&self) -> &SubscribeOptions;

    /// Stops it: no more deliveries once this returns (a delivery being handled finishes).
    async fn unsubscribe(&self) -> Result<()>;
}

/// A message broker.
///
/// `publish` and `subscribe` connect first when the broker is not connected yet.
#[async_trait::async_trait]
pub trait Broker: Send + Sync + 'static {
    /// The backend's name as `--broker` takes it (`http`, `nats`, ...).
    fn name(&self) -> &'static str;

    /// Where it is: the server's address, or for `http` the subscribers' listening address.
    fn address(&self) -> String;

    /// Connects (or starts listening); connecting a connected broker does nothing.
    async fn connect(&self) -> Result<()>;

    /// Disconnects, ending every subscription; publishes in flight finish first.
    async fn disconnect(&self) -> Result<()>;

    /// Publishes `message` to `topic`. Returns once the backend has it (for the durable
    /// backends: once the server confirmed it is stored).
    async fn publish(&self, topic: &str, message: Envelope) -> Result<()>;

    /// Subscribes `handler` to `topic`.
    async fn subscribe(
        &self,
        topic: &str,
        handler: EventHandler,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the outcomes it is asked to settle.
    #[derive(Default)]
    struct Outcomes(Mutex<Vec<Outcome>>);

    #[async_trait::async_trait]
    impl Acker for Outcomes {
        async fn settle(&self, outcome: Outcome) -> Result<()> {
            self.0.lock().unwrap().push(outcome);
            Ok(())
        }
    }

    /// A panic in the handler's future, or in the handler building it, is an `INTERNAL`
    /// error and a refused message, not a panic of the caller; with or without manual
    /// acknowledgement.
    #[tokio::test]
    async fn a_panicking_handler_is_a_failed_one() {
        let in_future = handler(|_: Event| async { panic!("boom") });
        let in_call: EventHandler =
            Arc::new(|_: Event| -> BoxFuture<'static, Result<()>> { panic!("bang") });
        for (h, said) in [(in_future, "boom"), (in_call, "bang")] {
            for manual_ack in [false, true] {
                let outcomes = Arc::new(Outcomes::default());
                let acker: Arc<dyn Acker> = outcomes.clone();
                let event = Event::new(Arc::from("t"), Envelope::new("x"), Some(acker.clone()));
                let err = dispatch(&h, event, Some(&acker), manual_ack)
                    .await
                    .unwrap_err();
                assert_eq!(err.code(), Code::Internal);
                assert!(err.detail().contains("panicked"), "{err}");
                assert!(err.detail().contains(said), "{err}");
                assert_eq!(*outcomes.0.lock().unwrap(), [Outcome::Nack]);
            }
        }
    }

    #[test]
    fn headers_in_any_order() {
        let msg = Envelope::new("x")
            .with_header("b", "1")
            .with_header("c", "2")
            .with_header("a", "3")
            .with_header("c", "4")
            .with_header(String::from("b"), "5");
        let header: Vec<(&str, &str)> = msg
            .header
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect();
        assert_eq!(header, [("a", "3"), ("b", "5"), ("c", "4")]);
    }
}
