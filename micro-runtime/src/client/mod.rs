//! The client: calls a service by name.
//!
//! A call goes registry cache -> selector -> pooled HTTP/2 connection. Per call it may set a
//! timeout (sent as `grpc-timeout` and enforced here too), retries and a fixed address, and
//! carries metadata as request headers.
//!
//! Retries are only made where the request cannot have reached a handler: the connection
//! could not be made, or the server refused the stream before reading it (HTTP/2
//! `REFUSED_STREAM`, or a GOAWAY that did not cover it). So any method, idempotent or not,
//! is safe to retry. Each retry picks a node again, after a back-off of
//! `100 ms × attempt^e` as in go-micro, within the call's deadline.

mod endpoint;
mod pool;

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Uri};

use crate::broker::{self, Broker};
use crate::codec::{Codec, Message};
use crate::context::Metadata;
use crate::error::{Code, Error, Result};
use crate::registry::Registry;
use crate::registry::cache::Cache;
use crate::selector::{Filter, NodeStats, Nodes, Selection, Selector, now_ms};
use crate::stream::{CallStream, Streaming};
use crate::transport::body::RecvBody;
use crate::transport::http2::h2_code;
use crate::transport::status::{self, bad_response, check_trailers};
use crate::transport::{self, DEFAULT_MAX_MESSAGE_SIZE, format_timeout, frame};

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

/// Settings of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Retries after the first attempt (only where safe, see the module docs).
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
    timeout: Option<Duration>,
    retries: Option<u32>,
    address: Option<String>,
    codec: Option<Codec>,
    metadata: Metadata,
    bad_metadata: Option<String>,
    idempotent: bool,
    hash_key: Option<String>,
    filter: Option<Filter>,
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

/// Calls services by name, and publishes events. Cheap to clone; clones share caches and
/// connections.
///
/// Generated clients (`GreeterClient::new("greeter", service.client())`) call through one;
/// it also calls any endpoint by name with messages of any codec, here JSON values, as
/// `micro call` does:
///
/// ```no_run
/// use micro_runtime::{CallOptions, Service};
/// use serde_json::json;
///
/// # async fn run() -> micro_runtime::Result<()> {
/// let service = Service::builder().name("caller").from_args().build()?;
/// let client = service.client();
/// let options = CallOptions::new()
///     .timeout(std::time::Duration::from_secs(2))
///     .metadata("x-request-id", "42");
/// let rsp: serde_json::Value = client
///     .call_endpoint_with("greeter", "Greeter.Hello", &json!({"name": "Ada"}), &options)
///     .await?;
/// assert_eq!(rsp["greeting"], "Hello, Ada!");
/// client.publish("events", &json!({"id": 1})).await?; // to the service's broker
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    broker: Option<Arc<dyn Broker>>,
}

struct Inner {
    options: ClientOptions,
    cache: Cache,
    selector: Arc<dyn Selector>,
    pool: pool::Pool,
}

/// Where a call goes: a generated [`Method`], or an endpoint named at run time.
struct Target<'a> {
    path: PathAndQuery,
    endpoint: &'a str,
    idempotent: bool,
}

impl Target<'static> {
    fn of(method: &Method) -> Target<'static> {
        Target {
            path: PathAndQuery::from_static(method.path),
            endpoint: method.endpoint,
            idempotent: method.idempotent,
        }
    }
}

/// What one attempt sends.
struct Attempt<'a> {
    service: &'a str,
    target: Target<'a>,
    body: Bytes,
    codec: Codec,
    options: &'a CallOptions,
    deadline: tokio::time::Instant,
}

/// How one attempt failed.
pub(crate) enum Failure {
    /// The request never reached a handler: another attempt is always safe.
    Unsent(Error),
    /// The connection broke after the request was sent: the handler may have run, so only
    /// idempotent methods are tried again.
    Broken(Error),
    /// The node (or the registry) answered with an error. Only `UNAVAILABLE` of an
    /// idempotent method is tried again.
    Answered(Error),
}

impl Failure {
    fn is_retryable(&self, idempotent: bool) -> bool {
        match self {
            Failure::Unsent(_) => true,
            Failure::Broken(_) => idempotent,
            Failure::Answered(e) => idempotent && e.code() == Code::Unavailable,
        }
    }

