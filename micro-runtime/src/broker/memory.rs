//! An in-process broker: for tests and for programs whose publishers and subscribers all live
//! in one process.
//!
//! Each subscription has a queue of 1,024 messages and handles them one at a time, in order;
//! `publish` waits while a subscriber's queue is full, so a slow subscriber slows its
//! publishers instead of growing memory. Delivery is at most once: a handler's error is
//! logged, and its message is not delivered again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{Broker, Envelope, Event, EventHandler, SubscribeOptions, Subscription, dispatch};
use crate::error::Result;

/// Messages queued per subscription before `publish` waits.
const QUEUE: usize = 1024;

/// A broker held in memory. Cheap to clone; clones share the topics.
#[derive(Clone, Debug, Default)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    topics: Mutex<HashMap<String, Vec<Sub>>>,
    next_id: AtomicU64,
    /// Spreads a queue group's messages over its members.
    turn: AtomicUsize,
}

#[derive(Debug)]
struct Sub {
    id: u64,
    queue: Option<String>,
    tx: mpsc::Sender<Envelope>,
    stopped: Arc<AtomicBool>,
}

impl MemoryBroker {
    /// A broker with no subscriptions.
    pub fn new() -> MemoryBroker {
        MemoryBroker::default()
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Sub>>> {
        self.inner.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The queues a message to `topic` goes to: every broadcast subscriber, and one member
    /// of each queue group (the others of the group as fallbacks, should it be gone).
    fn targets(&self, topic: &str) -> Vec<Vec<mpsc::Sender<Envelope>>> {
        let topics = self.topics();
        let Some(subs) = topics.get(topic) else {
            return Vec::new();
        };
        let turn = self.inner.turn.fetch_add(1, Ordering::Relaxed);
        let mut groups: Vec<(Option<&str>, Vec<mpsc::Sender<Envelope>>)> = Vec::new();
        for sub in subs {
            match sub.queue.as_deref() {
                None => groups.push((None, vec![sub.tx.clone()])),
                Some(q) => match groups.iter_mut().find(|(g, _)| *g == Some(q)) {
                    Some((_, members)) => members.push(sub.tx.clone()),
                    None => groups.push((Some(q), vec![sub.tx.clone()])),
                },
            }
        }
        groups
            .into_iter()
            .map(|(_, mut members)| {
                let n = members.len();
                members.rotate_left(turn % n);
                members
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Broker for MemoryBroker {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn address(&self) -> String {
        String::new()
    }

    async fn connect(&self) -> Result<()> {
        Ok(())
    }

    async fn disconnect(&self) -> Result<()> {
        for (_, subs) in self.topics().drain() {
            for sub in subs {
                sub.stopped.store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, message: Envelope) -> Result<()> {
        for members in self.targets(topic) {
            // A member that unsubscribed meanwhile hands its turn to the next.
            let mut message = Some(message.clone());
            for tx in members {
                match tx.send(message.take().unwrap_or_default()).await {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(back)) => message = Some(back),
                }
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        handler: EventHandler,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>> {
        let (tx, mut rx) = mpsc::channel::<Envelope>(QUEUE);
        let stopped = Arc::new(AtomicBool::new(false));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let topic_name: Arc<str> = Arc::from(topic);
        let manual_ack = options.is_manual_ack();
        {
            let stopped = stopped.clone();
            let topic = topic_name.clone();
            tokio::spawn(async move {
                while let Some(message) = rx.recv().await {
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    let event = Event::new(topic.clone(), message, None);
                    let _ = dispatch(&handler, event, None, manual_ack).await;
                }
            });
        }
        self.topics()
            .entry(topic.to_owned())
            .or_default()
            .push(Sub {
                id,
                queue: options.get_queue().map(str::to_owned),
                tx,
                stopped: stopped.clone(),
            });
        Ok(Box::new(MemorySubscription {
            broker: self.clone(),
            topic: topic.to_owned(),
            options,
            id,
            stopped,
        }))
    }
}

struct MemorySubscription {
    broker: MemoryBroker,
    topic: String,
    options: SubscribeOptions,
    id: u64,
    stopped: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Subscription for MemorySubscription {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    async fn unsubscribe(&self) -> Result<()> {
        self.stopped.store(true, Ordering::Release);
        let mut topics = self.broker.topics();
        if let Some(subs) = topics.get_mut(&self.topic) {
            subs.retain(|s| s.id != self.id);
            if subs.is_empty() {
                topics.remove(&self.topic);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker;
    use std::time::Duration;

    fn counter(tx: mpsc::UnboundedSender<(usize, Envelope)>, n: usize) -> EventHandler {
        broker::handler(move |e: Event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((n, e.into_message()));
                Ok(())
            }
        })
    }

    #[tokio::test]
    async fn broadcast_and_queue_groups() {
        let b = MemoryBroker::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut subs = Vec::new();
        for n in 0..2 {
            subs.push(
                b.subscribe("t", counter(tx.clone(), n), SubscribeOptions::new())
                    .await
                    .unwrap(),
            );
        }
        for n in 2..5 {
            let opts = SubscribeOptions::new().queue("q");
            subs.push(
                b.subscribe("t", counter(tx.clone(), n), opts)
                    .await
                    .unwrap(),
            );
        }
        for i in 0..30u8 {
            b.publish("t", Envelope::new(vec![i])).await.unwrap();
        }
        let mut per = [0; 5];
        for _ in 0..(30 * 3) {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            per[n] += 1;
        }
        assert_eq!(per[0], 30);
        assert_eq!(per[1], 30);
        assert_eq!(per[2] + per[3] + per[4], 30);
        assert!(per[2..].iter().all(|&c| c == 10), "spread: {per:?}");

        subs[0].unsubscribe().await.unwrap();
        b.publish("t", Envelope::new("x")).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(rx.recv().await.unwrap().0);
        }
        assert!(!got.contains(&0));
        assert!(
            tokio::time::timeout(Duration::from_millis(100), rx.recv())
                .await
                .is_err()
        );
    }
}
