//! A server's settings.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::transport::DEFAULT_MAX_MESSAGE_SIZE;

/// Settings of a [`Server`](super::Server).
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The service name registered (`greeter`).
    pub name: String,
    /// The version registered (`latest` when empty).
    pub version: String,
    /// The node id (`<name>-<uuid>` when empty).
    pub id: String,
    /// Where to listen (`host:port`; port 0 picks a free one).
    pub address: String,
    /// The address to register, when not the listening one.
    pub advertise: String,
    /// Service and node metadata.
    pub metadata: BTreeMap<String, String>,
    /// How long a registration lives without a refresh (zero: until deregistered).
    pub register_ttl: Duration,
    /// How often the registration is refreshed (zero: registered once).
    pub register_interval: Duration,
    /// Largest message received or sent.
    pub max_message_size: usize,
    /// How long [`Server::stop`](super::Server::stop) waits for in-flight calls.
    pub drain_timeout: Duration,
    /// Largest list of request headers (HPACK-decoded, as HTTP/2 counts it), per request: 16
    /// KiB, as tonic and hyper (at least 1 KiB). Bigger requests are refused before they
    /// cost memory.
    pub max_header_list_size: u32,
    /// Calls one connection may have open at once (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`,
    /// at least 1). Default 1024 (grpc-go sets no limit).
    pub max_concurrent_streams: u32,
    /// Request bytes one connection may hold at once, read but not yet decoded into
    /// messages (at least one message of `max_message_size`): a call beyond it fails
    /// `RESOURCE_EXHAUSTED`. With `max_connections`, what bounds the server's memory.
    pub connection_request_buffer: usize,
    /// Connections served at once; also kept below the process's open-files limit. At the
    /// cap, the connection idle the longest is closed for a new one, or the new one is
    /// refused when none is idle. Default 10,000 (grpc-go sets no limit).
    pub max_connections: usize,
    /// A connection with no call for this long is closed (HTTP/2 GOAWAY); zero for never.
    /// Default 5 minutes (grpc-go's `MaxConnectionIdle` is infinite).
    pub idle_timeout: Duration,
    /// How long an accepted connection has to send the HTTP/2 preface, or it is dropped
    /// (a socket that connects and sends nothing holds no task for longer); zero for no
    /// bound. Default 10 s (grpc-go's `ConnectionTimeout` is 120 s).
    pub handshake_timeout: Duration,
    /// How often the server pings each connection (HTTP/2 PING), to find clients that
    /// went away without closing; zero for never. Default 2 hours, as grpc-go's keepalive
    /// `Time`.
    pub keepalive: Duration,
    /// How long a keepalive ping may go unanswered before its connection is closed; zero
    /// for no bound (the pings still keep middleboxes' idle timers from closing the
    /// connection). Default 20 s, as grpc-go's keepalive `Timeout`.
    pub keepalive_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            name: String::new(),
            version: "latest".into(),
            id: String::new(),
            address: "0.0.0.0:0".into(),
            advertise: String::new(),
            metadata: BTreeMap::new(),
            register_ttl: Duration::from_secs(60),
            register_interval: Duration::from_secs(30),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            drain_timeout: Duration::from_secs(30),
            max_header_list_size: 16 << 10,
            max_concurrent_streams: 1024,
            connection_request_buffer: 32 << 20,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(2 * 60 * 60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}
