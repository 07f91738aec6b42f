//! What a handler knows about its call: metadata, deadline, the caller's address.

use std::net::SocketAddr;
use std::time::Instant;

use http::HeaderMap;

/// What kind of call a method is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// One request, one response.
    Unary,
    /// A stream of requests, or of responses, or both.
    Streaming,
}

/// Call metadata: a string map sent as request headers, looked up ignoring case.
///
/// ```
/// use micro_runtime::Metadata;
/// let mut md = Metadata::new();
/// md.insert("X-User", "ada").unwrap();
/// assert_eq!(md.get("x-user"), Some("ada"));
/// assert_eq!(md.get("X-USER"), Some("ada"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    headers: HeaderMap,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Sets `key` to `value`; an error when either is not a valid header.
    pub fn insert(&mut self, key: &str, value: &str) -> crate::Result<()> {
        let bad = |e: &dyn std::fmt::Display| {
            crate::Error::bad_request("", format!("metadata {key:?}: {e}"))
        };
        let name = http::HeaderName::from_bytes(key.as_bytes()).map_err(|e| bad(&e))?;
        let value = http::HeaderValue::from_str(value).map_err(|e| bad(&e))?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Removes `key` (ignoring case); whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.headers.remove(key).is_some()
    }

    /// The value of `key`, ignoring case; `None` when missing or not text.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    /// All pairs whose values are text.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    pub(crate) fn append(&mut self, key: http::HeaderName, value: http::HeaderValue) {
        self.headers.append(key, value);
    }

    pub(crate) fn from_headers(headers: HeaderMap) -> Metadata {
        Metadata { headers }
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// The context of one incoming call.
#[derive(Clone, Debug)]
pub struct Context {
    metadata: Metadata,
    deadline: Option<Instant>,
    remote: Option<SocketAddr>,
}

impl Context {
    /// A context with no metadata, deadline or peer (for calling handlers in tests).
    pub fn new() -> Context {
        Context {
            metadata: Metadata::new(),
            deadline: None,
            remote: None,
        }
    }

    pub(crate) fn incoming(
        headers: HeaderMap,
        deadline: Option<Instant>,
        remote: Option<SocketAddr>,
    ) -> Context {
        Context {
            metadata: Metadata::from_headers(headers),
            deadline,
            remote,
        }
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Context {
        self.metadata = metadata;
        self
    }

    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: Instant) -> Context {
        self.deadline = Some(deadline);
        self
    }

    /// The call's metadata: the request headers (keys in lower case).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The call's metadata, to change (a handler layer adding what the handler should see).
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// When the caller stops waiting, from its `grpc-timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The caller's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }
}

impl Default for Context {
    fn default() -> Context {
        Context::new()
    }
}
