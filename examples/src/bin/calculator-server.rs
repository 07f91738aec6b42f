//! The calculator service, written without a `.proto`: registers as `calculator` and answers
//! `Calculator.Add` (`{"a": 1, "b": 2}` -> `{"result": 3}`), also on the gRPC path
//! `/calculator.Calculator/Add` in `application/grpc+json`.
//!
//! `cargo run -p examples --bin calculator-server -- --server_address 127.0.0.1:9090`
//! (takes go-micro's flags and `MICRO_*` variables; `--help` lists them).

use clap::Parser;
use examples::calculator::Calculator;
use micro_runtime::Service;

#[derive(Parser)]
#[command(name = "calculator-server", version, about = "The calculator service")]
struct Cli {
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let service = Service::builder()
        .name("calculator")
        .options(cli.micro)
        .build()?;
    service.server().handle(Calculator)?;
    service.run().await?;
    Ok(())
}
