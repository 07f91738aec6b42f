//! `micro health SERVICE`: the standard gRPC health check of each node of a service.

use std::process::ExitCode;
use std::time::Duration;

use micro_runtime::options::parse_duration;
use micro_runtime::{Client, Code, Error};

use crate::health;

/// What `micro health` takes.
#[derive(clap::Args)]
pub(crate) struct HealthArgs {
    /// The service name.
    service: String,
    /// The name each node is asked about (`grpc.health.v1.HealthCheckRequest.service`);
    /// by default the empty name, the server as a whole, as gRPC probes ask.
    #[arg(long, default_value = "")]
    check: String,
    /// How long each node has to answer.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    timeout: Duration,
}

/// Checks every node of every version of the service, all at once; prints a line per node:
/// version, node id, address and its status or the error. Exits with 1 unless there are
/// nodes and every one answers SERVING.
pub(crate) async fn run(client: &Client, args: HealthArgs) -> micro_runtime::Result<ExitCode> {
    let HealthArgs {
        service,
        check,
        timeout,
    } = args;
    let versions = client.registry().get_service(&service).await?;
    if versions.iter().all(|v| v.nodes.is_empty()) {
        return Err(Error::new(
            Code::NotFound,
            format!("service {service}: no nodes"),
        ));
    }
    let answers = health::check_nodes(client, &versions, &check, timeout).await;
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
