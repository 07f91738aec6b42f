//! `micro api`: go-micro's API gateway, HTTP in and RPC out, with its `rpc` handler (and,
//! with `--handler http`, its reverse proxy to HTTP services: [`Gateway::proxy`]).
//!
//! - `/rpc`: a JSON object (or form fields, or query parameters) `service`, `endpoint` (or
//!   `method`), `request` (an object, or a string holding one) and optionally `address` (a
//!   node to call as is).
//! - Any other path is resolved as go-micro's `micro` resolver does, the namespace
//!   (`--namespace`, default `go.micro.api`) prefixed to the service: `/foo/bar` calls
//!   `Foo.Bar` of `go.micro.api.foo`, `/foo/bar/baz` `Bar.Baz` of `go.micro.api.foo`,
//!   `/foo/bar/baz/cat` `Baz.Cat` of `go.micro.api.foo.bar`, `/v1/foo/bar` `Foo.Bar` of
//!   `go.micro.api.v1.foo`; dashes become CamelCase (`/greeter/say-hello` is `Greeter.SayHello`).
//!   The request is the JSON body, form fields, or the query's parameters when there is no
//!   body.
//!
//! The reply is the response message as JSON with status 200; an error is go-micro's error
//! JSON (`{"id","code","detail","status"}`) with its code as the HTTP status (a body over
//! `--max_message_size` is a 413). A `Timeout` header (seconds) bounds the call; other
//! request headers go along as call metadata. `OPTIONS` (a CORS preflight) calls nothing;
//! responses to requests from an origin `--cors` allows carry go-micro's CORS headers.
//!
//! Streaming endpoints (registered with `stream: true`) are served over WebSocket, as
//! go-micro's rpc handler does: a WebSocket request to a resolved path opens the stream.
//! When the request's query carries a message, it is the stream's one request (a server
//! stream); otherwise each text or binary message from the socket is a JSON request (a
//! bidirectional stream). Each response goes back as a text message of JSON (binary when
//! the client offered the `binary` subprotocol). The socket is closed with 1000 when the
//! stream ends, 1011 and `Code: detail` as the reason when it fails, 1007 when a message is
//! not JSON, 1001 when the gateway stops; closing the socket, or its silence (no frame,
//! pongs included, for a minute; it is pinged every 30 s), cancels the call. WebSockets
//! from a browser page are accepted from the gateway's own origin or one `--cors` allows
//! (403 otherwise).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use micro_runtime::{CallOptions, Client, Code, Error, Result};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use micro_runtime::api::{form, proxy_route, resolve};

use crate::guard::Guard;
use crate::program::Program;

mod sockets;

/// How long a stopping gateway waits for the requests under way.
const DRAIN: Duration = Duration::from_secs(30);

/// How long a stopping gateway waits for its WebSockets to close.
const SOCKETS_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The gateway's state: the client it calls through and the namespace of its services;
/// as a sidecar, also the records registered through it.
struct Gateway {
    client: Client,
    namespace: String,
    sidecar: Option<Sidecar>,
    /// Who may call: hosts and origins (see [`Guard`]).
    guard: Guard,
    /// How paths that are not the gateway's own are answered.
    handler: Handler,
    /// The WebSockets' tasks, waited for when the gateway stops.
    tasks: TaskTracker,
    /// Turns true when the gateway stops.
    stopping: watch::Receiver<bool>,
}

/// What the sidecar adds: `/registry` and `/broker`, and the records registered through it,
/// deregistered when it stops.
#[derive(Default)]
struct Sidecar {
    /// Each node registered through it, by service name and node id: registering a node
    /// again replaces its record (the memory it holds is that of the nodes registered, not
    /// of the requests made).
    registered: tokio::sync::Mutex<
        std::collections::HashMap<(String, String), micro_runtime::registry::Service>,
    >,
    ttl: Duration,
    /// The program it registers and health-checks (`--server_name`), if any.
    program: Option<Arc<Program>>,
}

/// How paths that are not the gateway's own are answered (`--handler`, go-micro's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handler {
    /// `rpc`: the path names a service and endpoint, called with the request as JSON.
    Rpc,
    /// `http`: the request goes as it came to a node of the service the path's first part
    /// names (go-micro's reverse proxy for HTTP services).
    Http,
}

