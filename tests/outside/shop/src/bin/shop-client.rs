use micro_runtime::Service;
use shop::shop::v1::{GetOrderRequest, OrdersClient};

#[tokio::main]
async fn main() -> micro_runtime::Result<()> {
    let service = Service::builder().name("shop-client").from_args().build()?;
    let orders = OrdersClient::new("shop", service.client());
    let now = orders.now(()).await?;
    println!("now {}", now.seconds);
    let order = orders.get_order(GetOrderRequest { id: "o-1".into() }).await?;
    let placed = order.placed_at.expect("a placed_at Timestamp");
    let total = order.total.expect("a total");
    println!("order {} placed {} total {} {}", order.id, placed.seconds, total.units, total.currency);
    let mut watched = orders.watch(()).await?;
    let mut count = 0;
    while let Some(order) = watched.recv().await? {
        count += 1;
        println!("watched {}", order.id);
    }
    println!("watched {count} orders");
    match orders.get_order(GetOrderRequest::default()).await {
        Err(e) => println!("error {:?} {}", e.code(), e.detail()),
        Ok(order) => println!("unexpected {order:?}"),
    }
    Ok(())
}
