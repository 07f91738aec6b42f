//! JetStream subscriptions, at least once: a pull consumer per subscription (durable and
//! shared by a queue group, or ephemeral), re-created when lost, the task that handles its
//! messages, and the acker that settles each one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;

use super::connection::{Conn, Shared, unavailable};
use super::control::Control;
use super::header::message;
use super::names::{js_name, stream_config, stream_name};
use super::options::{API_TIMEOUT, BACKOFF_MAX, BACKOFF_MIN, Config};
use super::subject::{check_queue, check_topic};
use super::subscription::NatsSubscription;
use crate::broker::{
    Acker, Event, EventHandler, Outcome, SubscribeOptions, Subscription, dispatch,
};
use crate::error::Result;

/// Messages a JetStream subscriber asks for at a time.
const BATCH: usize = 128;
/// The server's heartbeat on an idle JetStream pull; two missed ones end the pull.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long an ephemeral consumer outlives its subscriber (a crash, a long outage).
const EPHEMERAL_INACTIVE: Duration = Duration::from_secs(120);

/// Subscribes to `topic` (a literal subject) with a consumer of its stream, both created
/// when missing; a task handles the messages.
pub(super) async fn subscribe(
    config: &Arc<Config>,
    shared: &Arc<Shared>,
    conn: &Conn,
    topic: &str,
    handler: EventHandler,
    options: SubscribeOptions,
) -> Result<Box<dyn Subscription>> {
    check_topic(topic, false)?;
    if let Some(queue) = options.get_queue() {
        check_queue(queue)?;
    }
    let control = Control::new(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let mut sub = JetStreamSub {
        js: conn.jetstream()?.clone(),
        topic: Arc::from(topic),
        durable: options.get_queue().map(js_name),
        config: config.clone(),
        handler,
        manual_ack: options.is_manual_ack(),
        control: control.clone(),
        next_seq: 0,
        nacked: BTreeSet::new(),
    };
    let consumer = match tokio::time::timeout(config.publish_timeout, sub.open()).await {
        Ok(Ok(consumer)) => consumer,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(unavailable(format!(
                "nats: subscribe to {topic}: JetStream did not answer within {:?}",
                config.publish_timeout
            )));
        }
    };
    conn.remember_stream(topic);
    let task = tokio::spawn(sub.run(consumer));
    control.set_task(task);
    shared.register(&control);
    Ok(Box::new(NatsSubscription {
        shared: shared.clone(),
        topic: topic.to_owned(),
        options,
        control,
    }))
}

/// A JetStream subscription: its consumer, re-created when lost, and the task handling it.
struct JetStreamSub {
    js: jetstream::Context,
    topic: Arc<str>,
    /// The queue group's consumer name; `None` for an ephemeral consumer.
    durable: Option<String>,
    config: Arc<Config>,
    handler: EventHandler,
    manual_ack: bool,
    control: Arc<Control>,
    /// Ephemeral consumers: the stream sequence after the last message received, and
    /// those refused and not handled since: where a re-created consumer starts.
    next_seq: u64,
    nacked: BTreeSet<u64>,
}

