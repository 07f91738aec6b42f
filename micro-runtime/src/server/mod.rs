//! The server: gRPC over HTTP/2 on `h2` (hyper's HTTP/2 layer), with handlers registered by
//! generated code. Each connection is one task that polls its calls next to the connection:
//! measured faster than hyper's server, which spawns a task per call.
//!
//! Each method answers on two paths: the standard `/<proto package>.<Service>/<Method>` and
//! go-micro's `/<registered service name>.<Service>/<Method>`. On [`Server::start`] the node is
//! registered with its endpoints and re-registered every `register_interval`; on
//! [`Server::stop`] it is deregistered first, then in-flight calls finish, then the listener
//! and connections close.

mod call;
mod connection;
mod endpoints;
mod handler;
mod health;
mod layer;
mod layers;
mod options;
mod registration;
mod router;
mod subscriber;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::context::CallKind;
pub use endpoints::{EndpointResult, Endpoints, IntoHandler, SubscriberResult};
pub use handler::Handler;
use health::Health;
use layer::Layers;
pub use layer::{Answer, HandlerCall, HandlerLayer, Next};
pub use layers::{CallOn, ConcurrencyLimit, RateLimit, RequestLog, Timeout, TowerCall, TowerLayer};
pub use options::ServerOptions;
use registration::Heartbeat;
use router::Router;
pub use subscriber::{Subscriber, SubscriberWrapper};

use crate::broker::{self, Broker};
use crate::codec::Message;
use crate::context::Context;
use crate::error::{Code, Error, Result};
use crate::registry::{self, Endpoint, Node, RegisterOptions, Registry};

/// A gRPC server. Cheap to clone; clones share one server.
///
/// A [`Service`](crate::Service) makes one; on its own, a server takes its options and a
/// registry, its handlers, then starts (registering) and stops (deregistering, draining):
///
/// ```
/// # mod greeter { include!("../../../protoc-gen-micro/tests/golden/greeter/greeter.rs"); }
/// # struct Hello;
/// # impl greeter::Greeter for Hello {
/// #     async fn hello(&self, _: micro_runtime::Context, req: greeter::HelloRequest)
/// #         -> micro_runtime::Result<greeter::HelloResponse> {
/// #         Ok(greeter::HelloResponse { greeting: format!("Hello, {}!", req.name) })
/// #     }
/// # }
/// use std::sync::Arc;
/// use micro_runtime::registry::memory::MemoryRegistry;
/// use micro_runtime::{Registry, Server, ServerOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> micro_runtime::Result<()> {
/// let registry = Arc::new(MemoryRegistry::new());
/// let options = ServerOptions {
///     name: "greeter".into(),
///     address: "127.0.0.1:0".into(),
///     ..ServerOptions::default()
/// };
/// let server = Server::new(options, registry.clone());
/// greeter::register_greeter_handler(&server, Hello)?;
/// let addr = server.start().await?; // listening, and registered with its endpoints
/// let records = registry.get_service("greeter").await?;
/// assert_eq!(records[0].nodes[0].address, addr.to_string());
/// assert_eq!(records[0].endpoints[0].name, "Greeter.Hello");
/// server.stop().await // deregisters, lets calls finish, closes
/// # }
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    options: ServerOptions,
    registry: Arc<dyn Registry>,
    state: Mutex<State>,
    /// Held through a whole start or stop, so they take turns: a second start fails once the
    /// first is done, a stop called during a start stops what that start started.
    lifecycle: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    handlers: Vec<Handler>,
    subscribers: Vec<Subscriber>,
    wrappers: Vec<SubscriberWrapper>,
    layers: Layers,
    broker: Option<Arc<dyn Broker>>,
    running: Option<Running>,
}

struct Running {
    addr: SocketAddr,
    /// What `grpc.health.v1.Health/Check` answers.
    health: Arc<Health>,
    record: registry::Record,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    heartbeat: Option<Heartbeat>,
    subscriptions: Vec<Box<dyn broker::Subscription>>,
}

