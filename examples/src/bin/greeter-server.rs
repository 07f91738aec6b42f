//! The greeter service: registers as `greeter` and answers `Greeter.Hello`.
//!
//! `cargo run -p examples --bin greeter-server -- --server_address 127.0.0.1:9090`
//! (takes go-micro's flags and `MICRO_*` variables; `--help` lists them).

use clap::Parser;
use examples::{Hello, greeter};
use micro_runtime::Service;

#[derive(Parser)]
#[command(name = "greeter-server", version, about = "The greeter service")]
struct Cli {
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let service = Service::builder()
        .name("greeter")
        .options(cli.micro)
        .build()?;
    greeter::register_greeter_handler(service.server(), Hello)?;
    service.run().await?;
    Ok(())
}
