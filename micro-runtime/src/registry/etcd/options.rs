//! The settings of the etcd registry ([`EtcdOptions`]: endpoints, authentication, TLS,
//! timeout), from `--registry_address` and the `ETCD_*` variables, checked and made into the
//! connection's.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{Conn, Credentials};
use crate::error::{Code, Error, Result};
use crate::transport::tls::ClientTls;

/// The endpoint used when none is given.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:2379";

/// How long connecting and each request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to reach etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// Endpoints, `host:port`, `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// User name, for etcd's authentication.
    pub username: Option<String>,
    /// Password of [`EtcdOptions::username`].
    pub password: Option<String>,
    /// PEM file of the CA that signed the servers' certificates (turns TLS on).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (turns TLS on; goes with [`EtcdOptions::key_file`]).
    pub cert_file: Option<PathBuf>,
    /// PEM key of [`EtcdOptions::cert_file`].
    pub key_file: Option<PathBuf>,
    /// Bound on connecting and on each request.
    pub timeout: Duration,
}

impl EtcdOptions {
    /// Options for `address`: endpoints separated by commas (empty for
    /// [`DEFAULT_ADDRESS`]), no authentication, TLS only for `https://` endpoints.
    pub fn new(address: &str) -> EtcdOptions {
        let mut endpoints: Vec<String> = address
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            endpoints.push(DEFAULT_ADDRESS.to_owned());
        }
        EtcdOptions {
            endpoints,
            username: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Options for `address` with the settings of the `ETCD_*` environment variables (see the
    /// [module docs](super)).
    pub fn from_env(address: &str) -> EtcdOptions {
        EtcdOptions::from_lookup(address, |name| std::env::var(name).ok())
    }

    fn from_lookup(address: &str, var: impl Fn(&str) -> Option<String>) -> EtcdOptions {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        EtcdOptions {
            username: var("ETCD_USERNAME"),
            password: var("ETCD_PASSWORD"),
            ca_file: var("ETCD_CA_FILE").map(PathBuf::from),
            cert_file: var("ETCD_CERT_FILE").map(PathBuf::from),
            key_file: var("ETCD_KEY_FILE").map(PathBuf::from),
            ..EtcdOptions::new(address)
        }
    }

    fn tls_on(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.endpoints.iter().any(|e| e.starts_with("https://"))
    }

    /// The connection these options describe: endpoints with their scheme and port,
    /// credentials, and TLS with its files read now (so that a wrong path is an error here).
    /// Connects on first use.
    pub(super) fn conn(&self) -> Result<Conn> {
        let tls = self.tls_on();
        let urls = self
            .endpoints
            .iter()
            .map(|e| endpoint_url(e, tls))
            .collect::<Result<Vec<_>>>()?;
        if urls.is_empty() {
            return Err(invalid("no endpoints"));
        }
        let addrs = urls
            .iter()
            .map(|u| {
                u.split_once("://")
                    .map_or(u.as_str(), |(_, a)| a)
                    .to_owned()
            })
            .collect();
        let timeout = if self.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            self.timeout
        };
        let credentials = match (&self.username, &self.password) {
            (Some(user), Some(password)) => Some(Credentials {
                user: user.clone(),
                password: password.clone(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid("ETCD_USERNAME is set but ETCD_PASSWORD is not"));
            }
            (None, Some(_)) => {
                return Err(invalid("ETCD_PASSWORD is set but ETCD_USERNAME is not"));
            }
        };
        let tls = if tls { Some(client_tls(self)?) } else { None };
        Ok(Conn::new(urls, addrs, credentials, tls, timeout))
    }
}

/// The URL dialed for an endpoint: the scheme for `tls`, port 2379 when none is given.
fn endpoint_url(endpoint: &str, tls: bool) -> Result<String> {
    let host = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    if host.contains('@') {
        return Err(invalid(format!(
            "endpoint {:?} holds credentials: give them in ETCD_USERNAME and ETCD_PASSWORD",
            crate::redact::address(endpoint)
        )));
    }
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(invalid(format!("bad endpoint {endpoint:?}")));
    }
    let has_port = match host.rsplit_once(':') {
        // `[::1]:2379` or `host:2379`; a bare IPv6 address has colons but no port.
        Some((h, port)) => {
            (h.ends_with(']') || !h.contains(':')) && port.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    };
    let host = match (has_port, host.contains(':') && !host.starts_with('[')) {
        (true, _) => host.to_owned(),
        (false, true) => format!("[{host}]:2379"),
        (false, false) => format!("{host}:2379"),
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{host}"))
}

/// TLS with the CA of `ETCD_CA_FILE` (else the system's roots) and the client certificate of
/// `ETCD_CERT_FILE` and `ETCD_KEY_FILE`.
fn client_tls(options: &EtcdOptions) -> Result<ClientTls> {
    let ca = match &options.ca_file {
        Some(ca) => Some(read_pem("ETCD_CA_FILE", ca)?),
        None => None,
    };
    let identity = match (&options.cert_file, &options.key_file) {
        (Some(cert), Some(key)) => Some((
            read_pem("ETCD_CERT_FILE", cert)?,
            read_pem("ETCD_KEY_FILE", key)?,
        )),
        (None, None) => None,
        _ => return Err(invalid("ETCD_CERT_FILE and ETCD_KEY_FILE go together")),
    };
    ClientTls::from_pem(
        ca.as_deref(),
        identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
    )
    .map_err(|e| invalid(e.detail()))
}

fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| invalid(format!("{what} {}: {e}", path.display())))
}

/// An `INVALID_ARGUMENT` error of the etcd registry.
pub(super) fn invalid(detail: impl fmt::Display) -> Error {
    Error::new(Code::InvalidArgument, format!("etcd registry: {detail}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::registry::etcd::EtcdRegistry;

    #[test]
    fn endpoints_get_a_scheme_and_port() {
        let url = |e: &str, tls| endpoint_url(e, tls).unwrap();
        assert_eq!(url("127.0.0.1", false), "http://127.0.0.1:2379");
        assert_eq!(url("127.0.0.1:2380", false), "http://127.0.0.1:2380");
        assert_eq!(url("http://etcd:1234/", false), "http://etcd:1234");
        assert_eq!(url("https://etcd", true), "https://etcd:2379");
        assert_eq!(url("etcd:1234", true), "https://etcd:1234");
        assert_eq!(url("[::1]:1234", false), "http://[::1]:1234");
        assert_eq!(url("[::1]", false), "http://[::1]:2379");
        assert_eq!(url("::1", false), "http://[::1]:2379");
        for bad in ["", "http://", "a b", "host/path"] {
            assert!(endpoint_url(bad, false).is_err(), "{bad:?}");
        }
        let err = endpoint_url("http://u:s3cret@h:2379", false).unwrap_err();
        assert!(err.detail().contains("ETCD_USERNAME"), "{err}");
        assert!(!err.detail().contains("s3cret"), "{err}");
    }

    #[test]
    fn options_from_address_and_environment() {
        let o = EtcdOptions::new("");
        assert_eq!(o.endpoints, [DEFAULT_ADDRESS]);
        let o = EtcdOptions::new(" a:1, b ,,");
        assert_eq!(o.endpoints, ["a:1", "b"]);
        assert!(!o.tls_on());
        assert!(EtcdOptions::new("a,https://b").tls_on());

        let env: HashMap<&str, &str> = [
            ("ETCD_USERNAME", "u"),
            ("ETCD_PASSWORD", "p"),
            ("ETCD_CA_FILE", "/ca.pem"),
            ("ETCD_CERT_FILE", ""),
        ]
        .into();
        let o = EtcdOptions::from_lookup("x", |k| env.get(k).map(|v| v.to_string()));
        assert_eq!(o.username.as_deref(), Some("u"));
        assert_eq!(o.password.as_deref(), Some("p"));
        assert_eq!(o.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(o.cert_file, None);
        assert!(o.tls_on());
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let mut o = EtcdOptions::new("127.0.0.1");
        o.username = Some("u".into());
        assert_eq!(
            EtcdRegistry::new(o).unwrap_err().code(),
            Code::InvalidArgument
        );
        let mut o = EtcdOptions::new("127.0.0.1");
        o.ca_file = Some("/nonexistent/ca.pem".into());
        let err = EtcdRegistry::new(o).unwrap_err();
        assert!(err.detail().contains("ETCD_CA_FILE"), "{err}");
        let mut o = EtcdOptions::new("127.0.0.1");
        o.cert_file = Some("/nonexistent/cert.pem".into());
        assert!(EtcdRegistry::new(o).is_err());
        assert!(EtcdRegistry::new(EtcdOptions::new("a b")).is_err());
    }
}
