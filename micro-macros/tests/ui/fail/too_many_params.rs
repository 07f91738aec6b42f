use micro_runtime::{Context, Error, Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddRequest { a: i64, b: i64 }

struct Calc;

#[handler]
impl Calc {
    async fn add(&self, _ctx: Context, req: AddRequest, extra: i64) -> Result<AddRequest, Error> {
        let _ = extra;
        Ok(req)
    }
}

fn main() {}
