//! `micro sidecar`: starts the gateway as a sidecar ([`crate::api`] with `/registry`,
//! `/broker` and, for the program it registers, `/health`).

use std::process::ExitCode;
use std::time::Duration;

use micro_runtime::Client;
use micro_runtime::options::parse_duration;

use super::common::ServeArgs;
use crate::api;
use crate::guard::Guard;
use crate::program::Program;

/// What `micro sidecar` takes.
#[derive(clap::Args)]
pub(crate) struct SidecarArgs {
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
}

/// Serves the sidecar until stopped (a signal); what is registered through it, and the
/// program, live `ttl` (zero: until deregistered).
pub(crate) async fn run(
    client: Client,
    args: SidecarArgs,
    ttl: Duration,
) -> micro_runtime::Result<ExitCode> {
    let SidecarArgs {
        address,
        namespace,
        cors,
        program_name,
        program_address,
        healthcheck_url,
        healthcheck_interval,
        serve,
    } = args;
    let program = match (program_name, program_address) {
        (Some(name), Some(address)) => Some(Box::new(Program::new(
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
        guard: Guard::new(&serve.allowed_hosts, &cors),
        handler: api::Handler::Rpc,
        limits: serve.limits(),
    };
    api::serve(client, front, settings, listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
