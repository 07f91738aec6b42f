//! What a subscription's task and its handle share: the stop signal, the channel consumed
//! from (to cancel its consumer) and the task, and ending the subscription.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lapin::Channel;
use lapin::options::BasicCancelOptions;
use lapin::types::ShortString;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// What a subscription's task and its
/// [`RabbitSubscription`](super::subscription::RabbitSubscription) share.
pub(super) struct Sub {
    /// Set once, to end the subscription.
    pub(super) stop: watch::Sender<bool>,
    /// The channel consumed from and the consumer's tag, to cancel it.
    current: Mutex<Option<(Channel, ShortString)>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Sub {
    /// A subscription not stopped, without a channel or a task yet.
    pub(super) fn new() -> Sub {
        let (stop, _) = watch::channel(false);
        Sub {
            stop,
            current: Mutex::new(None),
            task: Mutex::new(None),
        }
    }

    fn current(&self) -> MutexGuard<'_, Option<(Channel, ShortString)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn task(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.task.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Records the channel now consumed from; false (and nothing recorded) when the
    /// subscription was stopped meanwhile, so that `stop` never misses a channel.
    pub(super) fn set_current(&self, channel: &Channel, tag: ShortString) -> bool {
        let mut current = self.current();
        if self.stopped() {
            return false;
        }
        *current = Some((channel.clone(), tag));
        true
    }

    /// Ends the subscription: cancels the consumer, waits up to `drain` for a handler in
    /// progress, then closes the channel (unacknowledged messages go back to the queue).
    pub(super) async fn stop(&self, drain: Duration, t: Duration) {
        self.stop.send_replace(true);
        let current = self.current().take();
        if let Some((channel, tag)) = &current {
            let _ = timeout(
                t,
                channel.basic_cancel(tag.as_str(), BasicCancelOptions::default()),
            )
            .await;
        }
        let task = self.task().take();
        if let Some(mut task) = task
            && timeout(drain, &mut task).await.is_err()
        {
            tracing::warn!(
                ?drain,
                "rabbitmq: a handler was still running when unsubscribing; abandoned, its \
                     message will be delivered again"
            );
            task.abort();
        }
        if let Some((channel, _)) = current
            && channel.status().connected()
        {
            let _ = timeout(t, channel.close(200, "OK")).await;
        }
    }
}
