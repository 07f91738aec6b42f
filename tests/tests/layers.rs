//! Handler layers: the order they run in, a layer that refuses calls or adds metadata the
//! handler sees, streaming calls through them, a concurrency limit under 2,000 calls at
//! once, and a rate limit per user.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::echo::{EchoClient, EchoRequest};
use examples::relay::{PassRequest, RelayClient, register_relay_handler};
use examples::relay_service::Relayer;
use futures_util::StreamExt;
use micro_runtime::server::{
    Answer, CallKind, ConcurrencyLimit, HandlerCall, HandlerLayer, Next, RateLimit, RequestLog,
    Timeout,
};
use micro_runtime::{CallOptions, Code, Error, Result, Service, ServiceBuilder};
use micro_tests::{caller, memory};

type Log = Arc<Mutex<Vec<String>>>;

/// Notes `<name> in <endpoint> <kind>` and `<name> out`.
struct Note {
    name: &'static str,
    log: Log,
}

impl HandlerLayer for Note {
    fn handle(&self, call: HandlerCall, next: Next) -> impl Future<Output = Result<Answer>> + Send {
        let (name, log) = (self.name, self.log.clone());
        async move {
            let kind = match call.kind() {
                CallKind::Unary => "unary",
                CallKind::Streaming => "streaming",
            };
            let line = format!("{name} in {} {kind}", call.endpoint());
            log.lock().unwrap().push(line);
            let answer = next.run(call).await;
            log.lock().unwrap().push(format!("{name} out"));
            answer
        }
    }
}

/// Refuses calls without `x-user`; passes the user on as `x-checked-user`.
struct NeedsUser;

impl HandlerLayer for NeedsUser {
    async fn handle(&self, mut call: HandlerCall, next: Next) -> Result<Answer> {
        let Some(user) = call.context().metadata().get("x-user").map(str::to_owned) else {
            return Err(Error::unauthorized("test", "no x-user"));
        };
        call.context_mut()
            .metadata_mut()
            .insert("x-checked-user", &user)?;
        next.run(call).await
    }
}

/// A relay (the last hop: it reports what its handler saw) named `relay`, built by `builder`.
async fn relay(builder: ServiceBuilder) -> (Service, RelayClient) {
    let registry = memory();
    let service = builder
        .name("relay")
        .registry(registry.clone())
        .address("127.0.0.1:0")
        .build()
        .unwrap();
    let relayer = Relayer::new("relay", service.client());
    register_relay_handler(service.server(), relayer).unwrap();
    examples::echo::register_echo_handler(service.server(), examples::Echo).unwrap();
    service.start().await.unwrap();
    let client = RelayClient::new("relay", caller(registry).client());
    (service, client)
}

fn last_hop(sleep_ms: u32) -> PassRequest {
    PassRequest {
        next: vec![],
        sleep_ms,
    }
}

#[tokio::test]
async fn layers_run_in_the_order_they_were_added_around_every_kind_of_call() {
    let log: Log = Arc::default();
    let note = |name| Note {
        name,
        log: log.clone(),
    };
    let (service, client) = relay(
        Service::builder()
            .wrap_handler(note("first"))
            .wrap_handler(note("second")),
    )
    .await;

    client.pass(last_hop(0)).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "first in Relay.Pass unary",
            "second in Relay.Pass unary",
            "second out",
            "first out"
        ]
    );

    log.lock().unwrap().clear();
    let echo = EchoClient::new("relay", service.client());
    let request = EchoRequest {
        message: "hi".into(),
        count: 3,
    };
    let replies: Vec<_> = echo.server_stream(request).await.unwrap().collect().await;
    assert_eq!(replies.len(), 3);
    assert_eq!(
        log.lock().unwrap()[0],
        "first in Echo.ServerStream streaming"
    );
    service.stop().await.unwrap();
}

