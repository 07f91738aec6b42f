//! JetStream publishing, at least once: creates each topic's stream on first use, and
//! publishes with a message id, retrying until the server confirms or the timeout passes.

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use tokio::time::Instant;

use super::connection::{Conn, unavailable};
use super::header::headers;
use super::names::{stream_config, stream_name};
use super::options::{BACKOFF_MAX, BACKOFF_MIN, Config};
use super::subject::subject;
use crate::broker::{Envelope, ID_HEADER};
use crate::error::{Error, Result};

/// Publishes `message` to `topic`'s stream and waits for the server's confirmation; retries
/// what may succeed later (no stream yet, no answer) until the publish timeout.
pub(super) async fn publish(
    config: &Config,
    conn: &Conn,
    topic: &str,
    message: Envelope,
) -> Result<()> {
    let subject = subject(topic)?;
    let js = conn.jetstream()?;
    let deadline = crate::transport::deadline_in(config.publish_timeout);
    let mut pause = BACKOFF_MIN;
    let mut known = conn.has_stream(topic);
    loop {
        let attempt = async {
            if !known {
                create_stream(conn, topic).await?;
                known = true;
            }
            let mut headers = headers(message.header.iter().map(|(k, v)| (k.clone(), v.as_str())))?;
            if let Some(id) = message.header(ID_HEADER) {
                headers.insert(NATS_MESSAGE_ID, id);
            }
            let ack = async {
                js.publish_with_headers(subject.clone(), headers, message.body.clone())
                    .await?
                    .await
            };
            ack.await.map(drop).map_err(Failure::Publish)
        };
        let failure = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(failure)) => failure,
            Err(_) => {
                return Err(unavailable(format!(
                    "nats: publish to {topic}: not confirmed within {:?}",
                    config.publish_timeout
                )));
            }
        };
        let retry = match &failure {
            Failure::Final(e) => return Err(e.clone()),
            Failure::Stream(_) => true,
            Failure::Publish(e) => match e.kind() {
                PublishErrorKind::StreamNotFound => {
                    // Deleted, or the server's JetStream is still starting: make sure.
                    conn.forget_stream(topic);
                    known = false;
                    true
                }
                PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => true,
                _ => false,
            },
        };
        let now = Instant::now();
        if !retry || now + pause >= deadline {
            return Err(failure.to_error(topic));
        }
        tracing::debug!(%topic, error = %failure.to_error(topic), "nats: retrying a publish");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF_MAX);
    }
}

/// Creates `topic`'s stream, unless it exists, and remembers it.
async fn create_stream(conn: &Conn, topic: &str) -> std::result::Result<(), Failure> {
    let js = conn.jetstream().map_err(Failure::Final)?;
    js.get_or_create_stream(stream_config(topic))
        .await
        .map_err(|e| Failure::Stream(format!("stream {}: {e}", stream_name(topic))))?;
    conn.remember_stream(topic);
    Ok(())
}

/// Why a JetStream publish attempt failed.
enum Failure {
    /// Not worth retrying.
    Final(Error),
    /// Creating or looking up the stream failed.
    Stream(String),
    /// The publish failed.
    Publish(jetstream::context::PublishError),
}

impl Failure {
    fn to_error(&self, topic: &str) -> Error {
        match self {
            Failure::Final(e) => e.clone(),
            Failure::Stream(e) => unavailable(format!("nats: publish to {topic}: {e}")),
            Failure::Publish(e) => unavailable(format!("nats: publish to {topic}: {e}")),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Final(e)
    }
}

impl From<jetstream::context::PublishError> for Failure {
    fn from(e: jetstream::context::PublishError) -> Failure {
        Failure::Publish(e)
    }
}
