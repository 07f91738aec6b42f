//! HTTP/1.1 requests to a node (`host:port`): the sidecar's health checks of its program and
//! the gateway's `http` handler.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long connecting to a node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `request` to `address` on a connection of its own; the response's body streams
/// from it. The connection lives until the exchange is over, or `bound` at most.
pub(crate) async fn send(
    address: &str,
    request: Request<Body>,
    bound: Option<Duration>,
) -> Result<Response<Incoming>, String> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("connect {address}: {e}")),
        Err(_) => {
            return Err(format!(
                "connect {address}: timed out after {CONNECT_TIMEOUT:?}"
            ));
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    // The connection runs on its own; a failure of it fails the request.
    match bound {
        Some(bound) => drop(tokio::spawn(tokio::time::timeout(bound, connection))),
        None => drop(tokio::spawn(connection)),
    }
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}
