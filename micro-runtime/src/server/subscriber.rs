//! Typed subscribers: an async function of a message type, subscribed to a topic when the
//! server starts and listed among the service's endpoints in the registry.

use std::future::Future;
use std::sync::Arc;

use crate::broker::{self, Event, EventHandler, SubscribeOptions};
use crate::codec::Message;
use crate::context::{Context, Metadata};
use crate::error::{Error, Result};
use crate::registry::Endpoint;

/// A subscriber to add to a [`Server`](super::Server): a topic, a handler and its options.
///
/// ```
/// use micro_runtime::server::Subscriber;
/// use micro_runtime::{Context, Result};
///
/// async fn on_tick(_ctx: Context, at: prost_types::Timestamp) -> Result<()> {
///     println!("tick at {}", at.seconds);
///     Ok(())
/// }
/// let sub = Subscriber::new("clock.ticked", on_tick).queue("clocks");
/// assert_eq!(sub.topic(), "clock.ticked");
/// assert_eq!(sub.endpoint().metadata["queue"], "clocks");
/// ```
#[derive(Clone)]
pub struct Subscriber {
    topic: String,
    options: SubscribeOptions,
    handler: EventHandler,
    endpoint: Endpoint,
}

impl Subscriber {
    /// A subscriber whose handler takes the message decoded as `T` (in the codec of its
    /// `Content-Type`) and the context of its headers. A message that does not decode is
    /// an `INVALID_ARGUMENT` error: logged, and never delivered again.
    pub fn new<T, F, Fut>(topic: impl Into<String>, handler: F) -> Subscriber
    where
        T: Message,
        F: Fn(Context, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let typed: EventHandler = Arc::new(move |event: Event| {
            let handler = handler.clone();
            Box::pin(async move {
                let (ctx, msg) = decode::<T>(event)?;
                handler(ctx, msg).await
            })
        });
        let mut sub = Subscriber::from_handler(topic, typed);
        sub.endpoint.request = Some(T::describe());
        sub
    }

    /// A subscriber of raw events: headers and bytes, and [`Event::ack`] for manual
    /// acknowledgement.
    pub fn from_handler(topic: impl Into<String>, handler: EventHandler) -> Subscriber {
        let topic = topic.into();
        let endpoint = Endpoint {
            name: topic.clone(),
            request: None,
            response: None,
            metadata: [
                ("topic".to_owned(), topic.clone()),
                ("subscriber".to_owned(), "true".to_owned()),
            ]
            .into(),
        };
        Subscriber {
            topic,
            options: SubscribeOptions::new(),
            handler,
            endpoint,
        }
    }

    /// Joins the queue group `queue`: each message goes to one subscriber of the group.
    pub fn queue(mut self, queue: impl Into<String>) -> Subscriber {
        self.options = self.options.queue(queue);
        if let Some(q) = self.options.get_queue() {
            self.endpoint.metadata.insert("queue".into(), q.to_owned());
        }
        self
    }

    /// Leaves acknowledging to the handler ([`Event::ack`]); for [`Subscriber::from_handler`].
    pub fn manual_ack(mut self, manual: bool) -> Subscriber {
        self.options = self.options.manual_ack(manual);
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The subscription options.
    pub fn options(&self) -> &SubscribeOptions {
        &self.options
    }

    /// The endpoint registered for it: named by the topic, with metadata `topic`,
    /// `subscriber: "true"` and, in a group, `queue`.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub(super) fn handler(&self) -> &EventHandler {
        &self.handler
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("topic", &self.topic)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Subscriber middleware: wraps every subscriber's handler when the server starts, outermost
/// last added (go-micro's `WrapSubscriber`).
pub type SubscriberWrapper = Arc<dyn Fn(EventHandler) -> EventHandler + Send + Sync>;

fn decode<T: Message>(event: Event) -> Result<(Context, T)> {
    let codec = event.message().codec();
    let message = event.into_message();
    let mut metadata = Metadata::new();
    for (k, v) in &message.header {
        // Headers that are not valid metadata (go-micro allows any string) are left out.
        let _ = metadata.insert(k, v);
    }
    let msg = T::decode(codec, message.body).map_err(|e| {
        Error::bad_request(
            "go.micro.server",
            format!("cannot decode the message: {}", e.detail()),
        )
    })?;
    Ok((Context::new().with_metadata(metadata), msg))
}

/// Subscribes each of `subs` on `broker` with `wrappers` around its handler; on failure,
/// undoes the ones made.
pub(super) async fn subscribe_all(
    broker: &dyn broker::Broker,
    subs: &[Subscriber],
    wrappers: &[SubscriberWrapper],
) -> Result<Vec<Box<dyn broker::Subscription>>> {
    broker.connect().await?;
    let mut live = Vec::with_capacity(subs.len());
    for sub in subs {
        let handler = wrappers
            .iter()
            .fold(sub.handler().clone(), |h, wrap| wrap(h));
        match broker
            .subscribe(sub.topic(), handler, sub.options().clone())
            .await
        {
            Ok(s) => live.push(s),
            Err(e) => {
                unsubscribe_all(live).await;
                return Err(e);
            }
        }
    }
    Ok(live)
}

/// Ends subscriptions, logging failures.
pub(super) async fn unsubscribe_all(subs: Vec<Box<dyn broker::Subscription>>) {
    for sub in subs {
        if let Err(e) = sub.unsubscribe().await {
            tracing::warn!(topic = sub.topic(), error = %e, "unsubscribe failed");
        }
    }
}
