use micro_runtime::{Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddRequest { a: i64, b: i64 }
#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddResponse { result: i64 }

struct Calc;

#[handler]
impl Calc {
    async fn add(&self, req: AddRequest) -> AddResponse {
        AddResponse { result: req.a + req.b }
    }
}

fn main() {}
