//! Load balancing across real servers: least-loaded avoids a slow node, consistent hashing
//! keeps a key on one node, filters pick versions and metadata.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::{CallOptions, Registry, Selector, Service};
use micro_tests::*;

/// Three greeters tagged a, b, c; `slow` answers after 20 ms.
async fn three(reg: &Arc<dyn Registry>, slow: Option<&str>) -> Vec<Service> {
    let mut servers = Vec::new();
    for tag in ["a", "b", "c"] {
        let delay = if slow == Some(tag) {
            Duration::from_millis(20)
        } else {
            Duration::ZERO
        };
        let greeter = TestGreeter {
            tag: tag.into(),
            delay,
            ..Default::default()
        };
        let builder = Service::builder()
            .name("greeter")
            .registry(reg.clone())
            .version(if tag == "c" { "2" } else { "1" });
        let builder = builder.metadata("zone", if tag == "a" { "east" } else { "west" });
        servers.push(start_greeter_with(builder, greeter).await);
    }
    servers
}

fn client(reg: Arc<dyn Registry>, selector: Arc<dyn Selector>) -> GreeterClient {
    GreeterClient::new(
        "greeter",
        Service::builder()
            .name("c")
            .registry(reg)
            .selector(selector)
            .build()
            .unwrap()
            .client(),
    )
}

async fn tag_of(client: &GreeterClient, opts: &CallOptions) -> String {
    let g = client
        .hello_with(HelloRequest { name: "x".into() }, opts)
        .await
        .unwrap()
        .greeting;
    g.rsplit(' ').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_sends_fewer_calls_to_a_slow_node() {
    let reg = memory();
    let servers = three(&reg, Some("b")).await;
    let client = client(reg, Arc::new(micro_runtime::selector::LeastLoaded));
    let counts = Arc::new(std::sync::Mutex::new(HashMap::<String, usize>::new()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, counts) = (client.clone(), counts.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    let tag = tag_of(&client, &CallOptions::new()).await;
                    *counts.lock().unwrap().entry(tag).or_default() += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    let (a, b, c) = (
        counts["a"],
        counts.get("b").copied().unwrap_or(0),
        counts["c"],
    );
    // An even spread would give each about 133 of the 400 calls.
    assert!(b * 2 < a.min(c), "slow b got {b}, a {a}, c {c}");
    for s in servers {
        s.stop().await.unwrap();
    }
}

#[tokio::test]
async fn consistent_hash_keeps_each_key_on_one_node() {
    let reg = memory();
    let servers = three(&reg, None).await;
    let client = client(reg, Arc::new(micro_runtime::selector::ConsistentHash));
    let mut owners = HashMap::new();
    for round in 0..3 {
        for user in 0..30 {
            let opts = CallOptions::new().hash_key(format!("user-{user}"));
            let tag = tag_of(&client, &opts).await;
            let owner = owners.entry(user).or_insert_with(|| tag.clone());
            assert_eq!(*owner, tag, "user-{user} moved in round {round}");
        }
    }
    let distinct: std::collections::HashSet<_> = owners.values().collect();
    assert_eq!(
        distinct.len(),
        3,
        "30 keys spread over the 3 nodes: {owners:?}"
    );
    for s in servers {
        s.stop().await.unwrap();
    }
}

#[tokio::test]
async fn filters_pick_version_and_metadata() {
    let reg = memory();
    let servers = three(&reg, None).await;
    let client = client(reg, Arc::new(micro_runtime::selector::Random));
    for _ in 0..10 {
        assert_eq!(tag_of(&client, &CallOptions::new().version("2")).await, "c");
        assert_eq!(
            tag_of(&client, &CallOptions::new().node_metadata("zone", "east")).await,
            "a"
        );
        let west_v1 = CallOptions::new()
            .version("1")
            .node_metadata("zone", "west");
        assert_eq!(tag_of(&client, &west_v1).await, "b");
    }
    let err = client
        .hello_with(HelloRequest::default(), &CallOptions::new().version("9"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), micro_runtime::Code::NotFound, "{err}");
    for s in servers {
        s.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_node_that_stopped_answering_is_avoided_after_one_timeout() {
    // A node whose host went silent: the connection opens, nothing ever answers, no reset
    // comes. After one call times out on it, the next calls go to the live node.
    let reg = memory();
    let _live = start_greeter("greeter", reg.clone(), TestGreeter::default()).await;
    let (silent, _) = h2_server(H2Answer::Stall).await;
    let record = micro_runtime::registry::Record {
        name: "greeter".into(),
        nodes: vec![micro_runtime::registry::Node {
            id: "greeter-silent".into(),
            address: silent.to_string(),
            ..Default::default()
        }],
        ..Default::default()
    };
    reg.register(&record, Default::default()).await.unwrap();
    let client = client(reg, Arc::new(micro_runtime::selector::RoundRobin));
    let opts = CallOptions::new().timeout(Duration::from_millis(300));
    let mut timeouts = 0;
    for _ in 0..6 {
        match client
            .hello_with(HelloRequest { name: "x".into() }, &opts)
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == micro_runtime::Code::DeadlineExceeded => timeouts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(timeouts, 1, "calls kept going to the silent node");
}
