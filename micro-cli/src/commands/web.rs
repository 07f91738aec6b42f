//! `micro web`: starts the dashboard ([`crate::web`]).

use std::process::ExitCode;

use micro_runtime::Client;

use super::common::ServeArgs;
use crate::guard::Guard;

/// What `micro web` takes.
#[derive(clap::Args)]
pub(crate) struct WebArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    address: String,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Serves the dashboard until stopped (a signal).
pub(crate) async fn run(client: Client, args: WebArgs) -> micro_runtime::Result<ExitCode> {
    let WebArgs { address, serve } = args;
    let (listener, bound) = crate::api::bind(&address).await?;
    eprintln!("micro web: listening on {bound}");
    let guard = Guard::new(&serve.allowed_hosts, "");
    let shutdown = micro_runtime::service::shutdown_signal();
    crate::web::serve(client, listener, guard, serve.limits(), shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
