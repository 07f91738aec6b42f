//! Health checks of a service's nodes: the standard gRPC health service
//! ([`micro_runtime::health`]) asked of each node, all at once.

use std::time::Duration;

use futures_util::future::join_all;
use micro_runtime::health::{CHECK, HealthCheckRequest, HealthCheckResponse, ServingStatus};
use micro_runtime::{CallOptions, Client, Error, registry};

/// One node's answer: its serving status, or the error of a node that did not answer.
pub(crate) type NodeHealth = Result<ServingStatus, Error>;

/// The health of each node of each of `versions` (grouped as they are), every node asked at
/// once about `check` (empty: the server as a whole), each within `timeout`.
pub(crate) async fn check_nodes(
    client: &Client,
    versions: &[registry::Record],
    check: &str,
    timeout: Duration,
) -> Vec<Vec<NodeHealth>> {
    let request = &HealthCheckRequest {
        service: check.to_owned(),
    };
    join_all(versions.iter().map(|version| {
        join_all(version.nodes.iter().map(move |node| {
            let options = CallOptions::new()
                .address(node.address.clone())
                .timeout(timeout)
                .retries(0);
            async move {
                client
                    .call::<_, HealthCheckResponse>(&version.name, &CHECK, request, &options)
                    .await
                    .map(|rsp| rsp.status())
            }
        }))
    }))
    .await
}

/// Whether a node answered SERVING.
pub(crate) fn serving(health: &NodeHealth) -> bool {
    matches!(health, Ok(ServingStatus::Serving))
}

/// A node's health as shown: the status's name (`SERVING`), or the error.
pub(crate) fn text(health: &NodeHealth) -> String {
    match health {
        Ok(status) => status.to_string(),
        Err(e) => e.to_string(),
    }
}
