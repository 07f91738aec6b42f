//! `micro api`: starts the API gateway ([`crate::api`]).

use std::process::ExitCode;

use micro_runtime::Client;

use super::common::ServeArgs;
use crate::api;
use crate::guard::Guard;

/// What `micro api` takes.
#[derive(clap::Args)]
pub(crate) struct ApiArgs {
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
}

/// Serves the gateway until stopped (a signal).
pub(crate) async fn run(client: Client, args: ApiArgs) -> micro_runtime::Result<ExitCode> {
    let ApiArgs {
        address,
        namespace,
        cors,
        handler,
        serve,
    } = args;
    let (listener, bound) = api::bind(&address).await?;
    eprintln!("micro api: listening on {bound}");
    let shutdown = micro_runtime::service::shutdown_signal();
    let settings = api::Settings {
        namespace,
        guard: Guard::new(&serve.allowed_hosts, &cors),
        handler,
        limits: serve.limits(),
    };
    api::serve(client, api::Front::Api, settings, listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
