//! Every registry backend against the same checks (`micro_tests::conformance`): register,
//! deregister, get, list, versions, metadata and endpoints, escaping, watch, TTL expiry and
//! renewal, broken records.
//!
//! A backend is one `conformance!` line: a module name, an expression making a
//! `conformance::Backend`, and optionally the checks, when it can't run them all (say why
//! there).

use std::time::Duration;

use micro_tests::conformance;

/// Bound on one check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

macro_rules! conformance {
    ($backend:ident: $make:expr) => {
        conformance!($backend: $make;
            register_deregister, not_found, list, versions, metadata_and_endpoints,
            slashes_in_names, watch, watch_all, ttl_expiry, heartbeat_keeps_alive,
            broken_records);
    };
    ($backend:ident: $make:expr; $($check:ident),+ $(,)?) => {
        mod $backend {
            use super::*;
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
    slashes_in_names, watch, watch_all, ttl_expiry, heartbeat_keeps_alive);
conformance!(local: conformance::local());
conformance!(etcd: conformance::etcd());
