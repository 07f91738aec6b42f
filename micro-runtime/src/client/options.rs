//! What a client and each of its calls are set to: [`ClientOptions`], [`CallOptions`] (or the
//! [`Context`] of the call being handled, through [`AsCallOptions`]), and the [`Method`] a
//! generated client calls.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::budget::RetryBudget;
use super::layer::{CallLayer, CallLayers};
use super::publish_layer::{PublishLayer, PublishLayers};
use crate::codec::Codec;
use crate::context::{Context, Metadata};
use crate::selector::{CircuitBreaker, Filter};
use crate::transport::DEFAULT_MAX_MESSAGE_SIZE;
use crate::transport::compression::Compression;

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
    /// Layers around every attempt of every call, outermost first
    /// ([`ClientOptions::wrap_call`]).
    pub layers: CallLayers,
    /// The circuit breaker of each node: with none, a node is left alone only after
    /// transport failures.
    pub breaker: Option<CircuitBreaker>,
    /// The cap of retries as a share of calls: with none, every call may make its retries.
    pub retry_budget: Option<RetryBudget>,
    /// Layers around every event published, outermost first
    /// ([`ClientOptions::wrap_publish`]).
    pub publish_layers: PublishLayers,
    /// How requests are compressed (`grpc-encoding`) unless a call says otherwise
    /// ([`CallOptions::compression`]): identity (none) by default. Responses are decompressed
    /// whatever this says: every request offers gzip and zstd (`grpc-accept-encoding`).
    pub compression: Compression,
}

impl ClientOptions {
    /// Adds a layer around every attempt of every call, inside those already added.
    pub fn wrap_call(mut self, layer: impl CallLayer) -> ClientOptions {
        self.layers.push(layer);
        self
    }

    /// Adds a layer around every event published, inside those already added.
    pub fn wrap_publish(mut self, layer: impl PublishLayer) -> ClientOptions {
        self.publish_layers.push(layer);
        self
    }
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
            layers: CallLayers::default(),
            breaker: None,
            retry_budget: None,
            publish_layers: PublishLayers::default(),
            compression: Compression::Identity,
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
    pub(super) deadline: Option<Instant>,
    pub(super) retries: Option<u32>,
    pub(super) address: Option<String>,
    pub(super) codec: Option<Codec>,
    pub(super) compression: Option<Compression>,
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

    /// The options of a call made while handling the call of `ctx`: the caller's deadline
    /// (the call ends when it passes, whatever time is left of the client's own timeout) and
    /// its metadata, without the headers that belong to one hop (`content-type`, `te`,
    /// `user-agent`, `grpc-*`, HTTP's connection headers, ...). The rest goes on, as in
    /// go-micro: credentials (`authorization`, `cookie`) and what handler layers added too;
    /// take them out with [`Metadata::remove`] on a copy when calling a service that should
    /// not see them. Generated clients and
    /// [`Client::call`](crate::Client::call) take a `&Context` as it is; this is for setting
    /// more on top.
    ///
    /// ```
    /// use std::time::Duration;
    /// use micro_runtime::{CallOptions, Context, Metadata};
    ///
    /// let mut metadata = Metadata::new();
    /// metadata.insert("x-user", "ada")?;
    /// metadata.insert("user-agent", "grpc-go/1.60")?;
    /// let ctx = Context::new().with_metadata(metadata);
    /// let opts = CallOptions::from_context(&ctx).retries(0);
    /// assert_eq!(opts.get_metadata().get("x-user"), Some("ada"));
    /// assert_eq!(opts.get_metadata().get("user-agent"), None);
    /// # Ok::<(), micro_runtime::Error>(())
    /// ```
    pub fn from_context(ctx: &Context) -> CallOptions {
        let mut metadata = Metadata::new();
        for (key, value) in ctx.metadata().headers() {
            if !hop_by_hop(key.as_str()) {
                metadata.append(key.clone(), value.clone());
            }
        }
        CallOptions {
            deadline: ctx.deadline(),
            metadata,
            ..CallOptions::default()
        }
    }

