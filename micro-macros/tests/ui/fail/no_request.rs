use micro_runtime::{Error, Message, handler};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Pong {}

struct Health;

#[handler]
impl Health {
    async fn ping(&self) -> Result<Pong, Error> {
        Ok(Pong {})
    }
}

fn main() {}