impl Server {
    /// A server with `options`, registering in `registry`.
    pub fn new(mut options: ServerOptions, registry: Arc<dyn Registry>) -> Server {
        if options.version.is_empty() {
            options.version = "latest".into();
        }
        if options.id.is_empty() {
            options.id = crate::id::prefixed(&options.name);
        }
        Server {
            inner: Arc::new(Inner {
                options,
                registry,
                state: Mutex::default(),
                lifecycle: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The settings.
    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// The registry the server registers in.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.inner.registry
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a handler (generated `register_*_handler` functions call this), or a type whose
    /// methods are endpoints (`#[micro_runtime::handler]`, see [`IntoHandler`]). Handlers are
    /// added before [`Server::start`]; an endpoint name may be handled once.
    pub fn handle(&self, handler: impl IntoHandler) -> Result<()> {
        let mut handler = handler.into_handler();
        let mut state = self.state();
        if state.running.is_some() {
            return Err(Error::new(
                Code::FailedPrecondition,
                "handlers must be added before the server starts",
            ));
        }
        for existing in &state.handlers {
            if let Some(dup) = handler
                .endpoint_names()
                .find(|n| existing.endpoint_names().any(|e| e == *n))
            {
                return Err(Error::new(
                    Code::AlreadyExists,
                    format!("endpoint {dup} is already handled"),
                ));
            }
        }
        state.subscribers.extend(handler.take_subscribers());
        state.handlers.push(handler);
        Ok(())
    }

    /// The broker subscribers use (and the one named in the node's metadata).
    pub fn with_broker(self, broker: Arc<dyn Broker>) -> Server {
        self.state().broker = Some(broker);
        self
    }

    /// The broker, when one is set.
    pub fn broker(&self) -> Option<Arc<dyn Broker>> {
        self.state().broker.clone()
    }

    /// Adds a subscriber, subscribed when the server starts and unsubscribed when it stops
    /// (see [`register_subscriber`] for the short form). Subscribers are added before
    /// [`Server::start`].
    pub fn subscribe(&self, subscriber: Subscriber) -> Result<()> {
        let mut state = self.state();
        if state.running.is_some() {
            return Err(Error::new(
                Code::FailedPrecondition,
                "subscribers must be added before the server starts",
            ));
        }
        state.subscribers.push(subscriber);
        Ok(())
    }

    /// Adds subscriber middleware: `wrapper` gets each subscriber's handler and returns the
    /// one to use, as go-micro's `WrapSubscriber`. The last added runs first.
    ///
    /// ```
    /// use micro_runtime::broker::{EventHandler, Event};
    /// # fn f(server: &micro_runtime::Server) {
    /// server.wrap_subscriber(|next: EventHandler| -> EventHandler {
    ///     std::sync::Arc::new(move |event: Event| {
    ///         tracing::info!(topic = event.topic(), "event");
    ///         next(event)
    ///     })
    /// });
    /// # }
    /// ```
    pub fn wrap_subscriber(
        &self,
        wrapper: impl Fn(broker::EventHandler) -> broker::EventHandler + Send + Sync + 'static,
    ) {
        self.state().wrappers.push(Arc::new(wrapper));
    }

    /// Adds a handler layer: code that runs around every method's calls, unary and
    /// streaming, as go-micro's `WrapHandler` (see [`HandlerLayer`]). Layers run in the order
    /// they were added, the first outermost; they apply from the next [`Server::start`]. With
    /// none, a call costs nothing more.
    ///
    /// ```
    /// use micro_runtime::server::{RequestLog, ConcurrencyLimit};
    /// # fn f(server: &micro_runtime::Server) {
    /// server.wrap_handler(RequestLog::new());
    /// server.wrap_handler(ConcurrencyLimit::new(256));
    /// # }
    /// ```
    pub fn wrap_handler(&self, layer: impl HandlerLayer) {
        self.state().layers.push(layer);
    }

    #[cfg(test)]
    /// How many handler layers the server has.
    pub(crate) fn layer_count(&self) -> usize {
        self.state().layers.len()
    }

    /// The endpoints of every handler and subscriber, as they are registered.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let state = self.state();
        endpoints_of(&state)
    }

    /// The address the server listens on, once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.state().running.as_ref().map(|r| r.addr)
    }

    /// Binds the address, starts serving and registers the node; returns the bound address.
    /// A started server fails with FAILED_PRECONDITION. Starts and stops take turns, and run
    /// to the end even when their caller stops waiting (a timeout, a `select!`): a later
    /// [`Server::stop`] finds and undoes what such a start did.
    pub async fn start(&self) -> Result<SocketAddr> {
        self.in_turn(|server| async move {
            server.not_running()?;
            let address = &server.inner.options.address;
            let listener = TcpListener::bind(address)
                .await
                .map_err(|e| Error::new(Code::Unavailable, format!("listen on {address}: {e}")))?;
            server.serve(listener).await
        })
        .await
    }

    /// Like [`Server::start`], on a listener the caller bound.
    pub async fn start_on(&self, listener: TcpListener) -> Result<SocketAddr> {
        self.in_turn(|server| async move { server.serve(listener).await })
            .await
    }

    /// Runs `step` (a start or a stop) in a task of its own once the steps before it are done.
    async fn in_turn<T, F>(&self, step: impl FnOnce(Server) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let step = step(self.clone());
        let inner = self.inner.clone();
        let name = &self.inner.options.name;
        tokio::spawn(async move {
            let _turn = inner.lifecycle.lock().await;
            step.await
        })
        .await
        .unwrap_or_else(|e| {
            let code = if e.is_cancelled() {
                Code::Cancelled
            } else {
                Code::Internal
            };
            Err(Error::new(code, format!("server {name}: {e}")))
        })
    }

    fn not_running(&self) -> Result<()> {
        match self.state().running {
            Some(_) => Err(Error::new(
                Code::FailedPrecondition,
                "server already started",
            )),
            None => Ok(()),
        }
    }

    /// Serves `listener` and registers; the caller has the turn.
    async fn serve(&self, listener: TcpListener) -> Result<SocketAddr> {
        let addr = listener.local_addr()?;
        self.not_running()?;
        let (router, health, record, subscribers) = {
            let state = self.state();
            let router = Router::new(&self.inner.options, &state.handlers, &state.layers);
            let health = router.health().clone();
            let subscribers = match (&state.broker, state.subscribers.is_empty()) {
                (_, true) => None,
                (Some(b), false) => {
                    Some((b.clone(), state.subscribers.clone(), state.wrappers.clone()))
                }
                (None, false) => {
                    return Err(Error::new(
                        Code::FailedPrecondition,
                        "the server has subscribers but no broker (Server::with_broker)",
                    ));
                }
            };
            (router, health, self.record(addr, &state), subscribers)
        };
        let subscriptions = match subscribers {
            Some((broker, subs, wrappers)) => {
                subscriber::subscribe_all(broker.as_ref(), &subs, &wrappers).await?
            }
            None => Vec::new(),
        };
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(connection::accept_loop(
            listener,
            Arc::new(router),
            stopped,
            connection::Settings::new(&self.inner.options),
        ));

        let ttl = RegisterOptions {
            ttl: self.inner.options.register_ttl,
        };
        if let Err(e) = self.inner.registry.register(&record, ttl).await {
            let _ = stop.send(true);
            subscriber::unsubscribe_all(subscriptions).await;
            return Err(e);
        }
        let every = self.inner.options.register_interval;
        let heartbeat = (!every.is_zero())
            .then(|| Heartbeat::start(self.inner.registry.clone(), record.clone(), ttl, every));
        tracing::info!(
            id = %record.nodes.first().map(|n| n.id.as_str()).unwrap_or(""),
            version = %record.version,
            "{} started on {addr}, registry {}",
            record.name,
            self.inner.registry.name()
        );
        self.state().running = Some(Running {
            addr,
            health,
            record,
            stop,
            accept,
            heartbeat,
            subscriptions,
        });
        Ok(addr)
    }

    /// Deregisters the node and ends its subscriptions, lets in-flight calls finish (up to the
    /// drain timeout), then closes the listener, the connections and the broker. Stopping a
    /// stopped server does nothing; a stop called while a start is under way waits for it and
    /// stops what it started.
    pub async fn stop(&self) -> Result<()> {
        self.in_turn(|server| async move { server.stop_now().await })
            .await
    }

    async fn stop_now(&self) -> Result<()> {
        let Some(running) = self.state().running.take() else {
            return Ok(());
        };
        // Health checks say so from the start of the stop: before the node leaves the
        // registry and while its calls drain.
        running.health.stopping();
        // No re-registration after the deregistration below.
        if let Some(heartbeat) = running.heartbeat {
            heartbeat.end().await;
        }
        let deregistered = self.inner.registry.deregister(&running.record).await;
        let had_subscriptions = !running.subscriptions.is_empty();
        subscriber::unsubscribe_all(running.subscriptions).await;
        let _ = running.stop.send(true);
        let _ = running.accept.await;
        if had_subscriptions
            && let Some(broker) = self.broker()
            && let Err(e) = broker.disconnect().await
        {
            tracing::warn!(error = %e, "broker disconnect failed");
        }
        tracing::info!("{} stopped", running.record.name);
        deregistered
    }

    /// The registry record of this node.
    fn record(&self, bound: SocketAddr, state: &State) -> registry::Record {
        let o = &self.inner.options;
        let address = if !o.advertise.is_empty() {
            o.advertise.clone()
        } else if bound.ip().is_unspecified() {
            // Listening everywhere: loopback is the one address sure to reach us. Services
            // called from other hosts set --server_advertise.
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port()).to_string()
        } else {
            bound.to_string()
        };
        let mut node_md = o.metadata.clone();
        for (k, v) in [
            ("transport", "grpc"),
            ("server", "grpc"),
            ("protocol", "grpc"),
            ("broker", state.broker.as_ref().map_or("http", |b| b.name())),
            ("registry", self.inner.registry.name()),
        ] {
            node_md.entry(k.into()).or_insert_with(|| v.into());
        }
        registry::Record {
            name: o.name.clone(),
            version: o.version.clone(),
            metadata: o.metadata.clone(),
            endpoints: endpoints_of(state),
            nodes: vec![Node {
                id: o.id.clone(),
                address,
                metadata: node_md,
            }],
        }
    }
}

/// Adds a typed subscriber of `topic` to `server` (go-micro's `RegisterSubscriber`); for a
/// queue group, pass a [`Subscriber`] to [`Server::subscribe`].
pub fn register_subscriber<T, F, Fut>(
    server: &Server,
    topic: impl Into<String>,
    handler: F,
) -> Result<()>
where
    T: Message,
    F: Fn(Context, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    server.subscribe(Subscriber::new(topic, handler))
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("options", &self.inner.options)
            .finish()
    }
}

