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

/// At-least-once across a crash: subscriber A (queue group Q) is killed with SIGKILL while
/// 10,000 events are being published; B joins Q; every event is handled by A or B.
fn survives_a_subscriber_crash(broker: &str, address: &str) -> (String, String) {
    const N: u64 = 10_000;
    let topic = micro_tests::broker::unique_topic("events.crash");
    let queue = format!("crash-{}", topic.replace('.', "-"));
    let common: Vec<String> = [
        "--registry",
        "memory",
        "--broker",
        broker,
        "--broker_address",
        address,
        "--topic",
        &topic,
        "--queue",
        &queue,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let args: Vec<&str> = common.iter().map(String::as_str).collect();
    let a = EventSubscriber::start(&args);
    let publisher = {
        let mut args = common.clone();
        args.truncate(8); // not --queue
        args.extend(["--count".to_owned(), N.to_string()]);
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_event_publisher(&args);
        })
    };
    let mut seen = BTreeMap::<u64, usize>::new();
    while seen.len() < 2_000 {
        let id = a
            .next(PATIENCE)
            .expect("A stopped receiving before the crash");
        *seen.entry(id).or_insert(0) += 1;
    }
    for id in a.kill() {
        *seen.entry(id).or_insert(0) += 1;
    }
    let b = EventSubscriber::start(&args);
    publisher.join().expect("publisher");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while (seen.len() as u64) < N {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {N} events handled after the crash; first missing: {:?}",
            seen.len(),
            (1..=N).find(|i| !seen.contains_key(i))
        );
        if let Some(id) = b.next(Duration::from_millis(200)) {
            *seen.entry(id).or_insert(0) += 1;
        }
    }
    assert!((1..=N).all(|i| seen.contains_key(&i)));
    let again = seen.values().filter(|&&n| n > 1).count();
    eprintln!("{broker}: all {N} handled; {again} handled twice (in flight at the crash)");
    (topic, queue)
}

#[test]
fn jetstream_events_survive_a_subscriber_crash() {
    const ADDRESS: &str = "nats://127.0.0.1:4222";
    survives_a_subscriber_crash("jetstream", ADDRESS);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(micro_tests::broker::delete_jetstream_streams(ADDRESS));
}

#[test]
fn rabbitmq_events_survive_a_subscriber_crash() {
    const ADDRESS: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let (_, queue) = survives_a_subscriber_crash("rabbitmq", ADDRESS);
    // The group's durable queue outlives its subscribers.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let broker = micro_runtime::broker::rabbitmq::RabbitBroker::from_address(ADDRESS).unwrap();
        broker.delete_queue(&queue).await.unwrap();
        micro_runtime::broker::Broker::disconnect(&broker)
            .await
            .unwrap();
    });
}

/// The broker comes from `--broker` or `MICRO_BROKER` (and its address from
/// `--broker_address` or `MICRO_BROKER_ADDRESS`): a wrong one is a clear error.
#[test]
fn the_broker_setting_comes_from_flags_and_environment() {
    let bin = micro_tests::example_binary("event-publisher");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(&bin)
            .args(["--registry", "memory", "--count", "1"])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run event-publisher");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--broker", "carrier-pigeon"], &[]);
    assert!(
        !ok && err.contains("unknown broker \"carrier-pigeon\""),
        "{err}"
    );
    let (ok, err) = run(&[], &[("MICRO_BROKER", "smoke-signals")]);
    assert!(
        !ok && err.contains("unknown broker \"smoke-signals\""),
        "{err}"
    );
    // An address nothing listens on: the publish fails as unavailable, it does not hang.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, err) = run(
        &["--client_request_timeout", "5s"],
        &[
            ("MICRO_BROKER", "nats"),
            ("MICRO_BROKER_ADDRESS", &format!("nats://127.0.0.1:{port}")),
        ],
    );
    assert!(!ok, "published to a NATS that is not there");
    assert!(
        err.to_lowercase().contains("unavailable") || err.contains(&port.to_string()),
        "{err}"
    );
    // Flags win over the environment.
    let (ok, err) = run(
        &["--broker", "memory"],
        &[("MICRO_BROKER", "smoke-signals")],
    );
    assert!(ok, "{err}");
}
