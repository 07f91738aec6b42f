//! `micro web`: the dashboard. A registry browser (services; each service's versions, nodes
//! with their health and metadata, endpoints with their request and response fields) and a
//! call form, as server-rendered pages (askama templates in `templates/`, escaped).
//!
//! - `/`: the services.
//! - `/service/{name}`: one service; each unary endpoint has a call form with an example
//!   request built from its fields.
//! - `/call?service=&endpoint=&request=`: the call form, and the call's response (JSON) or
//!   error when a service and endpoint are given.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use micro_runtime::registry::{self, Value as Description};
use micro_runtime::{CallOptions, Client, Error, Result};

use crate::guard::Guard;
use serde_json::Value;
use tokio::net::TcpListener;

/// How long each node has to answer the service page's health checks.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    registry: &'static str,
    services: Vec<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    name: String,
    versions: Vec<VersionView>,
    error: Option<String>,
}

struct VersionView {
    version: String,
    nodes: Vec<NodeView>,
    endpoints: Vec<EndpointView>,
}

struct NodeView {
    id: String,
    address: String,
    status: String,
    metadata: Vec<(String, String)>,
}

struct EndpointView {
    name: String,
    request: MessageView,
    response: MessageView,
    stream: bool,
    /// A request to start from: each field with its zero value.
    example: String,
}

struct MessageView {
    name: String,
    /// (name, type) of each field.
    fields: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "call.html")]
struct CallPage {
    service: String,
    endpoint: String,
    request: String,
    result: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    path: String,
}

#[derive(Template)]
#[template(path = "forbidden.html")]
struct ForbiddenPage {
    reason: String,
}

/// Serves the dashboard on `listener` until `shutdown`.
pub(crate) async fn serve(
    client: Client,
    listener: TcpListener,
    guard: Guard,
    limits: crate::serve::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = axum::Router::new()
        .route("/", get(index))
        .route("/service/{name}", get(service))
        .route("/call", get(call))
        .fallback(not_found)
        .with_state(Arc::new(client))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(guard),
            refuse_other_sites,
        ));
    crate::serve::serve(listener, app, limits, shutdown).await
}

/// Refuses what a browser sends on another site's behalf (a request it marks cross-site,
/// so another page can't make calls through an `<img>` or a form) and a host name other
/// than an address, `localhost` or one `--allowed_hosts` names (a DNS name rebound to this
/// machine): see [`Guard`]. Tools that send neither header (curl) pass.
async fn refuse_other_sites(
    axum::extract::State(guard): axum::extract::State<Arc<Guard>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Err(reason) = guard.check(request.method(), request.headers()) {
        return page(StatusCode::FORBIDDEN, &ForbiddenPage { reason });
    }
    next.run(request).await
}

fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the page failed: {e}"),
        )
            .into_response(),
    }
}

async fn index(State(client): State<Arc<Client>>) -> Response {
    let registry = client.registry().name();
    let (services, error, status) = match client.registry().list_services().await {
        Ok(list) => {
            let mut names: Vec<String> = list.into_iter().map(|s| s.name).collect();
            names.sort();
            names.dedup();
            (names, None, StatusCode::OK)
        }
        Err(e) => (
            Vec::new(),
            Some(e.to_string()),
            crate::api::error_status(&e),
        ),
    };
    let view = IndexPage {
        registry,
        services,
        error,
    };
    page(status, &view)
}

async fn service(State(client): State<Arc<Client>>, Path(name): Path<String>) -> Response {
    let versions = match client.registry().get_service(&name).await {
        Ok(versions) => versions,
        Err(e) => {
            let view = ServicePage {
                name,
                versions: Vec::new(),
                error: Some(e.to_string()),
            };
            return page(crate::api::error_status(&e), &view);
        }
    };
    let answers = crate::health::check_nodes(&client, &versions, "", HEALTH_TIMEOUT).await;
    let versions = versions
        .iter()
        .zip(&answers)
        .map(|(v, answers)| VersionView {
            version: v.version.clone(),
            nodes: v
                .nodes
                .iter()
                .zip(answers)
                .map(|(n, answer)| NodeView {
                    id: n.id.clone(),
                    address: n.address.clone(),
                    status: crate::health::text(answer),
                    metadata: n
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                })
                .collect(),
            endpoints: v.endpoints.iter().map(endpoint_view).collect(),
        })
        .collect();
    let view = ServicePage {
        name,
        versions,
        error: None,
    };
    page(StatusCode::OK, &view)
}

