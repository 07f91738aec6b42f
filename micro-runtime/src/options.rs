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
    #[arg(long = "server_name", env = set("MICRO_SERVER_NAME"))]
    pub server_name: Option<String>,
    /// Version of the service to register.
    #[arg(long = "server_version", env = set("MICRO_SERVER_VERSION"))]
    pub server_version: Option<String>,
    /// Id of this node (default: NAME-UUID).
    #[arg(long = "server_id", env = set("MICRO_SERVER_ID"))]
    pub server_id: Option<String>,
    /// Address to listen on, host:port (default 0.0.0.0:0, any free port).
    #[arg(long = "server_address", env = set("MICRO_SERVER_ADDRESS"))]
    pub server_address: Option<String>,
    /// Address to register, when not the listening one.
    #[arg(long = "server_advertise", env = set("MICRO_SERVER_ADVERTISE"))]
    pub server_advertise: Option<String>,
    /// Metadata of the service, key=value (repeatable).
    #[arg(
        long = "server_metadata",
        env = set("MICRO_SERVER_METADATA"),
        value_delimiter = ','
    )]
    pub server_metadata: Vec<String>,
    /// The registry: `local`, `memory`, `etcd` or `mdns` (`--help` says which of them the
    /// program was built with).
    #[arg(long = "registry", env = set("MICRO_REGISTRY"), help = registry_help())]
    pub registry: Option<String>,
    /// The registry's address: a directory for `local`, `host:port[,...]` for `etcd`.
    #[arg(
        long = "registry_address",
        env = set("MICRO_REGISTRY_ADDRESS"),
        // An address may hold a password: --help does not show the variable's value.
        hide_env_values = true,
        help = registry_address_help()
    )]
    pub registry_address: Option<String>,
    /// Connections served at once (default 10000), also kept below the open-files limit; at
    /// the cap the connection idle the longest makes room, or the new one is refused.
    #[arg(long = "server_max_connections", env = set("MICRO_SERVER_MAX_CONNECTIONS"))]
    pub server_max_connections: Option<usize>,
    /// Calls one connection may have open at once, HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
    /// (default 1024, at least 1).
    #[arg(
        long = "server_max_concurrent_streams",
        env = set("MICRO_SERVER_MAX_CONCURRENT_STREAMS")
    )]
    pub server_max_concurrent_streams: Option<u32>,
    /// Largest list of request headers in bytes, as HTTP/2 counts them,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (default 16384, at least 1024).
    #[arg(
        long = "server_max_header_list_size",
        env = set("MICRO_SERVER_MAX_HEADER_LIST_SIZE")
    )]
    pub server_max_header_list_size: Option<u32>,
    /// Time a new connection has to send the HTTP/2 preface before it is dropped: 10s,
    /// 500ms, or seconds (default 10s; 0 for no bound).
    #[arg(long = "server_handshake_timeout", env = set("MICRO_SERVER_HANDSHAKE_TIMEOUT"), value_parser = parse_duration)]
    pub server_handshake_timeout: Option<Duration>,
    /// How often the server pings each connection (HTTP/2 PING) to find dead clients
    /// (default 2h, as grpc-go; 0 for never).
    #[arg(long = "server_keepalive", env = set("MICRO_SERVER_KEEPALIVE"), value_parser = parse_duration)]
    pub server_keepalive: Option<Duration>,
    /// How long a keepalive ping may go unanswered before the connection is closed
    /// (default 20s, as grpc-go; 0 for no bound).
    #[arg(long = "server_keepalive_timeout", env = set("MICRO_SERVER_KEEPALIVE_TIMEOUT"), value_parser = parse_duration)]
    pub server_keepalive_timeout: Option<Duration>,
    /// A connection without a call for this long is closed (default 5m; 0 for never).
    #[arg(long = "server_idle_timeout", env = set("MICRO_SERVER_IDLE_TIMEOUT"), value_parser = parse_duration)]
    pub server_idle_timeout: Option<Duration>,
    /// Log every call the server answers (the `RequestLog` handler layer): endpoint, caller,
    /// code, time; never metadata.
    #[arg(long = "server_request_log", env = set("MICRO_SERVER_REQUEST_LOG"))]
    pub server_request_log: bool,
    /// At most this many calls at once, the rest shed with RESOURCE_EXHAUSTED (the
    /// `ConcurrencyLimit` handler layer; default none).
    #[arg(long = "server_concurrency_limit", env = set("MICRO_SERVER_CONCURRENCY_LIMIT"))]
    pub server_concurrency_limit: Option<usize>,
    /// At most this many calls a second per endpoint, the rest refused with
    /// RESOURCE_EXHAUSTED (the `RateLimit` handler layer; default none).
    #[arg(long = "server_rate_limit", env = set("MICRO_SERVER_RATE_LIMIT"))]
    pub server_rate_limit: Option<u32>,
    /// Seconds a registration lives without refresh (default 60).
    #[arg(long = "register_ttl", env = set("MICRO_REGISTER_TTL"))]
    pub register_ttl: Option<u64>,
    /// Seconds between refreshes of the registration (default 30).
    #[arg(long = "register_interval", env = set("MICRO_REGISTER_INTERVAL"))]
    pub register_interval: Option<u64>,
    /// Transport: grpc (the only one).
    #[arg(long = "transport", env = set("MICRO_TRANSPORT"))]
    pub transport: Option<String>,
    /// The broker: `http`, `memory`, `nats`, `jetstream` or `rabbitmq` (`--help` says which
    /// of them the program was built with).
    #[arg(long = "broker", env = set("MICRO_BROKER"), help = broker_help())]
    pub broker: Option<String>,
    /// The broker's address.
    #[arg(
        long = "broker_address",
        env = set("MICRO_BROKER_ADDRESS"),
        hide_env_values = true,
        help = broker_address_help()
    )]
    pub broker_address: Option<String>,
    /// Selector: random (default), roundrobin, leastloaded or hash.
    #[arg(long = "selector", env = set("MICRO_SELECTOR"))]
    pub selector: Option<String>,
    /// Retries of a call where safe (default 5).
    #[arg(long = "client_retries", env = set("MICRO_CLIENT_RETRIES"))]
    pub client_retries: Option<u32>,
    /// Retries capped at this percentage of calls (the `RetryBudget`; default none).
    #[arg(long = "client_retry_budget", env = set("MICRO_CLIENT_RETRY_BUDGET"))]
    pub client_retry_budget: Option<u32>,
    /// A circuit breaker per node that counts failed answers too (the default
    /// `CircuitBreaker`; without it, only transport failures eject a node).
    #[arg(long = "client_circuit_breaker", env = set("MICRO_CLIENT_CIRCUIT_BREAKER"))]
    pub client_circuit_breaker: bool,
    /// Timeout of a call: 5s, 300ms, 1m, or seconds (default 30s).
    #[arg(long = "client_request_timeout", env = set("MICRO_CLIENT_REQUEST_TIMEOUT"), value_parser = parse_duration)]
    pub client_request_timeout: Option<Duration>,
    /// HTTP/2 connections per node (default 1; each carries many calls).
    #[arg(long = "client_pool_size", env = set("MICRO_CLIENT_POOL_SIZE"))]
    pub client_pool_size: Option<usize>,
    /// Accepted for go-micro compatibility; connections live while they work.
    #[arg(long = "client_pool_ttl", env = set("MICRO_CLIENT_POOL_TTL"), value_parser = parse_duration)]
    pub client_pool_ttl: Option<Duration>,
    /// How requests are compressed: identity (default, none), gzip or zstd (`grpc-encoding`;
    /// responses are decompressed whatever this says).
    #[arg(long = "client_compression", env = set("MICRO_CLIENT_COMPRESSION"), value_parser = parse_compression)]
    pub client_compression: Option<crate::Compression>,
    /// Largest message in bytes, sent or received (default 4194304).
    #[arg(long = "max_message_size", env = set("MICRO_MAX_MESSAGE_SIZE"))]
    pub max_message_size: Option<usize>,
}

