//! `micro`: the toolkit's command line, as go-micro's. It finds services through the same
//! registry they register in (go-micro's flags and `MICRO_*` variables: `--registry`,
//! `--registry_address`, `--broker`, `--client_request_timeout`, ...) and speaks to them in
//! JSON, so it needs none of their types.
//!
//! ```text
//! micro list services
//! micro get service greeter
//! micro call greeter Greeter.Hello '{"name": "John"}' [--metadata k=v] [--address HOST:PORT]
//! micro stream echo Echo.ServerStream '{"message": "hi", "count": 3}'
//! printf '{"message": "a"}\n{"message": "b"}\n' | micro stream --stdin echo Echo.Bidi
//! micro publish events '{"id": 1}'
//! micro health greeter
//! micro register service '<registry record JSON>'
//! micro deregister service '<registry record JSON>'
//! micro watch [SERVICE]
//! micro api --address 127.0.0.1:8080 --namespace go.micro.api [--handler http] [--cors ORIGINS]
//! micro web --address 127.0.0.1:8082
//! micro sidecar --address 127.0.0.1:8081 [--server_name NAME --server_address HOST:PORT
//!               [--healthcheck_url http://HOST:PORT/health]]
//! micro new inventory [--path DIR | --git URL] [--no-proto]
//! ```
//!
//! Output goes to stdout (JSON for messages and records); errors to stderr as
//! `error: <Code>: <detail>`, with exit status 1 (usage errors: 2).

