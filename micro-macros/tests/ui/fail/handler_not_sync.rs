use std::cell::Cell;

use micro_runtime::{Error, Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddRequest { a: i64, b: i64 }

struct Calc {
    calls: Cell<u64>,
}

#[handler]
impl Calc {
    async fn add(&self, req: AddRequest) -> Result<AddRequest, Error> {
        self.calls.set(self.calls.get() + 1);
        Ok(req)
    }
}

fn main() {}