fn endpoint_view(endpoint: &registry::Endpoint) -> EndpointView {
    let message = |d: &Option<Description>| MessageView {
        name: d.as_ref().map(|d| d.name.clone()).unwrap_or_default(),
        fields: d
            .iter()
            .flat_map(|d| &d.values)
            .map(|f| (f.name.clone(), f.kind.clone()))
            .collect(),
    };
    let example = endpoint
        .request
        .as_ref()
        .map_or(Value::Object(Default::default()), zero_value);
    EndpointView {
        name: endpoint.name.clone(),
        request: message(&endpoint.request),
        response: message(&endpoint.response),
        stream: endpoint.metadata.get("stream").is_some_and(|s| s == "true"),
        example: serde_json::to_string_pretty(&example).unwrap_or_default(),
    }
}

/// The zero value of a described message as proto3 JSON: each field with its type's zero.
fn zero_value(message: &Description) -> Value {
    let fields = message.values.iter().map(|field| {
        let zero = match field.kind.as_str() {
            "string" | "bytes" => Value::String(String::new()),
            "bool" => Value::Bool(false),
            "int32" | "int64" | "uint32" | "uint64" | "sint32" | "sint64" | "fixed32"
            | "fixed64" | "sfixed32" | "sfixed64" | "float" | "double" => Value::from(0),
            kind if kind.starts_with("[]") => Value::Array(Vec::new()),
            kind if kind.starts_with("map<") => Value::Object(Default::default()),
            _ if !field.values.is_empty() => zero_value(field),
            // An enum, or a message described by name only.
            _ => Value::Null,
        };
        (field.name.clone(), zero)
    });
    Value::Object(fields.collect())
}

#[derive(serde::Deserialize)]
struct CallQuery {
    #[serde(default)]
    service: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    request: String,
}

async fn call(State(client): State<Arc<Client>>, Query(q): Query<CallQuery>) -> Response {
    let mut view = CallPage {
        service: q.service,
        endpoint: q.endpoint,
        request: q.request,
        result: None,
        error: None,
    };
    let mut status = StatusCode::OK;
    if !view.service.is_empty() && !view.endpoint.is_empty() {
        match call_once(&client, &view.service, &view.endpoint, &view.request).await {
            Ok(rsp) => view.result = Some(serde_json::to_string_pretty(&rsp).unwrap_or_default()),
            Err(e) => {
                status = crate::api::error_status(&e);
                view.error = Some(e.to_string());
            }
        }
    }
    page(status, &view)
}

async fn call_once(client: &Client, service: &str, endpoint: &str, request: &str) -> Result<Value> {
    let request: Value = match request.trim() {
        "" => Value::Object(Default::default()),
        text => serde_json::from_str(text).map_err(|e| {
            Error::bad_request("go.micro.web", format!("the request is not JSON: {e}"))
        })?,
    };
    client
        .call_endpoint_with(service, endpoint, &request, &CallOptions::new())
        .await
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let view = NotFoundPage {
        path: uri.path().to_owned(),
    };
    page(StatusCode::NOT_FOUND, &view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: &str, values: Vec<Description>) -> Description {
        Description {
            name: name.into(),
            kind: kind.into(),
            values,
        }
    }

    #[test]
    fn example_requests_hold_each_fields_zero_value() {
        let message = field(
            "Req",
            "Req",
            vec![
                field("name", "string", vec![]),
                field("count", "int32", vec![]),
                field("ok", "bool", vec![]),
                field("tags", "[]string", vec![]),
                field("labels", "map<string,string>", vec![]),
                field("inner", "Inner", vec![field("id", "uint64", vec![])]),
                field("kind", "Kind", vec![]),
            ],
        );
        assert_eq!(
            zero_value(&message),
            serde_json::json!({
                "name": "", "count": 0, "ok": false, "tags": [], "labels": {},
                "inner": { "id": 0 }, "kind": null
            })
        );
    }
}
