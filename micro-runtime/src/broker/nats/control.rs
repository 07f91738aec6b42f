//! What a subscription's task and its handle share: the stop signal, the gate held while a
//! message is handled, the task, and the ephemeral JetStream consumer to delete at the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::options::API_TIMEOUT;

/// What a subscription's task and its
/// [`NatsSubscription`](super::subscription::NatsSubscription) share.
pub(super) struct Control {
    pub(super) id: u64,
    pub(super) stopped: watch::Sender<bool>,
    /// Held while a message is handled, so stopping can wait for the delivery in progress.
    pub(super) gate: tokio::sync::Mutex<()>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// The ephemeral JetStream consumer of the subscription, to delete when it ends.
    pub(super) ephemeral: Mutex<Option<(jetstream::Context, String, String)>>,
}

impl Control {
    pub(super) fn new(id: u64) -> Arc<Control> {
        Arc::new(Control {
            id,
            stopped: watch::Sender::new(false),
            gate: tokio::sync::Mutex::new(()),
            task: Mutex::new(None),
            ephemeral: Mutex::new(None),
        })
    }

    pub(super) fn set_task(&self, task: JoinHandle<()>) {
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    pub(super) fn stop(&self) {
        self.stopped.send_replace(true);
    }

    pub(super) fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    /// After [`Control::stop`]: waits for the delivery in progress (at most `grace`), then
    /// cancels the task (wherever it waits: a pull, re-creating a consumer) and deletes the
    /// ephemeral consumer.
    pub(super) async fn end(&self, grace: Option<Duration>) {
        match grace {
            Some(grace) => drop(tokio::time::timeout(grace, self.gate.lock()).await),
            None => drop(self.gate.lock().await),
        }
        self.abort();
        self.delete_ephemeral().await;
    }

    pub(super) fn abort(&self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
        }
    }

    async fn delete_ephemeral(&self) {
        let ephemeral = self
            .ephemeral
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((js, stream, consumer)) = ephemeral {
            let delete = js.delete_consumer_from_stream(&consumer, &stream);
            match tokio::time::timeout(API_TIMEOUT, delete).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%stream, %consumer, error = %e, "nats: deleting a consumer")
                }
                Err(_) => {
                    tracing::debug!(%stream, %consumer, "nats: deleting a consumer timed out")
                }
            }
        }
    }

    /// Resolves once the subscription is stopped.
    pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
        let _ = stop.wait_for(|s| *s).await;
    }
}