fn endpoints_of(state: &State) -> Vec<Endpoint> {
    state
        .handlers
        .iter()
        .flat_map(Handler::endpoints)
        .chain(state.subscribers.iter().map(|s| s.endpoint().clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::registry::memory::MemoryRegistry;

    /// A memory registry whose registrations, once stored, wait for a permit (a start held
    /// midway, its node already findable), or whose deregistrations wait for one before the
    /// node leaves (a stop held before it deregisters).
    struct Gated {
        inner: MemoryRegistry,
        permits: tokio::sync::Semaphore,
        entered: tokio::sync::Notify,
        holds: Held,
    }

    #[derive(PartialEq)]
    enum Held {
        Register,
        Deregister,
    }

    impl Gated {
        fn new(holds: Held) -> Arc<Gated> {
            Arc::new(Gated {
                inner: MemoryRegistry::new(),
                permits: tokio::sync::Semaphore::new(0),
                entered: tokio::sync::Notify::new(),
                holds,
            })
        }

        async fn hold(&self, step: Held) {
            if self.holds == step {
                self.entered.notify_one();
                self.permits.acquire().await.unwrap().forget();
            }
        }
    }

    #[async_trait::async_trait]
    impl Registry for Gated {
        fn name(&self) -> &'static str {
            "gated"
        }
        async fn register(&self, service: &registry::Record, o: RegisterOptions) -> Result<()> {
            self.inner.register(service, o).await?;
            self.hold(Held::Register).await;
            Ok(())
        }
        async fn deregister(&self, service: &registry::Record) -> Result<()> {
            self.hold(Held::Deregister).await;
            self.inner.deregister(service).await
        }
        async fn get_service(&self, name: &str) -> Result<Vec<registry::Record>> {
            self.inner.get_service(name).await
        }
        async fn list_services(&self) -> Result<Vec<registry::Record>> {
            self.inner.list_services().await
        }
        async fn watch(&self, service: Option<&str>) -> Result<registry::Watcher> {
            self.inner.watch(service).await
        }
    }

    fn gated_server(address: &str) -> (Server, Arc<Gated>) {
        gated(address, Held::Register)
    }

    fn gated(address: &str, holds: Held) -> (Server, Arc<Gated>) {
        let registry = Gated::new(holds);
        let options = ServerOptions {
            name: "t".into(),
            address: address.into(),
            register_interval: Duration::ZERO,
            ..ServerOptions::default()
        };
        (Server::new(options, registry.clone()), registry)
    }

    #[tokio::test]
    async fn a_stop_called_during_a_start_stops_what_it_started() {
        let (server, registry) = gated_server("127.0.0.1:0");
        let start = tokio::spawn({
            let server = server.clone();
            async move { server.start().await }
        });
        registry.entered.notified().await;
        let stop = tokio::spawn({
            let server = server.clone();
            async move { server.stop().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        registry.permits.add_permits(1);
        start.await.unwrap().expect("start");
        stop.await.unwrap().expect("stop");
        assert_eq!(
            server.local_addr(),
            None,
            "the server still runs after stop returned"
        );
        assert!(
            registry.get_service("t").await.is_err(),
            "the node stayed registered"
        );
    }

    #[tokio::test]
    async fn a_second_start_during_the_first_fails_and_leaves_the_first_running() {
        let (server, registry) = gated_server("127.0.0.1:0");
        let first = tokio::spawn({
            let server = server.clone();
            async move { server.start().await }
        });
        registry.entered.notified().await;
        let second = tokio::spawn({
            let server = server.clone();
            async move { server.start().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        registry.permits.add_permits(2);
        let addr = first.await.unwrap().expect("first start");
        let err = second.await.unwrap().expect_err("a second start succeeded");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
        assert_eq!(server.local_addr(), Some(addr));
        let nodes = &registry.get_service("t").await.unwrap()[0].nodes;
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].address, addr.to_string());
        server.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_start_whose_caller_stopped_waiting_is_undone_by_stop() {
        let (server, registry) = gated_server("127.0.0.1:0");
        let abandoned = tokio::time::timeout(Duration::from_millis(50), server.start()).await;
        assert!(
            abandoned.is_err(),
            "the start did not wait for the registry"
        );
        registry.permits.add_permits(1);
        server.stop().await.unwrap();
        assert!(
            registry.get_service("t").await.is_err(),
            "the node stayed registered"
        );
        assert_eq!(server.local_addr(), None);
    }

    #[tokio::test]
    async fn starting_a_started_server_on_a_fixed_port_is_a_failed_precondition() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (server, registry) = gated_server(&format!("127.0.0.1:{port}"));
        registry.permits.add_permits(2);
        server.start().await.unwrap();
        let err = server.start().await.expect_err("started twice");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
        server.stop().await.unwrap();
    }

    #[tokio::test]
    async fn health_checks_say_not_serving_from_the_start_of_a_stop() {
        use crate::health::{CHECK, HealthCheckRequest, HealthCheckResponse, ServingStatus};
        use crate::{CallOptions, Client, ClientOptions, Codec};

        let (server, registry) = gated("127.0.0.1:0", Held::Deregister);
        let addr = server.start().await.unwrap();
        let client = Client::new(
            ClientOptions::default(),
            registry.clone(),
            crate::selector::from_name("random").unwrap(),
        );
        let check = |service: &str, codec: Codec| {
            let request = HealthCheckRequest {
                service: service.into(),
            };
            let client = client.clone();
            async move {
                let options = CallOptions::new()
                    .address(addr.to_string())
                    .codec(codec)
                    .retries(0);
                client
                    .call::<_, HealthCheckResponse>("t", &CHECK, &request, &options)
                    .await
                    .map(|r| r.status())
            }
        };
        for codec in [Codec::Proto, Codec::Json] {
            for service in ["", "t"] {
                assert_eq!(
                    check(service, codec).await.unwrap(),
                    ServingStatus::Serving,
                    "{service:?} in {codec:?}"
                );
            }
            let err = check("other", codec).await.unwrap_err();
            assert_eq!(err.code(), Code::NotFound, "{err}");
        }

        let stop = tokio::spawn({
            let server = server.clone();
            async move { server.stop().await }
        });
        registry.entered.notified().await;
        // Still registered and accepting, but on its way out.
        assert!(registry.get_service("t").await.is_ok());
        for codec in [Codec::Proto, Codec::Json] {
            assert_eq!(
                check("", codec).await.unwrap(),
                ServingStatus::NotServing,
                "{codec:?}"
            );
        }
        registry.permits.add_permits(1);
        stop.await.unwrap().unwrap();
    }
}
