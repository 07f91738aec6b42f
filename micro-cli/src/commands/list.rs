//! `micro list services`: the registry's services, one name per line.

use std::process::ExitCode;

use clap::Subcommand;
use micro_runtime::Client;

/// What `micro list` takes.
#[derive(clap::Args)]
pub(crate) struct ListArgs {
    #[command(subcommand)]
    what: List,
}

#[derive(Subcommand)]
enum List {
    /// The services.
    Services,
}

/// Prints the names of the registry's services, sorted, each once.
pub(crate) async fn run(client: &Client, args: ListArgs) -> micro_runtime::Result<ExitCode> {
    let ListArgs {
        what: List::Services,
    } = args;
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
    Ok(ExitCode::SUCCESS)
}
