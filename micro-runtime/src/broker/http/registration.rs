//! Subscribers in the registry: the record each subscription registers (a node of
//! [`SERVICE_NAME`], versioned by its queue group), and the heartbeat that registers them
//! again before their TTL runs out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::server::Sub;
use crate::broker::SubscribeOptions;
use crate::error::Result;
use crate::registry::{Node, Record, RegisterOptions, Registry};

/// The registry service subscribers are nodes of.
pub const SERVICE_NAME: &str = "micro.http.broker";
/// The version of broadcast subscriptions (queue groups use their name).
pub const BROADCAST_VERSION: &str = "ff.http.broadcast";

/// How long a subscriber's registration lives; also how long publishers cache lookups.
pub(super) const REGISTER_TTL: Duration = Duration::from_secs(60);
const REGISTER_INTERVAL: Duration = Duration::from_secs(30);

/// The record of the subscription `id` to `topic`, reached at `address`.
pub(super) fn record(
    id: &str,
    address: SocketAddr,
    topic: &str,
    options: &SubscribeOptions,
) -> Record {
    Record {
        name: SERVICE_NAME.to_owned(),
        version: options.get_queue().unwrap_or(BROADCAST_VERSION).to_owned(),
        metadata: Default::default(),
        endpoints: Vec::new(),
        nodes: vec![Node {
            id: id.to_owned(),
            address: address.to_string(),
            metadata: [
                ("secure".to_owned(), "false".to_owned()),
                ("broker".to_owned(), "http".to_owned()),
                ("topic".to_owned(), topic.to_owned()),
            ]
            .into(),
        }],
    }
}

/// Registers `record` in `registry` for [`REGISTER_TTL`].
pub(super) async fn register(registry: &dyn Registry, record: &Record) -> Result<()> {
    let ttl = RegisterOptions { ttl: REGISTER_TTL };
    registry.register(record, ttl).await
}

/// Registers the records of `subs` again every 30 s, until aborted.
pub(super) async fn heartbeat(registry: Arc<dyn Registry>, subs: Arc<Mutex<HashMap<String, Sub>>>) {
    let mut tick = tokio::time::interval(REGISTER_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let records: Vec<Record> = subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|s| s.record.clone())
            .collect();
        for record in records {
            if let Err(e) = register(&*registry, &record).await {
                tracing::warn!(error = %e, "http broker: re-registration failed");
            }
        }
    }
}
