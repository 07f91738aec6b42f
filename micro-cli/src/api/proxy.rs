//! go-micro's `http` handler (`--handler http`): a reverse proxy to HTTP services, the
//! hop-by-hop headers taken out both ways.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::Response;
use micro_runtime::api::proxy_route;
use micro_runtime::{CallOptions, Code, Error, Result};

use super::Gateway;
use super::http::{bad_request, header_list};

impl Gateway {
    /// go-micro's `http` handler: the request as it came (path, query, headers but the
    /// hop-by-hop ones, body) to a node of the service the path's first part names (in the
    /// namespace; `/v1/foo/...` names `v1.foo`), and the node's answer as it is.
    pub(super) async fn proxy(
        &self,
        method: Method,
        uri: &Uri,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response> {
        let name = proxy_route(uri.path())
            .ok_or_else(|| bad_request(format!("no service in the path {:?}", uri.path())))?;
        let service = self.in_namespace(name);
        let address = self
            .client
            .select_address(&service, &CallOptions::new())
            .await?;
        strip_hop_by_hop(&mut headers);
        if !headers.contains_key(header::HOST) {
            // An HTTP/2 or HTTP/1.0 request may come without one; HTTP/1.1 needs it.
            let host = HeaderValue::from_str(&address).map_err(|e| bad_request(e.to_string()))?;
            headers.insert(header::HOST, host);
        }
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(target)
            .body(axum::body::Body::from(body))
            .map_err(|e| bad_request(e.to_string()))?;
        *request.headers_mut() = headers;
        let unavailable = |e: String| {
            Error::new(Code::Unavailable, format!("{service} at {address}: {e}"))
                .with_id("go.micro.api")
        };
        let response = crate::http1::send(&address, request, None)
            .await
            .map_err(unavailable)?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // Ours to the client, whatever the node spoke (an HTTP/1.0 node's body ends with its
        // connection; ours is framed).
        parts.version = axum::http::Version::HTTP_11;
        Ok(Response::from_parts(parts, axum::body::Body::new(body)))
    }
}

/// Takes out the headers that belong to one connection, not to the message: the standard
/// ones and those `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = header_list(headers, header::CONNECTION)
        .map(str::to_ascii_lowercase)
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}
