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

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Uri};

use crate::codec::{Codec, Message};
use crate::context::Metadata;
use crate::error::{Code, Error, Result};
use crate::registry::Registry;
use crate::registry::cache::Cache;
use crate::selector::{Filter, NodeStats, Selection, Selector, now_ms};
use crate::transport::body::Unary;
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

/// Calls services by name. Cheap to clone; clones share caches and connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
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
enum Failure {
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
        let pool = pool::Pool::new(options.pool_size, options.dial_timeout);
        Client {
            inner: Arc::new(Inner {
                options,
                cache,
                selector,
                pool,
            }),
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

    /// Whether the registry answered the last lookup or watch: clients keep calling the nodes
    /// they know while it does not.
    pub fn registry_health(&self) -> crate::registry::cache::Health {
        self.inner.cache.health()
    }

    /// Calls `method` of `service` with `request`.
    pub async fn call<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        method: &Method,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Rsp> {
        let target = Target {
            path: PathAndQuery::from_static(method.path),
            endpoint: method.endpoint,
            idempotent: method.idempotent,
        };
        self.call_target(service, target, request, options).await
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
        // A message that does not speak every codec (a serde type: JSON only) picks its own
        // unless the call says otherwise; the response comes back in the request's codec.
        let codec = options
            .codec
            .or_else(|| Req::preferred_codec().or_else(Rsp::preferred_codec))
            .unwrap_or(o.codec);
        let body = frame::encode(request, codec, o.max_message_size)?;
        let timeout = options.timeout.unwrap_or(o.request_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
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
        loop {
            let attempt_fut = self.attempt::<Rsp>(&call, &mut failed);
            let err = match tokio::time::timeout_at(deadline, attempt_fut).await {
                Ok(Ok(rsp)) => return Ok(rsp),
                Ok(Err(f)) if f.is_retryable(idempotent) => f.into_error(),
                Ok(Err(f)) => return Err(f.into_error()),
                Err(_) => return Err(deadline_exceeded(service, endpoint, timeout)),
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

    async fn attempt<Rsp: Message>(
        &self,
        call: &Attempt<'_>,
        failed: &mut Vec<String>,
    ) -> Result<Rsp, Failure> {
        let inner = &*self.inner;
        let options = call.options;
        let nodes;
        let (address, stats) = match &options.address {
            Some(a) => (a.as_str(), None),
            None => {
                nodes = inner
                    .cache
                    .get(call.service)
                    .await
                    .map_err(Failure::Answered)?;
                let selection = Selection {
                    key: options.hash_key.as_deref(),
                    filter: options.filter.as_ref(),
                    avoid: failed,
                    now_ms: now_ms(),
                };
                let chosen = inner
                    .selector
                    .select(&nodes, &selection)
                    .ok_or_else(|| Failure::Answered(crate::registry::not_found(call.service)))?;
                (chosen.node.address.as_str(), Some(&*chosen.stats))
            }
        };
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

    /// One request to `address` and its response.
    async fn exchange<Rsp: Message>(
        &self,
        address: &str,
        call: &Attempt<'_>,
    ) -> Result<Rsp, Failure> {
        let inner = &*self.inner;
        let conn = inner.pool.get(address).await.map_err(Failure::Unsent)?;
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(conn.authority)
            .path_and_query(call.target.path.clone())
            .build()
            .map_err(|e| Failure::Answered(Error::new(Code::Internal, format!("bad uri: {e}"))))?;
        let mut req = Request::post(uri)
            .body(Unary::data(call.body.clone()))
            .map_err(|e| {
                Failure::Answered(Error::new(Code::Internal, format!("bad request: {e}")))
            })?;
        let headers = req.headers_mut();
        let metadata = &call.options.metadata;
        if !metadata.is_empty() {
            headers.extend(
                metadata
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        headers.insert(http::header::CONTENT_TYPE, call.codec.content_type_header());
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        let remaining = call
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        headers.insert("grpc-timeout", format_timeout(remaining));

        let mut send = conn.send;
        let rsp = send
            .send_request(req)
            .await
            .map_err(|e| send_failure(e, address))?;
        let (parts, mut body) = rsp.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(Failure::Answered(http_status_error(parts.status)));
        }
        // Trailers-only: the status came in the headers, with no message.
        if let Some(status) = transport::take_status(&parts.headers) {
            return Err(Failure::Answered(status.err().unwrap_or_else(|| {
                Error::new(Code::Internal, "response carried no message")
            })));
        }
        let (message, trailers) = frame::read_unary(&mut body, inner.options.max_message_size)
            .await
            .map_err(|e| match e.code() {
                // The connection broke while the answer was on its way.
                Code::Unavailable => Failure::Broken(e),
                _ => Failure::Answered(e),
            })?;
        match trailers.as_ref().and_then(transport::take_status) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Failure::Answered(e)),
            None => {
                return Err(Failure::Answered(Error::new(
                    Code::Internal,
                    "response ended without grpc-status",
                )));
            }
        }
        let rsp_codec = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|ct| Codec::from_content_type(ct.as_bytes()))
            .unwrap_or(call.codec);
        Rsp::decode(rsp_codec, message).map_err(|e| {
            Failure::Answered(Error::new(
                Code::Internal,
                format!("bad response: {}", e.detail()),
            ))
        })
    }
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

/// Sorts a failed send: retry when HTTP/2 says the stream was never processed.
fn send_failure(e: hyper::Error, address: &str) -> Failure {
    use std::error::Error as _;
    let h2 = e.source().and_then(|s| s.downcast_ref::<h2::Error>());
    let refused = h2.is_some_and(|h| {
        h.reason() == Some(h2::Reason::REFUSED_STREAM)
            || (h.is_go_away() && h.is_remote() && h.reason() == Some(h2::Reason::NO_ERROR))
    });
    let err = Error::new(Code::Unavailable, format!("call to {address}: {e}"));
    if refused || e.is_canceled() && h2.is_none() {
        Failure::Unsent(err)
    } else {
        Failure::Broken(err)
    }
}

fn http_status_error(status: http::StatusCode) -> Error {
    // gRPC's mapping of HTTP statuses from servers that did not answer in gRPC.
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Error::new(code, format!("server answered HTTP {status}"))
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
