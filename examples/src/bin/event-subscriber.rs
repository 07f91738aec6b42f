//! Subscribes to `--topic` (in queue group `--queue`, if given) and prints `received <id>`
//! for each event, one line each, until SIGINT/SIGTERM.
//!
//! `cargo run -p examples --bin event-subscriber -- --topic events [--queue workers]`
//! (`--broker` / `--broker_address` or `MICRO_BROKER*` pick the broker, as for the publisher).

use std::io::Write;

use clap::Parser;
use examples::events::Event;
use micro_runtime::server::Subscriber;
use micro_runtime::{Context, Service};

#[derive(Parser)]
#[command(
    name = "event-subscriber",
    version,
    about = "Prints the events of a topic"
)]
struct Cli {
    /// The topic to subscribe to.
    #[arg(long, default_value = "events")]
    topic: String,
    /// A queue group: each event goes to one subscriber of the group.
    #[arg(long)]
    queue: Option<String>,
    #[command(flatten)]
    micro: micro_runtime::Options,
}

async fn print_event(_ctx: Context, event: Event) -> micro_runtime::Result<()> {
    let mut out = std::io::stdout().lock();
    // Printed before the event is acknowledged: a crash in between prints it twice, never
    // zero times.
    writeln!(out, "received {}", event.id)?;
    out.flush()?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    micro_runtime::logging::init();
    let cli = Cli::parse();
    let service = Service::builder()
        .name("event-subscriber")
        .options(cli.micro)
        .build()?;
    let mut subscriber = Subscriber::new(cli.topic, print_event);
    if let Some(queue) = cli.queue {
        subscriber = subscriber.queue(queue);
    }
    service.server().subscribe(subscriber)?;
    service.run().await?;
    Ok(())
}
