//! The `event-publisher` and `event-subscriber` examples as separate processes.

use std::collections::BTreeMap;
use std::time::Duration;

use micro_tests::broker::{EventSubscriber, PATIENCE, QUIET, run_event_publisher};

/// Ids received by each subscriber until `total` ids arrived in all, then a quiet spell.
fn gather(subs: &[&EventSubscriber], total: usize) -> Vec<Vec<u64>> {
    let mut got = vec![Vec::new(); subs.len()];
    let deadline = std::time::Instant::now() + PATIENCE;
    while got.iter().map(Vec::len).sum::<usize>() < total {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {total} events arrived",
            got.iter().map(Vec::len).sum::<usize>()
        );
        for (i, s) in subs.iter().enumerate() {
            while let Some(id) = s.next(Duration::from_millis(10)) {
                got[i].push(id);
            }
        }
    }
    for (i, s) in subs.iter().enumerate() {
        while let Some(id) = s.next(QUIET) {
            got[i].push(id);
        }
    }
    got
}

fn counts(ids: &[u64]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(*id).or_insert(0) += 1;
    }
    m
}

/// The default broker (http) through the default registry kind (local, here in a temporary
/// directory): two broadcast subscribers get every event, a queue group of two shares them.
#[test]
fn events_over_the_http_broker() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().to_str().unwrap();
    let common = [
        "--registry",
        "local",
        "--registry_address",
        registry,
        "--topic",
        "orders",
    ];
    let b1 = EventSubscriber::start(&common);
    let b2 = EventSubscriber::start(&common);
    let q: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--queue", "workers"])
        .collect();
    let q1 = EventSubscriber::start(&q);
    let q2 = EventSubscriber::start(&q);
    run_event_publisher(&[&common[..], &["--count", "200"]].concat());
    let got = gather(&[&b1, &b2, &q1, &q2], 3 * 200);
    let all: Vec<u64> = (1..=200).collect();
    for (i, ids) in got[..2].iter().enumerate() {
        let mut ids = ids.clone();
        ids.sort();
        assert_eq!(ids, all, "broadcast subscriber {i}");
    }
    let mut shared: Vec<u64> = got[2..].concat();
    shared.sort();
    assert_eq!(shared, all, "the queue group, each event once");
    assert!(
        !got[2].is_empty() && !got[3].is_empty(),
        "both members work"
    );
    assert!(counts(&shared).values().all(|&n| n == 1));
}
