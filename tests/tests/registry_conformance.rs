//! Every registry backend against the same checks (`micro_tests::conformance`): register,
//! deregister, get, list, versions, metadata and endpoints, escaping, node ids per service,
//! watch, TTL expiry and renewal, broken records.
//!
//! A backend is one `conformance!` line: a module name, an expression making a
//! `conformance::Backend`, and optionally the checks, when it can't run them all (say why
//! there, and in `every_check_runs`). The mDNS backend multicasts, so it runs the same
//! checks in a private network namespace instead: `tests/tests/mdns.rs`.

use std::time::Duration;

use micro_tests::conformance;

/// Bound on one check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

macro_rules! conformance {
    ($backend:ident: $make:expr) => {
        conformance!($backend: $make;
            register_deregister, not_found, list, versions, metadata_and_endpoints,
            slashes_in_names, node_ids_per_service, watch, watch_all, ttl_expiry,
            heartbeat_keeps_alive, broken_records);
    };
    ($backend:ident: $make:expr; $($check:ident),+ $(,)?) => {
        mod $backend {
            use super::*;

            /// The checks this backend runs.
            pub(super) const RUN: &[&str] = &[$(stringify!($check)),+];
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let backend = $make;
                    tokio::time::timeout(CHECK_TIMEOUT, conformance::$check(&backend))
                        .await
                        .unwrap_or_else(|_| panic!("{} took over {CHECK_TIMEOUT:?}", stringify!($check)));
                }
            )+
        }
    };
}

// The memory registry holds typed records, not raw bytes: no broken record can exist in it,
// so `broken_records` does not apply.
conformance!(memory: conformance::memory();
    register_deregister, not_found, list, versions, metadata_and_endpoints,
    slashes_in_names, node_ids_per_service, watch, watch_all, ttl_expiry,
    heartbeat_keeps_alive);
conformance!(local: conformance::local());
conformance!(etcd: conformance::etcd());

/// Every check of the suite runs on every backend but those left out above with a reason,
/// so a new check is not skipped unnoticed.
#[test]
fn every_check_runs() {
    let backends: [(&str, &[&str], &[&str]); 3] = [
        ("memory", memory::RUN, &["broken_records"]),
        ("local", local::RUN, &[]),
        ("etcd", etcd::RUN, &[]),
    ];
    for (backend, run, left_out) in backends {
        let want: Vec<&str> = conformance::CHECKS
            .iter()
            .map(|(check, _)| *check)
            .filter(|check| !left_out.contains(check))
            .collect();
        assert_eq!(run, want, "the checks of {backend}");
    }
}
