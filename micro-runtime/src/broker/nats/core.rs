//! Core NATS, at most once: the slow path of a publish (the client's buffer is full), and
//! subscriptions (plain or queue groups) with the task that handles their messages.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;

use super::connection::{Conn, Shared, unavailable};
use super::control::Control;
use super::header::message;
use super::options::Config;
use super::subject::{check_queue, check_topic};
use super::subscription::NatsSubscription;
use crate::broker::{Event, EventHandler, SubscribeOptions, Subscription, dispatch};
use crate::error::Result;

/// A core publish the client could not take at once (its buffer is full): waits up to the
/// publish timeout.
pub(super) async fn finish_publish<F>(config: &Config, topic: &str, send: Pin<&mut F>) -> Result<()>
where
    F: Future<Output = std::result::Result<(), async_nats::PublishError>>,
{
    match tokio::time::timeout(config.publish_timeout, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(unavailable(format!("nats: publish to {topic}: {e}"))),
        Err(_) => Err(unavailable(format!(
            "nats: publish to {topic}: disconnected for {:?} with a full buffer",
            config.publish_timeout
        ))),
    }
}

/// Subscribes to `topic` (wildcards allowed) on `conn`, in the options' queue group if any,
/// once the server confirmed it; a task handles the messages.
pub(super) async fn subscribe(
    config: &Config,
    shared: &Arc<Shared>,
    conn: &Conn,
    topic: &str,
    handler: EventHandler,
    options: SubscribeOptions,
) -> Result<Box<dyn Subscription>> {
    check_topic(topic, true)?;
    let subscribed = match options.get_queue() {
        Some(queue) => {
            check_queue(queue)?;
            conn.client
                .queue_subscribe(topic.to_owned(), queue.to_owned())
                .await
        }
        None => conn.client.subscribe(topic.to_owned()).await,
    };
    let subscription =
        subscribed.map_err(|e| unavailable(format!("nats: subscribe to {topic}: {e}")))?;
    // The subscription is live once the server answered a ping sent after it.
    match tokio::time::timeout(config.publish_timeout, conn.client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(unavailable(format!("nats: subscribe to {topic}: {e}"))),
        Err(_) => {
            return Err(unavailable(format!(
                "nats: subscribe to {topic}: not confirmed within {:?}",
                config.publish_timeout
            )));
        }
    }
    let control = Control::new(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let task = tokio::spawn(run_core(
        subscription,
        Arc::from(topic),
        handler,
        options.is_manual_ack(),
        control.clone(),
    ));
    control.set_task(task);
    shared.register(&control);
    Ok(Box::new(NatsSubscription {
        shared: shared.clone(),
        topic: topic.to_owned(),
        options,
        control,
    }))
}

/// Handles a core subscription's messages, one at a time, until stopped.
async fn run_core(
    mut subscription: async_nats::Subscriber,
    topic: Arc<str>,
    handler: EventHandler,
    manual_ack: bool,
    control: Arc<Control>,
) {
    let mut stop = control.stopped.subscribe();
    loop {
        let msg = tokio::select! {
            biased;
            _ = Control::stopped(&mut stop) => break,
            msg = subscription.next() => match msg {
                Some(msg) => msg,
                None => break,
            },
        };
        let _gate = control.gate.lock().await;
        if control.is_stopped() {
            break;
        }
        let event = Event::new(topic.clone(), message(msg.headers, msg.payload), None);
        let _ = dispatch(&handler, event, None, manual_ack).await;
    }
    // Dropping the subscription unsubscribes on the server.
}
