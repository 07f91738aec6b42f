//! A service: a server, a client and a registry, set up from code, flags and environment,
//! with a lifecycle.
//!
//! ```no_run
//! # async fn run() -> micro_runtime::Result<()> {
//! use micro_runtime::Service;
//!
//! let service = Service::builder().name("greeter").version("1.0.0").from_env()?.build()?;
//! // register handlers on service.server() here
//! service.run().await // serves until SIGINT/SIGTERM, then deregisters and drains
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::broker::{self, Broker};
use crate::client::{Client, ClientOptions};
use crate::error::{Code, Error, Result};
use crate::options::Options;
use crate::registry::{self, Registry};
use crate::selector::{self, Selector};
use crate::server::{Server, ServerOptions};

type Hook = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send + Sync>;

/// Lifecycle hooks, run in the order added.
#[derive(Default)]
struct Hooks {
    before_start: Vec<Hook>,
    after_start: Vec<Hook>,
    before_stop: Vec<Hook>,
    after_stop: Vec<Hook>,
}

async fn run_hooks(hooks: &[Hook]) -> Result<()> {
    for hook in hooks {
        hook().await?;
    }
    Ok(())
}

/// Builds a [`Service`]: code sets defaults, [`ServiceBuilder::options`] (flags and
/// environment) override them.
#[must_use]
pub struct ServiceBuilder {
    server: ServerOptions,
    client: ClientOptions,
    options: Options,
    registry: Option<Arc<dyn Registry>>,
    selector: Option<Arc<dyn Selector>>,
    broker: Option<Arc<dyn Broker>>,
    hooks: Hooks,
    default_logging: bool,
    /// Handler layers, in order, put on the server when it is built.
    layers: Vec<AddLayer>,
}

/// Puts one handler layer on a server.
type AddLayer = Box<dyn FnOnce(&Server) + Send + Sync>;

macro_rules! hook_setters {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name<F, Fut>(mut self, hook: F) -> ServiceBuilder
        where
            F: Fn() -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<()>> + Send + 'static,
        {
            self.hooks.$name.push(Box::new(move || Box::pin(hook())));
            self
        }
    )*};
}

impl ServiceBuilder {
    /// Adds a handler layer to the service's server: it runs around every method's calls,
    /// in the order added, the first outermost ([`Server::wrap_handler`]).
    ///
    /// ```
    /// use micro_runtime::Service;
    /// use micro_runtime::server::{ConcurrencyLimit, RequestLog};
    /// let service = Service::builder()
    ///     .name("orders")
    ///     .wrap_handler(RequestLog::new())
    ///     .wrap_handler(ConcurrencyLimit::new(256))
    ///     .build()?;
    /// # Ok::<(), micro_runtime::Error>(())
    /// ```
    pub fn wrap_handler(mut self, layer: impl crate::server::HandlerLayer) -> ServiceBuilder {
        self.layers
            .push(Box::new(move |server: &Server| server.wrap_handler(layer)));
        self
    }

    /// Adds a call layer to the service's client: it runs around every attempt of every
    /// call, in the order added, the first outermost ([`CallLayer`](crate::client::CallLayer)).
    pub fn wrap_call(mut self, layer: impl crate::client::CallLayer) -> ServiceBuilder {
        self.client.layers.push(layer);
        self
    }

    /// Adds a publish layer to the service's client: it runs around every event the client
    /// publishes, in the order added, the first outermost
    /// ([`PublishLayer`](crate::client::PublishLayer)).
    pub fn wrap_publish(mut self, layer: impl crate::client::PublishLayer) -> ServiceBuilder {
        self.client.publish_layers.push(layer);
        self
    }

    /// A circuit breaker for each node the service's client calls
    /// ([`CircuitBreaker`](crate::selector::CircuitBreaker)).
    pub fn circuit_breaker(mut self, breaker: crate::selector::CircuitBreaker) -> ServiceBuilder {
        self.client.breaker = Some(breaker);
        self
    }

    /// Caps the retries of the service's client at a share of its calls
    /// ([`RetryBudget`](crate::client::RetryBudget)).
    pub fn retry_budget(mut self, budget: crate::client::RetryBudget) -> ServiceBuilder {
        self.client.retry_budget = Some(budget);
        self
    }

    /// The service name.
    pub fn name(mut self, name: impl Into<String>) -> ServiceBuilder {
        self.server.name = name.into();
        self
    }

    /// The version.
    pub fn version(mut self, version: impl Into<String>) -> ServiceBuilder {
        self.server.version = version.into();
        self
    }