impl std::str::FromStr for Handler {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Handler, String> {
        match name {
            "rpc" => Ok(Handler::Rpc),
            "http" | "proxy" => Ok(Handler::Http),
            "api" | "event" | "web" => Err(format!("the {name} handler is not supported yet")),
            other => Err(format!("unknown handler {other:?} (expected rpc or http)")),
        }
    }
}

/// The gateway's settings: `--namespace`, `--cors` and `--allowed_hosts` (its guard),
/// `--handler`, and its server's limits.
pub(crate) struct Settings {
    pub(crate) namespace: String,
    pub(crate) guard: Guard,
    pub(crate) handler: Handler,
    pub(crate) limits: crate::serve::Limits,
}

/// Which front to serve.
pub(crate) enum Front {
    /// `micro api`.
    Api,
    /// `micro sidecar`: records registered through `/registry` live `ttl` (zero: until
    /// deregistered); `program` is registered while its health check passes, and its
    /// check answers `/health`.
    Sidecar {
        ttl: Duration,
        program: Option<Box<Program>>,
    },
}

/// Serves the gateway on `listener` until `shutdown`, then lets the requests under way
/// finish (a sidecar then deregisters what was registered through it).
pub(crate) async fn serve(
    client: Client,
    front: Front,
    settings: Settings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let limit = client.options().max_message_size;
    let sidecar = match front {
        Front::Api => None,
        Front::Sidecar { ttl, program } => Some(Sidecar {
            ttl,
            program: program.map(|p| Arc::new(*p)),
            ..Sidecar::default()
        }),
    };
    let (stop, stopping) = watch::channel(false);
    let stop = Arc::new(stop);
    let program = sidecar
        .as_ref()
        .and_then(|s| s.program.clone())
        .map(|program| {
            let stopping = stopping.clone();
            tokio::spawn(program.keep_registered(client.registry().clone(), stopping))
        });
    let Settings {
        namespace,
        guard,
        handler,
        limits,
    } = settings;
    let gateway = Arc::new(Gateway {
        client,
        namespace,
        sidecar,
        guard,
        handler,
        tasks: TaskTracker::new(),
        stopping,
    });
    let app = axum::Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            cors_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            refuse_other_sites,
        ))
        .with_state(gateway.clone());
    // Upgraded connections are not the server's to wait for: told to stop with the rest,
    // they close their sockets, and are waited for below.
    let stopper = stop.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = stopper.send(true);
    };
    let serving = crate::serve::serve(listener, app, limits, shutdown);
    // Requests under way get DRAIN to finish once the stop begins: a proxied response may
    // stream for ever.
    let mut stopping = gateway.stopping.clone();
    let drained = async move {
        let _ = stopping.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(DRAIN).await;
    };
    let served = tokio::select! {
        served = serving => served,
        () = drained => {
            tracing::warn!("requests still under way after {DRAIN:?}: stopping anyway");
            Ok(())
        }
    };
    let _ = stop.send(true);
    gateway.tasks.close();
    let _ = tokio::time::timeout(SOCKETS_CLOSE_WAIT, gateway.tasks.wait()).await;
    if let Some(program) = program {
        let _ = program.await;
    }
    if let Some(sidecar) = &gateway.sidecar {
        for (_, record) in sidecar.registered.lock().await.drain() {
            if let Err(e) = gateway.client.registry().deregister(&record).await {
                tracing::warn!(service = %record.name, error = %e, "deregistration failed");
            }
        }
    }
    served
}

/// Binds `address` for [`serve`] (or the dashboard's).
pub(crate) async fn bind(address: &str) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| Error::new(Code::Unavailable, format!("listen on {address}: {e}")))?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

