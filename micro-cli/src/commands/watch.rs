//! `micro watch [SERVICE]`: the registry's changes as they happen, one JSON per line.

use std::io::Write;
use std::process::ExitCode;

use micro_runtime::{Client, Code, Error, registry};

use super::common::internal;

/// What `micro watch` takes.
#[derive(clap::Args)]
pub(crate) struct WatchArgs {
    /// Only this service's changes.
    service: Option<String>,
}

/// Prints `{"action": "create|update|delete", "service": <record>}` for each change until
/// stopped (a signal) or the registry ends the watch (an error).
pub(crate) async fn run(client: &Client, args: WatchArgs) -> micro_runtime::Result<ExitCode> {
    let WatchArgs { service } = args;
    let mut watcher = client.registry().watch(service.as_deref()).await?;
    eprintln!(
        "micro watch: watching {}",
        service.as_deref().unwrap_or("every service")
    );
    let shutdown = micro_runtime::service::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            event = watcher.next() => event,
            () = &mut shutdown => break,
        };
        let Some(event) = event else {
            return Err(Error::new(
                Code::Unavailable,
                "the registry ended the watch",
            ));
        };
        let event = event?;
        let action = match event.action {
            registry::Action::Create => "create",
            registry::Action::Update => "update",
            registry::Action::Delete => "delete",
        };
        let line = serde_json::json!({ "action": action, "service": event.service });
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(internal)?;
    }
    Ok(ExitCode::SUCCESS)
}
