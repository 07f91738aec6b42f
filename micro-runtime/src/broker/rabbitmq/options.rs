//! The broker's settings: where RabbitMQ is, the exchange, the prefetch, the timeout and the
//! drain, with their defaults.

use std::time::Duration;

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
