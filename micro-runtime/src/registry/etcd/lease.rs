//! The leases of registered nodes: a TTL as lease seconds, granting a lease, and renewing it
//! with one keepalive on a stream kept open per lease.

use std::time::Duration;

use tokio::time::timeout_at;

use super::api::{self, LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use super::client::Conn;
use crate::error::{Code, Error, Result};
use crate::stream::CallStream;

/// etcd's largest lease TTL, in seconds.
const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// A lease's keepalive stream.
type KeepAlive = CallStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;

/// A node this registry put.
pub(super) struct Registered {
    /// The value put, to leave an unchanged node alone.
    pub(super) json: String,
    /// The TTL in seconds; 0 for no lease.
    pub(super) ttl: i64,
    /// The lease the key was put with; 0 for none.
    lease: i64,
    /// The lease's keepalive stream, opened at the first renewal and kept.
    keepalive: Option<KeepAlive>,
}

impl Registered {
    /// A node put with `json`, under `lease` (0 for none) for `ttl` seconds (0 for none).
    pub(super) fn new(json: String, ttl: i64, lease: i64) -> Registered {
        Registered {
            json,
            ttl,
            lease,
            keepalive: None,
        }
    }

    /// Sends one keepalive for the lease on its stream, opening the stream when it has
    /// none or the old one broke. `Ok(false)` when the lease is gone.
    pub(super) async fn renew(&mut self, conn: &Conn, key: &str) -> Result<bool> {
        let deadline = crate::transport::deadline_in(conn.timeout);
        let lease = self.lease;
        if let Some(stream) = self.keepalive.as_mut() {
            match timeout_at(deadline, keep_alive(stream, lease)).await {
                Ok(Ok(ttl)) => return Ok(ttl > 0),
                Ok(Err(e)) => {
                    tracing::debug!(key, error = %e, "etcd keepalive stream broke, opening another");
                }
                Err(_) => {
                    tracing::debug!(key, "etcd keepalive got no answer, opening another stream");
                }
            }
            // A late answer must not be taken for the next one's: drop the stream.
            self.keepalive = None;
        }
        let (stream, ttl) = conn
            .stream_until(
                deadline,
                &api::LEASE_KEEP_ALIVE,
                &format!("keep {key} alive"),
                |mut stream: KeepAlive| async move {
                    let ttl = keep_alive(&mut stream, lease).await?;
                    Ok((stream, ttl))
                },
            )
            .await?;
        if ttl <= 0 {
            return Ok(false);
        }
        self.keepalive = Some(stream);
        Ok(true)
    }
}

/// One keepalive of `lease` on `stream`: the TTL etcd answers, 0 or less when the lease is
/// gone.
async fn keep_alive(stream: &mut KeepAlive, lease: i64) -> Result<i64> {
    stream.send(LeaseKeepAliveRequest { id: lease }).await?;
    match stream.recv().await? {
        Some(rsp) => Ok(rsp.ttl),
        None => Err(Error::new(Code::Unavailable, "the keepalive stream ended")),
    }
}

/// Grants a lease of `ttl` seconds; its id.
pub(super) async fn grant(conn: &Conn, ttl: i64) -> Result<i64> {
    let what = format!("grant a lease of {ttl}s");
    let granted: api::LeaseGrantResponse = conn
        .unary(&api::LEASE_GRANT, &api::LeaseGrantRequest { ttl }, &what)
        .await?;
    if !granted.error.is_empty() {
        return Err(conn.fail(Code::Unavailable, &what, granted.error));
    }
    Ok(granted.id)
}

/// A TTL as etcd lease seconds: 0 for none, else rounded up to whole seconds.
pub(super) fn lease_seconds(ttl: Duration) -> i64 {
    if ttl.is_zero() {
        return 0;
    }
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .clamp(1, MAX_LEASE_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_seconds_round_up() {
        assert_eq!(lease_seconds(Duration::ZERO), 0);
        assert_eq!(lease_seconds(Duration::from_millis(1)), 1);
        assert_eq!(lease_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(lease_seconds(Duration::from_secs(60)), 60);
        assert_eq!(lease_seconds(Duration::MAX), MAX_LEASE_TTL);
    }
}
