//! The {{ p.name }} service: its handler and messages, plain Rust types (no .proto).

use micro_runtime::{Context, Error, Message, handler};
use serde::{Deserialize, Serialize};

/// A request to `{{ p.service }}.Call`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Message)]
pub struct Request {
    /// Name of the person to greet.
    pub name: String,
}

/// The answer of `{{ p.service }}.Call`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Message)]
pub struct Response {
    /// The greeting.
    pub msg: String,
}

/// The handler: each method is an endpoint (`call` answers `{{ p.service }}.Call`).
pub struct {{ p.service }};

#[handler(name = "{{ p.service }}")]
impl {{ p.service }} {
    /// Greets a person by name.
    pub async fn call(&self, _ctx: Context, req: Request) -> Result<Response, Error> {
        tracing::info!("Received {{ p.service }}.Call request");
        Ok(Response { msg: format!("Hello {}", req.name) })
    }
}
