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
mod commands;
mod guard;
mod health;
mod http1;
mod program;
mod serve;
mod web;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use micro_runtime::Service;

use commands::{
    CallArgs, api::ApiArgs, deregister::DeregisterArgs, get::GetArgs, health::HealthArgs,
    list::ListArgs, new::NewArgs, publish::PublishArgs, register::RegisterArgs,
    sidecar::SidecarArgs, stream::StreamArgs, watch::WatchArgs, web::WebArgs,
};

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
    New(NewArgs),
    /// List the services in the registry, one name per line.
    List(ListArgs),
    /// Print a service's registry records (one per version) as JSON.
    Get(GetArgs),
    /// Call an endpoint with a JSON request and print the JSON response.
    Call(CallArgs),
    /// Call a streaming endpoint and print each response, one JSON per line: a server stream
    /// with the one request given, or, with --stdin, a client or bidirectional stream whose
    /// requests are stdin's lines (one JSON each).
    Stream(StreamArgs),
    /// Publish a JSON message to a topic on the broker.
    Publish(PublishArgs),
    /// Ask each node of a service whether it serves (the standard gRPC health check); exits
    /// with 1 unless there are nodes and every one answers SERVING.
    Health(HealthArgs),
    /// Add a service record to the registry (with --register_ttl, it expires unless
    /// registered again).
    Register(RegisterArgs),
    /// Remove a service record's nodes from the registry.
    Deregister(DeregisterArgs),
    /// Print the registry's changes as they happen, one JSON per line:
    /// `{"action": "create|update|delete", "service": <record with the nodes concerned>}`.
    Watch(WatchArgs),
    /// Run the dashboard: the registry's services, their nodes and endpoints, a call form.
    Web(WebArgs),
    /// Run the sidecar for programs in other languages: the API gateway's `/rpc` and paths,
    /// plus `/registry` (GET, POST and DELETE records; what it registered is deregistered
    /// when it stops) and `/broker` (POST ?topic= publishes; a WebSocket subscribes).
    Sidecar(SidecarArgs),
    /// Run the API gateway: HTTP/JSON in, RPC out (go-micro's `micro api`: its rpc handler,
    /// or with --handler http its reverse proxy to HTTP services).
    Api(ApiArgs),
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

/// Runs the command: `new` as it is, the others with a client of the registry and broker
/// the flags name.
async fn run(cli: Cli) -> micro_runtime::Result<ExitCode> {
    let command = match cli.command {
        Command::New(args) => return commands::new::run(args),
        command => command,
    };
    // How long the records `register` and the sidecar register live (zero: until
    // deregistered).
    let ttl = Duration::from_secs(cli.micro.register_ttl.unwrap_or(0));
    let service = Service::builder()
        .name("micro")
        .options(cli.micro)
        .build()?;
    let client = service.client();
    match command {
        Command::List(args) => commands::list::run(&client, args).await,
        Command::Get(args) => commands::get::run(&client, args).await,
        Command::Call(args) => commands::call::run(&client, args).await,
        Command::Stream(args) => commands::stream::run(&client, args).await,
        Command::Publish(args) => commands::publish::run(&client, args).await,
        Command::Health(args) => commands::health::run(&client, args).await,
        Command::Register(args) => commands::register::run(&client, args, ttl).await,
        Command::Deregister(args) => commands::deregister::run(&client, args).await,
        Command::Watch(args) => commands::watch::run(&client, args).await,
        Command::Web(args) => commands::web::run(client, args).await,
        Command::Sidecar(args) => commands::sidecar::run(client, args, ttl).await,
        Command::Api(args) => commands::api::run(client, args).await,
        // Answered above, before a service is built.
        Command::New(_) => Ok(ExitCode::SUCCESS),
    }
}
