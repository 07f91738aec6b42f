//! Shared pieces of the examples: the code generated from `proto/greeter.proto`,
//! `proto/echo.proto`, `proto/events.proto` and `proto/relay.proto`, the handlers the server
//! binaries run, and the calculator, written without a `.proto`.

pub mod calculator;
pub mod relay_service;

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

/// Generated from `proto/relay.proto`: the chain of services a call's context crosses.
pub mod relay {
    micro_runtime::include_proto!("relay");
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

/// Prints `error: <err>` to stderr and returns a failing exit code.
pub fn fail(err: &dyn std::fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {err}");
    std::process::ExitCode::FAILURE
}