    fn into_error(self) -> Error {
        match self {
            Failure::Unsent(e) | Failure::Broken(e) | Failure::Answered(e) => e,
        }
    }
}

impl Client {
    /// A client that finds services in `registry` and picks nodes with `selector`.
    pub fn new(
        options: ClientOptions,
        registry: Arc<dyn Registry>,
        selector: Arc<dyn Selector>,
    ) -> Client {
        let cache = Cache::new(registry, options.cache_ttl);
        let keepalive = options.keepalive.map(|interval| pool::Keepalive {
            interval: interval.max(Duration::from_millis(10)),
            timeout: options.keepalive_timeout.max(Duration::from_millis(10)),
        });
        let pool = pool::Pool::new(options.pool_size, options.dial_timeout, keepalive);
        #[cfg(feature = "tls")]
        let pool = pool.with_tls(options.tls.clone());
        Client {
            inner: Arc::new(Inner {
                options,
                cache,
                selector,
                pool,
            }),
            broker: None,
        }
    }

    /// The broker [`Client::publish`] publishes on.
    pub fn with_broker(mut self, broker: Arc<dyn Broker>) -> Client {
        self.broker = Some(broker);
        self
    }

    /// The broker, when one is set.
    pub fn broker(&self) -> Option<&Arc<dyn Broker>> {
        self.broker.as_ref()
    }

