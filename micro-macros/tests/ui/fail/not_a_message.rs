use micro_runtime::{Error, Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddResponse { result: i64 }

#[derive(serde::Serialize, serde::Deserialize)]
struct AddRequest { a: i64, b: i64 }

struct Calc;

#[handler]
impl Calc {
    async fn add(&self, req: AddRequest) -> Result<AddResponse, Error> {
        Ok(AddResponse { result: req.a + req.b })
    }
}

fn main() {}
