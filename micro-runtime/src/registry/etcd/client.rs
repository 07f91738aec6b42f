//! The connection to etcd: this crate's own gRPC [`Client`] calling etcd's v3 API ([`api`])
//! at fixed endpoints, over TLS when asked, with etcd's token authentication.
//!
//! Requests go to one endpoint until it fails to answer, then to the next; a request that
//! could not reach a member is tried again (up to twice per endpoint, within the request's
//! deadline), so a cluster keeps serving while a member is down and an etcd that is all down
//! is reported at once. An expired authentication token (etcd's simple tokens live 5 minutes
//! by default) is renewed once per request.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use super::api;
use crate::client::{CallOptions, Client, ClientOptions, Method};
use crate::codec::Message;
use crate::error::{Code, Error, Result};
use crate::registry::memory::MemoryRegistry;
use crate::selector::Random;
use crate::stream::CallStream;

/// The service name calls carry (they go to fixed addresses: no registry is asked).
const SERVICE: &str = "etcd";

/// The largest message taken from etcd: a registry of many services is one Range response.
const MAX_MESSAGE: usize = 64 << 20;

/// The user and password of etcd's authentication.
pub(super) struct Credentials {
    pub(super) user: String,
    pub(super) password: String,
}

/// Where and how etcd is reached; shared by a registry's clones and its watches.
pub(super) struct Conn {
    /// The endpoints as given, for messages.
    urls: Vec<String>,
    /// `host:port` of each endpoint, as dialed.
    addrs: Vec<String>,
    /// The endpoint requests go to while it answers.
    current: AtomicUsize,
    client: Client,
    credentials: Option<Credentials>,
    /// The token of [`Conn::credentials`]; `None` until first needed, or after etcd refused it.
    token: tokio::sync::Mutex<Option<String>>,
    pub(super) timeout: Duration,
}

impl Conn {
    /// A connection to `addrs` (with `urls` as given, for messages); dials on first use.
    pub(super) fn new(
        urls: Vec<String>,
        addrs: Vec<String>,
        credentials: Option<Credentials>,
        tls: Option<crate::transport::tls::ClientTls>,
        timeout: Duration,
    ) -> Conn {
        let options = ClientOptions {
            retries: 0,
            request_timeout: timeout,
            dial_timeout: timeout,
            max_message_size: MAX_MESSAGE,
            // Finds a member that vanished without closing its connection (a watch would
            // otherwise wait on it for ever).
            keepalive: Some(Duration::from_secs(10)),
            keepalive_timeout: timeout,
            tls,
            ..ClientOptions::default()
        };
        let client = Client::new(options, Arc::new(MemoryRegistry::new()), Arc::new(Random));
        Conn {
            // Shown in messages: without passwords.
            urls: urls.iter().map(|u| crate::redact::address(u)).collect(),
            addrs,
            current: AtomicUsize::new(0),
            client,
            credentials,
            token: tokio::sync::Mutex::new(None),
            timeout,
        }
    }

    /// The endpoints as given.
    pub(super) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// A unary call within the timeout.
    pub(super) async fn unary<Req, Rsp>(
        &self,
        method: &Method,
        request: &Req,
        what: &str,
    ) -> Result<Rsp>
    where
        Req: Message + Sync,
        Rsp: Message,
    {
        let deadline = crate::transport::deadline_in(self.timeout);
        self.unary_until(deadline, method, request, what).await
    }

    /// A unary call until `deadline`.
    pub(super) async fn unary_until<Req, Rsp>(
        &self,
        deadline: Instant,
        method: &Method,
        request: &Req,
        what: &str,
    ) -> Result<Rsp>
    where
        Req: Message + Sync,
        Rsp: Message,
    {
        self.retried(deadline, what, |options| async move {
            let left = deadline.saturating_duration_since(Instant::now());
            self.client
                .call(SERVICE, method, request, &options.timeout(left))
                .await
        })
        .await
    }

    /// A bidirectional stream, opened (and `first` run on it) until `deadline`; the stream
    /// itself has no deadline.
    pub(super) async fn stream_until<Req, Rsp, T, F, Fut>(
        &self,
        deadline: Instant,
        method: &Method,
        what: &str,
        first: F,
    ) -> Result<T>
    where
        Req: Message,
        Rsp: Message,
        F: Fn(CallStream<Req, Rsp>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let first = &first;
        self.retried(deadline, what, |options| async move {
            let stream = self.client.stream(SERVICE, method, &options).await?;
            first(stream).await
        })
        .await
    }

