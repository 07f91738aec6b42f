//! Benchmarks of micro for Rust; see `benches/`. Run them with `cargo bench -p micro-bench`
//! (or one: `cargo bench -p micro-bench --bench load`).
//!
//! The library holds the greeter written with `#[micro_runtime::handler]`, measured side by
//! side with the one generated from `proto/greeter.proto`: in the `allocs` bench, and under
//! h2load with the `macro-greeter` binary (`benches/h2load-pair`).

use examples::greeter::{HelloRequest, HelloResponse};
use micro_runtime::{Context, Error, Message, handler};
use serde::{Deserialize, Serialize};

/// The greeter, with `#[handler]`, on the generated prost messages: answers
/// `/greeter.Greeter/Hello` like the generated one.
#[derive(Clone, Copy, Debug, Default)]
pub struct MacroHello;

#[handler(name = "Greeter", package = "greeter")]
impl MacroHello {
    /// `Greeter.Hello`.
    pub async fn hello(&self, _ctx: Context, req: HelloRequest) -> Result<HelloResponse, Error> {
        Ok(HelloResponse {
            greeting: format!("Hello, {}!", req.name),
        })
    }
}

/// `greeter.HelloRequest` as a serde type.
#[derive(Clone, Debug, Serialize, Deserialize, Message)]
pub struct SerdeHelloRequest {
    /// Who to greet.
    pub name: String,
}

/// `greeter.HelloResponse` as a serde type.
#[derive(Clone, Debug, Serialize, Deserialize, Message)]
pub struct SerdeHelloResponse {
    /// `Hello, <name>!`.
    pub greeting: String,
}

/// The greeter, with `#[handler]`, on serde messages (JSON only).
#[derive(Clone, Copy, Debug, Default)]
pub struct SerdeHello;

#[handler(name = "Greeter", package = "greeter")]
impl SerdeHello {
    /// `Greeter.Hello`.
    pub async fn hello(
        &self,
        _ctx: Context,
        req: SerdeHelloRequest,
    ) -> Result<SerdeHelloResponse, Error> {
        Ok(SerdeHelloResponse {
            greeting: format!("Hello, {}!", req.name),
        })
    }
}