#[tokio::test]
async fn a_layer_refuses_calls_with_its_code_and_adds_metadata_the_handler_sees() {
    let (service, client) = relay(Service::builder().wrap_handler(NeedsUser)).await;

    let err = client.pass(last_hop(0)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    assert_eq!(err.detail(), "no x-user");

    let options = CallOptions::new().metadata("x-user", "ada");
    let reply = client.pass_with(last_hop(0), &options).await.unwrap();
    let seen = &reply.hops[0].metadata;
    assert_eq!(seen.get("x-checked-user").map(String::as_str), Some("ada"));
    service.stop().await.unwrap();
}

#[tokio::test]
async fn a_server_timeout_ends_slow_calls() {
    let (service, client) =
        relay(Service::builder().wrap_handler(Timeout::new(Duration::from_secs(1)))).await;
    let err = client.pass(last_hop(5_000)).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    // The handler's context has the server's deadline (the caller set a later one).
    let reply = client.pass(last_hop(0)).await.unwrap();
    let left = reply.hops[0].deadline_left_ms;
    assert!((0..=1_000).contains(&left), "{left}");
    // A limit past any clock is no limit.
    service.stop().await.unwrap();
    let (service, client) =
        relay(Service::builder().wrap_handler(Timeout::new(Duration::MAX))).await;
    client.pass(last_hop(0)).await.unwrap();
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_concurrency_limit_a_server_sheds_calls_and_answers_the_rest() {
    const CALLS: usize = 2_000;
    const LIMIT: usize = 100;
    const HANDLER_MS: u32 = 50;
    let limit = ConcurrencyLimit::new(LIMIT);
    let (service, client) = relay(Service::builder().wrap_handler(limit.clone())).await;

    let options = CallOptions::new()
        .retries(0)
        .timeout(Duration::from_secs(30));
    let calls = (0..CALLS).map(|_| {
        let (client, options) = (client.clone(), options.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = client.pass_with(last_hop(HANDLER_MS), &options).await;
            (outcome.map(|_| ()), started.elapsed())
        })
    });
    let mut admitted = Vec::new();
    let mut shed = 0;
    for call in futures_util::future::join_all(calls).await {
        match call.unwrap() {
            (Ok(()), took) => admitted.push(took),
            (Err(e), _) if e.code() == Code::ResourceExhausted => shed += 1,
            (Err(e), _) => panic!("a call ended otherwise than OK or RESOURCE_EXHAUSTED: {e}"),
        }
    }
    assert_eq!(admitted.len() + shed, CALLS);
    assert!(shed > 0, "nothing was shed");
    assert!(admitted.len() >= LIMIT, "only {} admitted", admitted.len());
    assert_eq!(limit.in_flight(), 0, "every permit came back");
    admitted.sort();
    let p99 = admitted[admitted.len() * 99 / 100];
    println!(
        "{} admitted, {shed} shed; admitted p50 {:?}, p99 {p99:?} (handler {HANDLER_MS} ms)",
        admitted.len(),
        admitted[admitted.len() / 2]
    );
    service.stop().await.unwrap();
}

/// Where a test's log lines go.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_request_log_says_each_calls_endpoint_and_outcome_and_no_metadata() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // A current-thread runtime: the server's tasks log on this thread.
    let _guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
    let (service, client) = relay(
        Service::builder()
            .wrap_handler(RequestLog::new())
            .wrap_handler(NeedsUser),
    )
    .await;
    let options = CallOptions::new().metadata("x-user", "secret-ada");
    client.pass_with(last_hop(0), &options).await.unwrap();
    client.pass(last_hop(0)).await.unwrap_err();
    service.stop().await.unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let calls: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("micro::request"))
        .collect();
    assert_eq!(calls.len(), 2, "{log}");
    assert!(calls[0].contains("INFO") && calls[0].contains("endpoint=\"Relay.Pass\""));
    assert!(calls[0].contains("code=\"OK\""), "{}", calls[0]);
    assert!(calls[1].contains("WARN") && calls[1].contains("code=Unauthenticated"));
    assert!(
        !log.contains("secret-ada"),
        "a metadata value was logged: {log}"
    );
}

