use micro_runtime::{Context, Error, Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddRequest { a: i64, b: i64 }
#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddResponse { result: i64 }

struct Calc;

#[handler(name = "Calculator")]
impl Calc {
    fn add(&self, _ctx: Context, req: AddRequest) -> Result<AddResponse, Error> {
        Ok(AddResponse { result: req.a + req.b })
    }
}

fn main() {}