    /// Adds a metadata entry of the service and its node.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> ServiceBuilder {
        self.server.metadata.insert(key.into(), value.into());
        self
    }

    /// The listening address (`host:port`).
    pub fn address(mut self, address: impl Into<String>) -> ServiceBuilder {
        self.server.address = address.into();
        self
    }

    /// The address to register, when not the listening one.
    pub fn advertise(mut self, address: impl Into<String>) -> ServiceBuilder {
        self.server.advertise = address.into();
        self
    }

    /// The registration TTL and refresh interval.
    pub fn register_ttl(mut self, ttl: Duration, interval: Duration) -> ServiceBuilder {
        self.server.register_ttl = ttl;
        self.server.register_interval = interval;
        self
    }

    /// A registry instance. As in go-micro, `--registry` (or `MICRO_REGISTRY`) naming another
    /// kind replaces it; naming its own kind keeps it (and its settings: `--registry_address`
    /// does not re-address an instance set here).
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> ServiceBuilder {
        self.registry = Some(registry);
        self
    }

    /// A selector instance. As in go-micro, `--selector` (or `MICRO_SELECTOR`) naming another
    /// kind replaces it; naming its own kind keeps it.
    pub fn selector(mut self, selector: Arc<dyn Selector>) -> ServiceBuilder {
        self.selector = Some(selector);
        self
    }

    /// A broker instance. As in go-micro, `--broker` (or `MICRO_BROKER`) naming another
    /// kind replaces it; naming its own kind keeps it (and its settings: `--broker_address`
    /// does not re-address an instance set here).
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> ServiceBuilder {
        self.broker = Some(broker);
        self
    }

    /// Client settings (call layers, breaker and retry budget included: set them after).
    pub fn client_options(mut self, options: ClientOptions) -> ServiceBuilder {
        self.client = options;
        self
    }

    /// Settings from flags and environment; those set override the builder's.
    pub fn options(mut self, options: Options) -> ServiceBuilder {
        self.options = options;
        self
    }

    /// Whether the service installs [`logging`](crate::logging)'s stderr subscriber when it
    /// starts and the program has installed none (default: yes). `default_logging(false)`
    /// keeps the program silent unless it sets up `tracing` itself.
    pub fn default_logging(mut self, on: bool) -> ServiceBuilder {
        self.default_logging = on;
        self
    }

    /// Settings from `MICRO_*` environment variables.
    pub fn from_env(self) -> Result<ServiceBuilder> {
        Ok(self.options(Options::from_env()?))
    }

    /// Settings from the process's flags and environment, parsed as clap parses a program's
    /// own: `--help` lists go-micro's flags under the program's name, `--help` and
    /// `--version` (the service's version) print and exit 0, a flag that is unknown or can't
    /// be read prints clap's error and exits 2.
    ///
    /// For flags of your own beside go-micro's, flatten [`Options`] into your clap parser
    /// and pass it to [`ServiceBuilder::options`] instead.
    ///
    /// ```no_run
    /// # fn main() -> micro_runtime::Result<()> {
    /// let service = micro_runtime::Service::builder()
    ///     .name("greeter")
    ///     .version("1.2.0")
    ///     .from_args() // `greeter-server --help`, `--registry etcd`, ...
    ///     .build()?;
    /// # drop(service);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_args(self) -> ServiceBuilder {
        let about = match self.server.name.as_str() {
            "" => "A micro service".to_owned(),
            name => format!("The {name} service"),
        };
        let options = Options::parse_program(std::env::args_os(), about, &self.server.version)
            .unwrap_or_else(|e| e.exit());
        self.options(options)
    }

    hook_setters! {
        /// Runs before the server starts.
        before_start;
        /// Runs after the server started and registered.
        after_start;
        /// Runs before the server deregisters and stops.
        before_stop;
        /// Runs after the server stopped.
        after_stop;
    }

    /// The service.
    pub fn build(self) -> Result<Service> {
        let o = self.options;
        let mut server = self.server;
        let mut client = self.client;
        macro_rules! set {
            ($target:expr, $value:expr) => {
                if let Some(v) = $value {
                    $target = v;
                }
            };
        }
        // As in go-micro, an empty string is no setting.
        let text = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        set!(server.name, text(&o.server_name));
        set!(server.version, text(&o.server_version));
        set!(server.id, text(&o.server_id));
        set!(server.address, text(&o.server_address));
        set!(server.advertise, text(&o.server_advertise));
        set!(server.register_ttl, o.register_ttl.map(Duration::from_secs));
        set!(
            server.register_interval,
            o.register_interval.map(Duration::from_secs)
        );
        set!(server.max_message_size, o.max_message_size);
        set!(server.max_connections, o.server_max_connections);
        set!(
            server.max_concurrent_streams,
            o.server_max_concurrent_streams
        );
        set!(server.max_header_list_size, o.server_max_header_list_size);
        set!(server.handshake_timeout, o.server_handshake_timeout);
        set!(server.keepalive, o.server_keepalive);
        set!(server.keepalive_timeout, o.server_keepalive_timeout);
        set!(server.idle_timeout, o.server_idle_timeout);
        set!(client.max_message_size, o.max_message_size);
        set!(client.retries, o.client_retries);
        set!(client.request_timeout, o.client_request_timeout);
        set!(client.pool_size, o.client_pool_size);
        set!(client.compression, o.client_compression);
        if let Some(percent) = o.client_retry_budget {
            client.retry_budget = Some(crate::client::RetryBudget::percent(percent));
        }
        if o.client_circuit_breaker {
            client.breaker = Some(crate::selector::CircuitBreaker::default());
        }
        server.metadata.extend(o.metadata()?);
        if let Some(t) = o.transport.as_deref().filter(|t| *t != "grpc") {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("unknown transport {t:?} (expected grpc)"),
            ));
        }
        // As go-micro's flags do, a name given by flag or environment replaces an instance
        // set in code, unless that instance is already of the kind named.
        fn named(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|v| !v.is_empty())
        }
        let (registry, registry_replaced) = match (self.registry, named(&o.registry)) {
            (Some(r), name) if name.is_none_or(|n| n == r.name()) => (r, false),
            (code, name) => {
                let address = o.registry_address.as_deref().unwrap_or("");
                (
                    registry::from_name(name.unwrap_or(""), address)?,
                    code.is_some(),
                )
            }
        };
        let selector = match (self.selector, named(&o.selector)) {
            (Some(s), None) => s,
            (code, name) => {
                let flagged = selector::from_name(name.unwrap_or(""))?;
                code.filter(|s| s.name() == flagged.name())
                    .unwrap_or(flagged)
            }
        };
        // The http broker finds its subscribers in the registry: one set in code is built
        // again on the registry a flag put in place of the code's (go-micro re-initialises
        // it with the new registry).
        let keep = |b: &Arc<dyn Broker>| !(registry_replaced && b.name() == "http");
        let broker = match (self.broker, named(&o.broker)) {
            (Some(b), name) if name.is_none_or(|n| n == b.name()) && keep(&b) => b,
            (code, name) => broker::from_name(
                name.or(code.map(|b| b.name())).unwrap_or(""),
                o.broker_address.as_deref().unwrap_or(""),
                registry.clone(),
            )?,
        };
        let server = Server::new(server, registry.clone()).with_broker(broker.clone());
        // The layers flags ask for, outermost (a shed call is logged), then the code's.
        if o.server_request_log {
            server.wrap_handler(crate::server::RequestLog::new());
        }
        if let Some(limit) = o.server_concurrency_limit {
            server.wrap_handler(crate::server::ConcurrencyLimit::new(limit));
        }
        if let Some(rate) = o.server_rate_limit {
            server.wrap_handler(crate::server::RateLimit::per_second(rate));
        }
        for wrap in self.layers {
            wrap(&server);
        }
        Ok(Service {
            server,
            client: Client::new(client, registry, selector).with_broker(broker),
            hooks: self.hooks,
            lifecycle: tokio::sync::Mutex::new(()),
            default_logging: self.default_logging,
        })
    }
}

