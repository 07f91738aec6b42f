//! Publishes `--count` events `Event { id, text }` with ids 1..=count to `--topic`, then exits.
//!
//! `cargo run -p examples --bin event-publisher -- --topic events --count 10`
//! (`--broker` / `--broker_address` or `MICRO_BROKER*` pick the broker: http by default, which
//! finds subscribers in the registry; memory, nats, jetstream, rabbitmq).

use clap::Parser;
use examples::events::Event;
use micro_runtime::Service;

#[derive(Parser)]
#[command(name = "event-publisher", version, about = "Publishes numbered events")]
struct Cli {
    /// The topic to publish to.
    #[arg(long, default_value = "events")]
    topic: String,
    /// How many events (ids 1..=count).
    #[arg(long, default_value_t = 10)]
    count: u64,
    /// The text of each event.
    #[arg(long, default_value = "hello")]
    text: String,
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    micro_runtime::logging::init();
    let cli = Cli::parse();
    let service = Service::builder()
        .name("event-publisher")
        .options(cli.micro)
        .build()?;
    let client = service.client();
    for id in 1..=cli.count {
        let event = Event {
            id,
            text: cli.text.clone(),
        };
        client.publish(&cli.topic, &event).await?;
    }
    if let Some(broker) = service.broker() {
        broker.disconnect().await?;
    }
    Ok(())
}
