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
//! micro publish events '{"id": 1}'
//! micro health greeter
//! micro register service '<registry record JSON>'
//! micro deregister service '<registry record JSON>'
//! ```
//!
//! Output goes to stdout (JSON for messages and records); errors to stderr as
//! `error: <code>: <detail>`, with exit status 1.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use micro_runtime::health::{CHECK, HealthCheckRequest, HealthCheckResponse, ServingStatus};
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
    /// Call a server-streaming endpoint and print each response, one JSON per line.
    Stream(CallArgs),
    /// Publish a JSON message to a topic on the broker.
    Publish {
        /// The topic.
        topic: String,
        /// The message, JSON.
        message: String,
        /// Message headers, key=value (repeatable, or comma-separated).
        #[arg(long, value_delimiter = ',')]
        metadata: Vec<String>,
    },
    /// Ask each node of a service whether it serves (the standard gRPC health check); exits
    /// with 1 unless every node answers SERVING.
    Health {
        /// The service name.
        service: String,
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

#[derive(clap::Args)]
struct CallArgs {
    /// The service name, as registered.
    service: String,
    /// The endpoint, `Handler.Method`.
    endpoint: String,
    /// The request, JSON.
    #[arg(default_value = "{}")]
    request: String,
    /// Call metadata, key=value (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
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
            let options = call_options(&args)?;
            let request = parse_json(&args.request)?;
            let rsp: Value = client
                .call_endpoint_with(&args.service, &args.endpoint, &request, &options)
                .await?;
            println!("{}", pretty(&rsp));
        }
        Command::Stream(args) => {
            let options = call_options(&args)?;
            let request = parse_json(&args.request)?;
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
        }
        Command::Health { service, timeout } => return health(&client, &service, timeout).await,
        Command::Register {
            what: Record::Service { record },
        } => {
            let record = parse_record(&record)?;
            let registry = client.registry().name();
            if matches!(registry, "local" | "memory" | "mdns") {
                return Err(Error::new(
                    Code::FailedPrecondition,
                    format!(
                        "the {registry} registry keeps a record only while the process that registered it runs: register with --registry etcd"
                    ),
                ));
            }
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
            client.registry().deregister(&record).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks every node of every version of `service`; prints `node address status` lines.
async fn health(
    client: &Client,
    service: &str,
    timeout: Duration,
) -> micro_runtime::Result<ExitCode> {
    let mut healthy = true;
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    for version in client.registry().get_service(service).await? {
        for node in &version.nodes {
            let options = CallOptions::new()
                .address(node.address.clone())
                .timeout(timeout)
                .retries(0);
            let status = match client
                .call::<_, HealthCheckResponse>(service, &CHECK, &request, &options)
                .await
            {
                Ok(rsp) if rsp.status() == ServingStatus::Serving => "SERVING".to_owned(),
                Ok(rsp) => {
                    healthy = false;
                    rsp.status().to_string()
                }
                Err(e) => {
                    healthy = false;
                    e.to_string()
                }
            };
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
