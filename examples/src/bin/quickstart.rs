//! The quickstart in one command: starts the greeter service, finds it through the registry
//! (the host-local default), calls it, prints the greeting and stops it.
//!
//! `cargo run -p examples --bin quickstart` prints `Hello, World!`.

use clap::Parser;
use examples::Hello;
use examples::greeter::{self, GreeterClient, HelloRequest};
use micro_runtime::Service;

#[derive(Parser)]
#[command(
    name = "quickstart",
    version,
    about = "Runs the greeter server and client together"
)]
struct Cli {
    /// Who to greet.
    #[arg(long, default_value = "World")]
    name: String,
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let server = Service::builder()
        .name("greeter")
        .address("127.0.0.1:0")
        .options(cli.micro.clone())
        .build()?;
    greeter::register_greeter_handler(server.server(), Hello)?;
    server.start().await?;

    let caller = Service::builder()
        .name("quickstart")
        .options(cli.micro)
        .build()?;
    let client = GreeterClient::new("greeter", caller.client());
    let result = client.hello(HelloRequest { name: cli.name }).await;

    server.stop().await?;
    println!("{}", result?.greeting);
    Ok(())
}
