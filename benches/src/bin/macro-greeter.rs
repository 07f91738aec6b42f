//! The greeter written with `#[micro_runtime::handler]` (on the generated prost messages):
//! the same service as `greeter-server`, registered through the macro path, for load
//! generators side by side with it (`benches/h2load-pair`).
//!
//! `cargo run --release -p micro-bench --bin macro-greeter -- --server_address 127.0.0.1:9090 --registry memory`

use clap::Parser;
use micro_bench::MacroHello;
use micro_runtime::Service;

#[derive(Parser)]
#[command(
    name = "macro-greeter",
    version,
    about = "The greeter, registered by #[micro_runtime::handler]"
)]
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
    service.server().handle(MacroHello)?;
    service.run().await?;
    Ok(())
}
