//! The broker's settings: the mode, the server address (parsed into servers and
//! credentials), the JetStream and publish settings, and the fixed timings of this backend.

use std::time::Duration;

use async_nats::ServerAddr;

use crate::error::{Code, Error, Result};

/// Where the broker connects when given no address.
pub const DEFAULT_ADDRESS: &str = "nats://127.0.0.1:4222";

/// How long one JetStream API request (stream or consumer info, creation) may take.
pub(super) const API_TIMEOUT: Duration = Duration::from_secs(5);
/// The first and the longest pause before retrying after a failure.
pub(super) const BACKOFF_MIN: Duration = Duration::from_millis(50);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Core,
    JetStream,
}

#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) mode: Mode,
    pub(super) address: String,
    /// The servers without credentials (async-nats logs its addresses as they are).
    pub(super) servers: Vec<ServerAddr>,
    /// The credentials the address held, handed to async-nats apart.
    pub(super) credentials: Option<Credentials>,
    pub(super) ack_wait: Duration,
    pub(super) max_ack_pending: usize,
    pub(super) publish_timeout: Duration,
}

impl Config {
    /// The defaults, in `mode`, at `address` (see [`parse_address`]).
    pub(super) fn new(address: &str, mode: Mode) -> Result<Config> {
        let (address, servers, credentials) = parse_address(address)?;
        Ok(Config {
            mode,
            address,
            servers,
            credentials,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1024,
            publish_timeout: Duration::from_secs(30),
        })
    }
}

/// Credentials a NATS address carries (`nats://user:password@host`, `nats://token@host`).
#[derive(Clone)]
pub(super) enum Credentials {
    UserPassword(String, String),
    Token(String),
}

/// Never shows the secrets.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::UserPassword(user, _) => write!(f, "UserPassword({user:?}, ***)"),
            Credentials::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// `nats://host:port[,host:port...]` (scheme optional after the first): the address as
/// reported (passwords hidden), the servers without their credentials, and the credentials
/// (the first server's that has any: a cluster's servers share them).
fn parse_address(address: &str) -> Result<(String, Vec<ServerAddr>, Option<Credentials>)> {
    let address = match address.trim() {
        "" => DEFAULT_ADDRESS,
        a => a,
    };
    // Reported (in logs, errors and `Broker::address`) without its passwords and tokens.
    let shown = crate::redact::address(address);
    let mut credentials = None;
    let mut servers = Vec::new();
    for s in address.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |e: &dyn std::fmt::Display| {
            Error::new(
                Code::InvalidArgument,
                format!(
                    "nats: bad server address {:?}: {e}",
                    crate::redact::address(s)
                ),
            )
        };
        let server = s.parse::<ServerAddr>().map_err(|e| bad(&e))?;
        if credentials.is_none() {
            credentials = match (server.username(), server.password()) {
                (Some(user), Some(password)) => Some(Credentials::UserPassword(
                    user.to_owned(),
                    password.to_owned(),
                )),
                (Some(token), None) => Some(Credentials::Token(token.to_owned())),
                _ => None,
            };
        }
        let host = match server.host() {
            h if h.contains(':') => format!("[{h}]"),
            h => h.to_owned(),
        };
        let bare = format!("{}://{host}:{}", server.scheme(), server.port());
        servers.push(bare.parse::<ServerAddr>().map_err(|e| bad(&e))?);
    }
    if servers.is_empty() {
        return Err(Error::new(
            Code::InvalidArgument,
            format!("nats: no server in {shown:?}"),
        ));
    }
    Ok((shown, servers, credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let (address, servers, _) = parse_address("").unwrap();
        assert_eq!(address, DEFAULT_ADDRESS);
        assert_eq!(servers.len(), 1);
        let (_, servers, _) = parse_address("nats://127.0.0.1:4222, 127.0.0.1:4223").unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].port(), 4223);
        assert!(parse_address("http://127.0.0.1:4222").is_err());
        assert!(parse_address(",").is_err());
        // Credentials are taken apart from the servers, and hidden where shown.
        let (shown, servers, credentials) =
            parse_address("nats://u:s3cret@127.0.0.1:4222,tls://tok@[::1]:4223").unwrap();
        assert_eq!(shown, "nats://u:***@127.0.0.1:4222,tls://***@[::1]:4223");
        assert_eq!(servers[0].as_url_str(), "nats://127.0.0.1:4222");
        assert!(servers[1].tls_required() && servers[1].username().is_none());
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("***") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