/// A microservice: serves its handlers, calls others, registers itself.
///
/// Built from code, then flags and `MICRO_*` variables (which win), with hooks around its
/// start and stop:
///
/// ```no_run
/// use micro_runtime::Service;
///
/// # async fn run() -> micro_runtime::Result<()> {
/// let service = Service::builder()
///     .name("orders")
///     .version("1.4.0")
///     .metadata("team", "checkout")
///     .before_start(|| async {
///         // open the database before any call can come
///         Ok(())
///     })
///     .after_stop(|| async { Ok(()) })
///     .from_args() // --registry etcd --server_address 0.0.0.0:9090 ...
///     .build()?;
/// // orders::register_orders_handler(service.server(), Orders)?;
/// let client = service.client(); // calls other services, publishes events
/// # drop(client);
/// service.run().await // until SIGINT/SIGTERM; then deregisters, drains, runs after_stop
/// # }
/// ```
pub struct Service {
    server: Server,
    client: Client,
    hooks: Hooks,
    /// Held through a start or a stop with their hooks: a stop called while the start hooks
    /// run waits for the start, then stops what it started.
    lifecycle: tokio::sync::Mutex<()>,
    default_logging: bool,
}

impl Service {
    /// A builder with go-micro's defaults.
    pub fn builder() -> ServiceBuilder {
        ServiceBuilder {
            server: ServerOptions::default(),
            client: ClientOptions::default(),
            options: Options::default(),
            registry: None,
            selector: None,
            broker: None,
            hooks: Hooks::default(),
            default_logging: true,
            layers: Vec::new(),
        }
    }