    /// Publishes `message` to `topic` on the client's broker, encoded in the client's codec
    /// (or the one the message type must use), with headers `Content-Type`, `Micro-Topic`
    /// and a unique `Micro-Id`.
    ///
    /// ```
    /// # async fn run() -> micro_runtime::Result<()> {
    /// use micro_runtime::Service;
    /// let service = Service::builder().name("users").from_env()?.build()?;
    /// // Any message: generated from a .proto, `#[derive(Message)]`, or a well-known type.
    /// let now = prost_types::Timestamp { seconds: 1, nanos: 0 };
    /// service.client().publish("clock.ticked", &now).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish<M: Message>(&self, topic: &str, message: &M) -> Result<()> {
        static DEFAULTS: LazyLock<CallOptions> = LazyLock::new(CallOptions::new);
        self.publish_with(topic, message, &DEFAULTS).await
    }

    /// [`Client::publish`] with options: the codec, metadata (sent as headers) and a timeout.
    pub async fn publish_with<M: Message>(
        &self,
        topic: &str,
        message: &M,
        options: &CallOptions,
    ) -> Result<()> {
        let Some(broker) = &self.broker else {
            return Err(Error::new(
                Code::FailedPrecondition,
                "the client has no broker (Client::with_broker)",
            ));
        };
        if let Some(bad) = &options.bad_metadata {
            return Err(Error::bad_request("go.micro.client", bad.clone()));
        }
        let codec = options
            .codec
            .or_else(M::preferred_codec)
            .unwrap_or(self.inner.options.codec);
        let mut body = bytes::BytesMut::with_capacity(message.size_hint(codec));
        message.encode(codec, &mut body)?;
        if body.len() > self.inner.options.max_message_size {
            return Err(Error::new(
                Code::ResourceExhausted,
                format!(
                    "message of {} bytes is larger than the limit of {}",
                    body.len(),
                    self.inner.options.max_message_size
                ),
            ));
        }
        let mut id = [0; uuid::fmt::Hyphenated::LENGTH];
        let id = crate::id::uuid_v4().hyphenated().encode_lower(&mut id);
        let mut header = broker::Header::with_capacity(options.metadata.len() + 3);
        header.extend(
            options
                .metadata
                .iter()
                .map(|(k, v)| (Cow::Owned(k.to_owned()), v.to_owned())),
        );
        // In key order, so appended at the end (unless the metadata has later keys); they win
        // over metadata of the same names.
        for (key, value) in [
            (
                broker::CONTENT_TYPE_HEADER,
                broker::content_type(codec).to_owned(),
            ),
            (broker::ID_HEADER, id.to_owned()),
            (broker::TOPIC_HEADER, topic.to_owned()),
        ] {
            broker::put_header(&mut header, key.into(), value);
        }
        let msg = broker::Message {
            header,
            body: body.freeze(),
        };
        let timeout = options
            .timeout
            .unwrap_or(self.inner.options.request_timeout);
        let mut publish = broker.publish(topic, msg);
        // Most publishes are done at the first poll (the backend took the message): no timer
        // for those.
        if let Poll::Ready(published) = broker::poll_once(publish.as_mut()).await {
            return published;
        }
        match tokio::time::timeout(timeout, publish).await {
            Ok(published) => published,
            Err(_) => Err(Error::new(
                Code::DeadlineExceeded,
                format!("publish to {topic} timed out after {timeout:?}"),
            )),
        }
    }

    /// The settings.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The registry services are looked up in.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        self.inner.cache.registry()
    }

    /// The selector that picks a node for each call.
    pub fn selector(&self) -> &Arc<dyn Selector> {
        &self.inner.selector
    }

    /// Whether the registry answered the last lookup or watch: clients keep calling the nodes
    /// they know while it does not.
    pub fn registry_health(&self) -> crate::registry::cache::Health {
        self.inner.cache.health()
    }

    /// The codec of a call: the call's, else the one a message that does not speak every
    /// codec (a serde type: JSON only) needs, else the client's. The response comes back in
    /// the request's codec.
    fn codec_of<Req: Message, Rsp: Message>(&self, options: &CallOptions) -> Codec {
        options
            .codec
            .or_else(|| Req::preferred_codec().or_else(Rsp::preferred_codec))
            .unwrap_or(self.inner.options.codec)
    }

    /// Calls `method` of `service` with `request`.
    pub async fn call<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        method: &Method,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Rsp> {
        self.call_target(service, Target::of(method), request, options)
            .await
    }

    async fn call_target<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        target: Target<'_>,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Rsp> {
        let o = &self.inner.options;
        if let Some(bad) = &options.bad_metadata {
            return Err(Error::bad_request("go.micro.client", bad.clone()));
        }
        let codec = self.codec_of::<Req, Rsp>(options);
        let body = frame::encode(request, codec, o.max_message_size)?;
        let timeout = options.timeout.unwrap_or(o.request_timeout);
        let deadline = transport::deadline_in(timeout);
        let retries = options.retries.unwrap_or(o.retries);
        let idempotent = target.idempotent || options.idempotent;
        let endpoint = target.endpoint;
        let call = Attempt {
            service,
            target,
            body,
            codec,
            options,
            deadline,
        };
        let mut attempt = 0;
        // Nodes that failed during this call, avoided by its retries.
        let mut failed: Vec<String> = Vec::new();
        // The node of the attempt under way.
        let mut node: Option<Arc<NodeStats>> = None;
        loop {
            let attempt_fut = self.attempt::<Rsp>(&call, &mut failed, &mut node);
            let err = match tokio::time::timeout_at(deadline, attempt_fut).await {
                Ok(Ok(rsp)) => return Ok(rsp),
                Ok(Err(f)) if f.is_retryable(idempotent) => f.into_error(),
                Ok(Err(f)) => return Err(f.into_error()),
                Err(_) => {
                    // The node did not answer in time: a node that went silent (its host
                    // lost, no reset ever comes) is ejected like one that refused, rather
                    // than costing every caller its whole timeout.
                    if let Some(stats) = node {
                        stats.record_failure(now_ms());
                    }
                    return Err(deadline_exceeded(service, endpoint, timeout));
                }
            };
            if attempt >= retries {
                return Err(err);
            }
            attempt += 1;
            let backoff = backoff(attempt);
            tracing::debug!(service, endpoint, attempt, ?backoff, error = %err, "retrying");
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(err);
            }
            tokio::time::sleep(backoff).await;
        }
    }

    /// One attempt of a unary call; `node` is set to the statistics of the node it goes to.
    async fn attempt<Rsp: Message>(
        &self,
        call: &Attempt<'_>,
        failed: &mut Vec<String>,
        node: &mut Option<Arc<NodeStats>>,
    ) -> Result<Rsp, Failure> {
        let nodes = self.nodes(call.service, call.options).await?;
        let (address, stats) = self.pick(nodes.as_deref(), call.service, call.options, failed)?;
        *node = stats.cloned();
        let stats = stats.map(|s| &**s);
        let _in_flight = stats.map(NodeStats::start);
        let started = std::time::Instant::now();
        let result = self.exchange::<Rsp>(address, call).await;
        match &result {
            Ok(_) | Err(Failure::Answered(_)) => {
                if let Some(stats) = stats {
                    stats.record_success(started.elapsed());
                }
            }
            Err(Failure::Unsent(_) | Failure::Broken(_)) => {
                if let Some(stats) = stats {
                    stats.record_failure(now_ms());
                }
                failed.push(address.to_owned());
            }
        }
        result
    }

    /// The address a call to `service` with `options` would go to now: its fixed address,
    /// else a node the selector picks from the registry cache (the options' filter and hash
    /// key apply). For proxies that speak to the node themselves, as go-micro's HTTP
    /// handler does.
    ///
    /// ```no_run
    /// # async fn run(client: micro_runtime::Client) -> micro_runtime::Result<()> {
    /// let address = client
    ///     .select_address("greeter", &micro_runtime::CallOptions::new())
    ///     .await?;
    /// println!("greeter is at {address}");
    /// # Ok(()) }
    /// ```
    pub async fn select_address(&self, service: &str, options: &CallOptions) -> Result<String> {
        let nodes = self
            .nodes(service, options)
            .await
            .map_err(Failure::into_error)?;
        let (address, _) = self
            .pick(nodes.as_deref(), service, options, &[])
            .map_err(Failure::into_error)?;
        Ok(address.to_owned())
    }

    /// The nodes of `service`, or `None` when the call goes to a fixed address.
    async fn nodes(
        &self,
        service: &str,
        options: &CallOptions,
    ) -> Result<Option<Arc<Nodes>>, Failure> {
        if options.address.is_some() {
            return Ok(None);
        }
        let nodes = self.inner.cache.get(service).await;
        nodes.map(Some).map_err(Failure::Answered)
    }

    /// The address an attempt goes to, and its node's statistics.
    fn pick<'a>(
        &self,
        nodes: Option<&'a Nodes>,
        service: &str,
        options: &'a CallOptions,
        failed: &[String],
    ) -> Result<(&'a str, Option<&'a Arc<NodeStats>>), Failure> {
        let Some(nodes) = nodes else {
            return Ok((options.address.as_deref().unwrap_or_default(), None));
        };
        let selection = Selection {
            key: options.hash_key.as_deref(),
            filter: options.filter.as_ref(),
            avoid: failed,
            now_ms: now_ms(),
        };
        let chosen = self
            .inner
            .selector
            .select(nodes, &selection)
            .ok_or_else(|| Failure::Answered(crate::registry::not_found(service)))?;
        Ok((chosen.node.address.as_str(), Some(&chosen.stats)))
    }

    /// Opens a client-streaming or bidirectional call to `method` of `service`: send requests
    /// and read responses on the [`CallStream`].
    ///
    /// Opening is retried like a unary call while nothing reached a server. The call's
    /// [`CallOptions::timeout`], when set, is the deadline of the whole stream; the client's
    /// request timeout does not apply to streams, which may live for long.
    pub async fn stream<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        method: &Method,
        options: &CallOptions,
    ) -> Result<CallStream<Req, Rsp>> {
        self.stream_target(service, &Target::of(method), options)
            .await
    }

    async fn stream_target<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        target: &Target<'_>,
        options: &CallOptions,
    ) -> Result<CallStream<Req, Rsp>> {
        let codec = self.codec_of::<Req, Rsp>(options);
        let opened = self.open(service, target, codec, options).await?;
        let max = self.inner.options.max_message_size;
        let responses = Streaming::response(opened.response, opened.codec, max, opened.deadline);
        Ok(CallStream::new(
            opened.send,
            responses,
            opened.codec,
            max,
            opened.deadline,
        ))
    }

    /// Calls a server-streaming `method` of `service` with `request`: the responses come on
    /// the returned [`Streaming`] (see [`Client::stream`] for retries and deadlines).
    pub async fn server_stream<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        method: &Method,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Streaming<Rsp>> {
        self.server_stream_target(service, &Target::of(method), request, options)
            .await
    }

    async fn server_stream_target<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        target: &Target<'_>,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Streaming<Rsp>> {
        let max = self.inner.options.max_message_size;
        let codec = self.codec_of::<Req, Rsp>(options);
        let frame = frame::encode(request, codec, max)?;
        let mut opened = self.open(service, target, codec, options).await?;
        // Queued whole (HTTP/2 buffers it): one request message needs no flow control here.
        // When the send fails, the stream is already closed (the server answered first, or
        // the connection broke): its response says which.
        if let Err(e) = opened.send.send_data(frame, true) {
            tracing::debug!(error = %e, "the request of a server stream was not sent");
        }
        Ok(Streaming::response(
            opened.response,
            opened.codec,
            max,
            opened.deadline,
        ))
    }

    /// Opens the HTTP/2 stream of a streaming call, retrying while nothing was sent.
    async fn open(
        &self,
        service: &str,
        target: &Target<'_>,
        codec: Codec,
        options: &CallOptions,
    ) -> Result<Opened> {
        let o = &self.inner.options;
        if let Some(bad) = &options.bad_metadata {
            return Err(Error::bad_request("go.micro.client", bad.clone()));
        }
        let deadline = options.timeout.map(transport::deadline_in);
        let retries = options.retries.unwrap_or(o.retries);
        let mut failed: Vec<String> = Vec::new();
        let mut attempt = 0;
        loop {
            let err = match self
                .open_attempt(service, target, options, codec, deadline, &mut failed)
                .await
            {
                Ok((response, send)) => {
                    return Ok(Opened {
                        response,
                        send,
                        codec,
                        deadline,
                    });
                }
                Err(Failure::Unsent(e)) => e,
                Err(f) => return Err(f.into_error()),
            };
            if attempt >= retries {
                return Err(err);
            }
            attempt += 1;
            let backoff = backoff(attempt);
            if deadline.is_some_and(|d| tokio::time::Instant::now() + backoff >= d) {
                return Err(err);
            }
            tracing::debug!(service, endpoint = target.endpoint, attempt, ?backoff, error = %err, "retrying");
            tokio::time::sleep(backoff).await;
        }
    }

    async fn open_attempt(
        &self,
        service: &str,
        target: &Target<'_>,
        options: &CallOptions,
        codec: Codec,
        deadline: Option<tokio::time::Instant>,
        failed: &mut Vec<String>,
    ) -> Result<(h2::client::ResponseFuture, h2::SendStream<Bytes>), Failure> {
        let nodes = self.nodes(service, options).await?;
        let (address, stats) = self.pick(nodes.as_deref(), service, options, failed)?;
        let timeout = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        let opened = match request_head(
            &self.inner.pool,
            address,
            target.path.clone(),
            codec,
            &options.metadata,
            timeout,
        )
        .await
        {
            Ok(head) => open_stream(head, address, false).await,
            Err(f) => Err(f),
        };
        if let Err(Failure::Unsent(_)) = &opened {
            if let Some(stats) = stats {
                stats.record_failure(now_ms());
            }
            failed.push(address.to_owned());
        }
        opened
    }

    /// One request to `address` and its response.
    async fn exchange<Rsp: Message>(
        &self,
        address: &str,
        call: &Attempt<'_>,
    ) -> Result<Rsp, Failure> {
        let inner = &*self.inner;
        let remaining = call
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let head = request_head(
            &inner.pool,
            address,
            call.target.path.clone(),
            call.codec,
            &call.options.metadata,
            Some(remaining),
        )
        .await?;
        let (response, mut send) = open_stream(head, address, false).await?;
        // The whole request in one DATA frame that ends the stream; h2 queues it for the
        // connection task, which writes it with the headers. A server may answer (and close
        // the stream) before it reads the request, an unknown method say: then the send
        // fails, and its answer is what counts.
        let sent = send.send_data(call.body.clone(), true);
        let (parts, body) = match (response.await, sent) {
            (Ok(response), _) => response.into_parts(),
            (Err(e), Ok(())) | (Err(_), Err(e)) => return Err(stream_failure(&e, address)),
        };
        let codec = check_head(&parts, call.codec)?;
        let mut body = RecvBody::new(body);
        let (message, trailers) = frame::read_unary(&mut body, inner.options.max_message_size)
            .await
            .map_err(|e| match e.code() {
                // The connection broke while the answer was on its way.
                Code::Unavailable => Failure::Broken(e),
                _ => Failure::Answered(e),
            })?;
        // The status first: a server may send headers, no message and an error in the
        // trailers (grpc-go does when a failing handler has set header metadata).
        check_trailers(trailers.as_ref()).map_err(Failure::Answered)?;
        let message =
            message.ok_or_else(|| Failure::Answered(frame::FrameError::Missing.into()))?;
        Rsp::decode(codec, message).map_err(|e| Failure::Answered(bad_response(&e)))
    }
}

