//! Shared pieces of the examples: the code generated from `proto/greeter.proto` and
//! `proto/echo.proto` and `proto/events.proto`, the handlers the server binaries run, and the calculator, written
//! without a `.proto`.

pub mod calculator;

/// Generated from `proto/greeter.proto` by `protoc-gen-micro` (see `build.rs`).
pub mod greeter {
    micro_runtime::include_proto!("greeter");
}

/// Generated from `proto/echo.proto` by `protoc-gen-micro` (see `build.rs`).
pub mod echo {
    micro_runtime::include_proto!("echo");
}

/// Generated from `proto/events.proto`: the event of the pub/sub examples.
pub mod events {
    micro_runtime::include_proto!("events");
}

use futures_util::StreamExt;
use micro_runtime::{BoxStream, Context, Error, Streaming};

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

/// The echo service: one method of each call kind. A request whose message is `fail` ends
/// the method with `INVALID_ARGUMENT`, after the replies sent before it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

fn refuse(message: &str) -> Result<(), Error> {
    if message == "fail" {
        return Err(Error::bad_request("echo", "asked to fail"));
    }
    Ok(())
}

fn reply(message: String, index: u32) -> echo::EchoResponse {
    echo::EchoResponse { message, index }
}

impl echo::Echo for Echo {
    async fn unary(
        &self,
        _ctx: Context,
        req: echo::EchoRequest,
    ) -> Result<echo::EchoResponse, Error> {
        refuse(&req.message)?;
        Ok(reply(req.message, 0))
    }

    async fn server_stream(
        &self,
        _ctx: Context,
        req: echo::EchoRequest,
    ) -> Result<BoxStream<echo::EchoResponse>, Error> {
        let fail = refuse(&req.message);
        let replies = futures_util::stream::iter(0..req.count).map(move |index| {
            // `fail` fails mid-stream: after the first reply.
            match (&fail, index) {
                (Err(e), 1..) => Err(e.clone()),
                _ => Ok(reply(req.message.clone(), index)),
            }
        });
        Ok(Box::pin(replies))
    }

    async fn client_stream(
        &self,
        _ctx: Context,
        mut requests: Streaming<echo::EchoRequest>,
    ) -> Result<echo::EchoResponse, Error> {
        let mut messages = Vec::new();
        while let Some(req) = requests.recv().await? {
            refuse(&req.message)?;
            messages.push(req.message);
        }
        let count = messages.len() as u32;
        Ok(reply(messages.join(","), count))
    }

    async fn bidi(
        &self,
        _ctx: Context,
        requests: Streaming<echo::EchoRequest>,
    ) -> Result<BoxStream<echo::EchoResponse>, Error> {
        let replies = requests.enumerate().map(|(index, req)| {
            let req = req?;
            refuse(&req.message)?;
            Ok(reply(req.message, index as u32))
        });
        Ok(Box::pin(replies))
    }
}

/// Logs to stderr, filtered by `RUST_LOG` in `env_logger`'s form (`info`,
/// `micro_runtime=debug,warn`; default `info`). A value it can't read is reported and the
/// default used.
pub fn init_logging() {
    use tracing_subscriber::prelude::*;
    let (filter, unread) = match log_filter(&std::env::var("RUST_LOG").unwrap_or_default()) {
        Ok(filter) => (filter, None),
        Err(unread) => (log_filter("").unwrap_or_default(), Some(unread)),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .try_init()
        .is_ok()
    {
        if let Some(warning) = unread {
            eprintln!("warning: {warning}");
        }
    }
}

/// `RUST_LOG`'s value as a filter: comma-separated `target=level`, `target` or `level`
/// directives, spaces around them and empty ones ignored; `info` when there are none.
fn log_filter(value: &str) -> Result<tracing_subscriber::filter::Targets, String> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let directives: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Ok(Targets::new().with_default(LevelFilter::INFO));
    }
    let directives = directives.join(",");
    directives
        .parse()
        .map_err(|err| format!("RUST_LOG={value:?} ignored: {err}"))
}

/// Prints `error: <err>` to stderr and returns a failing exit code.
pub fn fail(err: &dyn std::fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {err}");
    std::process::ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::filter::LevelFilter;

    use super::log_filter;

    #[test]
    fn rust_log_reads_as_env_logger_directives() {
        let [info, debug] =
            [LevelFilter::INFO, LevelFilter::DEBUG].map(|l| l.into_level().unwrap());
        let filter = log_filter(" info, micro_runtime=debug ,").unwrap();
        assert!(filter.would_enable("micro_runtime::server", &debug));
        assert!(filter.would_enable("h2", &info));
        assert!(!filter.would_enable("h2", &debug));
        let default = log_filter("").unwrap();
        assert!(default.would_enable("anything", &info));
        assert!(!default.would_enable("anything", &debug));
        assert!(log_filter("micro_runtime=loud").is_err());
    }
}
