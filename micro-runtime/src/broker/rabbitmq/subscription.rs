//! Subscriptions: subscribing, the task that handles a subscription's deliveries one at a
//! time and subscribes again when its channel breaks, the acker that settles each delivery,
//! and the handle `subscribe` returns.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use lapin::{Channel, Consumer};
use tokio::time::timeout;

use super::connection::Inner;
use super::control::Sub;
use super::error::amqp_error;
use super::message::{check_short, headers};
use crate::broker::{
    Acker, Envelope, Event, EventHandler, Outcome, SubscribeOptions, Subscription, dispatch,
};
use crate::error::Result;

/// First and longest wait between attempts to re-establish a broken subscription.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Subscribes to `topic` (AMQP wildcards allowed) through `inner`'s connection, in the
/// options' queue group if any; a task handles the deliveries.
pub(super) async fn subscribe(
    inner: &Arc<Inner>,
    topic: &str,
    handler: EventHandler,
    options: SubscribeOptions,
) -> Result<Box<dyn Subscription>> {
    check_short("topic", topic)?;
    if let Some(queue) = options.get_queue() {
        check_short("queue name", queue)?;
    }
    let (channel, consumer) = inner.attach(topic, &options).await?;
    let sub = Arc::new(Sub::new());
    sub.set_current(&channel, consumer.tag());
    let task = tokio::spawn(run(
        inner.clone(),
        sub.clone(),
        Arc::from(topic),
        handler,
        options.clone(),
        (channel, consumer),
    ));
    *sub.task() = Some(task);
    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    inner.subs().insert(id, sub.clone());
    Ok(Box::new(RabbitSubscription {
        inner: inner.clone(),
        id,
        topic: topic.to_owned(),
        options,
        sub,
    }))
}

/// A subscription's task: handles its deliveries one at a time and, when its channel breaks,
/// subscribes again until stopped.
async fn run(
    inner: Arc<Inner>,
    sub: Arc<Sub>,
    topic: Arc<str>,
    handler: EventHandler,
    options: SubscribeOptions,
    first: (Channel, Consumer),
) {
    let mut stop = sub.stop.subscribe();
    let mut attached = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        let (channel, mut consumer) = match attached.take() {
            Some(a) => a,
            None => {
                let attempt = tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return,
                    a = inner.attach(&topic, &options) => a,
                };
                match attempt {
                    Ok((channel, consumer)) => {
                        if !sub.set_current(&channel, consumer.tag()) {
                            let _ = timeout(inner.options.timeout, channel.close(200, "OK")).await;
                            return;
                        }
                        tracing::info!(%topic, "rabbitmq: subscribed again");
                        backoff = MIN_BACKOFF;
                        (channel, consumer)
                    }
                    Err(e) => {
                        tracing::warn!(%topic, error = %e, ?backoff, "rabbitmq: subscribing again failed; retrying");
                        tokio::select! {
                            biased;
                            _ = stop.wait_for(|s| *s) => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                next = consumer.next() => next,
            };
            match next {
                Some(Ok(delivery)) => {
                    handle(&handler, &topic, delivery, options.is_manual_ack()).await;
                }
                Some(Err(e)) => {
                    tracing::warn!(%topic, error = %e, "rabbitmq: subscription's channel failed");
                }
                None => break,
            }
        }
        if sub.stopped() {
            return;
        }
        // The consumer ended without being stopped: the connection or the channel broke,
        // or the queue was deleted. Subscribe again.
        tracing::warn!(%topic, "rabbitmq: subscription lost; subscribing again");
        drop(channel);
    }
}

async fn handle(handler: &EventHandler, topic: &Arc<str>, delivery: Delivery, manual_ack: bool) {
    let Delivery {
        routing_key,
        properties,
        data,
        acker,
        ..
    } = delivery;
    let message = Envelope {
        header: headers(&properties),
        body: Bytes::from(data),
    };
    // The routing key says which topic a wildcard subscription's message went to.
    let topic = if routing_key.as_str() == &**topic {
        topic.clone()
    } else {
        Arc::from(routing_key.as_str())
    };
    let acker: Arc<dyn Acker> = Arc::new(RabbitAcker(acker));
    let event = Event::new(topic, message, Some(acker.clone()));
    let _ = dispatch(handler, event, Some(&acker), manual_ack).await;
}

/// Settles a delivery at the AMQP level; lapin's acker acts once, later outcomes do nothing.
struct RabbitAcker(lapin::acker::Acker);

#[async_trait::async_trait]
impl Acker for RabbitAcker {
    async fn settle(&self, outcome: Outcome) -> Result<()> {
        let result = match outcome {
            Outcome::Ack => self.0.ack(BasicAckOptions::default()).await,
            Outcome::Nack => {
                self.0
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await
            }
            Outcome::Reject => self.0.reject(BasicRejectOptions { requeue: false }).await,
        };
        result
            .map(|_| ())
            .map_err(|e| amqp_error("settling a message", &e))
    }
}

/// The subscription returned by [`RabbitBroker`](super::RabbitBroker)'s `subscribe`.
/// Dropping it does not end the subscription: `unsubscribe` (or the broker's `disconnect`)
/// does.
pub(super) struct RabbitSubscription {
    inner: Arc<Inner>,
    id: u64,
    topic: String,
    options: SubscribeOptions,
    sub: Arc<Sub>,
}

#[async_trait::async_trait]
impl Subscription for RabbitSubscription {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn unsubscribe(&self) -> Result<()> {
        self.inner.subs().remove(&self.id);
        self.sub
            .stop(self.inner.options.drain, self.inner.options.timeout)
            .await;
        Ok(())
    }
}
