//! `micro deregister service RECORD`: a service record's nodes out of the registry.

use std::process::ExitCode;

use micro_runtime::Client;

use super::register::{Record, lasting, parse_record};

/// What `micro deregister` takes.
#[derive(clap::Args)]
pub(crate) struct DeregisterArgs {
    #[command(subcommand)]
    what: Record,
}

/// Deregisters the record's nodes; refused by the registries whose records are another
/// process's own.
pub(crate) async fn run(client: &Client, args: DeregisterArgs) -> micro_runtime::Result<ExitCode> {
    let DeregisterArgs {
        what: Record::Service { record },
    } = args;
    let record = parse_record(&record)?;
    // The local registry's records are files any process may remove.
    lasting(client, &["memory", "mdns"])?;
    client.registry().deregister(&record).await?;
    Ok(ExitCode::SUCCESS)
}
