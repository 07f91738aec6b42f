//! Every supported shape compiles: contexts or none, `self: Arc<Self>` and `self: &Arc<Self>`,
//! renames, own error types, generic handlers, prost messages, serde attributes, raw
//! identifiers, lifetimes, methods under `#[cfg]` (one endpoint answered per build).
use std::sync::Arc;

use micro_runtime::{Context, Error, IntoHandler, Message, handler};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct AddRequest {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Message)]
#[serde(rename_all = "camelCase")]
#[micro(name = "Sum")]
struct AddResponse {
    the_result: i64,
    #[serde(flatten)]
    request: AddRequest,
    r#type: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message, Message)]
#[micro(proto)]
struct Ping {
    #[prost(string, tag = "1")]
    id: String,
}

trait Store: Send + Sync + 'static {
    fn get(&self) -> i64;
}

struct Calc<S> {
    store: S,
}

struct MyError;

impl From<MyError> for Error {
    fn from(_: MyError) -> Error {
        Error::bad_request("calc", "mine")
    }
}

#[handler(name = "Calculator", package = "shop.calc")]
impl<S: Store> Calc<S> {
    async fn add(&self, _ctx: Context, req: AddRequest) -> Result<AddResponse, MyError> {
        Ok(AddResponse {
            the_result: req.a + req.b + self.store.get(),
            request: req,
            r#type: None,
        })
    }

    async fn r#type(self: Arc<Self>, req: Ping) -> micro_runtime::Result<Ping> {
        Ok(req)
    }

    #[micro(name = "Ping2")]
    async fn ping(&self, ctx: Context, req: Ping) -> Result<Ping, Error> {
        let _ = ctx.deadline();
        Ok(req)
    }

    #[cfg(any())]
    async fn hidden(&self, req: Ping) -> Result<Ping, Error> {
        Ok(req)
    }

    #[cfg(not(any()))]
    #[micro(name = "Echo")]
    async fn echo_here(&self, req: Ping) -> Result<Ping, Error> {
        Ok(req)
    }

    #[cfg(any())]
    #[micro(name = "Echo")]
    async fn echo_elsewhere(&self, req: Ping) -> Result<Ping, Error> {
        Ok(req)
    }

    async fn shared(self: &Arc<Self>, req: Ping) -> Result<Ping, Error> {
        Ok(req)
    }

    async fn borrowed<'a>(&'a self, req: Ping) -> Result<Ping, Error> {
        Ok(req)
    }
}

struct Zero;

impl Store for Zero {
    fn get(&self) -> i64 {
        0
    }
}

fn main() {
    let handler = Arc::new(Calc { store: Zero }).into_handler();
    let names: Vec<_> = handler.endpoints().into_iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "Calculator.Add",
            "Calculator.Type",
            "Calculator.Ping2",
            "Calculator.Echo",
            "Calculator.Shared",
            "Calculator.Borrowed"
        ]
    );
    assert_eq!(AddResponse::describe().name, "Sum");
}
