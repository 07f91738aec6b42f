//! The sidecar's own endpoints: `/registry`, with the records registered through it
//! (deregistered when it stops), and `/broker`'s publishing (its subscriptions, WebSockets,
//! are in `sockets`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use micro_runtime::api::form;
use micro_runtime::{Client, Code, Error, Result};
use serde_json::{Map, Value};

use super::Gateway;
use super::http::{bad_request, call_options, parsed_body};
use crate::program::Program;

/// What the sidecar adds: `/registry` and `/broker`, and the records registered through it,
/// deregistered when it stops.
#[derive(Default)]
pub(super) struct Sidecar {
    /// Each node registered through it, by service name and node id: registering a node
    /// again replaces its record (the memory it holds is that of the nodes registered, not
    /// of the requests made).
    registered: tokio::sync::Mutex<
        std::collections::HashMap<(String, String), micro_runtime::registry::Record>,
    >,
    ttl: Duration,
    /// The program it registers and health-checks (`--server_name`), if any.
    pub(super) program: Option<Arc<Program>>,
}

impl Sidecar {
    /// A sidecar whose records live `ttl` (zero: until deregistered), registering
    /// `program`, if any.
    pub(super) fn new(ttl: Duration, program: Option<Box<Program>>) -> Sidecar {
        Sidecar {
            ttl,
            program: program.map(|p| Arc::new(*p)),
            ..Sidecar::default()
        }
    }

    /// Deregisters what was registered through the sidecar (when it stops).
    pub(super) async fn deregister_all(&self, client: &Client) {
        for (_, record) in self.registered.lock().await.drain() {
            if let Err(e) = client.registry().deregister(&record).await {
                tracing::warn!(service = %record.name, error = %e, "deregistration failed");
            }
        }
    }

    /// `/registry`: `GET` lists the services, or with `?service=NAME` gets one (its
    /// versions); `POST` registers the record in the body, `DELETE` deregisters it.
    pub(super) async fn registry(
        &self,
        client: &Client,
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<Value> {
        let registry = client.registry();
        match *method {
            Method::GET => {
                let query = form(uri.query().unwrap_or_default().as_bytes());
                match query.get("service").and_then(Value::as_str) {
                    Some(name) => to_json(&registry.get_service(name).await?),
                    None => to_json(&registry.list_services().await?),
                }
            }
            Method::POST | Method::DELETE => {
                let record = micro_runtime::registry::Record::from_json(body)
                    .map_err(|e| bad_request(e.detail()))?;
                let mut registered = self.registered.lock().await;
                let keys = record
                    .nodes
                    .iter()
                    .map(|node| ((record.name.clone(), node.id.clone()), node));
                if *method == Method::POST {
                    let ttl = micro_runtime::registry::RegisterOptions { ttl: self.ttl };
                    registry.register(&record, ttl).await?;
                    for (key, node) in keys {
                        let one = micro_runtime::registry::Record {
                            nodes: vec![node.clone()],
                            ..record.clone()
                        };
                        registered.insert(key, one);
                    }
                } else {
                    registry.deregister(&record).await?;
                    // Only the nodes deregistered are forgotten: the others of a record
                    // are still deregistered when the sidecar stops.
                    for (key, _) in keys {
                        registered.remove(&key);
                    }
                }
                Ok(Value::Object(Map::new()))
            }
            _ => Err(Error::with_http_code(
                405,
                "go.micro.sidecar",
                "the registry takes GET, POST and DELETE",
            )),
        }
    }
}

impl Gateway {
    /// `/broker`: `POST ?topic=T` publishes the JSON body to the broker, the request's
    /// headers as the message's.
    pub(super) async fn publish(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value> {
        if *method != Method::POST {
            return Err(Error::with_http_code(
                405,
                "go.micro.sidecar",
                "the broker takes POST ?topic=...",
            ));
        }
        let query = form(uri.query().unwrap_or_default().as_bytes());
        let topic = query
            .get("topic")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad_request("publish needs ?topic="))?;
        let message = parsed_body(headers, body)?.unwrap_or_else(|| Value::Object(Map::new()));
        self.client
            .publish_with(topic, &message, &call_options(headers)?)
            .await?;
        Ok(Value::Object(Map::new()))
    }
}

/// `value` as JSON.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::new(Code::Internal, e.to_string()))
}