/// The request of a call, ready to open a stream on a pooled connection to `address`.
pub(crate) struct Head {
    conn: pool::Conn,
    request: Request<()>,
}

/// Builds the request headers of a call to `address` and takes a connection for it.
pub(crate) async fn request_head(
    pool: &pool::Pool,
    address: &str,
    path: PathAndQuery,
    codec: Codec,
    metadata: &Metadata,
    timeout: Option<Duration>,
) -> Result<Head, Failure> {
    let conn = pool.get(address).await.map_err(Failure::Unsent)?;
    let uri = Uri::builder()
        .scheme(if conn.secure {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        })
        .authority(conn.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| Failure::Answered(Error::new(Code::Internal, format!("bad uri: {e}"))))?;
    let mut request = Request::post(uri)
        .body(())
        .map_err(|e| Failure::Answered(Error::new(Code::Internal, format!("bad request: {e}"))))?;
    let headers = request.headers_mut();
    if !metadata.is_empty() {
        headers.extend(
            metadata
                .headers()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    headers.insert(http::header::CONTENT_TYPE, codec.content_type_header());
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    if let Some(timeout) = timeout {
        headers.insert("grpc-timeout", format_timeout(timeout));
    }
    Ok(Head { conn, request })
}

/// Opens the call's HTTP/2 stream: waits for the connection to allow one more stream, then
/// sends the headers. Nothing has reached the server when this fails.
pub(crate) async fn open_stream(
    head: Head,
    address: &str,
    end_of_stream: bool,
) -> Result<(h2::client::ResponseFuture, h2::SendStream<Bytes>), Failure> {
    let Head { conn, request } = head;
    let dead = |e: h2::Error| {
        conn.mark_closed();
        Failure::Unsent(Error::new(
            Code::Unavailable,
            format!("call to {address}: {e}"),
        ))
    };
    let mut send = conn.send.clone().ready().await.map_err(dead)?;
    send.send_request(request, end_of_stream).map_err(dead)
}

/// The codec of a response, or the error its headers carry.
pub(crate) fn check_head(parts: &http::response::Parts, sent: Codec) -> Result<Codec, Failure> {
    status::check_head(parts, sent).map_err(Failure::Answered)
}

/// A streaming call's opened HTTP/2 stream.
struct Opened {
    response: h2::client::ResponseFuture,
    send: h2::SendStream<Bytes>,
    codec: Codec,
    deadline: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.options)
            .field("cache", &self.inner.cache)
            .field("selector", &self.inner.selector.name())
            .finish()
    }
}

