//! The publishers' side: finds a topic's subscribers through a registry cache, and POSTs
//! the message to each broadcast subscriber and to one reachable member of each queue group.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::registration::{BROADCAST_VERSION, REGISTER_TTL, SERVICE_NAME};
use super::wire::{BROKER_ID, encode_message};
use crate::broker::Envelope;
use crate::error::{Code, Error, Result};
use crate::registry::cache::Cache;
use crate::registry::{Node, Registry};

/// What publishing needs, made on first use, so a service that never publishes carries
/// none of it: the registry cache and the HTTP client.
pub(super) struct Publisher {
    registry: Arc<dyn Registry>,
    cache: OnceLock<Cache>,
    client: OnceLock<HttpClient<HttpConnector, Full<Bytes>>>,
}

impl Publisher {
    pub(super) fn new(registry: Arc<dyn Registry>) -> Publisher {
        Publisher {
            registry,
            cache: OnceLock::new(),
            client: OnceLock::new(),
        }
    }

    /// The cache of the registry's subscribers.
    pub(super) fn cache(&self) -> &Cache {
        self.cache
            .get_or_init(|| Cache::new(self.registry.clone(), REGISTER_TTL))
    }

    fn client(&self) -> &HttpClient<HttpConnector, Full<Bytes>> {
        self.client.get_or_init(|| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(Duration::from_secs(5)));
            HttpClient::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .build(connector)
        })
    }

    /// Delivers `message` to `topic`'s subscribers; fails with their error.
    pub(super) async fn publish(&self, topic: &str, message: Envelope) -> Result<()> {
        let nodes = match self.cache().get(SERVICE_NAME).await {
            Ok(nodes) => nodes,
            // Nobody subscribes to anything.
            Err(e) if e.code() == Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // Broadcast subscribers each, queue groups by name.
        let mut broadcast = Vec::new();
        let mut groups: HashMap<&str, Vec<&Node>> = HashMap::new();
        for c in nodes.as_slice() {
            let md = &c.node.metadata;
            if md.get("broker").map(String::as_str) != Some("http")
                || md.get("topic").map(String::as_str) != Some(topic)
            {
                continue;
            }
            if c.version == BROADCAST_VERSION {
                broadcast.push(&c.node);
            } else {
                groups.entry(&c.version).or_default().push(&c.node);
            }
        }
        if broadcast.is_empty() && groups.is_empty() {
            return Ok(());
        }
        let body = encode_message(topic, message)?;

        let deliveries = broadcast
            .into_iter()
            .map(|node| self.post_to_one(vec![node], body.clone(), false))
            .chain(
                groups
                    .into_values()
                    .map(|members| self.post_to_one(members, body.clone(), true)),
            );
        let results = futures_util::future::join_all(deliveries).await;
        let failed: Vec<Error> = results.into_iter().filter_map(|r| r.err()).collect();
        match failed.len() {
            0 => Ok(()),
            1 => Err(failed
                .into_iter()
                .next()
                .unwrap_or_else(|| Error::new(Code::Internal, "a delivery failed"))),
            n => {
                let first = &failed[0];
                Err(Error::new(
                    first.code(),
                    format!(
                        "{n} deliveries of {topic} failed; the first: {}",
                        first.detail()
                    ),
                ))
            }
        }
    }

    /// POSTs `body` to one of `members`: a random one, the next when it cannot be reached
    /// or no longer subscribes. A member that left (the broker answers that it no longer
    /// subscribes) or died (nothing listens, or the connection broke before an answer) while
    /// still in the registry is skipped, and the registry is asked again on the next publish.
    /// Only a queue group none of whose members can be reached is an error: a broadcast
    /// subscriber that died is just gone.
    ///
    /// A member that answered with its handler's error (whatever its code, `UNAVAILABLE`
    /// included) has run the handler: its error is returned as it is, and the message is not
    /// posted to another member.
    async fn post_to_one(&self, mut members: Vec<&Node>, body: Bytes, group: bool) -> Result<()> {
        fastrand::shuffle(&mut members);
        let mut unreachable = None;
        for node in members {
            match self.post(node, body.clone()).await {
                Ok(()) => return Ok(()),
                Err(Failure::Unreachable(e)) => {
                    tracing::debug!(node = %node.id, error = %e, "http broker: subscriber unreachable");
                    self.cache().invalidate(SERVICE_NAME);
                    unreachable = Some(e);
                }
                Err(Failure::Answered(e)) if e.code() == Code::NotFound && e.id() == BROKER_ID => {
                    self.cache().invalidate(SERVICE_NAME);
                }
                Err(Failure::Answered(e)) => return Err(e),
            }
        }
        match unreachable {
            Some(e) if group => Err(e),
            _ => Ok(()),
        }
    }

    /// POSTs `body` to one subscriber node.
    async fn post(&self, node: &Node, body: Bytes) -> std::result::Result<(), Failure> {
        let scheme = if node.metadata.get("secure").is_some_and(|s| s == "true") {
            "https"
        } else {
            "http"
        };
        let id: String =
            percent_encoding::utf8_percent_encode(&node.id, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let uri = format!("{scheme}://{}/?id={id}", node.address);
        let req = Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            // A broken registry record: skipped like a subscriber that cannot be reached.
            .map_err(|e| {
                Failure::Unreachable(Error::new(
                    Code::Unavailable,
                    format!("bad subscriber address {:?}: {e}", node.address),
                ))
            })?;
        let rsp = self.client().request(req).await.map_err(|e| {
            Failure::Unreachable(Error::new(
                Code::Unavailable,
                format!("subscriber {} at {}: {e}", node.id, node.address),
            ))
        })?;
        // From here on the subscriber has answered.
        let status = rsp.status();
        let body = rsp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body);
        let err = Error::from_json(&text);
        Err(Failure::Answered(
            if err.code() == Code::Unknown && !text.starts_with('{') {
                Error::new(
                    Code::from_http(status.as_u16()),
                    format!("subscriber {}: {status} {text}", node.id),
                )
            } else {
                err
            },
        ))
    }
}

/// Why a POST to a subscriber failed.
enum Failure {
    /// No answer: nothing listens there, the connection broke before the subscriber
    /// answered, or its record's address is unusable. Another member of its group may be
    /// tried.
    Unreachable(Error),
    /// The subscriber answered with this error: its handler's, or the broker's own (no such
    /// subscription, a malformed message).
    Answered(Error),
}