    /// The server, to register handlers on.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The broker the server's subscribers and the client's publishes use.
    pub fn broker(&self) -> Option<Arc<dyn Broker>> {
        self.server.broker()
    }

    /// A client sharing this service's registry and broker.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.server.options().name
    }

    /// Runs the start hooks, starts the server and registers it; returns the bound address.
    /// When an `after_start` hook fails, the server is stopped (deregistered, closed) before
    /// the hook's error is returned; the stop hooks do not run. Starts and stops take turns.
    pub async fn start(&self) -> Result<SocketAddr> {
        if self.default_logging {
            crate::logging::init();
        }
        let _turn = self.lifecycle.lock().await;
        run_hooks(&self.hooks.before_start).await?;
        let addr = self.server.start().await?;
        if let Err(e) = run_hooks(&self.hooks.after_start).await {
            // The service did not start: nothing may stay registered (or keep re-registering)
            // for callers to find.
            if let Err(stop) = self.server.stop().await {
                tracing::warn!(error = %stop, "stopping after a failed after_start hook");
            }
            return Err(e);
        }
        Ok(addr)
    }

    /// Runs the stop hooks around a graceful stop: deregister, drain, close.
    pub async fn stop(&self) -> Result<()> {
        let _turn = self.lifecycle.lock().await;
        let before = run_hooks(&self.hooks.before_stop).await;
        let stopped = self.server.stop().await;
        let after = run_hooks(&self.hooks.after_stop).await;
        before.and(stopped).and(after)
    }

    /// Starts, serves until SIGINT or SIGTERM, then stops gracefully. The signals are caught
    /// from the call on: one that comes while the service starts stops it once started.
    pub async fn run(self) -> Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Starts, serves until `shutdown` completes, then stops gracefully.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        self.start().await?;
        shutdown.await;
        self.stop().await
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("server", &self.server)
            .field("client", &self.client)
            .finish()
    }
}

