//! go-micro's `rpc` handler: a request (the `/rpc` call it names, or the endpoint its path
//! resolves to) is called, and the response is the reply as JSON.

use axum::http::{HeaderMap, Uri};
use micro_runtime::Result;
use serde_json::{Map, Value};

use super::Gateway;
use super::http::{bad_request, call_options, request_of};

impl Gateway {
    /// A call resolved from the path.
    pub(super) async fn route(&self, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Value> {
        let (service, endpoint) = self.resolved(uri.path())?;
        let request = request_of(uri, headers, body)?;
        let options = call_options(headers)?;
        self.client
            .call_endpoint_with(&service, &endpoint, &request, &options)
            .await
    }

    /// A call named in the body of `/rpc`, or in its query when it has no body.
    pub(super) async fn rpc(&self, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Value> {
        let fields = match request_of(uri, headers, body)? {
            Value::Object(fields) => fields,
            _ => return Err(bad_request("expected an object with service and endpoint")),
        };
        let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or_default();
        let service = text("service");
        let endpoint = match text("endpoint") {
            "" => text("method"),
            endpoint => endpoint,
        };
        if service.is_empty() || endpoint.is_empty() {
            return Err(bad_request("service and endpoint are required"));
        }
        let request = match fields.get("request") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            // Form fields (and some clients) carry the request as JSON text.
            Some(Value::String(s)) if s.is_empty() => Value::Object(Map::new()),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map_err(|e| bad_request(format!("request is not JSON: {e}")))?,
            Some(other) => other.clone(),
        };
        let mut options = call_options(headers)?;
        if let Some(address) = fields.get("address").and_then(Value::as_str)
            && !address.is_empty()
        {
            options = options.address(address);
        }
        self.client
            .call_endpoint_with(service, endpoint, &request, &options)
            .await
    }
}
