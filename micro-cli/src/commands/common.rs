//! What the commands share: the flags of `call` and `stream` ([`CallArgs`]) and of the HTTP
//! servers ([`ServeArgs`]), call metadata, JSON in and out, and errors.

use std::time::Duration;

use micro_runtime::options::parse_duration;
use micro_runtime::{CallOptions, Code, Error};
use serde_json::Value;

use crate::serve;

/// What the HTTP servers of `api`, `sidecar` and `web` take besides their address.
#[derive(clap::Args)]
pub(super) struct ServeArgs {
    /// Host names requests may carry besides addresses and localhost, comma-separated (`*`:
    /// any): for a server reached through a proxy or by a DNS name. Others are refused, as a
    /// DNS name rebound to this machine would be.
    #[arg(
        long = "allowed_hosts",
        env = "MICRO_ALLOWED_HOSTS",
        default_value = ""
    )]
    pub(super) allowed_hosts: String,
    /// How long a request's headers may take to arrive (an HTTP/1.1 connection may idle as
    /// long between requests).
    #[arg(long = "header_timeout", value_parser = parse_duration, default_value = "30s")]
    header_timeout: Duration,
    /// Connections served at once; more are refused.
    #[arg(long = "max_connections", default_value_t = serve::MAX_CONNECTIONS)]
    max_connections: usize,
}

impl ServeArgs {
    pub(super) fn limits(&self) -> serve::Limits {
        serve::Limits {
            header_timeout: self.header_timeout,
            max_connections: self.max_connections.max(1),
        }
    }
}

/// What `call` takes, and `stream` with it.
#[derive(clap::Args)]
pub(crate) struct CallArgs {
    /// The service name, as registered.
    pub(super) service: String,
    /// The endpoint, `Handler.Method`.
    pub(super) endpoint: String,
    /// The request, JSON (default `{}`).
    pub(super) request: Option<String>,
    /// Call metadata, key=value (repeatable).
    #[arg(long)]
    metadata: Vec<String>,
    /// Call this node address instead of one from the registry.
    #[arg(long)]
    pub(super) address: Option<String>,
    /// The call's deadline (default: --client_request_timeout for calls, none for streams).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
}

/// The call's options from its flags: `--metadata`, `--address` and `--timeout`.
pub(super) fn call_options(args: &CallArgs) -> micro_runtime::Result<CallOptions> {
    let mut options = with_metadata(CallOptions::new(), &args.metadata)?;
    if let Some(address) = &args.address {
        options = options.address(address.clone());
    }
    if let Some(timeout) = args.timeout {
        options = options.timeout(timeout);
    }
    Ok(options)
}

/// `options` with the metadata of `pairs`, each `key=value` (empty ones skipped).
pub(super) fn with_metadata(
    mut options: CallOptions,
    pairs: &[String],
) -> micro_runtime::Result<CallOptions> {
    for pair in pairs.iter().filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| invalid(format!("metadata {pair:?} is not key=value")))?;
        options = options.metadata(key.trim(), value.trim());
    }
    Ok(options)
}

/// A request or message given as JSON text.
pub(super) fn parse_json(text: &str) -> micro_runtime::Result<Value> {
    serde_json::from_str(text).map_err(|e| invalid(format!("the request is not JSON: {e}")))
}

/// `value` as indented JSON.
pub(super) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// An `InvalidArgument` error: what the command was given is wrong.
pub(super) fn invalid(e: impl std::fmt::Display) -> Error {
    Error::new(Code::InvalidArgument, e.to_string())
}

/// An `Internal` error: the command failed at its own end (stdout, the working directory).
pub(super) fn internal(e: impl std::fmt::Display) -> Error {
    Error::new(Code::Internal, e.to_string())
}