#[tokio::test]
async fn a_stream_holds_its_place_under_the_limit_until_its_last_response() {
    let limit = ConcurrencyLimit::new(1);
    let (service, client) = relay(Service::builder().wrap_handler(limit.clone())).await;
    let echo = EchoClient::new("relay", service.client());
    // A bidirectional stream: open while its client has more to send.
    let mut stream = echo.bidi().await.unwrap();
    let request = EchoRequest {
        message: "hi".into(),
        count: 1,
    };
    stream.send(request).await.unwrap();
    assert!(stream.recv().await.unwrap().is_some());
    assert_eq!(limit.in_flight(), 1);
    let err = client.pass(last_hop(0)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    stream.close_send();
    while stream.recv().await.unwrap().is_some() {}
    // The permit comes back once the stream has ended.
    let start = Instant::now();
    while limit.in_flight() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the stream kept its permit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.pass(last_hop(0)).await.unwrap();
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_refuses_calls_beyond_the_burst_and_one_users_flood_spares_another() {
    // Three calls a minute per user: the test is over long before a fourth is earned.
    let limit = RateLimit::per(3, Duration::from_secs(60)).per_metadata("x-user");
    let (service, client) = relay(Service::builder().wrap_handler(limit)).await;
    let as_user = |user: &str| CallOptions::new().metadata("x-user", user).retries(0);

    for _ in 0..3 {
        client
            .pass_with(last_hop(0), &as_user("ada"))
            .await
            .unwrap();
    }
    let err = client
        .pass_with(last_hop(0), &as_user("ada"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.detail().contains("per x-user"), "{err}");
    assert!(err.detail().contains("try again in"), "{err}");
    assert!(!err.detail().contains("ada"), "a metadata value in {err}");

    // Ada floods; Bob's calls, made meanwhile, are all answered.
    let flood = (0..200).map(|_| {
        let (client, options) = (client.clone(), as_user("ada"));
        tokio::spawn(async move { client.pass_with(last_hop(0), &options).await })
    });
    let flood = futures_util::future::join_all(flood);
    let bob = async {
        for _ in 0..3 {
            client.pass_with(last_hop(0), &as_user("bob")).await?;
        }
        Ok::<_, Error>(())
    };
    let (flood, bob) = tokio::join!(flood, bob);
    bob.expect("bob was refused");
    for call in flood {
        let err = call.unwrap().expect_err("a flooding call got through");
        assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    }
    // Bob, too, has his limit.
    let err = client
        .pass_with(last_hop(0), &as_user("bob"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_middleware_runs_as_a_handler_layer() {
    use micro_runtime::server::TowerLayer;
    let stack = tower::ServiceBuilder::new()
        .load_shed()
        .concurrency_limit(1)
        .timeout(Duration::from_secs(2))
        .into_inner();
    let (service, client) = relay(Service::builder().wrap_handler(TowerLayer::new(stack))).await;
    let options = CallOptions::new().retries(0);

    // tower's timeout: DEADLINE_EXCEEDED.
    let err = client
        .pass_with(last_hop(10_000), &options)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");

    // tower's concurrency limit of 1, shed: while a slow call holds the permit, the others
    // are RESOURCE_EXHAUSTED. (Fast calls until one is shed: the slow one is in by then.)
    let slow = tokio::spawn({
        let (client, options) = (client.clone(), options.clone());
        async move {
            // Shed itself when a fast call holds the permit at that moment: again.
            loop {
                match client.pass_with(last_hop(1_500), &options).await {
                    Err(e) if e.code() == Code::ResourceExhausted => {
                        tokio::time::sleep(Duration::from_millis(1)).await
                    }
                    outcome => return outcome,
                }
            }
        }
    });
    let shed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match client.pass_with(last_hop(0), &options).await {
                Err(e) => return e,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("no call was shed");
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed}");
    let slow = slow.await.unwrap();
    assert!(slow.is_ok(), "{slow:?}");
    // The permit came back.
    client.pass_with(last_hop(0), &options).await.unwrap();
    service.stop().await.unwrap();
}

/// A field of `/proc/<pid>/status`, in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_server_process_stays_bounded_and_logs_its_admitted_calls() {
    use std::process::{Command, Stdio};
    const CALLS: usize = 2_000;
    const HANDLER_MS: u32 = 50;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    // Layers from flags, as an operator would set them.
    let child = Command::new(micro_tests::example_binary("relay-server"))
        .args(["--server_name", "relay", "--server_address", "127.0.0.1:0"])
        .args(["--registry", "local", "--registry_address"])
        .arg(dir.path().join("registry"))
        .args(["--server_concurrency_limit", "100", "--server_request_log"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start relay-server");
    let server = micro_tests::Proc(child);
    let pid = server.0.id();
    let registry: Arc<dyn micro_runtime::Registry> = Arc::new(
        micro_runtime::registry::local::LocalRegistry::new(dir.path().join("registry")).unwrap(),
    );
    let client = RelayClient::new("relay", caller(registry).client());
    let options = CallOptions::new()
        .retries(0)
        .timeout(Duration::from_secs(30));
    let start = Instant::now();
    while client.pass_with(last_hop(0), &options).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "relay-server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = status_kib(pid, "VmRSS");

    let calls = (0..CALLS).map(|_| {
        let (client, options) = (client.clone(), options.clone());
        tokio::spawn(async move { client.pass_with(last_hop(HANDLER_MS), &options).await })
    });
    let (mut admitted, mut shed) = (0, 0);
    for call in futures_util::future::join_all(calls).await {
        match call.unwrap() {
            Ok(_) => admitted += 1,
            Err(e) if e.code() == Code::ResourceExhausted => shed += 1,
            Err(e) => panic!("a call ended otherwise than OK or RESOURCE_EXHAUSTED: {e}"),
        }
    }
    assert_eq!(admitted + shed, CALLS);
    assert!(
        shed > 0 && admitted >= 100,
        "{admitted} admitted, {shed} shed"
    );
    let peak = status_kib(pid, "VmHWM");
    drop(server);

    // The server's own figure: how long each admitted call took inside it (RequestLog).
    let text = std::fs::read_to_string(&log).unwrap();
    let mut took: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("micro::request") && l.contains("code=\"OK\""))
        .filter_map(|l| {
            l.split("took_us=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    // Every admitted call (and the warm-up ones) is logged, every shed one too.
    assert!(took.len() > admitted, "{} OK lines", took.len());
    let shed_lines = text.matches("ResourceExhausted").count();
    assert_eq!(shed_lines, shed, "each shed call is logged");
    took.sort_unstable();
    let ms = |q: usize| took[(took.len() * q / 100).min(took.len() - 1)] as f64 / 1000.0;
    println!(
        "{admitted} admitted, {shed} shed; admitted in the server: p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms (handler {HANDLER_MS} ms); resident {} MiB before, peak {} MiB",
        ms(50),
        ms(99),
        ms(100),
        rss_before / 1024,
        peak / 1024
    );
    assert!(
        peak < rss_before + 64 * 1024,
        "2,000 calls at once cost the server {} KiB",
        peak - rss_before
    );
}
