use micro_runtime::Service;
use shop::{Orders, shop::v1::register_orders_handler};

#[tokio::main]
async fn main() -> micro_runtime::Result<()> {
    let service = Service::builder().name("shop").from_args().build()?;
    register_orders_handler(service.server(), Orders)?;
    service.run().await
}