async fn handle(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    // A browser's CORS preflight calls nothing.
    if method == Method::OPTIONS {
        return StatusCode::NO_CONTENT.into_response();
    }
    if let Ok(upgrade) = upgrade {
        if !gateway.socket_allowed(&headers) {
            let e = Error::with_http_code(
                403,
                "go.micro.api",
                "WebSockets from this origin are not allowed (see --cors)",
            );
            return json_response(error_status(&e), e.to_json());
        }
        let upgraded = match (&gateway.sidecar, uri.path()) {
            (Some(_), "/broker") => Some(gateway.subscribe(upgrade, &uri, &headers)),
            _ if gateway.handler == Handler::Http => None,
            _ => gateway.stream(upgrade, &uri, &headers).await,
        };
        if let Some(response) = upgraded {
            return response;
        }
    }
    if gateway.handler == Handler::Http && !gateway.own_path(uri.path()) {
        if let Ok(body) = body {
            return match gateway.proxy(method, &uri, headers, body).await {
                Ok(response) => response,
                Err(e) => json_response(error_status(&e), e.to_json()),
            };
        }
    }
    let answer = match body {
        Err(rejected) => Err(Error::with_http_code(
            rejected.status().as_u16(),
            "go.micro.api",
            rejected.body_text(),
        )),
        Ok(body) if uri.path() == "/rpc" => gateway.rpc(&uri, &headers, &body).await,
        Ok(body) => match (&gateway.sidecar, uri.path()) {
            (Some(sidecar), "/registry") => {
                sidecar
                    .registry(&gateway.client, &method, &uri, &body)
                    .await
            }
            (Some(_), "/broker") => gateway.publish(&method, &uri, &headers, &body).await,
            (
                Some(Sidecar {
                    program: Some(program),
                    ..
                }),
                "/health",
            ) => program.check().await.map(|()| Value::Object(Map::new())),
            _ => gateway.route(&uri, &headers, &body).await,
        },
    };
    match answer {
        Ok(reply) => json_response(StatusCode::OK, reply.to_string()),
        Err(e) => json_response(error_status(&e), e.to_json()),
    }
}

/// Refuses (403, go-micro's error JSON) what web pages elsewhere send, and requests for a
/// host rebound to this machine: see [`Guard`].
async fn refuse_other_sites(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Err(reason) = gateway.guard.check(request.method(), request.headers()) {
        let e = Error::with_http_code(403, "go.micro.api", format!("refused: {reason}"));
        return json_response(error_status(&e), e.to_json());
    }
    next.run(request).await
}

