//! `micro get service NAME`: a service's registry records (one per version) as JSON.

use std::process::ExitCode;

use clap::Subcommand;
use micro_runtime::Client;

use super::common::internal;

/// What `micro get` takes.
#[derive(clap::Args)]
pub(crate) struct GetArgs {
    #[command(subcommand)]
    what: Get,
}

#[derive(Subcommand)]
enum Get {
    /// A service, by name.
    Service {
        /// The service name.
        name: String,
    },
}

/// Prints each record of the service, as registered (fields in the registry's order).
pub(crate) async fn run(client: &Client, args: GetArgs) -> micro_runtime::Result<ExitCode> {
    let GetArgs {
        what: Get::Service { name },
    } = args;
    for record in client.registry().get_service(&name).await? {
        // As registered, fields in the registry's order.
        let json = serde_json::to_string_pretty(&record).map_err(internal)?;
        println!("{json}");
    }
    Ok(ExitCode::SUCCESS)
}