/// `--registry`'s help: the registries this program was built with, and the features that
/// add the others.
fn registry_help() -> String {
    let mut kinds = vec![
        "local (default; host-wide, a directory of records)",
        "memory (in-process)",
    ];
    let mut missing = Vec::new();
    if cfg!(feature = "etcd") {
        kinds.push("etcd (go-micro's etcd layout; auth from ETCD_USERNAME/ETCD_PASSWORD, TLS from ETCD_CA_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE)");
    } else {
        missing.push("etcd (feature `etcd`)");
    }
    if cfg!(feature = "mdns") {
        kinds.push("mdns (multicast DNS on the LAN; --registry_address is then the interface's IP, 0.0.0.0 for all, loopback when unset)");
    } else {
        missing.push("mdns (feature `mdns`)");
    }
    with_missing(format!("Registry: {}", kinds.join(", ")), &missing)
}

fn registry_address_help() -> String {
    let mut text = "Registry address (for local: its directory".to_owned();
    if cfg!(feature = "etcd") {
        text.push_str(
            "; for etcd: host:port[,host:port...], default 127.0.0.1:2379, https:// for TLS",
        );
    }
    text.push(')');
    text
}

/// `--broker`'s help: the brokers this program was built with, and the features that add the
/// others.
fn broker_help() -> String {
    let mut kinds = vec![
        "http (default; subscribers listen on HTTP and are found in the registry)",
        "memory (in-process)",
    ];
    let mut missing = Vec::new();
    if cfg!(feature = "nats") {
        kinds.push("nats (NATS core)");
        kinds.push("jetstream (NATS JetStream, at-least-once)");
    } else {
        missing.push("nats and jetstream (feature `nats`)");
    }
    if cfg!(feature = "rabbitmq") {
        kinds.push("rabbitmq");
    } else {
        missing.push("rabbitmq (feature `rabbitmq`)");
    }
    with_missing(format!("Broker: {}", kinds.join(", ")), &missing)
}

