//! The echo service: registers as `echo` and answers `Echo.Unary`, `Echo.ServerStream`,
//! `Echo.ClientStream` and `Echo.Bidi` (proto/echo.proto), one method of each call kind.
//!
//! `cargo run -p examples --bin echo-server -- --server_address 127.0.0.1:9090`
//! (takes go-micro's flags and `MICRO_*` variables, like the greeter; `--help` lists them).

use clap::Parser;
use examples::{Echo, echo};
use micro_runtime::Service;

#[derive(Parser)]
#[command(name = "echo-server", version, about = "The echo service")]
struct Cli {
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let service = Service::builder().name("echo").options(cli.micro).build()?;
    echo::register_echo_handler(service.server(), Echo)?;
    service.run().await?;
    Ok(())
}
