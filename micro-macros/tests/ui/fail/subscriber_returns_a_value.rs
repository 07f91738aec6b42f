use micro_runtime::{handler, Error};

#[derive(serde::Serialize, serde::Deserialize, micro_runtime::Message)]
struct Created {
    id: u64,
}

struct Mailer;

#[handler]
impl Mailer {
    #[micro(subscribe = "user.created")]
    async fn on_created(&self, user: Created) -> Result<Created, Error> {
        Ok(user)
    }
}

fn main() {}