/// go-micro's back-off: `100 ms × attempt^e`, at most two minutes.
fn backoff(attempt: u32) -> Duration {
    let ms = 100.0 * f64::from(attempt).powf(std::f64::consts::E);
    Duration::from_millis(ms.min(120_000.0) as u64)
}

fn deadline_exceeded(service: &str, endpoint: &str, timeout: Duration) -> Error {
    Error::new(
        Code::DeadlineExceeded,
        format!("call to {service} {endpoint} timed out after {timeout:?}"),
    )
    .with_id("go.micro.client")
}

/// Sorts a failed stream: retry when HTTP/2 says the server never processed it; a broken
/// connection is retried as [`Failure::Broken`]; a stream the server reset for another reason
/// is its answer (coded by [`h2_code`]).
fn stream_failure(e: &h2::Error, address: &str) -> Failure {
    let refused = e.reason() == Some(h2::Reason::REFUSED_STREAM)
        || (e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::NO_ERROR));
    let code = h2_code(e);
    let err = Error::new(code, format!("call to {address}: {e}"));
    if refused {
        Failure::Unsent(err)
    } else if code == Code::Unavailable {
        Failure::Broken(err)
    } else {
        Failure::Answered(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_go_micro() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(658));
        assert_eq!(backoff(100), Duration::from_secs(120));
    }
}
