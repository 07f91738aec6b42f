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
//!   with [`Event::ack`](super::Event::ack)); an error puts it back in its queue to be
//!   delivered again (to this subscriber or another member of its group), except an
//!   `INVALID_ARGUMENT` error, which drops it (`basic.reject` without requeue: dead-lettered
//!   where the queue is set up so).
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

mod connection;
mod control;
mod error;
mod message;
mod options;
mod subscription;

pub use options::{
    DEFAULT_ADDRESS, DEFAULT_DRAIN, DEFAULT_EXCHANGE, DEFAULT_PREFETCH, DEFAULT_TIMEOUT,
    RabbitOptions,
};

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use lapin::options::{BasicPublishOptions, QueueDeleteOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::uri::AMQPUri;
use tokio::time::timeout;

use self::connection::Inner;
use self::control::Sub;
use self::error::{amqp_error, timed_out};
use self::message::{check_short, properties};
use super::{Broker, Envelope, EventHandler, SubscribeOptions, Subscription};
use crate::error::{Code, Error, Result};

/// A RabbitMQ broker. Cheap to clone; clones share the connection and the subscriptions.
#[derive(Clone)]
pub struct RabbitBroker {
    inner: Arc<Inner>,
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
            inner: Arc::new(Inner::new(options, uri, shown)),
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
        if let Some(conn) = self.inner.conn.swap(None)
            && conn.connection.status().connected()
        {
            match timeout(t, conn.connection.close(200, "OK")).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "rabbitmq: closing the connection"),
                Err(_) => tracing::debug!("rabbitmq: closing the connection timed out"),
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
        subscription::subscribe(&self.inner, topic, handler, options).await
    }
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
}