    /// The call's timeout, retries included.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// When the call ends at the latest, retries included (with a timeout too, the earlier
    /// of the two); sent to the server as the `grpc-timeout` left.
    pub fn deadline(mut self, deadline: Instant) -> CallOptions {
        self.deadline = Some(deadline);
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

    /// How this call's requests are compressed (`grpc-encoding`), instead of the client's
    /// [`ClientOptions::compression`]. Servers of this crate, grpc-go and grpcio answer in
    /// the same encoding.
    ///
    /// ```
    /// use micro_runtime::{CallOptions, Compression};
    /// let opts = CallOptions::new().compression(Compression::Gzip);
    /// assert_eq!(opts.get_compression(), Some(Compression::Gzip));
    /// ```
    pub fn compression(mut self, compression: Compression) -> CallOptions {
        self.compression = Some(compression);
        self
    }

    /// Adds a metadata entry, sent as a request header.
    pub fn metadata(mut self, key: &str, value: &str) -> CallOptions {
        if let Err(e) = self.metadata.insert(key, value) {
            self.bad_metadata = Some(e.detail().to_owned());
        }
        self
    }

    /// The metadata, to change (a key to remove, say).
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
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

    /// The deadline set, if any.
    pub fn get_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The metadata set.
    pub fn get_metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The compression set, if any.
    pub fn get_compression(&self) -> Option<Compression> {
        self.compression
    }

    /// The time the call has, from now: the timeout set (else `default`), cut to the
    /// deadline when one is set; `None` when neither bounds it.
    pub(super) fn time_left(&self, default: Option<Duration>) -> Option<Duration> {
        let timeout = self.timeout.or(default);
        match self.deadline {
            None => timeout,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                Some(timeout.map_or(left, |timeout| timeout.min(left)))
            }
        }
    }
}

/// Headers of one hop, not carried on to the calls a handler makes: HTTP's connection
/// headers, what a client sets on every request (go-micro's `timeout`, the caller's whole
/// timeout, and `x-content-type`, its codec, among them), and gRPC's reserved `grpc-*`.
fn hop_by_hop(key: &str) -> bool {
    matches!(
        key,
        "content-type"
            | "content-length"
            | "content-encoding"
            | "accept-encoding"
            | "te"
            | "trailer"
            | "user-agent"
            | "host"
            | "connection"
            | "keep-alive"
            | "proxy-authorization"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "timeout"
            | "x-content-type"
    ) || key.starts_with("grpc-")
}

/// What a call takes its options from: [`CallOptions`] as they are, or the [`Context`] of the
/// call being handled, whose deadline and metadata carry on to the calls made while handling
/// it ([`CallOptions::from_context`]).
///
/// Generated clients' `*_with` methods and [`Client::call`](crate::Client::call) take either:
///
/// ```no_run
/// # use micro_runtime::{CallOptions, Client, Context, Method};
/// # async fn handle(client: Client, ctx: Context) -> micro_runtime::Result<()> {
/// # const METHOD: Method = Method { path: "/greeter.Greeter/Hello", endpoint: "Greeter.Hello", idempotent: false };
/// # let request = serde_json::json!({ "name": "Ada" });
/// // Within the caller's deadline, with its metadata:
/// let _: serde_json::Value = client.call("greeter", &METHOD, &request, &ctx).await?;
/// // With options of its own:
/// let opts = CallOptions::new().retries(0);
/// let _: serde_json::Value = client.call("greeter", &METHOD, &request, &opts).await?;
/// # Ok(()) }
/// ```
pub trait AsCallOptions {
    /// The options of the call.
    fn as_call_options(&self) -> Cow<'_, CallOptions>;
}

impl AsCallOptions for CallOptions {
    fn as_call_options(&self) -> Cow<'_, CallOptions> {
        Cow::Borrowed(self)
    }
}

impl AsCallOptions for Context {
    fn as_call_options(&self) -> Cow<'_, CallOptions> {
        Cow::Owned(CallOptions::from_context(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_cuts_the_timeout_and_never_extends_it() {
        let soon = Instant::now() + Duration::from_millis(200);
        let opts = CallOptions::new().deadline(soon);
        let left = opts.time_left(Some(Duration::from_secs(5))).unwrap();
        assert!(left <= Duration::from_millis(200), "{left:?}");
        let opts = opts.timeout(Duration::from_millis(50));
        assert_eq!(opts.time_left(None), Some(Duration::from_millis(50)));
        let passed = CallOptions::new().deadline(Instant::now() - Duration::from_millis(1));
        assert_eq!(passed.time_left(None), Some(Duration::ZERO));
        assert_eq!(CallOptions::new().time_left(None), None);
    }

    #[test]
    fn a_context_carries_its_deadline_and_all_but_one_hops_headers() {
        let mut metadata = Metadata::new();
        for (k, v) in [
            ("x-user", "ada"),
            ("authorization", "Bearer t"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "1S"),
            ("grpc-accept-encoding", "gzip"),
            ("connection", "close"),
            ("timeout", "5000000000"),
            ("x-content-type", "application/json"),
        ] {
            metadata.insert(k, v).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        let ctx = Context::new()
            .with_metadata(metadata)
            .with_deadline(deadline);
        let opts = ctx.as_call_options();
        assert_eq!(opts.get_deadline(), Some(deadline));
        let mut kept: Vec<(&str, &str)> = opts.get_metadata().iter().collect();
        kept.sort();
        assert_eq!(kept, [("authorization", "Bearer t"), ("x-user", "ada")]);
        // Options pass as they are.
        let own = CallOptions::new().retries(3);
        assert!(matches!(own.as_call_options(), Cow::Borrowed(_)));
    }
}
