//! Calls the `greeter` service, found through the registry, and prints the greeting.
//!
//! `cargo run -p examples --bin greeter-client -- --name Ada` (with a greeter-server running).

use std::process::ExitCode;

use clap::Parser;
use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::Service;

#[derive(Parser)]
#[command(name = "greeter-client", version, about = "Calls the greeter service")]
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
async fn main() -> ExitCode {
    micro_runtime::logging::init();
    let cli = Cli::parse();
    let service = match Service::builder()
        .name("greeter.client")
        .options(cli.micro)
        .build()
    {
        Ok(s) => s,
        Err(e) => return examples::fail(&e),
    };
    let client = GreeterClient::new(cli.service, service.client());
    match client.hello(HelloRequest { name: cli.name }).await {
        Ok(rsp) => {
            println!("{}", rsp.greeting);
            ExitCode::SUCCESS
        }
        Err(e) => examples::fail(&e),
    }
}
