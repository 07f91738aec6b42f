use micro_runtime::{Error, Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddRequest { a: i64, b: i64 }

struct Calc;

#[handler]
impl Calc {
    #[cfg_attr(unix, micro(name = "Plus"))]
    async fn add(&self, req: AddRequest) -> Result<AddRequest, Error> {
        Ok(req)
    }
}

fn main() {}