fn broker_address_help() -> String {
    let mut text =
        "Broker address (for http: where subscribers listen, default 127.0.0.1:0".to_owned();
    if cfg!(feature = "nats") {
        text.push_str(
            "; for nats and jetstream: nats://host:port[,...], default nats://127.0.0.1:4222",
        );
    }
    if cfg!(feature = "rabbitmq") {
        text.push_str("; for rabbitmq: amqp://user:pass@host:port/vhost, default amqp://guest:guest@127.0.0.1:5672/%2f");
    }
    text.push(')');
    text
}

fn with_missing(mut text: String, missing: &[&str]) -> String {
    if !missing.is_empty() {
        text.push_str(". Not built in: ");
        text.push_str(&missing.join(", "));
    }
    text
}

/// The variable `name` for clap to read, unless it is set but empty: as in go-micro, an empty
/// variable (`MICRO_SERVER_VERSION=` from an unset compose variable) is not a setting, so the
/// code's value stays (clap would take the empty string, or fail to parse it as a number).
fn set(name: &'static str) -> Option<&'static str> {
    match std::env::var_os(name) {
        Some(value) if value.is_empty() => None,
        _ => Some(name),
    }
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
        Options::parse_program(args, String::new(), "")
            .map_err(|e| Error::new(Code::InvalidArgument, e.to_string()))
    }

    /// Parses a program's arguments (the first is its path) with a command named after the
    /// program, with this about text and version (none when empty). clap's own error, for
    /// the caller to print or `exit()` with.
    pub(crate) fn parse_program<I, T>(
        args: I,
        about: String,
        version: &str,
    ) -> std::result::Result<Options, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{Args, FromArgMatches};
        let mut args = args.into_iter().map(Into::into).peekable();
        let name = args
            .peek()
            .map(|path: &std::ffi::OsString| {
                std::path::Path::new(path)
                    .file_name()
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_else(|| "micro".to_owned());
        let mut cmd = clap::Command::new(name);
        if !about.is_empty() {
            cmd = cmd.about(about);
        }
        if !version.is_empty() {
            cmd = cmd.version(version.to_owned());
        }
        let matches = Options::augment_args(cmd).try_get_matches_from(args)?;
        Options::from_arg_matches(&matches)
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

/// `--client_compression`: a name [`Compression`](crate::Compression) parses.
fn parse_compression(s: &str) -> std::result::Result<crate::Compression, String> {
    s.parse().map_err(|e: Error| e.detail().to_owned())
}

/// Parses a duration as Go's `time.ParseDuration` does (`5s`, `300ms`, `1m30s`, `1h0m0s`,
/// `1.5h`; units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), or a bare number of seconds.
///
/// ```
/// use std::time::Duration;
/// use micro_runtime::options::parse_duration;
/// assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let bad = |why: &str| format!("bad duration {s:?}: {why}");
    let number = |t: &str| t.find(|c: char| !(c.is_ascii_digit() || c == '.'));
    // A bare number is seconds.
    if number(s).is_none() {
        let n: f64 = s.parse().map_err(|_| bad("not a number"))?;
        return Duration::try_from_secs_f64(n).map_err(|e| bad(&e.to_string()));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let (num, tail) = rest.split_at(number(rest).unwrap_or(rest.len()));
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let n: f64 = num.parse().map_err(|_| bad("expected a number"))?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit (use ns, us, ms, s, m or h)")),
        };
        let part = Duration::try_from_secs_f64(n * scale).map_err(|e| bad(&e.to_string()))?;
        total = total.checked_add(part).ok_or_else(|| bad("too long"))?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child process of the environment test: the test then checks what it reads.
    const ENV_CHILD: &str = "MICRO_OPTIONS_TEST_CHILD";

    #[test]
    fn server_settings_from_flags() {
        let o = Options::parse_from([
            "t",
            "--server_max_connections",
            "7",
            "--server_max_concurrent_streams",
            "9",
            "--server_max_header_list_size",
            "4096",
            "--server_handshake_timeout",
            "250ms",
            "--server_keepalive",
            "1m30s",
            "--server_keepalive_timeout",
            "5",
            "--server_idle_timeout",
            "0",
        ])
        .unwrap();
        assert_eq!(o.server_max_connections, Some(7));
        assert_eq!(o.server_max_concurrent_streams, Some(9));
        assert_eq!(o.server_max_header_list_size, Some(4096));
        assert_eq!(o.server_handshake_timeout, Some(Duration::from_millis(250)));
        assert_eq!(o.server_keepalive, Some(Duration::from_secs(90)));
        assert_eq!(o.server_keepalive_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.server_idle_timeout, Some(Duration::ZERO));

        for bad in [
            ["--server_max_connections", "ten"],
            ["--server_max_concurrent_streams", "5000000000"],
            ["--server_max_header_list_size", "lots"],
            ["--server_handshake_timeout", "soon"],
            ["--server_keepalive", "5x"],
            ["--server_keepalive_timeout", "5 s"],
            ["--server_idle_timeout", "1m30"],
        ] {
            let err = Options::parse_from(std::iter::once("t").chain(bad)).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err}");
            assert!(err.detail().contains(bad[0]), "{bad:?}: {err}");
        }
    }

    /// clap reads the variables as the process starts with them, so the settings are read in
    /// a child process (this test binary, running this test alone) with them set.
    #[test]
    fn server_settings_from_environment_variables() {
        if std::env::var_os(ENV_CHILD).is_some() {
            let o = Options::from_env().unwrap();
            assert_eq!(o.server_max_connections, Some(7));
            assert_eq!(o.server_max_concurrent_streams, Some(9));
            assert_eq!(o.server_max_header_list_size, Some(4096));
            assert_eq!(o.server_handshake_timeout, Some(Duration::from_millis(250)));
            assert_eq!(o.server_keepalive, Some(Duration::from_secs(7200)));
            assert_eq!(
                o.server_keepalive_timeout,
                Some(Duration::from_millis(1500))
            );
            // Empty: no setting, as in go-micro.
            assert_eq!(o.server_idle_timeout, None);
            // A flag wins over its variable.
            let o = Options::parse_from(["t", "--server_keepalive", "1s"]).unwrap();
            assert_eq!(o.server_keepalive, Some(Duration::from_secs(1)));
            return;
        }
        let test = "options::tests::server_settings_from_environment_variables";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env(ENV_CHILD, "1")
            .env("MICRO_SERVER_MAX_CONNECTIONS", "7")
            .env("MICRO_SERVER_MAX_CONCURRENT_STREAMS", "9")
            .env("MICRO_SERVER_MAX_HEADER_LIST_SIZE", "4096")
            .env("MICRO_SERVER_HANDSHAKE_TIMEOUT", "250ms")
            .env("MICRO_SERVER_KEEPALIVE", "2h")
            .env("MICRO_SERVER_KEEPALIVE_TIMEOUT", "1.5s")
            .env("MICRO_SERVER_IDLE_TIMEOUT", "")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the child test failed or did not run:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn durations_as_go_writes_them() {
        let ok = |s: &str, d: Duration| assert_eq!(parse_duration(s), Ok(d), "{s}");
        ok("1m30s", Duration::from_secs(90));
        ok("1h0m0s", Duration::from_secs(3600));
        ok("1.5h", Duration::from_secs(5400));
        ok("2h45m10.5s", Duration::from_millis(9_910_500));
        ok("1500us", Duration::from_micros(1500));
        ok("1500\u{b5}s", Duration::from_micros(1500));
        ok("1500\u{3bc}s", Duration::from_micros(1500));
        ok("250ns", Duration::from_nanos(250));
        ok("0", Duration::ZERO);
        ok("0.25", Duration::from_millis(250));
        for bad in ["", "soon", "5x", "1m30", "-5s", "s", "1..5s", "1e3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }
}