mod api;
mod guard;
mod health;
mod http1;
mod new;
mod program;
mod serve;
mod web;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use micro_runtime::options::parse_duration;
use micro_runtime::registry::{self, RegisterOptions};
use micro_runtime::{CallOptions, Client, Code, Error, Service};
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "micro",
    version,
    about = "The micro toolkit: list, describe, call, stream, publish and health-check services"
)]
struct Cli {
    #[command(flatten)]
    micro: micro_runtime::Options,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a new service crate NAME in the current directory: a proto, its handler, a
    /// server registered as NAME, a client binary, a test, a README and a Dockerfile.
    New {
        /// The service and crate name (`inventory`, `stock-keeper`).
        name: String,
        /// Depend on the micro checkout at DIR (default: the one this micro was built from).
        #[arg(long, value_name = "DIR", conflicts_with = "git")]
        path: Option<std::path::PathBuf>,
        /// Depend on micro's git repository at URL.
        #[arg(long, value_name = "URL")]
        git: Option<String>,
        /// Handlers and messages from plain Rust types (`#[handler]`), no .proto.
        #[arg(long)]
        no_proto: bool,
    },
    /// List the services in the registry, one name per line.
    List {
        #[command(subcommand)]
        what: List,
    },
    /// Print a service's registry records (one per version) as JSON.
    Get {
        #[command(subcommand)]
        what: Get,
    },
    /// Call an endpoint with a JSON request and print the JSON response.
    Call(CallArgs),
    /// Call a streaming endpoint and print each response, one JSON per line: a server stream
    /// with the one request given, or, with --stdin, a client or bidirectional stream whose
    /// requests are stdin's lines (one JSON each).
    Stream {
        #[command(flatten)]
        call: CallArgs,
        /// Send stdin's lines as the requests (the request argument is then not taken).
        #[arg(long, conflicts_with = "request")]
        stdin: bool,
    },
    /// Publish a JSON message to a topic on the broker.
    Publish {
        /// The topic.
        topic: String,
        /// The message, JSON.
        message: String,
        /// A message header, key=value (repeatable).
        #[arg(long)]
        metadata: Vec<String>,
    },
    /// Ask each node of a service whether it serves (the standard gRPC health check); exits
    /// with 1 unless there are nodes and every one answers SERVING.
    Health {
        /// The service name.
        service: String,
        /// The name each node is asked about (`grpc.health.v1.HealthCheckRequest.service`);
        /// by default the empty name, the server as a whole, as gRPC probes ask.
        #[arg(long, default_value = "")]
        check: String,
        /// How long each node has to answer.
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        timeout: Duration,
    },
    /// Add a service record to the registry (with --register_ttl, it expires unless
    /// registered again).
    Register {
        #[command(subcommand)]
        what: Record,
    },
    /// Remove a service record's nodes from the registry.
    Deregister {
        #[command(subcommand)]
        what: Record,
    },
    /// Print the registry's changes as they happen, one JSON per line:
    /// `{"action": "create|update|delete", "service": <record with the nodes concerned>}`.
    Watch {
        /// Only this service's changes.
        service: Option<String>,
    },
    /// Run the dashboard: the registry's services, their nodes and endpoints, a call form.
    Web {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8082")]
        address: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Run the sidecar for programs in other languages: the API gateway's `/rpc` and paths,
    /// plus `/registry` (GET, POST and DELETE records; what it registered is deregistered
    /// when it stops) and `/broker` (POST ?topic= publishes; a WebSocket subscribes).
    Sidecar {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        address: String,
        /// Prefixed to the service a path names (none by default).
        #[arg(long, default_value = "")]
        namespace: String,
        /// Origins browsers may call from, comma-separated (`*`: any); none by default.
        #[arg(long, env = "MICRO_SIDECAR_CORS", default_value = "")]
        cors: String,
        /// The name to register the program under (with --server_address), as go-micro's
        /// sidecar does; deregistered when the sidecar stops.
        #[arg(long = "server_name", requires = "program_address")]
        program_name: Option<String>,
        /// The program's address (`host:port`).
        #[arg(long = "server_address", requires = "program_name")]
        program_address: Option<String>,
        /// An http:// URL that answers 200 while the program is healthy: it stays
        /// registered only while it does (also asked by the sidecar's /health).
        #[arg(long = "healthcheck_url", requires = "program_name")]
        healthcheck_url: Option<String>,
        /// How often the health check is asked.
        #[arg(long = "healthcheck_interval", default_value = "30s", value_parser = parse_duration)]
        healthcheck_interval: Duration,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Run the API gateway: HTTP/JSON in, RPC out (go-micro's `micro api`: its rpc handler,
    /// or with --handler http its reverse proxy to HTTP services).
    Api {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        address: String,
        /// Prefixed to the service a path names: `/greeter/hello` calls `<namespace>.greeter`
        /// (none when empty).
        #[arg(long, default_value = "go.micro.api")]
        namespace: String,
        /// Origins browsers may call from, comma-separated (`*`: any); none by default.
        #[arg(long, env = "MICRO_API_CORS", default_value = "")]
        cors: String,
        /// How paths are answered: rpc (call the endpoint they name) or http (proxy the
        /// request to a node of the service they name).
        #[arg(long, env = "MICRO_API_HANDLER", default_value = "rpc")]
        handler: api::Handler,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Subcommand)]
enum List {
    /// The services.
    Services,
}

#[derive(Subcommand)]
enum Get {
    /// A service, by name.
    Service {
        /// The service name.
        name: String,
    },
}

#[derive(Subcommand)]
enum Record {
    /// A service record, JSON in the registry's format.
    Service {
        /// The record: `{"name": "greeter", "nodes": [{"id": "greeter-1", "address": "127.0.0.1:9090"}]}`.
        record: String,
    },
}

/// What the HTTP servers of `api`, `sidecar` and `web` take besides their address.
#[derive(clap::Args)]
struct ServeArgs {
    /// Host names requests may carry besides addresses and localhost, comma-separated (`*`:
    /// any): for a server reached through a proxy or by a DNS name. Others are refused, as a
    /// DNS name rebound to this machine would be.
    #[arg(
        long = "allowed_hosts",
        env = "MICRO_ALLOWED_HOSTS",
        default_value = ""
    )]
    allowed_hosts: String,
    /// How long a request's headers may take to arrive (an HTTP/1.1 connection may idle as
    /// long between requests).
    #[arg(long = "header_timeout", value_parser = parse_duration, default_value = "30s")]
    header_timeout: Duration,
    /// Connections served at once; more are refused.
    #[arg(long = "max_connections", default_value_t = serve::MAX_CONNECTIONS)]
    max_connections: usize,
}

impl ServeArgs {
    fn limits(&self) -> serve::Limits {
        serve::Limits {
            header_timeout: self.header_timeout,
            max_connections: self.max_connections.max(1),
        }
    }
}

#[derive(clap::Args)]
struct CallArgs {
    /// The service name, as registered.
    service: String,
    /// The endpoint, `Handler.Method`.
    endpoint: String,
    /// The request, JSON (default `{}`).
    request: Option<String>,
    /// Call metadata, key=value (repeatable).
    #[arg(long)]
    metadata: Vec<String>,
    /// Call this node address instead of one from the registry.
    #[arg(long)]
    address: Option<String>,
    /// The call's deadline (default: --client_request_timeout for calls, none for streams).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> micro_runtime::Result<ExitCode> {
    if let Command::New {
        name,
        path,
        git,
        no_proto,
    } = cli.command
    {
        let source = path.map(new::Source::Path).or(git.map(new::Source::Git));
        let dir = std::env::current_dir().map_err(internal)?;
        let files = new::create(&dir, &name, source, !no_proto)?;
        println!("created {name}/");
        for file in files {
            println!("  {file}");
        }
        println!("\nnext: cd {name} && cargo test && cargo run");
        return Ok(ExitCode::SUCCESS);
    }
    let register_ttl = cli.micro.register_ttl;
    let service = Service::builder()
        .name("micro")
        .options(cli.micro)
        .build()?;
    let client = service.client();
    match cli.command {
        Command::List {
            what: List::Services,
        } => {
            let mut names: Vec<String> = client
                .registry()
                .list_services()
                .await?
                .into_iter()
                .map(|s| s.name)
                .collect();
            names.sort();
            names.dedup();
            for name in names {
                println!("{name}");
            }
        }
        Command::Get {
            what: Get::Service { name },
        } => {
            for record in client.registry().get_service(&name).await? {
                // As registered, fields in the registry's order.
                let json = serde_json::to_string_pretty(&record).map_err(internal)?;
                println!("{json}");
            }
        }
        Command::Call(args) => {
            refuse_streams(&client, &args).await?;
            let options = call_options(&args)?;
            let request = parse_json(args.request.as_deref().unwrap_or("{}"))?;
            let rsp: Value = client
                .call_endpoint_with(&args.service, &args.endpoint, &request, &options)
                .await?;
            println!("{}", pretty(&rsp));
        }
        Command::Stream { call: args, stdin } => {
            let options = call_options(&args)?;
            if stdin {
                return stream_stdin(&client, &args, &options).await;
            }
            let request = parse_json(args.request.as_deref().unwrap_or("{}"))?;
            let mut replies = client
                .server_stream_endpoint::<Value, Value>(
                    &args.service,
                    &args.endpoint,
                    &request,
                    &options,
                )
                .await?;
            while let Some(reply) = replies.recv().await? {
                println!("{reply}");
            }
        }
        Command::Publish {
            topic,
            message,
            metadata,
        } => {
            let options = with_metadata(CallOptions::new(), &metadata)?;
            client
                .publish_with(&topic, &parse_json(&message)?, &options)
                .await?;
            // A broker may only have queued the message (core NATS): it goes out before the
            // command ends.
            if let Some(broker) = client.broker() {
                broker.disconnect().await?;
            }
        }
        Command::Health {
            service,
            check,
            timeout,
        } => return health(&client, &service, &check, timeout).await,
        Command::Watch { service } => {
            use std::io::Write;
            let mut watcher = client.registry().watch(service.as_deref()).await?;
            eprintln!(
                "micro watch: watching {}",
                service.as_deref().unwrap_or("every service")
            );
            let shutdown = micro_runtime::service::shutdown_signal();
            tokio::pin!(shutdown);
            loop {
                let event = tokio::select! {
                    event = watcher.next() => event,
                    () = &mut shutdown => break,
                };
                let Some(event) = event else {
                    return Err(Error::new(
                        Code::Unavailable,
                        "the registry ended the watch",
                    ));
                };
                let event = event?;
                let action = match event.action {
                    registry::Action::Create => "create",
                    registry::Action::Update => "update",
                    registry::Action::Delete => "delete",
                };
                let line = serde_json::json!({ "action": action, "service": event.service });
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}")
                    .and_then(|()| out.flush())
                    .map_err(internal)?;
            }
        }
        Command::Web { address, serve } => {
            let (listener, bound) = api::bind(&address).await?;
            eprintln!("micro web: listening on {bound}");
            let guard = guard::Guard::new(&serve.allowed_hosts, "");
            let shutdown = micro_runtime::service::shutdown_signal();
            web::serve(client, listener, guard, serve.limits(), shutdown).await?;
        }
        Command::Sidecar {
            address,
            namespace,
            cors,
            program_name,
            program_address,
            healthcheck_url,
            healthcheck_interval,
            serve,
        } => {
            let ttl = Duration::from_secs(register_ttl.unwrap_or(0));
            let program = match (program_name, program_address) {
                (Some(name), Some(address)) => Some(Box::new(program::Program::new(
                    &name,
                    &address,
                    healthcheck_url.as_deref(),
                    healthcheck_interval,
                    ttl,
                )?)),
                _ => None,
            };
            let (listener, bound) = api::bind(&address).await?;
            eprintln!("micro sidecar: listening on {bound}");
            let front = api::Front::Sidecar { ttl, program };
            let shutdown = micro_runtime::service::shutdown_signal();
            let settings = api::Settings {
                namespace,
                guard: guard::Guard::new(&serve.allowed_hosts, &cors),
                handler: api::Handler::Rpc,
                limits: serve.limits(),
            };
            api::serve(client, front, settings, listener, shutdown).await?;
        }
        Command::Api {
            address,
            namespace,
            cors,
            handler,
            serve,
        } => {
            let (listener, bound) = api::bind(&address).await?;
            eprintln!("micro api: listening on {bound}");
            let shutdown = micro_runtime::service::shutdown_signal();
            let settings = api::Settings {
                namespace,
                guard: guard::Guard::new(&serve.allowed_hosts, &cors),
                handler,
                limits: serve.limits(),
            };
            api::serve(client, api::Front::Api, settings, listener, shutdown).await?;
        }
        Command::Register {
            what: Record::Service { record },
        } => {
            let record = parse_record(&record)?;
            lasting(&client, &["local", "memory", "mdns"])?;
            let ttl = Duration::from_secs(register_ttl.unwrap_or(0));
            client
                .registry()
                .register(&record, RegisterOptions { ttl })
                .await?;
        }
        Command::Deregister {
            what: Record::Service { record },
        } => {
            let record = parse_record(&record)?;
            // The local registry's records are files any process may remove.
            lasting(&client, &["memory", "mdns"])?;
            client.registry().deregister(&record).await?;
        }
        // Answered above, before a service is built.
        Command::New { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Fails on the registries in `fleeting`, which keep a record only while the process that
/// registered it runs: what this command registers, or another's record it removes, means
/// nothing once it ends.
fn lasting(client: &Client, fleeting: &[&str]) -> micro_runtime::Result<()> {
    let registry = client.registry().name();
    if fleeting.contains(&registry) {
        return Err(Error::new(
            Code::FailedPrecondition,
            format!(
                "the {registry} registry keeps a record only while the process that registered it runs: use --registry etcd"
            ),
        ));
    }
    Ok(())
}

/// Checks every node of every version of `service`, all at once; prints a line per node:
/// version, node id, address and its status or the error.
async fn health(
    client: &Client,
    service: &str,
    check: &str,
    timeout: Duration,
) -> micro_runtime::Result<ExitCode> {
    let versions = client.registry().get_service(service).await?;
    if versions.iter().all(|v| v.nodes.is_empty()) {
        return Err(Error::new(
            Code::NotFound,
            format!("service {service}: no nodes"),
        ));
    }
    let answers = health::check_nodes(client, &versions, check, timeout).await;
    let mut healthy = true;
    for (version, answers) in versions.iter().zip(&answers) {
        for (node, answer) in version.nodes.iter().zip(answers) {
            healthy &= health::serving(answer);
            let status = health::text(answer);
            println!(
                "{}\t{}\t{}\t{status}",
                version.version, node.id, node.address
            );
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A client or bidirectional stream: stdin's lines (one JSON request each, blank lines
/// skipped) go out as they are read, responses are printed as they come; the requests end
/// with stdin.
async fn stream_stdin(
    client: &Client,
    args: &CallArgs,
    options: &CallOptions,
) -> micro_runtime::Result<ExitCode> {
    use tokio::io::AsyncBufReadExt;
    let stream = client
        .stream_endpoint::<Value, Value>(&args.service, &args.endpoint, options)
        .await?;
    let (mut sender, mut replies) = stream.split();
    // Ok(Err(_)): a send failed, the stream is over (the server's answer tells why);
    // Err(_): stdin failed us, the call is abandoned.
    let send = async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await.map_err(internal)? {
            if !line.trim().is_empty() {
                if let Err(e) = sender.send(parse_json(&line)?).await {
                    return Ok(Err(e));
                }
            }
        }
        sender.close_send();
        Ok::<_, Error>(Ok(()))
    };
    let receive = async {
        while let Some(reply) = replies.recv().await? {
            println!("{reply}");
        }
        Ok::<_, Error>(())
    };
    let (mut send, mut receive) = (std::pin::pin!(send), std::pin::pin!(receive));
    let (mut sending, mut sent) = (true, Ok(()));
    loop {
        tokio::select! {
            result = &mut send, if sending => {
                sending = false;
                sent = result?;
            }
            // The stream is over (stdin may still be open): the server's answer says more
            // than a send it cut short.
            received = &mut receive => {
                received?;
                return sent.map(|()| ExitCode::SUCCESS);
            }
        }
    }
}

/// Fails, before anything is sent, when the registry marks the endpoint `micro call` was
/// given as a streaming one (`stream: "true"`): a unary call can't carry it.
async fn refuse_streams(client: &Client, args: &CallArgs) -> micro_runtime::Result<()> {
    // A call to a fixed address is not looked up; a lookup that fails is the call's to
    // report.
    if args.address.is_some() {
        return Ok(());
    }
    let Ok(records) = client.registry().get_service(&args.service).await else {
        return Ok(());
    };
    let streaming = records
        .iter()
        .flat_map(|r| &r.endpoints)
        .any(|e| e.name == args.endpoint && e.metadata.get("stream").is_some_and(|s| s == "true"));
    if streaming {
        return Err(invalid(format!(
            "{} of {} is a streaming endpoint: call it with `micro stream {} {}` (--stdin for client and bidirectional streams)",
            args.endpoint, args.service, args.service, args.endpoint
        )));
    }
    Ok(())
}

fn call_options(args: &CallArgs) -> micro_runtime::Result<CallOptions> {
    let mut options = with_metadata(CallOptions::new(), &args.metadata)?;
    if let Some(address) = &args.address {
        options = options.address(address.clone());
    }
    if let Some(timeout) = args.timeout {
        options = options.timeout(timeout);
    }
    Ok(options)
}

fn with_metadata(mut options: CallOptions, pairs: &[String]) -> micro_runtime::Result<CallOptions> {
    for pair in pairs.iter().filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| invalid(format!("metadata {pair:?} is not key=value")))?;
        options = options.metadata(key.trim(), value.trim());
    }
    Ok(options)
}

fn parse_json(text: &str) -> micro_runtime::Result<Value> {
    serde_json::from_str(text).map_err(|e| invalid(format!("the request is not JSON: {e}")))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::new(Code::InvalidArgument, e.to_string())
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::new(Code::Internal, e.to_string())
}

fn parse_record(text: &str) -> micro_runtime::Result<registry::Service> {
    registry::Service::from_json(text.as_bytes()).map_err(|e| invalid(e.detail()))
}
