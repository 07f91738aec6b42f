//! `micro publish TOPIC MESSAGE`: a JSON message to a topic on the broker.

use std::process::ExitCode;

use micro_runtime::{CallOptions, Client};

use super::common::{parse_json, with_metadata};

/// What `micro publish` takes.
#[derive(clap::Args)]
pub(crate) struct PublishArgs {
    /// The topic.
    topic: String,
    /// The message, JSON.
    message: String,
    /// A message header, key=value (repeatable).
    #[arg(long)]
    metadata: Vec<String>,
}

/// Publishes the message, and sees it out before the command ends.
pub(crate) async fn run(client: &Client, args: PublishArgs) -> micro_runtime::Result<ExitCode> {
    let PublishArgs {
        topic,
        message,
        metadata,
    } = args;
    let options = with_metadata(CallOptions::new(), &metadata)?;
    client
        .publish_with(&topic, &parse_json(&message)?, &options)
        .await?;
    // A broker may only have queued the message (core NATS): it goes out before the
    // command ends.
    if let Some(broker) = client.broker() {
        broker.disconnect().await?;
    }
    Ok(ExitCode::SUCCESS)
}
