//! The handle `subscribe` returns: its topic and options, and `unsubscribe`, which lets the
//! delivery in progress finish and ends the subscription's task.

use std::sync::Arc;

use super::connection::Shared;
use super::control::Control;
use crate::broker::{SubscribeOptions, Subscription};
use crate::error::Result;

/// A subscription of a [`NatsBroker`](super::NatsBroker), core or JetStream.
pub(super) struct NatsSubscription {
    pub(super) shared: Arc<Shared>,
    pub(super) topic: String,
    pub(super) options: SubscribeOptions,
    pub(super) control: Arc<Control>,
}

#[async_trait::async_trait]
impl Subscription for NatsSubscription {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn unsubscribe(&self) -> Result<()> {
        self.control.stop();
        self.shared
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.control.id);
        // The delivery in progress finishes; no other starts.
        self.control.end(None).await;
        Ok(())
    }
}
