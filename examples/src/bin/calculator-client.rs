//! Calls `Calculator.Add` of the `calculator` service, found through the registry, by
//! endpoint name (no generated client), and prints the sum.
//!
//! `cargo run -p examples --bin calculator-client -- --a 1 --b 2` (with a calculator-server
//! running) prints `3`.

use std::process::ExitCode;

use clap::Parser;
use examples::calculator::{AddRequest, AddResponse};
use micro_runtime::Service;

#[derive(Parser)]
#[command(
    name = "calculator-client",
    version,
    about = "Calls the calculator service"
)]
struct Cli {
    /// The first term.
    #[arg(long, allow_negative_numbers = true)]
    a: i64,
    /// The second term.
    #[arg(long, allow_negative_numbers = true)]
    b: i64,
    /// The service to call.
    #[arg(long, default_value = "calculator")]
    service: String,
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> ExitCode {
    micro_runtime::logging::init();
    let cli = Cli::parse();
    let service = match Service::builder()
        .name("calculator.client")
        .options(cli.micro)
        .build()
    {
        Ok(s) => s,
        Err(e) => return examples::fail(&e),
    };
    let request = AddRequest { a: cli.a, b: cli.b };
    let rsp = service
        .client()
        .call_endpoint::<AddRequest, AddResponse>(&cli.service, "Calculator.Add", request)
        .await;
    match rsp {
        Ok(rsp) => {
            println!("{}", rsp.result);
            ExitCode::SUCCESS
        }
        Err(e) => examples::fail(&e),
    }
}
