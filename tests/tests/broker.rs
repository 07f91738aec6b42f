//! The broker backends against the conformance suite (`micro_tests::broker`), and typed
//! publishing and subscribing through services.

use std::sync::Arc;

use micro_runtime::broker::memory::MemoryBroker;
use micro_runtime::broker::{Broker, SubscribeOptions};
use micro_tests::broker as suite;

fn memory() -> impl Fn() -> std::future::Ready<Arc<dyn Broker>> {
    let shared: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    move || std::future::ready(shared.clone())
}

#[tokio::test]
async fn memory_broadcast_to_three() {
    suite::broadcast_to_three(memory()).await;
}

#[tokio::test]
async fn memory_queue_group_of_three() {
    suite::queue_group_of_three(memory()).await;
}

#[tokio::test]
async fn memory_ten_thousand() {
    suite::ten_thousand(memory(), SubscribeOptions::new()).await;
}

#[tokio::test]
async fn memory_unsubscribe_stops() {
    suite::unsubscribe_stops(memory()).await;
}
