//! Serving the gateway, the sidecar and the dashboard over HTTP/1.1 and HTTP/2 (hyper), with
//! what keeps a server up when its clients misbehave: a time limit on a request's headers
//! (a client that trickles them, or says nothing, is closed; on HTTP/1.1 this also closes a
//! keep-alive connection idle that long), caps on header sizes, and a cap on connections
//! (refused beyond it, with a warning at most every 10 s).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use micro_runtime::Result;
use tokio::net::TcpListener;

/// How long a request's headers may take to arrive, by default.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once, by default.
pub(crate) const MAX_CONNECTIONS: usize = 10_000;

/// Largest request head on HTTP/1.1 (request line and headers), and header list on HTTP/2.
const MAX_HEADERS: usize = 64 << 10;

/// What a front's server bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// How long a request's headers may take (and an HTTP/1.1 connection may idle).
    pub(crate) header_timeout: Duration,
    /// Connections served at once.
    pub(crate) max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: HEADER_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets the requests under way finish
/// (upgraded connections, WebSockets, are their owners' to close).
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADERS.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADERS as u32);
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut refused_at: Option<tokio::time::Instant> = None;
    let mut refused = 0u64;
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            drop(stream);
            refused += 1;
            let now = tokio::time::Instant::now();
            if refused_at.is_none_or(|at| now >= at + Duration::from_secs(10)) {
                refused_at = Some(now);
                tracing::warn!(
                    %remote,
                    connections = limits.max_connections,
                    refused,
                    "connection refused: the most connections are open"
                );
                refused = 0;
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            // hyper's header timeout starts once it knows the protocol, from the first
            // bytes: a client that sends none is closed here.
            let first = tokio::time::timeout(header_timeout, stream.peek(&mut [0u8; 1])).await;
            if !matches!(first, Ok(Ok(1..))) {
                drop(permit);
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%remote, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
