//! `micro register service RECORD`: a service record into the registry. The record's flags
//! and checks are `deregister`'s too.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use micro_runtime::registry::{self, RegisterOptions};
use micro_runtime::{Client, Code, Error};

use super::common::invalid;

/// What `micro register` takes.
#[derive(clap::Args)]
pub(crate) struct RegisterArgs {
    #[command(subcommand)]
    what: Record,
}

/// What `micro register` and `micro deregister` take a record of.
#[derive(Subcommand)]
pub(super) enum Record {
    /// A service record, JSON in the registry's format.
    Service {
        /// The record: `{"name": "greeter", "nodes": [{"id": "greeter-1", "address": "127.0.0.1:9090"}]}`.
        record: String,
    },
}

/// Registers the record for `ttl` (zero: until deregistered); refused by the registries
/// that would forget it when the command ends.
pub(crate) async fn run(
    client: &Client,
    args: RegisterArgs,
    ttl: Duration,
) -> micro_runtime::Result<ExitCode> {
    let RegisterArgs {
        what: Record::Service { record },
    } = args;
    let record = parse_record(&record)?;
    lasting(client, &["local", "memory", "mdns"])?;
    client
        .registry()
        .register(&record, RegisterOptions { ttl })
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// Fails on the registries in `fleeting`, which keep a record only while the process that
/// registered it runs: what this command registers, or another's record it removes, means
/// nothing once it ends.
pub(super) fn lasting(client: &Client, fleeting: &[&str]) -> micro_runtime::Result<()> {
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

/// A record given as JSON in the registry's format.
pub(super) fn parse_record(text: &str) -> micro_runtime::Result<registry::Record> {
    registry::Record::from_json(text.as_bytes()).map_err(|e| invalid(e.detail()))
}
