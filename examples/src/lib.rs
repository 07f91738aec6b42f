//! Shared pieces of the examples: the code generated from `proto/greeter.proto`, the
//! greeter handler the server binaries run, and the calculator, written without a `.proto`.

pub mod calculator;

/// Generated from `proto/greeter.proto` by `protoc-gen-micro` (see `build.rs`).
pub mod greeter {
    micro_runtime::include_proto!("greeter");
}

use micro_runtime::{Context, Error};

/// The greeter: answers `Hello, <name>!`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hello;

impl greeter::Greeter for Hello {
    async fn hello(
        &self,
        _ctx: Context,
        req: greeter::HelloRequest,
    ) -> Result<greeter::HelloResponse, Error> {
        Ok(greeter::HelloResponse {
            greeting: format!("Hello, {}!", req.name),
        })
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints `error: <err>` to stderr and returns a failing exit code.
pub fn fail(err: &dyn std::fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {err}");
    std::process::ExitCode::FAILURE
}
