//! A greeter node that fails on demand, for the client's breaker and retry budget tests
//! (tests/tests/resilience.rs): registers as `greeter` and answers `Greeter.Hello` with
//! `Hello, <name>!`, or with `UNAVAILABLE` while the file `--fail-while` names exists.
//! `Hello` with the name `count` answers, always, how many other calls it has had.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use examples::greeter::{self, HelloRequest, HelloResponse};
use micro_runtime::{Code, Context, Error, Service};

#[derive(Parser)]
#[command(name = "flaky-greeter", about = "A greeter that fails on demand")]
struct Cli {
    /// Answer `UNAVAILABLE` while this file exists.
    #[arg(long = "fail-while")]
    fail_while: PathBuf,
    #[command(flatten)]
    micro: micro_runtime::Options,
}

struct Flaky {
    fail_while: PathBuf,
    calls: Arc<AtomicU64>,
}

impl greeter::Greeter for Flaky {
    async fn hello(&self, _: Context, req: HelloRequest) -> Result<HelloResponse, Error> {
        if req.name == "count" {
            let greeting = self.calls.load(Ordering::SeqCst).to_string();
            return Ok(HelloResponse { greeting });
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_while.exists() {
            return Err(Error::new(Code::Unavailable, "failing on purpose"));
        }
        Ok(HelloResponse {
            greeting: format!("Hello, {}!", req.name),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let service = Service::builder()
        .name("greeter")
        .options(cli.micro)
        .default_logging(false)
        .build()?;
    let flaky = Flaky {
        fail_while: cli.fail_while,
        calls: Arc::default(),
    };
    greeter::register_greeter_handler(service.server(), flaky)?;
    service.run().await?;
    Ok(())
}
