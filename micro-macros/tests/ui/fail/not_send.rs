use std::rc::Rc;

use micro_runtime::{Error, Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddRequest { a: i64, b: i64 }

struct Calc;

async fn pause() {}

#[handler]
impl Calc {
    async fn add(&self, req: AddRequest) -> Result<AddRequest, Error> {
        let local = Rc::new(req.a);
        pause().await;
        Ok(AddRequest { a: *local, b: req.b })
    }
}

fn main() {}