    /// Runs `attempt` with the call options of the current endpoint until it succeeds, fails
    /// in a way another try can't mend, or `deadline` passes. Unreachable members are failed
    /// over; a refused token is renewed once.
    async fn retried<T, F, Fut>(&self, deadline: Instant, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut(CallOptions) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut pause = Duration::from_millis(20);
        let mut tries = 2 * self.addrs.len();
        let mut renewed = false;
        loop {
            let index = self.current.load(Ordering::Relaxed) % self.addrs.len();
            let mut options = CallOptions::new().address(self.addrs[index].clone());
            if self.credentials.is_some() {
                let token = timeout_at(deadline, self.token(deadline))
                    .await
                    .map_err(|_| self.no_answer(what))??;
                options = options.metadata("token", &token);
            }
            let e = match timeout_at(deadline, attempt(options)).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => e,
                Err(_) => return Err(self.no_answer(what)),
            };
            if !renewed && self.credentials.is_some() && is_refused_token(&e) {
                renewed = true;
                *self.token.lock().await = None;
                continue;
            }
            let code = code_of(&e);
            tries -= 1;
            if code == Code::Unavailable {
                // The next try goes to the next member (unless another caller moved on
                // already).
                let _ = self.current.compare_exchange(
                    index,
                    index + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            if tries == 0 || code != Code::Unavailable || Instant::now() + pause >= deadline {
                return Err(self.error(what, &e));
            }
            tracing::debug!(what, error = %e, "etcd request failed, trying again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The authentication token, asked for when there is none.
    async fn token(&self, deadline: Instant) -> Result<String> {
        let mut token = self.token.lock().await;
        if let Some(token) = token.as_ref() {
            return Ok(token.clone());
        }
        let Some(credentials) = &self.credentials else {
            return Ok(String::new());
        };
        let request = api::AuthenticateRequest {
            name: credentials.user.clone(),
            password: credentials.password.clone(),
        };
        let what = "authenticate";
        let mut tries = 2 * self.addrs.len();
        let answer: api::AuthenticateResponse = loop {
            let index = self.current.load(Ordering::Relaxed) % self.addrs.len();
            let left = deadline.saturating_duration_since(Instant::now());
            let options = CallOptions::new()
                .address(self.addrs[index].clone())
                .timeout(left);
            match self
                .client
                .call(SERVICE, &api::AUTHENTICATE, &request, &options)
                .await
            {
                Ok(answer) => break answer,
                Err(e) if code_of(&e) == Code::Unavailable && tries > 1 => {
                    tries -= 1;
                    let _ = self.current.compare_exchange(
                        index,
                        index + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(self.error(what, &e)),
            }
        };
        *token = Some(answer.token.clone());
        Ok(answer.token)
    }

    fn context(&self) -> String {
        format!("etcd registry ({})", self.urls.join(","))
    }

    /// `e`, said to come from `what` on this connection, with etcd's codes made ours.
    pub(super) fn error(&self, what: &str, e: &Error) -> Error {
        Error::new(
            code_of(e),
            format!("{}: {what}: {}", self.context(), e.detail()),
        )
    }

    /// An error of this connection, from `what`.
    pub(super) fn fail(&self, code: Code, what: &str, detail: impl std::fmt::Display) -> Error {
        Error::new(code, format!("{}: {what}: {detail}", self.context()))
    }

    pub(super) fn no_answer(&self, what: &str) -> Error {
        self.fail(
            Code::Unavailable,
            what,
            format!("no answer within {:?}", self.timeout),
        )
    }
}

/// Whether etcd refused the token sent (it expired, or etcd restarted and forgot it).
fn is_refused_token(e: &Error) -> bool {
    e.detail().contains("invalid auth token")
}

/// Our code for an error of a call to etcd: connectivity problems, and etcd's own transient
/// failures, are `UNAVAILABLE` (tried again); refused credentials `UNAUTHENTICATED`.
pub(super) fn code_of(e: &Error) -> Code {
    match e.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            Code::Unavailable
        }
        // etcd's "authentication failed" and "user name is empty".
        Code::InvalidArgument
            if ["authentication failed", "user name is empty"]
                .iter()
                .any(|m| e.detail().contains(m)) =>
        {
            Code::Unauthenticated
        }
        code => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_errors_take_our_codes() {
        let code = |c, m: &str| code_of(&Error::new(c, m));
        assert_eq!(code(Code::Unknown, "eof"), Code::Unavailable);
        assert_eq!(
            code(Code::DeadlineExceeded, "etcdserver: request timed out"),
            Code::Unavailable
        );
        assert_eq!(
            code(
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password"
            ),
            Code::Unauthenticated
        );
        assert_eq!(
            code(Code::InvalidArgument, "bad key"),
            Code::InvalidArgument
        );
        assert_eq!(code(Code::PermissionDenied, "no"), Code::PermissionDenied);
        assert!(is_refused_token(&Error::new(
            Code::Unauthenticated,
            "etcdserver: invalid auth token"
        )));
    }
}
