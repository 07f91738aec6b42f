//! Publishing events on the client's broker.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::task::Poll;

use super::chain::BoxFuture;
use super::publish_layer::Publication;
use super::{CallOptions, Client};
use crate::broker;
use crate::codec::Message;
use crate::error::{Code, Error, Result};

impl Client {
    /// Publishes `message` to `topic` on the client's broker, encoded in the client's codec
    /// (or the one the message type must use), with headers `Content-Type`, `Micro-Topic`
    /// and a unique `Micro-Id`.
    ///
    /// ```
    /// # async fn run() -> micro_runtime::Result<()> {
    /// use micro_runtime::Service;
    /// let service = Service::builder().name("users").from_env()?.build()?;
    /// // Any message: generated from a .proto, `#[derive(Message)]`, or a well-known type.
    /// let now = prost_types::Timestamp { seconds: 1, nanos: 0 };
    /// service.client().publish("clock.ticked", &now).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish<M: Message>(&self, topic: &str, message: &M) -> Result<()> {
        static DEFAULTS: LazyLock<CallOptions> = LazyLock::new(CallOptions::new);
        self.publish_with(topic, message, &DEFAULTS).await
    }

    /// [`Client::publish`] with options: the codec, metadata (sent as headers) and a timeout.
    pub async fn publish_with<M: Message>(
        &self,
        topic: &str,
        message: &M,
        options: &CallOptions,
    ) -> Result<()> {
        let Some(broker) = &self.broker else {
            return Err(Error::new(
                Code::FailedPrecondition,
                "the client has no broker (Client::with_broker)",
            ));
        };
        if let Some(bad) = &options.bad_metadata {
            return Err(Error::bad_request("go.micro.client", bad.clone()));
        }
        let codec = options
            .codec
            .or_else(M::preferred_codec)
            .unwrap_or(self.inner.options.codec);
        let mut body = bytes::BytesMut::with_capacity(message.size_hint(codec));
        message.encode(codec, &mut body)?;
        if body.len() > self.inner.options.max_message_size {
            return Err(Error::new(
                Code::ResourceExhausted,
                format!(
                    "message of {} bytes is larger than the limit of {}",
                    body.len(),
                    self.inner.options.max_message_size
                ),
            ));
        }
        let mut id = [0; uuid::fmt::Hyphenated::LENGTH];
        let id = crate::id::uuid_v4().hyphenated().encode_lower(&mut id);
        let mut header = broker::Header::with_capacity(options.metadata.len() + 3);
        header.extend(
            options
                .metadata
                .iter()
                .map(|(k, v)| (Cow::Owned(k.to_owned()), v.to_owned())),
        );
        // In key order, so appended at the end (unless the metadata has later keys); they win
        // over metadata of the same names.
        for (key, value) in [
            (
                broker::CONTENT_TYPE_HEADER,
                broker::content_type(codec).to_owned(),
            ),
            (broker::ID_HEADER, id.to_owned()),
            (broker::TOPIC_HEADER, topic.to_owned()),
        ] {
            broker::put_header(&mut header, key.into(), value);
        }
        let msg = broker::Envelope {
            header,
            body: body.freeze(),
        };
        let timeout = options
            .timeout
            .unwrap_or(self.inner.options.request_timeout);
        let layers = &self.inner.options.publish_layers;
        if layers.is_empty() {
            return send(&**broker, topic, msg, timeout).await;
        }
        let send_one = |event: Publication| -> BoxFuture<'_, Result<()>> {
            Box::pin(async move { send(&**broker, &event.topic, event.envelope, timeout).await })
        };
        let event = Publication {
            topic: topic.to_owned(),
            envelope: msg,
        };
        layers.run(event, &send_one).await
    }
}

/// Hands `msg` to the broker, within `timeout`.
async fn send(
    broker: &dyn broker::Broker,
    topic: &str,
    msg: broker::Envelope,
    timeout: std::time::Duration,
) -> Result<()> {
    let mut publish = broker.publish(topic, msg);
    // Most publishes are done at the first poll (the backend took the message): no timer
    // for those.
    if let Poll::Ready(published) = broker::poll_once(publish.as_mut()).await {
        return published;
    }
    match tokio::time::timeout(timeout, publish).await {
        Ok(published) => published,
        Err(_) => Err(Error::new(
            Code::DeadlineExceeded,
            format!("publish to {topic} timed out after {timeout:?}"),
        )),
    }
}
