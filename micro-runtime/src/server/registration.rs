//! Keeping a node registered: registered again every `register_interval`, until stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::registry::{self, RegisterOptions, Registry};
use crate::transport::CENTURY;

/// The re-registration task. [`Heartbeat::end`] lets a registration under way finish first
/// (an aborted one could still land after the deregistration: a local registry's rename
/// runs on a blocking thread); dropped, it is aborted, so it ends with the running state it
/// belongs to also when the server is dropped without
/// [`Server::stop`](super::Server::stop).
pub(super) struct Heartbeat {
    task: Option<JoinHandle<()>>,
    quit: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Heartbeat {
    pub(super) fn start(
        registry: Arc<dyn Registry>,
        record: registry::Record,
        options: RegisterOptions,
        every: Duration,
    ) -> Heartbeat {
        let (quit, mut quitting) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            // An interval beyond any clock (`--register_interval` of u64::MAX seconds) is a
            // century: never, without overflowing the timer's arithmetic.
            let mut tick = tokio::time::interval(every.min(CENTURY));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut quitting => return,
                }
                if let Err(e) = registry.register(&record, options).await {
                    tracing::warn!(service = %record.name, error = %e, "re-registration failed");
                }
            }
        });
        Heartbeat {
            task: Some(task),
            quit: Some(quit),
        }
    }

    /// Ends the task once no registration is under way.
    pub(super) async fn end(mut self) {
        drop(self.quit.take());
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
