//! Runs the registry conformance suite ([`micro_tests::conformance`]) against the mDNS
//! backend and prints one line per check: `ok <backend>::<check>`,
//! `n/a <backend>::<check>: <why>` or `FAILED <backend>::<check>: <why>`. Exits 1 when a
//! check failed.
//!
//! Two backends: `mdns`, one registry reading its own writes (as a process that serves and
//! calls), and `mdns_peers`, writes through one registry and reads through another (as two
//! processes), so that every record crosses the network. Each check gets fresh registries
//! and service names of its own, so all run at once.
//!
//! It multicasts, so it refuses to run outside the private network namespace, with nothing
//! but loopback up, that `MICRO_TEST_NETNS` names: `cargo test -p micro-tests --test mdns`
//! makes one and runs it there.

use std::process::ExitCode;
use std::time::Duration;

use micro_tests::conformance::{self, Backend, CHECKS};

/// Bound on one check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// A backend, and the checks that cannot apply to it, each with the reason.
struct Target {
    name: &'static str,
    make: fn() -> Backend,
    not_applicable: &'static [(&'static str, &'static str)],
}

const TARGETS: &[Target] = &[
    Target {
        name: "mdns",
        make: conformance::mdns,
        // The registry's own node shows at once, while raw records reach it only through
        // the network: reading `good` would not prove the broken ones were skipped, only
        // perhaps not there yet. `mdns_peers` runs it, where all records cross the network.
        not_applicable: &[(
            "broken_records",
            "raw records come only through the network, after the registry's own writes \
             show; mdns_peers runs it",
        )],
    },
    Target {
        name: "mdns_peers",
        make: conformance::mdns_peers,
        not_applicable: &[],
    },
];

#[tokio::main]
async fn main() -> ExitCode {
    micro_runtime::logging::init();
    if let Err(why) = conformance::private_network() {
        eprintln!(
            "error: the mDNS checks multicast, so they run only in a private network namespace \
             with nothing but loopback up (`cargo test -p micro-tests --test mdns` makes one \
             and runs this there): {why}"
        );
        return ExitCode::from(2);
    }
    for target in TARGETS {
        for (check, _) in target.not_applicable {
            if !CHECKS.iter().any(|(name, _)| name == check) {
                eprintln!("error: {}: no check is named {check}", target.name);
                return ExitCode::from(2);
            }
        }
    }

    let mut runs = Vec::new();
    for target in TARGETS {
        for &(check, run) in CHECKS {
            let label = format!("{}::{check}", target.name);
            let not_applicable = target.not_applicable.iter().find(|(c, _)| *c == check);
            let outcome = match not_applicable {
                Some((_, why)) => Err(*why),
                None => {
                    let make = target.make;
                    Ok(tokio::spawn(async move {
                        let backend = make();
                        tokio::time::timeout(CHECK_TIMEOUT, run(&backend)).await
                    }))
                }
            };
            runs.push((label, outcome));
        }
    }

    let mut failed = 0;
    for (label, outcome) in runs {
        match outcome {
            Err(why) => println!("n/a {label}: {why}"),
            Ok(handle) => match handle.await {
                Ok(Ok(())) => println!("ok {label}"),
                Ok(Err(_)) => {
                    failed += 1;
                    println!("FAILED {label}: took over {CHECK_TIMEOUT:?}");
                }
                Err(e) => {
                    failed += 1;
                    println!("FAILED {label}: {}", why(e));
                }
            },
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A failed check's panic message, on one line.
fn why(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    message.lines().collect::<Vec<_>>().join(" | ")
}
