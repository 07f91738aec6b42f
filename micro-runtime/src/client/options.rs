//! What a client and each of its calls are set to: [`ClientOptions`], [`CallOptions`], and
//! the [`Method`] a generated client calls.

use std::time::Duration;

use crate::codec::Codec;
use crate::context::Metadata;
use crate::selector::Filter;
use crate::transport::DEFAULT_MAX_MESSAGE_SIZE;

/// A method to call: its gRPC path and its registry endpoint name.
///
/// Generated clients hold one per rpc as a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    /// `/greeter.Greeter/Hello`.
    pub path: &'static str,
    /// `Greeter.Hello`.
    pub endpoint: &'static str,
    /// Whether calling it twice does no harm (`option idempotency_level` in the .proto):
    /// then calls are also retried when the connection breaks after sending.
    pub idempotent: bool,
}

/// Settings of a [`Client`](super::Client).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Retries after the first attempt (only where safe, see [`Client`](super::Client)).
    pub retries: u32,
    /// Timeout of a call, retries included.
    pub request_timeout: Duration,
    /// Timeout of dialing a node.
    pub dial_timeout: Duration,
    /// HTTP/2 connections per node address.
    pub pool_size: usize,
    /// How long a service's node list is cached.
    pub cache_ttl: Duration,
    /// Largest message received or sent.
    pub max_message_size: usize,
    /// The codec of requests.
    pub codec: Codec,
    /// HTTP/2 keepalive: each connection is pinged this often (idle or not; 10 ms at
    /// least), and dropped when a ping goes unanswered for `keepalive_timeout`, so that
    /// calls to a node that froze or was cut off fail `UNAVAILABLE` (and new ones dial
    /// again) instead of waiting out their deadlines. Off by default, as in grpc-go and
    /// tonic. For servers of this crate; grpc-go servers by default take pings on a
    /// connection without calls, or more often than every 5 minutes, as abuse and close it
    /// (GOAWAY `too_many_pings`) unless their keepalive policy permits them.
    pub keepalive: Option<Duration>,
    /// How long a keepalive ping may go unanswered (grpc-go's 20 s by default; 10 ms at
    /// least).
    pub keepalive_timeout: Duration,
    /// Dial every node over TLS (feature `tls`).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::transport::tls::ClientTls>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            retries: 5,
            request_timeout: Duration::from_secs(30),
            dial_timeout: Duration::from_secs(5),
            pool_size: 1,
            cache_ttl: Duration::from_secs(60),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            codec: Codec::Proto,
            keepalive: None,
            keepalive_timeout: Duration::from_secs(20),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// Options of one call; unset fields take the client's.
///
/// ```
/// use std::time::Duration;
/// use micro_runtime::CallOptions;
/// let opts = CallOptions::new()
///     .timeout(Duration::from_millis(300))
///     .metadata("x-request-id", "42")
///     .address("127.0.0.1:9090");
/// assert_eq!(opts.get_timeout(), Some(Duration::from_millis(300)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    pub(super) timeout: Option<Duration>,
    pub(super) retries: Option<u32>,
    pub(super) address: Option<String>,
    pub(super) codec: Option<Codec>,
    pub(super) metadata: Metadata,
    /// Why a metadata entry was refused: the call fails with it.
    pub(super) bad_metadata: Option<String>,
    pub(super) idempotent: bool,
    pub(super) hash_key: Option<String>,
    pub(super) filter: Option<Filter>,
}

impl CallOptions {
    /// Defaults everywhere.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// The call's timeout, retries included.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Retries after the first attempt.
    pub fn retries(mut self, retries: u32) -> CallOptions {
        self.retries = Some(retries);
        self
    }

    /// Calls this `host:port` instead of looking the service up.
    pub fn address(mut self, address: impl Into<String>) -> CallOptions {
        self.address = Some(address.into());
        self
    }

    /// The codec of this call.
    pub fn codec(mut self, codec: Codec) -> CallOptions {
        self.codec = Some(codec);
        self
    }

    /// Adds a metadata entry, sent as a request header.
    pub fn metadata(mut self, key: &str, value: &str) -> CallOptions {
        if let Err(e) = self.metadata.insert(key, value) {
            self.bad_metadata = Some(e.detail().to_owned());
        }
        self
    }

    /// Sets all metadata at once.
    pub fn with_metadata(mut self, metadata: Metadata) -> CallOptions {
        self.metadata = metadata;
        self
    }

    /// Marks the call safe to repeat: it is also retried when the connection breaks after the
    /// request was sent, and on `UNAVAILABLE` answers.
    pub fn idempotent(mut self, idempotent: bool) -> CallOptions {
        self.idempotent = idempotent;
        self
    }

    /// The key of consistent hashing: calls with the same key go to the same node (with the
    /// `hash` selector).
    pub fn hash_key(mut self, key: impl Into<String>) -> CallOptions {
        self.hash_key = Some(key.into());
        self
    }

    /// Only nodes of this version.
    pub fn version(mut self, version: impl Into<String>) -> CallOptions {
        self.filter.get_or_insert_with(Filter::default).version = Some(version.into());
        self
    }

    /// Only nodes whose metadata has `key` = `value` (repeatable: all must match).
    pub fn node_metadata(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> CallOptions {
        self.filter
            .get_or_insert_with(Filter::default)
            .metadata
            .push((key.into(), value.into()));
        self
    }

    /// The timeout set, if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}
