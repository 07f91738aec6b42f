//! The client: calls a service by name.
//!
//! A call goes registry cache -> selector -> pooled HTTP/2 connection. Per call it may set a
//! timeout (sent as `grpc-timeout` and enforced here too), retries and a fixed address, and
//! carries metadata as request headers.
//!
//! A failed attempt is tried again, on a node picked again, after a back-off of
//! `100 ms × attempt^e` as in go-micro and within the call's deadline, when that is safe:
//! always when the request never reached a handler (no connection, or HTTP/2
//! `REFUSED_STREAM`, or a GOAWAY that did not cover it); for idempotent methods also when the
//! connection broke after sending, and on `UNAVAILABLE` answers. A stream is opened again
//! only while nothing reached a server.
//!
//! Call layers ([`CallLayer`]) run around every attempt and publish layers
//! ([`PublishLayer`]) around every event; a [`CircuitBreaker`] keeps calls away from failing
//! nodes; a [`RetryBudget`] caps retries at a share of calls.
//!
//! The files: `options` (what a client and a call are set to), `retry` (the loop of
//! attempts), `budget` (the retry budget), `pick` (the node of an attempt), `exchange` (one
//! attempt on the wire), `layer` (call layers), `chain` (the chain layers run in),
//! `endpoint` (calls by endpoint name), `publish` (events on the broker), `publish_layer`
//! (layers around them), `pool` (the connections).

mod budget;
mod chain;
mod endpoint;
mod exchange;
mod layer;
mod options;
mod pick;
mod pool;
mod publish;
mod publish_layer;
mod retry;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

pub use crate::context::CallKind;
pub use crate::selector::CircuitBreaker;
pub use budget::RetryBudget;
pub use chain::LayerNext;
pub use layer::{CallLayer, CallLayers, CallNext, OutgoingCall};
pub use options::{AsCallOptions, CallOptions, ClientOptions, Method};
pub use publish_layer::{Publication, PublishLayer, PublishLayers, PublishNext};

