//! Calls the `greeter` service, found through the registry, and prints the greeting.
//!
//! `cargo run -p examples --bin greeter-client -- --name Ada` (with a greeter-server running).

use std::process::ExitCode;

use clap::Parser;
use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::Service;

#[derive(Parser)]
#[command(about = "Calls the greeter service")]
struct Cli {
    /// Who to greet.
    #[arg(long, default_value = "World")]
    name: String,
    /// The service to call.
    #[arg(long, default_value = "greeter")]
    service: String,
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    examples::init_logging();
    let cli = Cli::parse();
    let service = Service::builder()
        .name("greeter.client")
        .options(cli.micro)
        .build()?;
    let client = GreeterClient::new(cli.service, service.client());
    let rsp = client.hello(HelloRequest { name: cli.name }).await?;
    println!("{}", rsp.greeting);
    Ok(())
}
