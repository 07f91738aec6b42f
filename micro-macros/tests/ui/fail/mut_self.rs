use micro_runtime::{Error, Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct AddRequest { a: i64, b: i64 }

struct Counter { n: i64 }

#[handler]
impl Counter {
    async fn add(&mut self, req: AddRequest) -> Result<AddRequest, Error> {
        self.n += req.a;
        Ok(req)
    }
}

fn main() {}