/// go-micro's CORS headers on every response to a request from an allowed origin (see
/// `--cors`): the origin echoed, its methods and headers, credentials allowed.
async fn cors_headers(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    let allowed = origin.filter(|origin| gateway.cors_allows(origin));
    if let Some(origin) = allowed {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization",
            ),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// The HTTP status of an error: its go-micro code when that is an error status (4xx, 5xx),
/// else 502: a remote service may send any number as its code, and a 204 or 304 would
/// lose the body.
pub(crate) fn error_status(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.http_code())
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

fn json_response(status: StatusCode, body: String) -> Response {
    let content_type = HeaderValue::from_static("application/json");
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

impl Gateway {
    /// Whether `path` is one the gateway answers itself: `/rpc`, and the sidecar's.
    fn own_path(&self, path: &str) -> bool {
        path == "/rpc"
            || (self.sidecar.is_some() && matches!(path, "/registry" | "/broker" | "/health"))
    }

    /// go-micro's `http` handler: the request as it came (path, query, headers but the
    /// hop-by-hop ones, body) to a node of the service the path's first part names (in the
    /// namespace; `/v1/foo/...` names `v1.foo`), and the node's answer as it is.
    async fn proxy(
        &self,
        method: Method,
        uri: &Uri,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response> {
        let name = proxy_route(uri.path())
            .ok_or_else(|| bad_request(format!("no service in the path {:?}", uri.path())))?;
        let service = self.in_namespace(name);
        let address = self
            .client
            .select_address(&service, &CallOptions::new())
            .await?;
        strip_hop_by_hop(&mut headers);
        if !headers.contains_key(header::HOST) {
            // An HTTP/2 or HTTP/1.0 request may come without one; HTTP/1.1 needs it.
            let host = HeaderValue::from_str(&address).map_err(|e| bad_request(e.to_string()))?;
            headers.insert(header::HOST, host);
        }
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(target)
            .body(axum::body::Body::from(body))
            .map_err(|e| bad_request(e.to_string()))?;
        *request.headers_mut() = headers;
        let unavailable = |e: String| {
            Error::new(Code::Unavailable, format!("{service} at {address}: {e}"))
                .with_id("go.micro.api")
        };
        let response = crate::http1::send(&address, request, None)
            .await
            .map_err(unavailable)?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // Ours to the client, whatever the node spoke (an HTTP/1.0 node's body ends with its
        // connection; ours is framed).
        parts.version = axum::http::Version::HTTP_11;
        Ok(Response::from_parts(parts, axum::body::Body::new(body)))
    }

    /// Whether `--cors` allows `origin`.
    fn cors_allows(&self, origin: &HeaderValue) -> bool {
        self.guard.cors_allows(origin.as_bytes())
    }

    /// `service` with the namespace (`--namespace`) prefixed.
    fn in_namespace(&self, service: String) -> String {
        match self.namespace.as_str() {
            "" => service,
            namespace => format!("{namespace}.{service}"),
        }
    }

    /// The service (in the namespace) and endpoint a path names.
    fn resolved(&self, path: &str) -> Result<(String, String)> {
        let (service, endpoint) =
            resolve(path).ok_or_else(|| bad_request(format!("no service in the path {path:?}")))?;
        Ok((self.in_namespace(service), endpoint))
    }

    /// A call resolved from the path.
    async fn route(&self, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Value> {
        let (service, endpoint) = self.resolved(uri.path())?;
        let request = request_of(uri, headers, body)?;
        let options = call_options(headers)?;
        self.client
            .call_endpoint_with(&service, &endpoint, &request, &options)
            .await
    }

    /// A call named in the body of `/rpc`, or in its query when it has no body.
    async fn rpc(&self, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Value> {
        let fields = match request_of(uri, headers, body)? {
            Value::Object(fields) => fields,
            _ => return Err(bad_request("expected an object with service and endpoint")),
        };
        let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or_default();
        let service = text("service");
        let endpoint = match text("endpoint") {
            "" => text("method"),
            endpoint => endpoint,
        };
        if service.is_empty() || endpoint.is_empty() {
            return Err(bad_request("service and endpoint are required"));
        }
        let request = match fields.get("request") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            // Form fields (and some clients) carry the request as JSON text.
            Some(Value::String(s)) if s.is_empty() => Value::Object(Map::new()),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map_err(|e| bad_request(format!("request is not JSON: {e}")))?,
            Some(other) => other.clone(),
        };
        let mut options = call_options(headers)?;
        if let Some(address) = fields.get("address").and_then(Value::as_str) {
            if !address.is_empty() {
                options = options.address(address);
            }
        }
        self.client
            .call_endpoint_with(service, endpoint, &request, &options)
            .await
    }
}

impl Sidecar {
    /// `/registry`: `GET` lists the services, or with `?service=NAME` gets one (its
    /// versions); `POST` registers the record in the body, `DELETE` deregisters it.
    async fn registry(
        &self,
        client: &Client,
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<Value> {
        let registry = client.registry();
        match *method {
            Method::GET => {
                let query = form(uri.query().unwrap_or_default().as_bytes());
                match query.get("service").and_then(Value::as_str) {
                    Some(name) => to_json(&registry.get_service(name).await?),
                    None => to_json(&registry.list_services().await?),
                }
            }
            Method::POST | Method::DELETE => {
                let record = micro_runtime::registry::Service::from_json(body)
                    .map_err(|e| bad_request(e.detail()))?;
                let mut registered = self.registered.lock().await;
                let keys = record
                    .nodes
                    .iter()
                    .map(|node| ((record.name.clone(), node.id.clone()), node));
                if *method == Method::POST {
                    let ttl = micro_runtime::registry::RegisterOptions { ttl: self.ttl };
                    registry.register(&record, ttl).await?;
                    for (key, node) in keys {
                        let one = micro_runtime::registry::Service {
                            nodes: vec![node.clone()],
                            ..record.clone()
                        };
                        registered.insert(key, one);
                    }
                } else {
                    registry.deregister(&record).await?;
                    // Only the nodes deregistered are forgotten: the others of a record
                    // are still deregistered when the sidecar stops.
                    for (key, _) in keys {
                        registered.remove(&key);
                    }
                }
                Ok(Value::Object(Map::new()))
            }
            _ => Err(Error::with_http_code(
                405,
                "go.micro.sidecar",
                "the registry takes GET, POST and DELETE",
            )),
        }
    }
}

impl Gateway {
    /// `/broker`: `POST ?topic=T` publishes the JSON body to the broker, the request's
    /// headers as the message's.
    async fn publish(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value> {
        if *method != Method::POST {
            return Err(Error::with_http_code(
                405,
                "go.micro.sidecar",
                "the broker takes POST ?topic=...",
            ));
        }
        let query = form(uri.query().unwrap_or_default().as_bytes());
        let topic = query
            .get("topic")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad_request("publish needs ?topic="))?;
        let message = parsed_body(headers, body)?.unwrap_or_else(|| Value::Object(Map::new()));
        self.client
            .publish_with(topic, &message, &call_options(headers)?)
            .await?;
        Ok(Value::Object(Map::new()))
    }
}

/// Takes out the headers that belong to one connection, not to the message: the standard
/// ones and those `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = header_list(headers, header::CONNECTION)
        .map(str::to_ascii_lowercase)
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

/// The items of a comma-separated header (every line of it), trimmed, empty ones left out.
fn header_list(headers: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// The request message of a resolved call: the body (JSON or form fields), else the query's
/// parameters, else the empty message.
fn request_of(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Value> {
    if let Some(request) = parsed_body(headers, body)? {
        return Ok(request);
    }
    Ok(Value::Object(form(
        uri.query().unwrap_or_default().as_bytes(),
    )))
}

/// The body as JSON: form fields become an object of strings; anything else must be JSON.
/// `None` for an empty body.
fn parsed_body(headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>> {
    if body.is_empty() {
        return Ok(None);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(Some(Value::Object(form(body))));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| bad_request(format!("the body is not JSON: {e}")))
}

/// Headers that describe the HTTP exchange itself, not the call: not passed on as metadata.
const NOT_METADATA: &[&str] = &[
    "accept-encoding",
    "connection",
    "content-length",
    "content-type",
    "host",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "timeout",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The call's options from the request's headers: `Timeout` (seconds) and the metadata.
fn call_options(headers: &HeaderMap) -> Result<CallOptions> {
    let mut options = CallOptions::new();
    for (name, value) in headers {
        let name = name.as_str();
        if NOT_METADATA.contains(&name) || name.starts_with("grpc-") {
            continue;
        }
        if let Ok(value) = value.to_str() {
            options = options.metadata(name, value);
        }
    }
    if let Some(timeout) = headers.get("timeout") {
        let seconds = timeout
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(|| bad_request("the Timeout header is not a number of seconds"))?;
        options = options.timeout(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
    }
    Ok(options)
}

fn bad_request(detail: impl Into<String>) -> Error {
    Error::bad_request("go.micro.api", detail)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::new(Code::Internal, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_come_from_the_body_the_form_or_the_query() {
        let uri: Uri = "/greeter/hello?name=Ada&name=Bob&x=%C3%A9+y"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(
            request_of(&uri, &headers, b"").unwrap(),
            serde_json::json!({ "name": "Ada", "x": "é y" })
        );
        assert_eq!(
            request_of(&uri, &headers, br#"{"name": "Cy"}"#).unwrap(),
            serde_json::json!({ "name": "Cy" })
        );
        let err = request_of(&uri, &headers, b"{oops").unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            request_of(&uri, &headers, b"name=Di").unwrap(),
            serde_json::json!({ "name": "Di" })
        );
    }

    #[test]
    fn headers_become_metadata_and_a_timeout() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("ada"));
        headers.insert("host", HeaderValue::from_static("example"));
        headers.insert("timeout", HeaderValue::from_static("2.5"));
        let options = call_options(&headers).unwrap();
        assert_eq!(options.get_timeout(), Some(Duration::from_millis(2500)));
        for bad in ["soon", "-1", "0", "NaN"] {
            headers.insert("timeout", HeaderValue::from_static(bad));
            assert!(call_options(&headers).is_err(), "{bad}");
        }
    }
}