use crate::broker::Broker;
use crate::codec::{Codec, Message};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::registry::cache::Cache;
use crate::selector::Selector;
use crate::stream::{CallStream, Streaming};
use crate::transport::compression::Compression;
use crate::transport::{self, frame};
use exchange::{Calling, Open, Opened, Unary};
use pick::{Picker, Target};
use retry::{Failure, Policy, retry};

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
    picker: Picker,
    pool: pool::Pool,
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
                picker: Picker { cache, selector },
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

    /// The settings.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The registry services are looked up in.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        self.inner.picker.cache.registry()
    }

    /// The selector that picks a node for each call.
    pub fn selector(&self) -> &Arc<dyn Selector> {
        &self.inner.picker.selector
    }

    /// Whether the registry answered the last lookup or watch: clients keep calling the nodes
    /// they know while it does not.
    pub fn registry_health(&self) -> crate::registry::cache::Health {
        self.inner.picker.cache.health()
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
        let picker = &self.inner.picker;
        let nodes = picker
            .nodes(service, options)
            .await
            .map_err(Failure::into_error)?;
        let (address, _) = picker
            .pick(nodes.as_deref(), service, options, &[])
            .map_err(Failure::into_error)?;
        Ok(address.to_owned())
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

    /// Calls `method` of `service` with `request`, with `options`: [`CallOptions`], or the
    /// [`Context`](crate::Context) of the call being handled (see [`AsCallOptions`]).
    pub async fn call<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        method: &Method,
        request: &Req,
        options: &(impl AsCallOptions + ?Sized),
    ) -> Result<Rsp> {
        let options = options.as_call_options();
        self.call_target(service, Target::of(method), request, &options)
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
        let compression = options.compression.unwrap_or(o.compression);
        let body = frame::encode_compressed(request, codec, o.max_message_size, compression)?;
        let timeout = options
            .time_left(Some(o.request_timeout))
            .unwrap_or(o.request_timeout);
        let deadline = transport::deadline_in(timeout);
        let policy = Policy {
            service,
            endpoint: target.endpoint,
            retries: options.retries.unwrap_or(o.retries),
            idempotent: target.idempotent || options.idempotent,
            deadline: Some((deadline, timeout)),
            budget: o.retry_budget.as_ref(),
            breaker: o.breaker.as_ref(),
        };
        let call = Unary {
            calling: self.calling(service, &target, options, compression),
            max_message_size: o.max_message_size,
            body,
            codec,
            deadline,
            response: PhantomData,
        };
        retry(policy, &call).await
    }

    /// Opens a client-streaming or bidirectional call to `method` of `service`: send requests
    /// and read responses on the [`CallStream`].
    ///
    /// Opening is retried like a unary call while nothing reached a server. The call's
    /// [`CallOptions::timeout`] or [`CallOptions::deadline`] (a context's deadline), when set,
    /// bounds the whole stream; the client's request timeout does not apply to streams, which
    /// may live for long.
    pub async fn stream<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        method: &Method,
        options: &(impl AsCallOptions + ?Sized),
    ) -> Result<CallStream<Req, Rsp>> {
        let options = options.as_call_options();
        self.stream_target(service, &Target::of(method), &options)
            .await
    }

    async fn stream_target<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        target: &Target<'_>,
        options: &CallOptions,
    ) -> Result<CallStream<Req, Rsp>> {
        let codec = self.codec_of::<Req, Rsp>(options);
        let compression = options
            .compression
            .unwrap_or(self.inner.options.compression);
        let deadline = options.time_left(None).map(transport::deadline_in);
        let (response, send) = self
            .open(service, target, codec, compression, options)
            .await?;
        let max = self.inner.options.max_message_size;
        let responses = Streaming::response(response, codec, max, deadline);
        Ok(CallStream::new(
            send,
            responses,
            codec,
            max,
            compression,
            deadline,
        ))
    }

    /// Calls a server-streaming `method` of `service` with `request`: the responses come on
    /// the returned [`Streaming`] (see [`Client::stream`] for retries and deadlines).
    pub async fn server_stream<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        method: &Method,
        request: &Req,
        options: &(impl AsCallOptions + ?Sized),
    ) -> Result<Streaming<Rsp>> {
        let options = options.as_call_options();
        self.server_stream_target(service, &Target::of(method), request, &options)
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
        let compression = options
            .compression
            .unwrap_or(self.inner.options.compression);
        let frame = frame::encode_compressed(request, codec, max, compression)?;
        let deadline = options.time_left(None).map(transport::deadline_in);
        let (response, mut send) = self
            .open(service, target, codec, compression, options)
            .await?;
        // Queued whole (HTTP/2 buffers it): one request message needs no flow control here.
        // When the send fails, the stream is already closed (the server answered first, or
        // the connection broke): its response says which.
        if let Err(e) = send.send_data(frame, true) {
            tracing::debug!(error = %e, "the request of a server stream was not sent");
        }
        Ok(Streaming::response(response, codec, max, deadline))
    }

    /// Opens the HTTP/2 stream of a streaming call, retrying while nothing reached a server.
    async fn open(
        &self,
        service: &str,
        target: &Target<'_>,
        codec: Codec,
        compression: Compression,
        options: &CallOptions,
    ) -> Result<Opened> {
        if let Some(bad) = &options.bad_metadata {
            return Err(Error::bad_request("go.micro.client", bad.clone()));
        }
        let timeout = options.time_left(None);
        let deadline = timeout.map(transport::deadline_in);
        let policy = Policy {
            service,
            endpoint: target.endpoint,
            retries: options.retries.unwrap_or(self.inner.options.retries),
            // Only what never reached a server: a stream's requests are not kept to send
            // again.
            idempotent: false,
            deadline: deadline.zip(timeout),
            budget: self.inner.options.retry_budget.as_ref(),
            breaker: self.inner.options.breaker.as_ref(),
        };
        let open = Open {
            calling: self.calling(service, target, options, compression),
            codec,
            deadline,
        };
        retry(policy, &open).await
    }

    /// What the attempts of a call to `target` of `service` share.
    fn calling<'a>(
        &'a self,
        service: &'a str,
        target: &'a Target<'a>,
        options: &'a CallOptions,
        compression: Compression,
    ) -> Calling<'a> {
        let o = &self.inner.options;
        Calling {
            picker: &self.inner.picker,
            pool: &self.inner.pool,
            layers: &o.layers,
            breaker: o.breaker.as_ref(),
            service,
            target,
            options,
            compression,
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.options)
            .field("cache", &self.inner.picker.cache)
            .field("selector", &self.inner.picker.selector.name())
            .finish()
    }
}
