//! The program a sidecar fronts, as go-micro's sidecar registers it:
//! `micro sidecar --server_name NAME --server_address HOST:PORT [--healthcheck_url URL]`.
//!
//! The sidecar registers `NAME` with one node at `HOST:PORT` when it starts. With a health
//! check, it asks the URL every `--healthcheck_interval` (30 s, go-micro's period): an
//! answer other than 200, or none, deregisters the program; the next 200 registers it
//! again (each 200 refreshes its `--register_ttl`, and it is asked at least twice per TTL). When the sidecar stops, the program
//! is deregistered. `GET /health` on the sidecar asks the check once: `{}` for a 200, else
//! go-micro's error JSON with the program's status (500 when it did not answer).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, StatusCode, Uri, header};
use micro_runtime::registry::{self, RegisterOptions, Registry};
use micro_runtime::{Code, Error, Result};
use tokio::sync::watch;

/// How long one health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The program, its record and its health check.
pub(crate) struct Program {
    record: registry::Record,
    healthcheck: Option<Uri>,
    interval: Duration,
    ttl: Duration,
}

impl Program {
    /// The program `name` at `address`; `healthcheck` must be an `http://` URL.
    pub(crate) fn new(
        name: &str,
        address: &str,
        healthcheck: Option<&str>,
        interval: Duration,
        ttl: Duration,
    ) -> Result<Program> {
        let usage = |detail: String| Error::new(Code::InvalidArgument, detail);
        if name.is_empty() || address.is_empty() {
            return Err(usage(
                "a program needs --server_name and --server_address".into(),
            ));
        }
        let healthcheck = match healthcheck.filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                let uri: Uri = url
                    .parse()
                    .map_err(|e| usage(format!("--healthcheck_url {url:?}: {e}")))?;
                if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                    return Err(usage(format!(
                        "--healthcheck_url {url:?}: expected http://HOST[:PORT]/PATH"
                    )));
                }
                Some(uri)
            }
        };
        let record = registry::Record {
            name: name.to_owned(),
            nodes: vec![registry::Node {
                id: registry::node_id(name),
                address: address.to_owned(),
                metadata: Default::default(),
            }],
            ..Default::default()
        };
        Ok(Program {
            record,
            healthcheck,
            interval: interval.max(Duration::from_millis(10)),
            ttl,
        })
    }

    /// Asks the health check once: `Ok` for a 200 (or when there is no check), else the
    /// error with the program's status as its HTTP code (500 when it did not answer).
    pub(crate) async fn check(&self) -> Result<()> {
        let Some(url) = &self.healthcheck else {
            return Ok(());
        };
        let failed = |code: u16, detail: String| {
            Error::with_http_code(
                code,
                "go.micro.sidecar",
                format!("health check {url}: {detail}"),
            )
        };
        match tokio::time::timeout(CHECK_TIMEOUT, get(url)).await {
            Ok(Ok(StatusCode::OK)) => Ok(()),
            Ok(Ok(status)) => Err(failed(status.as_u16(), format!("answered {status}"))),
            Ok(Err(e)) => Err(failed(500, e)),
            Err(_) => Err(failed(500, format!("no answer in {CHECK_TIMEOUT:?}"))),
        }
    }

    /// Registers the program and keeps it registered while its health check passes, until
    /// `stop` turns true; then deregisters it.
    pub(crate) async fn keep_registered(
        self: Arc<Self>,
        registry: Arc<dyn Registry>,
        mut stop: watch::Receiver<bool>,
    ) {
        let name = &self.record.name;
        let options = RegisterOptions { ttl: self.ttl };
        let mut registered = false;
        // Often enough, too, to refresh the record twice within its TTL.
        let period = match self.ttl.is_zero() {
            true => self.interval,
            false => self
                .interval
                .min(self.ttl / 2)
                .max(Duration::from_millis(10)),
        };
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => break,
                _ = ticks.tick() => {}
            }
            // The first tick is at once: registered as soon as the check passes.
            let healthy = match self.check().await {
                Ok(()) => true,
                Err(e) => {
                    if registered {
                        tracing::warn!(service = %name, error = %e, "deregistering the program");
                    }
                    false
                }
            };
            if healthy {
                match registry.register(&self.record, options).await {
                    Ok(()) => registered = true,
                    Err(e) => {
                        tracing::warn!(service = %name, error = %e, "registering the program failed")
                    }
                }
            } else if registered {
                match registry.deregister(&self.record).await {
                    Ok(()) => registered = false,
                    Err(e) => {
                        tracing::warn!(service = %name, error = %e, "deregistering the program failed")
                    }
                }
            }
        }
        if registered && let Err(e) = registry.deregister(&self.record).await {
            tracing::warn!(service = %name, error = %e, "deregistering the program failed");
        }
    }
}

/// `GET url` over HTTP/1.1: the response's status.
async fn get(url: &Uri) -> std::result::Result<StatusCode, String> {
    let authority = url.authority().ok_or("no host")?;
    let address = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.host()),
    };
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(header::HOST, authority.as_str())
        .body(axum::body::Body::empty())
        .map_err(|e| e.to_string())?;
    // A program that never answers holds no connection past a check's time.
    let response = crate::http1::send(&address, request, Some(CHECK_TIMEOUT)).await?;
    Ok(response.status())
}
