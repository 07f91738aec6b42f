//! The connection a broker's clones share: made on first use and again when it broke, its
//! publishing channel (confirm mode, exchange declared), and the channels subscriptions
//! consume from (queue declared and bound).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio::time::timeout;

use super::control::Sub;
use super::error::{amqp_error, timed_out};
use super::options::RabbitOptions;
use crate::broker::SubscribeOptions;
use crate::error::{Code, Error, Result};

/// What a broker's clones and its subscriptions share.
pub(super) struct Inner {
    pub(super) options: RabbitOptions,
    uri: AMQPUri,
    /// The address without its password, for messages and [`Broker::address`].
    pub(super) shown: String,
    /// The live connection, or none before the first use and after `disconnect`.
    pub(super) conn: ArcSwapOption<Conn>,
    /// Held while (re)connecting, so concurrent callers make one connection.
    pub(super) connecting: tokio::sync::Mutex<()>,
    subs: Mutex<HashMap<u64, Arc<Sub>>>,
    pub(super) next_id: AtomicU64,
    /// Read-held by each `publish`; `disconnect` write-locks it, so that publishes in flight
    /// finish before the connection closes.
    pub(super) publishing: tokio::sync::RwLock<()>,
}

/// A connection and its publishing channel (in confirm mode).
pub(super) struct Conn {
    /// Shared with the next `Conn` when only the publishing channel is replaced.
    pub(super) connection: Arc<Connection>,
    pub(super) publisher: Channel,
}

impl Conn {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

impl Inner {
    /// Not connected yet: `uri` is where `options` point, `shown` the address as reported.
    pub(super) fn new(options: RabbitOptions, uri: AMQPUri, shown: String) -> Inner {
        Inner {
            options,
            uri,
            shown,
            conn: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            subs: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            publishing: tokio::sync::RwLock::new(()),
        }
    }

    /// The live connection, connecting (again) when there is none or it broke.
    pub(super) async fn conn(&self) -> Result<Arc<Conn>> {
        if let Some(c) = self.conn.load_full()
            && c.usable()
        {
            return Ok(c);
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
    pub(super) async fn attach(
        &self,
        topic: &str,
        options: &SubscribeOptions,
    ) -> Result<(Channel, Consumer)> {
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

    pub(super) fn subs(&self) -> MutexGuard<'_, HashMap<u64, Arc<Sub>>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