/// Completes on SIGINT or SIGTERM. The signals are caught from the call on (inside a tokio
/// runtime), so one that comes before the future is first awaited is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
    };
    async move {
        #[cfg(unix)]
        match signals {
            Ok((mut interrupt, mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::memory::MemoryBroker;
    use crate::registry::memory::MemoryRegistry;
    use crate::selector::{Random, RoundRobin};

    fn built(flags: &[&str]) -> (Service, Arc<dyn Registry>, Arc<dyn Broker>) {
        let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
        let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
        let options =
            Options::parse_from(std::iter::once("t").chain(flags.iter().copied())).unwrap();
        let service = Service::builder()
            .name("t")
            .registry(registry.clone())
            .selector(Arc::new(RoundRobin))
            .broker(broker.clone())
            .options(options)
            .build()
            .unwrap();
        (service, registry, broker)
    }

    #[test]
    fn server_settings_flags_reach_the_server() {
        let defaults = ServerOptions::default();
        let (service, _, _) = built(&[]);
        let o = service.server().options();
        assert_eq!(o.max_connections, defaults.max_connections);
        assert_eq!(o.keepalive, Duration::from_secs(2 * 60 * 60));
        assert_eq!(o.keepalive_timeout, Duration::from_secs(20));
        assert_eq!(o.handshake_timeout, Duration::from_secs(10));

        let (service, _, _) = built(&[
            "--server_max_connections",
            "7",
            "--server_max_concurrent_streams",
            "9",
            "--server_max_header_list_size",
            "4096",
            "--server_handshake_timeout",
            "250ms",
            "--server_keepalive",
            "1m",
            "--server_keepalive_timeout",
            "5s",
            "--server_idle_timeout",
            "0",
        ]);
        let o = service.server().options();
        assert_eq!(o.max_connections, 7);
        assert_eq!(o.max_concurrent_streams, 9);
        assert_eq!(o.max_header_list_size, 4096);
        assert_eq!(o.handshake_timeout, Duration::from_millis(250));
        assert_eq!(o.keepalive, Duration::from_secs(60));
        assert_eq!(o.keepalive_timeout, Duration::from_secs(5));
        assert_eq!(o.idle_timeout, Duration::ZERO);
    }

    #[test]
    fn flags_set_the_built_in_layers_breaker_and_budget() {
        let (service, _, _) = built(&[]);
        assert_eq!(service.server().layer_count(), 0);
        assert!(service.client().options().breaker.is_none());
        assert!(service.client().options().retry_budget.is_none());
        let (service, _, _) = built(&[
            "--server_request_log",
            "--server_concurrency_limit",
            "64",
            "--server_rate_limit",
            "1000",
            "--client_retry_budget",
            "20",
            "--client_circuit_breaker",
        ]);
        assert_eq!(service.server().layer_count(), 3);
        assert!(service.client().options().breaker.is_some());
        assert!(service.client().options().retry_budget.is_some());
    }

    #[test]
    fn parts_set_in_code_are_used_when_no_flag_names_another() {
        for flags in [
            &[][..],
            &[
                "--registry",
                "memory",
                "--selector",
                "round_robin",
                "--broker",
                "memory",
            ],
        ] {
            let (service, registry, broker) = built(flags);
            assert!(
                Arc::ptr_eq(service.server().registry(), &registry),
                "{flags:?}"
            );
            assert!(
                Arc::ptr_eq(service.client().registry(), &registry),
                "{flags:?}"
            );
            assert!(
                Arc::ptr_eq(&service.broker().unwrap(), &broker),
                "{flags:?}"
            );
            assert_eq!(
                service.client().selector().name(),
                "roundrobin",
                "{flags:?}"
            );
        }
    }

    #[test]
    fn a_flag_naming_another_kind_replaces_the_part_set_in_code() {
        let dir = std::env::temp_dir().join(format!("micro-service-test-{}", std::process::id()));
        let dir = dir.to_str().unwrap();
        let (service, registry, broker) = built(&[
            "--registry",
            "local",
            "--registry_address",
            dir,
            "--selector",
            "random",
            "--broker",
            "http",
            "--broker_address",
            "127.0.0.1:0",
        ]);
        assert_eq!(service.server().registry().name(), "local");
        assert!(Arc::ptr_eq(
            service.server().registry(),
            service.client().registry()
        ));
        assert!(!Arc::ptr_eq(service.server().registry(), &registry));
        assert_eq!(service.client().selector().name(), Random.name());
        let flagged = service.broker().unwrap();
        assert_eq!(flagged.name(), "http");
        assert!(!Arc::ptr_eq(&flagged, &broker));
        assert!(Arc::ptr_eq(&flagged, service.client().broker().unwrap()));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_http_broker_set_in_code_follows_a_registry_a_flag_replaced() {
        let dir = std::env::temp_dir().join(format!("micro-service-http-{}", std::process::id()));
        let code_registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
        let http: Arc<dyn Broker> = Arc::new(
            crate::broker::http::HttpBroker::new("127.0.0.1:0", code_registry.clone()).unwrap(),
        );
        let flags = [
            "t",
            "--registry",
            "local",
            "--registry_address",
            dir.to_str().unwrap(),
        ];
        let service = Service::builder()
            .registry(code_registry)
            .broker(http.clone())
            .options(Options::parse_from(flags).unwrap())
            .build()
            .unwrap();
        let broker = service.broker().unwrap();
        assert_eq!(broker.name(), "http");
        assert!(
            !Arc::ptr_eq(&broker, &http),
            "the broker still looks in the old registry"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_unknown_name_is_an_error_even_with_a_part_set_in_code() {
        for flags in [
            ["--registry", "consul"],
            ["--selector", "fastest"],
            ["--broker", "kafka"],
        ] {
            let options = Options::parse_from(std::iter::once("t").chain(flags)).unwrap();
            let err = Service::builder()
                .registry(Arc::new(MemoryRegistry::new()))
                .selector(Arc::new(RoundRobin))
                .broker(Arc::new(MemoryBroker::new()))
                .options(options)
                .build()
                .err()
                .unwrap();
            assert_eq!(err.code(), Code::InvalidArgument, "{flags:?}: {err}");
        }
    }
}
