//! A shop's orders service, from protos as real projects write them.

// Every package in the module its name gives: `shop::v1`, `shop::common::v1`.
micro_runtime::include_protos!();

use micro_runtime::prost_types::{Duration, Timestamp};
use micro_runtime::{BoxStream, Context, Error};
use shop::common::v1::{Money, Stamp};
use shop::v1::{GetOrderRequest, Order, order::Delivery};

/// The handler.
pub struct Orders;

fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}

fn order(id: String) -> Order {
    Order {
        id,
        total: Some(Money { currency: "EUR".into(), units: 12, nanos: 500_000_000 }),
        placed_at: Some(now()),
        ttl: Some(Duration { seconds: 3600, nanos: 0 }),
        stamp: Some(Stamp { at: Some(now()) }),
        note: Some("fragile".into()),
        delivery: Some(Delivery::Pickup(())),
        ..Default::default()
    }
}

impl shop::v1::Orders for Orders {
    async fn get_order(&self, _ctx: Context, req: GetOrderRequest) -> Result<Order, Error> {
        if req.id.is_empty() {
            return Err(Error::bad_request("shop", "an order id is required"));
        }
        Ok(order(req.id))
    }

    async fn now(&self, _ctx: Context, _req: ()) -> Result<Timestamp, Error> {
        Ok(now())
    }

    async fn watch(&self, _ctx: Context, _req: ()) -> Result<BoxStream<Order>, Error> {
        let (tx, orders) = micro_runtime::stream::channel(4);
        tokio::spawn(async move {
            for n in 0..3 {
                if tx.send(order(format!("order-{n}"))).await.is_err() {
                    break;
                }
            }
        });
        Ok(orders)
    }
}
