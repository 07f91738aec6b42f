//! A relay service: answers `Relay.Pass` by calling the next service of the request's chain
//! with its own call's context (see `proto/relay.proto`). Registers as `relay`, or as
//! `--server_name`.
//!
//! `cargo run -p examples --bin relay-server -- --server_name b`

use clap::Parser;
use examples::relay;
use examples::relay_service::Relayer;
use micro_runtime::Service;

#[derive(Parser)]
#[command(
    name = "relay-server",
    version,
    about = "A relay along a chain of services"
)]
struct Cli {
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let service = Service::builder()
        .name("relay")
        .options(cli.micro)
        .build()?;
    let relayer = Relayer::new(service.name(), service.client());
    relay::register_relay_handler(service.server(), relayer)?;
    service.run().await?;
    Ok(())
}