impl JetStreamSub {
    /// Creates (or finds) the stream and the consumer.
    async fn open(&mut self) -> Result<PullConsumer> {
        let stream_name = stream_name(&self.topic);
        let stream = self
            .js
            .get_or_create_stream(stream_config(&self.topic))
            .await
            .map_err(|e| unavailable(format!("nats: stream {stream_name}: {e}")))?;
        let mut config = pull::Config {
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            max_ack_pending: i64::try_from(self.config.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        match &self.durable {
            Some(name) => {
                config.durable_name = Some(name.clone());
                stream
                    .get_or_create_consumer(name, config)
                    .await
                    .map_err(|e| {
                        unavailable(format!("nats: consumer {name} of {stream_name}: {e}"))
                    })
            }
            None => {
                if self.next_seq == 0 {
                    self.next_seq = stream.cached_info().state.last_sequence + 1;
                }
                let start = self
                    .nacked
                    .first()
                    .map_or(self.next_seq, |&n| n.min(self.next_seq));
                config.deliver_policy = DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                };
                config.inactive_threshold = EPHEMERAL_INACTIVE;
                let consumer = stream
                    .create_consumer(config)
                    .await
                    .map_err(|e| unavailable(format!("nats: a consumer of {stream_name}: {e}")))?;
                let name = consumer.cached_info().name.clone();
                let old = self
                    .control
                    .ephemeral
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace((self.js.clone(), stream_name, name));
                if let Some((js, stream, name)) = old {
                    // The consumer this one replaces, should it still exist.
                    tokio::spawn(async move {
                        let delete = js.delete_consumer_from_stream(&name, &stream);
                        let _ = tokio::time::timeout(API_TIMEOUT, delete).await;
                    });
                }
                Ok(consumer)
            }
        }
    }

    /// Handles messages until stopped; re-creates the consumer when it is lost.
    async fn run(mut self, consumer: PullConsumer) {
        let mut stop = self.control.stopped.subscribe();
        let mut consumer = Some(consumer);
        let mut pause = BACKOFF_MIN;
        while !self.control.is_stopped() {
            let current = match consumer.take() {
                Some(c) => Ok(c),
                None => self.open().await,
            };
            let messages = match current {
                Ok(c) => c
                    .stream()
                    .max_messages_per_batch(BATCH)
                    .heartbeat(HEARTBEAT)
                    .messages()
                    .await
                    .map_err(|e| unavailable(format!("nats: pulling from {}: {e}", self.topic))),
                Err(e) => Err(e),
            };
            match messages {
                Ok(mut messages) => loop {
                    let next = tokio::select! {
                        biased;
                        _ = Control::stopped(&mut stop) => return,
                        next = messages.next() => next,
                    };
                    match next {
                        Some(Ok(msg)) => {
                            pause = BACKOFF_MIN;
                            self.handle(msg).await;
                        }
                        Some(Err(e))
                            if e.kind() == MessagesErrorKind::MissingHeartbeat
                                && self.js.client().connection_state() != State::Connected =>
                        {
                            // Disconnected: the pull resumes by itself on reconnection.
                        }
                        Some(Err(e)) => {
                            tracing::warn!(topic = %self.topic, error = %e, "nats: JetStream pull failed, re-creating the consumer");
                            break;
                        }
                        None => break,
                    }
                },
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "nats: JetStream consumer unavailable, retrying");
                }
            }
            tokio::select! {
                biased;
                _ = Control::stopped(&mut stop) => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }

    async fn handle(&mut self, msg: jetstream::Message) {
        let seq = msg.info().map(|info| info.stream_sequence).ok();
        let (msg, acker) = msg.split();
        let acker: Arc<dyn Acker> = Arc::new(JetStreamAcker {
            acker,
            settled: AtomicBool::new(false),
        });
        let _gate = self.control.gate.lock().await;
        if self.control.is_stopped() {
            // Handed back at once, for another member of the group.
            let _ = acker.settle(Outcome::Nack).await;
            return;
        }
        let event = Event::new(
            self.topic.clone(),
            message(msg.headers, msg.payload),
            Some(acker.clone()),
        );
        let result = dispatch(&self.handler, event, Some(&acker), self.manual_ack).await;
        if let (None, Some(seq)) = (&self.durable, seq) {
            if Outcome::of(&result) == Outcome::Nack {
                self.nacked.insert(seq);
            } else {
                self.nacked.remove(&seq);
            }
            self.next_seq = self.next_seq.max(seq + 1);
        }
    }
}

/// Settles a JetStream message: `+ACK`, `-NAK` (delivered again) or `+TERM` (never again).
struct JetStreamAcker {
    acker: jetstream::message::Acker,
    settled: AtomicBool,
}

#[async_trait::async_trait]
impl Acker for JetStreamAcker {
    async fn settle(&self, outcome: Outcome) -> Result<()> {
        if self.settled.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let kind = match outcome {
            Outcome::Ack => AckKind::Ack,
            Outcome::Nack => AckKind::Nak(None),
            Outcome::Reject => AckKind::Term,
        };
        self.acker
            .ack_with(kind)
            .await
            .map_err(|e| unavailable(format!("nats: acknowledging a message: {e}")))
    }
}
