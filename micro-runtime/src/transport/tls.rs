//! TLS for clients (feature `tls`): rustls on ring, TLS 1.2 and 1.3 only, ALPN `h2` (gRPC
//! servers such as grpc-go refuse TLS connections that don't offer it).
//!
//! A [`ClientTls`] verifies the server's certificate against a CA (or the system's roots)
//! and the name it was dialed by (a DNS name, or an IP address in the certificate's SANs),
//! and presents a client certificate when it has one.
//!
//! ```no_run
//! use micro_runtime::transport::tls::ClientTls;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ca = std::fs::read("ca.pem")?;
//! let tls = ClientTls::from_pem(Some(&ca), None)?;
//! # drop(tls);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{Code, Error, Result};

/// How a client dials TLS. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl ClientTls {
    /// TLS with this rustls configuration; ALPN `h2` is offered unless it names protocols of
    /// its own.
    pub fn new(mut config: rustls::ClientConfig) -> ClientTls {
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = vec![b"h2".to_vec()];
        }
        ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    /// TLS that trusts the CA certificates in `ca_pem` (the system's roots when `None`) and
    /// presents `identity` (a PEM certificate chain and its PEM private key) when asked.
    pub fn from_pem(ca_pem: Option<&[u8]>, identity: Option<(&[u8], &[u8])>) -> Result<ClientTls> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                let certs = certificates(pem, "CA")?;
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| invalid(format!("CA certificate: {e}")))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for cert in native.certs {
                    // A system root rustls can't read is not one we could have used.
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(invalid(
                        "no CA given and no usable system root certificates found",
                    ));
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots);
        let config = match identity {
            Some((cert_pem, key_pem)) => {
                let chain = certificates(cert_pem, "client certificate")?;
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| invalid(format!("client key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid(format!("client certificate and key: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTls::new(config))
    }

    /// The TLS session over `tcp` to `addr` (`host:port`), verifying the server as `host`.
    pub(crate) async fn connect(&self, addr: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>> {
        let name = server_name(addr)?;
        self.connector
            .connect(name, tcp)
            .await
            .map_err(|e| Error::new(Code::Unavailable, format!("connect {addr}: TLS: {e}")))
    }
}

/// The name a server at `addr` must prove it is: its IP address or its DNS name.
fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| {
        invalid(format!(
            "{addr:?} has no name a certificate could hold: {e}"
        ))
    })
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!("{what}: no PEM certificate in it")));
    }
    Ok(certs)
}

fn invalid(detail: impl std::fmt::Display) -> Error {
    Error::new(Code::InvalidArgument, format!("tls: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_verified_by_the_name_they_were_dialed_by() {
        let name = |a: &str| server_name(a).unwrap().to_str().into_owned();
        assert_eq!(name("127.0.0.1:2379"), "127.0.0.1");
        assert_eq!(name("[::1]:2379"), "::1");
        assert_eq!(name("etcd.example:2379"), "etcd.example");
        assert!(server_name("bad name:1").is_err());
    }

    #[test]
    fn bad_pem_is_an_error() {
        let err = ClientTls::from_pem(Some(b"not a certificate"), None).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.detail().contains("no PEM certificate"), "{err}");
    }
}
