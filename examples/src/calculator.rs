//! The calculator: a service written without a `.proto`. Its messages are serde types
//! (JSON on the wire, `application/grpc+json`) and its handler a plain `impl` block.

use micro_runtime::{Context, Error, Message, handler};
use serde::{Deserialize, Serialize};

/// What `Calculator.Add` takes: `{"a": 1, "b": 2}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Message)]
pub struct AddRequest {
    /// The first term.
    pub a: i64,
    /// The second term.
    pub b: i64,
}

/// What `Calculator.Add` answers: `{"result": 3}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Message)]
pub struct AddResponse {
    /// `a + b`.
    pub result: i64,
}

/// The calculator's handler: its methods are the endpoints `Calculator.<Method>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Calculator;

#[handler(name = "Calculator")]
impl Calculator {
    /// `Calculator.Add`: `a + b`; a sum that does not fit in 64 bits is a bad request.
    pub async fn add(&self, _ctx: Context, req: AddRequest) -> Result<AddResponse, Error> {
        let result = req
            .a
            .checked_add(req.b)
            .ok_or_else(|| Error::bad_request("calculator", "a + b overflows"))?;
        Ok(AddResponse { result })
    }
}
