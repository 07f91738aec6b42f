//! Logging a program gets without setting anything up: a [`Service`](crate::Service) that
//! starts with no `tracing` subscriber installed installs this one, so its start and stop
//! lines (name, address, registry) and its warnings reach stderr, as go-micro's logger
//! writes them by default.
//!
//! The level is `info`, or `MICRO_LOG_LEVEL` (go-micro's variable: `trace`, `debug`, `info`,
//! `warn`, `error`, `fatal`, `off`), or `RUST_LOG` in `env_logger`'s form
//! (`micro_runtime=debug,warn`), which wins when both are set. A value that can't be read is
//! reported once and the default used.
//!
//! A program that installs its own subscriber (before the service starts) keeps it; one that
//! wants none says so with [`ServiceBuilder::default_logging`](crate::ServiceBuilder::default_logging).
//! Programs that log before any service starts (a client) call [`init`] themselves:
//!
//! ```
//! micro_runtime::logging::init(); // does nothing when a subscriber is already installed
//! tracing::info!("ready");
//! ```

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Installs the default subscriber (stderr, level from `RUST_LOG` / `MICRO_LOG_LEVEL`,
/// `info` otherwise) unless the process already has one. Returns whether it installed it.
pub fn init() -> bool {
    if tracing::dispatcher::has_been_set() {
        return false;
    }
    let (filter, unread) = match filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("MICRO_LOG_LEVEL").ok().as_deref(),
    ) {
        Ok(filter) => (filter, None),
        Err(unread) => (default_filter(), Some(unread)),
    };
    use std::io::IsTerminal as _;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A global filter: cheaper per event than a per-layer one (no filter state to keep).
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok();
    if let (true, Some(unread)) = (installed, unread) {
        tracing::warn!("{unread}");
    }
    installed
}

fn default_filter() -> Targets {
    Targets::new().with_default(LevelFilter::INFO)
}

/// The filter of `RUST_LOG` (comma-separated `target=level`, `target` or `level` directives,
/// spaces and empty ones ignored) or else of `MICRO_LOG_LEVEL` (one level); `info` when
/// neither says anything.
fn filter(rust_log: Option<&str>, micro_level: Option<&str>) -> Result<Targets, String> {
    let directives: Vec<&str> = rust_log
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if !directives.is_empty() {
        return directives
            .join(",")
            .parse()
            .map_err(|err| format!("RUST_LOG={:?} ignored: {err}", rust_log.unwrap_or("")));
    }
    let level = micro_level.map(str::trim).unwrap_or("");
    let level = match level.to_ascii_lowercase().as_str() {
        "" => return Ok(default_filter()),
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        // go-micro's fatal level logs and exits; here the errors are the last that show.
        "error" | "fatal" => LevelFilter::ERROR,
        "off" | "none" => LevelFilter::OFF,
        _ => {
            return Err(format!(
                "MICRO_LOG_LEVEL={level:?} ignored: expected trace, debug, info, warn, error, fatal or off"
            ));
        }
    };
    Ok(Targets::new().with_default(level))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(filter: &Targets, target: &str, level: tracing::Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn rust_log_reads_as_env_logger_directives() {
        use tracing::Level;
        let filter = super::filter(Some(" info, micro_runtime=debug ,"), None).unwrap();
        assert!(enabled(&filter, "micro_runtime::server", Level::DEBUG));
        assert!(enabled(&filter, "h2", Level::INFO));
        assert!(!enabled(&filter, "h2", Level::DEBUG));
        assert!(super::filter(Some("micro_runtime=loud"), None).is_err());
    }

    #[test]
    fn micro_log_level_is_one_level_and_rust_log_wins() {
        use tracing::Level;
        let default = super::filter(None, None).unwrap();
        assert!(enabled(&default, "anything", Level::INFO));
        assert!(!enabled(&default, "anything", Level::DEBUG));
        let debug = super::filter(Some(" , "), Some("DEBUG")).unwrap();
        assert!(enabled(&debug, "anything", Level::DEBUG));
        let off = super::filter(None, Some("off")).unwrap();
        assert!(!enabled(&off, "anything", Level::ERROR));
        let fatal = super::filter(None, Some("fatal")).unwrap();
        assert!(enabled(&fatal, "x", Level::ERROR) && !enabled(&fatal, "x", Level::WARN));
        let both = super::filter(Some("warn"), Some("trace")).unwrap();
        assert!(!enabled(&both, "x", Level::INFO));
        let err = super::filter(None, Some("loud")).unwrap_err();
        assert!(err.contains("MICRO_LOG_LEVEL=\"loud\""), "{err}");
    }
}
