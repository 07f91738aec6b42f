//! The gateway's HTTP helpers: who may call (the cross-site guard and the CORS headers,
//! as middleware), JSON responses and their statuses, and a call's request and options
//! from an HTTP request (its body, form fields or query, and its headers).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use micro_runtime::api::form;
use micro_runtime::{CallOptions, Error, Result};
use serde_json::Value;

use super::Gateway;

/// Refuses (403, go-micro's error JSON) what web pages elsewhere send, and requests for a
/// host rebound to this machine: see [`Guard`](crate::guard::Guard).
pub(super) async fn refuse_other_sites(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Err(reason) = gateway.guard.check(request.method(), request.headers()) {
        let e = Error::with_http_code(403, "go.micro.api", format!("refused: {reason}"));
        return json_response(error_status(&e), e.to_json());
    }
    next.run(request).await
}

/// go-micro's CORS headers on every response to a request from an allowed origin (see
/// `--cors`): the origin echoed, its methods and headers, credentials allowed.
pub(super) async fn cors_headers(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    let allowed = origin.filter(|origin| gateway.cors_allows(origin));
    if let Some(origin) = allowed {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization",
            ),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// The HTTP status of an error: its go-micro code when that is an error status (4xx, 5xx),
/// else 502: a remote service may send any number as its code, and a 204 or 304 would
/// lose the body.
pub(crate) fn error_status(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.http_code())
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    let content_type = HeaderValue::from_static("application/json");
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

impl Gateway {
    /// Whether `--cors` allows `origin`.
    pub(super) fn cors_allows(&self, origin: &HeaderValue) -> bool {
        self.guard.cors_allows(origin.as_bytes())
    }
}

/// The items of a comma-separated header (every line of it), trimmed, empty ones left out.
pub(super) fn header_list(
    headers: &HeaderMap,
    name: header::HeaderName,
) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// The request message of a resolved call: the body (JSON or form fields), else the query's
/// parameters, else the empty message.
pub(super) fn request_of(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Value> {
    if let Some(request) = parsed_body(headers, body)? {
        return Ok(request);
    }
    Ok(Value::Object(form(
        uri.query().unwrap_or_default().as_bytes(),
    )))
}

/// The body as JSON: form fields become an object of strings; anything else must be JSON.
/// `None` for an empty body.
pub(super) fn parsed_body(headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>> {
    if body.is_empty() {
        return Ok(None);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(Some(Value::Object(form(body))));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| bad_request(format!("the body is not JSON: {e}")))
}

/// Headers that describe the HTTP exchange itself, not the call: not passed on as metadata.
const NOT_METADATA: &[&str] = &[
    "accept-encoding",
    "connection",
    "content-length",
    "content-type",
    "host",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "timeout",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The call's options from the request's headers: `Timeout` (seconds) and the metadata.
pub(super) fn call_options(headers: &HeaderMap) -> Result<CallOptions> {
    let mut options = CallOptions::new();
    for (name, value) in headers {
        let name = name.as_str();
        if NOT_METADATA.contains(&name) || name.starts_with("grpc-") {
            continue;
        }
        if let Ok(value) = value.to_str() {
            options = options.metadata(name, value);
        }
    }
    if let Some(timeout) = headers.get("timeout") {
        let seconds = timeout
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(|| bad_request("the Timeout header is not a number of seconds"))?;
        options = options.timeout(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
    }
    Ok(options)
}

/// A 400, go-micro's error JSON from the gateway.
pub(super) fn bad_request(detail: impl Into<String>) -> Error {
    Error::bad_request("go.micro.api", detail)
}

#[cfg(test)]
mod tests {
    use micro_runtime::Code;

    use super::*;

    #[test]
    fn requests_come_from_the_body_the_form_or_the_query() {
        let uri: Uri = "/greeter/hello?name=Ada&name=Bob&x=%C3%A9+y"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(
            request_of(&uri, &headers, b"").unwrap(),
            serde_json::json!({ "name": "Ada", "x": "é y" })
        );
        assert_eq!(
            request_of(&uri, &headers, br#"{"name": "Cy"}"#).unwrap(),
            serde_json::json!({ "name": "Cy" })
        );
        let err = request_of(&uri, &headers, b"{oops").unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            request_of(&uri, &headers, b"name=Di").unwrap(),
            serde_json::json!({ "name": "Di" })
        );
    }

    #[test]
    fn headers_become_metadata_and_a_timeout() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("ada"));
        headers.insert("host", HeaderValue::from_static("example"));
        headers.insert("timeout", HeaderValue::from_static("2.5"));
        let options = call_options(&headers).unwrap();
        assert_eq!(options.get_timeout(), Some(Duration::from_millis(2500)));
        for bad in ["soon", "-1", "0", "NaN"] {
            headers.insert("timeout", HeaderValue::from_static(bad));
            assert!(call_options(&headers).is_err(), "{bad}");
        }
    }
}
