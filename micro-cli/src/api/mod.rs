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
//!
//! Here: the settings, the server and each request's dispatch. The answers are in `rpc`,
//! `proxy`, `sidecar` and `sockets`, with `http`'s helpers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use micro_runtime::{Client, Code, Error, Result};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use micro_runtime::api::resolve;

use crate::guard::Guard;
use crate::program::Program;

use http::{bad_request, cors_headers, json_response, refuse_other_sites};
use sidecar::Sidecar;

mod http;
mod proxy;
mod rpc;
mod sidecar;
mod sockets;

pub(crate) use http::error_status;

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
        Front::Sidecar { ttl, program } => Some(Sidecar::new(ttl, program)),
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
        sidecar.deregister_all(&gateway.client).await;
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
    if gateway.handler == Handler::Http
        && !gateway.own_path(uri.path())
        && let Ok(body) = body
    {
        return match gateway.proxy(method, &uri, headers, body).await {
            Ok(response) => response,
            Err(e) => json_response(error_status(&e), e.to_json()),
        };
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

impl Gateway {
    /// Whether `path` is one the gateway answers itself: `/rpc`, and the sidecar's.
    fn own_path(&self, path: &str) -> bool {
        path == "/rpc"
            || (self.sidecar.is_some() && matches!(path, "/registry" | "/broker" | "/health"))
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
}
