//! Settings from flags and `MICRO_*` environment variables, with go-micro's names.
//!
//! Flatten [`Options`] into a program's own clap parser to take the usual flags:
//!
//! ```
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     /// Who to greet.
//!     #[arg(long, default_value = "World")]
//!     name: String,
//!     #[command(flatten)]
//!     micro: micro_runtime::Options,
//! }
//!
//! let cli = Cli::parse_from(["client", "--registry", "memory", "--client_retries", "2"]);
//! assert_eq!(cli.micro.registry.as_deref(), Some("memory"));
//! assert_eq!(cli.micro.client_retries, Some(2));
//! ```

use std::time::Duration;

use crate::error::{Code, Error, Result};

/// go-micro's command-line settings. Unset ones keep what the program's code chose.
#[derive(clap::Args, Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// Name of the service to register.
    #[arg(long = "server_name", env = "MICRO_SERVER_NAME")]
    pub server_name: Option<String>,
    /// Version of the service to register.
    #[arg(long = "server_version", env = "MICRO_SERVER_VERSION")]
    pub server_version: Option<String>,
    /// Id of this node (default: NAME-UUID).
    #[arg(long = "server_id", env = "MICRO_SERVER_ID")]
    pub server_id: Option<String>,
    /// Address to listen on, host:port (default 0.0.0.0:0, any free port).
    #[arg(long = "server_address", env = "MICRO_SERVER_ADDRESS")]
    pub server_address: Option<String>,
    /// Address to register, when not the listening one.
    #[arg(long = "server_advertise", env = "MICRO_SERVER_ADVERTISE")]
    pub server_advertise: Option<String>,
    /// Metadata of the service, key=value (repeatable).
    #[arg(
        long = "server_metadata",
        env = "MICRO_SERVER_METADATA",
        value_delimiter = ','
    )]
    pub server_metadata: Vec<String>,
    /// Registry: local (default, host-wide), memory (in-process), etcd (go-micro's etcd layout;
    /// auth from ETCD_USERNAME/ETCD_PASSWORD, TLS from ETCD_CA_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE)
    /// or mdns (multicast DNS on the LAN; --registry_address is then the interface's IP, 0.0.0.0
    /// for all, loopback when unset).
    #[arg(long = "registry", env = "MICRO_REGISTRY")]
    pub registry: Option<String>,
    /// Registry address (for local: its directory; for etcd: host:port[,host:port...], default
    /// 127.0.0.1:2379, https:// for TLS).
    #[arg(long = "registry_address", env = "MICRO_REGISTRY_ADDRESS")]
    pub registry_address: Option<String>,
    /// Seconds a registration lives without refresh (default 60).
    #[arg(long = "register_ttl", env = "MICRO_REGISTER_TTL")]
    pub register_ttl: Option<u64>,
    /// Seconds between refreshes of the registration (default 30).
    #[arg(long = "register_interval", env = "MICRO_REGISTER_INTERVAL")]
    pub register_interval: Option<u64>,
    /// Transport: grpc (the only one).
    #[arg(long = "transport", env = "MICRO_TRANSPORT")]
    pub transport: Option<String>,
    /// Broker: http (default; subscribers listen on HTTP and are found in the registry),
    /// memory (in-process), nats (NATS core), jetstream (NATS JetStream, at-least-once) or
    /// rabbitmq.
    #[arg(long = "broker", env = "MICRO_BROKER")]
    pub broker: Option<String>,
    /// Broker address (for http: where subscribers listen, default 127.0.0.1:0; for nats and
    /// jetstream: nats://host:port[,...], default nats://127.0.0.1:4222; for rabbitmq:
    /// amqp://user:pass@host:port/vhost, default amqp://guest:guest@127.0.0.1:5672/%2f).
    #[arg(long = "broker_address", env = "MICRO_BROKER_ADDRESS")]
    pub broker_address: Option<String>,
    /// Selector: random (default) or roundrobin.
    #[arg(long = "selector", env = "MICRO_SELECTOR")]
    pub selector: Option<String>,
    /// Retries of a call where safe (default 5).
    #[arg(long = "client_retries", env = "MICRO_CLIENT_RETRIES")]
    pub client_retries: Option<u32>,
    /// Timeout of a call: 5s, 300ms, 1m, or seconds (default 30s).
    #[arg(long = "client_request_timeout", env = "MICRO_CLIENT_REQUEST_TIMEOUT", value_parser = parse_duration)]
    pub client_request_timeout: Option<Duration>,
    /// HTTP/2 connections per node (default 1; each carries many calls).
    #[arg(long = "client_pool_size", env = "MICRO_CLIENT_POOL_SIZE")]
    pub client_pool_size: Option<usize>,
    /// Accepted for go-micro compatibility; connections live while they work.
    #[arg(long = "client_pool_ttl", env = "MICRO_CLIENT_POOL_TTL", value_parser = parse_duration)]
    pub client_pool_ttl: Option<Duration>,
    /// Largest message in bytes, sent or received (default 4194304).
    #[arg(long = "max_message_size", env = "MICRO_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,
}

impl Options {
    /// Settings from `MICRO_*` environment variables only.
    pub fn from_env() -> Result<Options> {
        Options::parse_from(["micro"])
    }

    /// Settings from these command-line arguments (the first is the program name) and the
    /// environment.
    pub fn parse_from<I, T>(args: I) -> Result<Options>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{Args, FromArgMatches};
        let cmd = Options::augment_args(clap::Command::new("micro").no_binary_name(false));
        let matches = cmd
            .try_get_matches_from(args)
            .map_err(|e| Error::new(Code::InvalidArgument, e.to_string()))?;
        Options::from_arg_matches(&matches)
            .map_err(|e| Error::new(Code::InvalidArgument, e.to_string()))
    }

    /// `--server_metadata` as pairs; an entry without `=` is an error.
    pub fn metadata(&self) -> Result<Vec<(String, String)>> {
        self.server_metadata
            .iter()
            .filter(|s| !s.is_empty())
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| {
                        Error::new(
                            Code::InvalidArgument,
                            format!("metadata {kv:?} is not key=value"),
                        )
                    })
            })
            .collect()
    }
}

/// Parses `5s`, `300ms`, `1m`, `2h`, `1500us`, or a number of seconds.
///
/// ```
/// use std::time::Duration;
/// use micro_runtime::options::parse_duration;
/// assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
/// assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "ns" => n / 1e9,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "bad duration unit in {s:?} (use ns, us, ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("bad duration {s:?}: {e}"))
}
