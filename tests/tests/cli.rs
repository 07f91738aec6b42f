//! The `micro` command line against the example services as separate processes, found
//! through the default `local` registry (each test in its own registry directory), and the
//! standard gRPC health service every server answers, asked by `micro health` and by
//! grpcio-health-checking's client.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use micro_tests::broker::{EventSubscriber, PATIENCE};
use micro_tests::etcd::Etcd;
use micro_tests::{Proc, chromium_dom, example_binary, line_after, python};
use serde_json::Value;

/// The flags that name a registry: the local one in a directory, or an etcd.
struct Reg(Vec<String>);

impl Reg {
    fn local(dir: &Path) -> Reg {
        Reg::of("local", dir.to_str().expect("a UTF-8 path"))
    }

    fn of(kind: &str, address: &str) -> Reg {
        Reg(["--registry", kind, "--registry_address", address]
            .map(str::to_owned)
            .to_vec())
    }

    /// These flags added.
    fn with(mut self, flags: &[&str]) -> Reg {
        self.0.extend(flags.iter().map(|f| f.to_string()));
        self
    }
}

/// Runs `micro` on the registry `dir`.
fn micro(dir: &Reg, args: &[&str]) -> Output {
    Command::new(example_binary("micro"))
        .args(&dir.0)
        .args(["--client_request_timeout", "10s"])
        .args(args)
        .output()
        .expect("run micro")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// `micro ARGS` succeeded; its stdout.
fn ok(dir: &Reg, args: &[&str]) -> String {
    let o = micro(dir, args);
    assert!(o.status.success(), "micro {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

/// `micro ARGS` failed with exit status 1 and nothing on stdout; its stderr.
fn fails(dir: &Reg, args: &[&str]) -> String {
    let o = micro(dir, args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "micro {args:?}: {} / {}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(stdout(&o), "", "micro {args:?}");
    stderr(&o)
}

/// Starts example server `bin` on a free loopback port in the registry in `dir`; returns it
/// once `service` lists one more node, with that node's address.
fn start(bin: &str, service: &str, dir: &Reg) -> (Proc, String) {
    let before = addresses(dir, service);
    let child = Command::new(example_binary(bin))
        .args(["--server_address", "127.0.0.1:0"])
        .args(&dir.0)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let proc = Proc(child);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(new) = addresses(dir, service)
            .into_iter()
            .find(|a| !before.contains(a))
        {
            return (proc, new);
        }
        assert!(
            Instant::now() < deadline,
            "{bin} did not register {service}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The node addresses of `service`, as `micro get service` prints them.
fn addresses(dir: &Reg, service: &str) -> Vec<String> {
    let o = micro(dir, &["get", "service", service]);
    if !o.status.success() {
        return Vec::new();
    }
    records(&stdout(&o))
        .iter()
        .flat_map(|r| r["nodes"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n["address"].as_str().map(str::to_owned))
        .collect()
}

/// The JSON values printed one after another (pretty-printed or one per line).
fn records(out: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .map(|v| v.expect("micro printed JSON"))
        .collect()
}

#[test]
fn micro_lists_describes_and_calls_services() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let (_greeter, address) = start("greeter-server", "greeter", dir);
    let (_echo, _) = start("echo-server", "echo", dir);

    assert_eq!(ok(dir, &["list", "services"]), "echo\ngreeter");

    let described = records(&ok(dir, &["get", "service", "greeter"]));
    assert_eq!(described.len(), 1, "one version: {described:?}");
    let record = &described[0];
    assert_eq!(record["name"], "greeter");
    assert_eq!(record["version"], "latest");
    assert_eq!(record["nodes"][0]["address"], address.as_str());
    assert_eq!(record["nodes"][0]["metadata"]["protocol"], "grpc");
    let endpoint = &record["endpoints"][0];
    assert_eq!(endpoint["name"], "Greeter.Hello");
    assert_eq!(endpoint["request"]["values"][0]["name"], "name");
    assert_eq!(endpoint["response"]["values"][0]["name"], "greeting");

    let rsp = records(&ok(
        dir,
        &["call", "greeter", "Greeter.Hello", r#"{"name": "John"}"#],
    ));
    assert_eq!(rsp, [serde_json::json!({ "greeting": "Hello, John!" })]);
    // No request is the empty message; a node address is called as is, without the registry
    // (here one where greeter is not registered).
    let elsewhere = tempfile::tempdir().unwrap();
    let elsewhere = &Reg::local(elsewhere.path());
    let err = fails(elsewhere, &["call", "greeter", "Greeter.Hello"]);
    assert!(err.starts_with("error: NotFound"), "{err}");
    let rsp = records(&ok(
        elsewhere,
        &[
            "call",
            "--address",
            &address,
            "--metadata",
            "trace=1",
            "--metadata",
            "user=ada,lovelace",
            "greeter",
            "Greeter.Hello",
        ],
    ));
    assert_eq!(rsp, [serde_json::json!({ "greeting": "Hello, !" })]);

    let replies = ok(
        dir,
        &[
            "stream",
            "echo",
            "Echo.ServerStream",
            r#"{"message": "hi", "count": 3}"#,
        ],
    );
    let lines: Vec<&str> = replies.lines().collect();
    assert_eq!(lines.len(), 3, "{replies}");
    for (i, line) in lines.iter().enumerate() {
        let reply: Value = serde_json::from_str(line).expect("one JSON per line");
        assert_eq!(reply["message"], "hi");
        assert_eq!(reply["index"].as_u64().unwrap_or(0), i as u64, "{line}");
    }
    // `micro call` on a streaming endpoint sends nothing and says which command to use.
    for endpoint in ["Echo.ServerStream", "Echo.Bidi"] {
        let err = fails(dir, &["call", "echo", endpoint, r#"{"message": "hi"}"#]);
        assert!(err.starts_with("error: InvalidArgument"), "{err}");
        let hint = format!("call it with `micro stream echo {endpoint}`");
        assert!(err.contains(&hint), "{err}");
    }
}

/// `micro stream --stdin`: client and bidirectional streams from stdin's lines.
#[test]
fn micro_streams_stdin_to_client_and_bidirectional_streams() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let (_echo, _) = start("echo-server", "echo", dir);
    let run = |endpoint: &str, input: &str| {
        let mut child = Command::new(example_binary("micro"))
            .args(&dir.0)
            .args(["stream", "--stdin", "echo", endpoint])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start micro stream");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().expect("micro stream")
    };
    let input = "{\"message\": \"a\"}\n\n{\"message\": \"b\"}\n{\"message\": \"c\"}\n";
    let o = run("Echo.Bidi", input);
    assert!(o.status.success(), "{}", stderr(&o));
    let replies = records(&stdout(&o));
    let messages: Vec<&str> = replies
        .iter()
        .filter_map(|r| r["message"].as_str())
        .collect();
    assert_eq!(messages, ["a", "b", "c"], "{replies:?}");
    let o = run("Echo.ClientStream", input);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        records(&stdout(&o)),
        [serde_json::json!({ "message": "a,b,c", "index": 3 })]
    );
    // A line that is not JSON ends the call with an error, and nothing more is sent.
    let o = run("Echo.ClientStream", "{\"message\": \"a\"}\nnot json\n");
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("not JSON"), "{}", stderr(&o));
}

#[test]
fn micro_reports_bad_calls_with_their_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let (_greeter, _) = start("greeter-server", "greeter", dir);

    let err = fails(dir, &["call", "greeter", "Greeter.Nope", "{}"]);
    assert!(err.starts_with("error: Unimplemented"), "{err}");
    let err = fails(dir, &["call", "nosuch", "Greeter.Hello", "{}"]);
    assert!(err.starts_with("error: NotFound"), "{err}");
    assert!(err.contains("nosuch"), "{err}");
    let err = fails(dir, &["call", "greeter", "Greeter.Hello", "{bad"]);
    assert!(err.starts_with("error: InvalidArgument"), "{err}");
    assert!(err.contains("not JSON"), "{err}");
    // Decoded by the server, which says what is wrong.
    let err = fails(dir, &["call", "greeter", "Greeter.Hello", r#"{"name": 5}"#]);
    assert!(err.starts_with("error: InvalidArgument"), "{err}");
    let err = fails(dir, &["call", "greeter", "Hello", "{}"]);
    assert!(err.contains("expected Handler.Method"), "{err}");
    let err = fails(
        dir,
        &["call", "--metadata", "novalue", "greeter", "Greeter.Hello"],
    );
    assert!(err.contains("not key=value"), "{err}");
    let err = fails(dir, &["get", "service", "nosuch"]);
    assert!(err.starts_with("error: NotFound"), "{err}");
    let err = fails(
        dir,
        &["register", "service", r#"{"name": "", "nodes": []}"#],
    );
    assert!(err.starts_with("error: InvalidArgument"), "{err}");
    assert!(err.contains("empty service name"), "{err}");
}

/// On etcd, where a record outlives the command that wrote it: `micro register` adds a node
/// that is gone, `micro health` names it, `micro deregister` removes it.
#[test]
fn micro_health_checks_every_node_and_names_a_dead_one() {
    let etcd = Etcd::single();
    let dir = &Reg::of("etcd", &etcd.endpoints());
    let (_greeter, address) = start("greeter-server", "greeter", dir);

    for check in [&[][..], &["--check", "greeter.Greeter"]] {
        let out = ok(dir, &[&["health", "greeter"][..], check].concat());
        let fields: Vec<&str> = out.split('\t').collect();
        assert_eq!(fields.len(), 4, "{out}");
        assert_eq!(
            (fields[0], fields[2], fields[3]),
            ("latest", address.as_str(), "SERVING")
        );
    }
    let o = micro(dir, &["health", "greeter", "--check", "greeter.Nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).ends_with("\tNotFound: unknown service \"greeter.Nope\""),
        "{}",
        stdout(&o)
    );
    let err = fails(dir, &["health", "nosuch"]);
    assert!(err.starts_with("error: NotFound"), "{err}");

    // A node that is registered but gone (nothing listens on port 1).
    let ghost = r#"{"name": "greeter", "version": "latest", "nodes": [{"id": "greeter-ghost", "address": "127.0.0.1:1"}]}"#;
    ok(dir, &["register", "service", ghost]);
    let stored = etcd.etcdctl_ok(&[
        "get",
        "--print-value-only",
        "/micro/registry/greeter/greeter-ghost",
    ]);
    assert!(stored.contains(r#""address":"127.0.0.1:1""#), "{stored}");
    let o = micro(dir, &["health", "greeter", "--timeout", "3s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("latest\tgreeter-ghost\t127.0.0.1:1\tUnavailable")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.ends_with(&format!("{address}\tSERVING"))),
        "{out}"
    );

    ok(dir, &["deregister", "service", ghost]);
    assert_eq!(addresses(dir, "greeter"), [address]);
    ok(dir, &["health", "greeter"]);
}

/// The local registry removes a record when the process that wrote it exits, so a record
/// `micro register` wrote would be gone as the command ends: it says so instead (and so
/// for the memory registry, also for deregister).
#[test]
fn micro_register_refuses_registries_whose_records_die_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let record = r#"{"name": "svc", "nodes": [{"id": "svc-1", "address": "127.0.0.1:1"}]}"#;
    for reg in [Reg::local(tmp.path()), Reg::of("memory", "")] {
        let err = fails(&reg, &["register", "service", record]);
        assert!(err.starts_with("error: FailedPrecondition"), "{err}");
        assert!(err.contains("etcd"), "{err}");
    }
    // Another process's record in memory is out of reach; local records are files any
    // process may remove.
    let err = fails(&Reg::of("memory", ""), &["deregister", "service", record]);
    assert!(err.starts_with("error: FailedPrecondition"), "{err}");
    ok(&Reg::local(tmp.path()), &["deregister", "service", record]);
}

/// grpcio-health-checking's client, the reference implementation of the protocol.
fn python_health(address: &str, service: &str) -> String {
    let o = python()
        .args(["tests/python/health_check.py", "--address", address])
        .args(["--service", service])
        .output()
        .expect("run health_check.py");
    assert_ne!(o.status.code(), Some(2), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn standard_grpc_health_clients_see_the_server_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let (_greeter, address) = start("greeter-server", "greeter", dir);
    for service in ["", "greeter", "greeter.Greeter"] {
        assert_eq!(
            python_health(&address, service),
            "STATUS SERVING",
            "service {service:?}"
        );
    }
    let out = python_health(&address, "greeter.Nope");
    assert!(out.starts_with("ERROR NOT_FOUND"), "{out}");
}

/// The brokers the toolkit's broker tests run over: the default HTTP broker and core NATS.
const BROKERS: [&[&str]; 2] = [
    &[],
    &[
        "--broker",
        "nats",
        "--broker_address",
        "nats://127.0.0.1:4222",
    ],
];

/// Over the default HTTP broker (each publish waits for the subscriber) and over core NATS
/// (where a publish is only queued: the command flushes it before it ends).
#[test]
fn micro_publishes_json_to_subscribers() {
    for broker in BROKERS {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Reg::local(tmp.path()).with(broker);
        let topic = micro_tests::broker::unique_topic("cli");
        let args: Vec<&str> = reg.0.iter().map(String::as_str).collect();
        let subscriber = EventSubscriber::start(&[&args[..], &["--topic", &topic]].concat());
        for id in 1..=3 {
            let message = format!(r#"{{"id": {id}, "text": "from the command line"}}"#);
            ok(
                &reg,
                &["publish", "--metadata", "source=cli", &topic, &message],
            );
        }
        for id in 1..=3 {
            assert_eq!(subscriber.next(PATIENCE), Some(id), "{broker:?}");
        }
        let err = fails(&reg, &["publish", &topic, "not json"]);
        assert!(err.starts_with("error: InvalidArgument"), "{err}");
    }
}

/// `micro api` on a free loopback port, with `extra` flags; returns it with its address.
fn start_api(dir: &Reg, extra: &[&str]) -> (Proc, String) {
    start_server("api", dir, extra)
}

/// `micro COMMAND` (api or web) on a free loopback port, with `extra` flags; returns it
/// with its address once it listens.
fn start_server(command: &str, dir: &Reg, extra: &[&str]) -> (Proc, String) {
    let mut child = Command::new(example_binary("micro"))
        .args(&dir.0)
        .args([command, "--address", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start micro");
    let stderr = child.stderr.take().expect("stderr");
    let proc = Proc(child);
    let address = line_after(stderr, &format!("micro {command}: listening on "))
        .unwrap_or_else(|| panic!("micro {command} exited before listening"));
    (proc, address)
}

/// Stops `proc` with SIGTERM and waits for it to exit successfully.
fn terminate(proc: &mut Proc) {
    sigterm(proc);
    exits(proc);
}

/// Sends `proc` SIGTERM.
fn sigterm(proc: &Proc) {
    let killed = Command::new("kill")
        .args(["-TERM", &proc.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
}

/// Waits for `proc` to exit, successfully.
fn exits(proc: &mut Proc) {
    let exited = proc.0.wait().expect("wait for the process");
    assert!(exited.success(), "{exited}");
}

/// One HTTP/1.1 request; the response's status and body.
fn http(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_with_head(address, method, target, headers, body);
    (status, body)
}

/// One HTTP/1.1 request; the response's status, head (status line and headers, names in
/// lower case) and body, as JSON.
fn http_with_head(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let (status, head, body) = raw_http(address, method, target, headers, body);
    assert!(
        status == 204 || head.contains("content-type: application/json"),
        "{head}"
    );
    (status, head, body)
}

/// One HTTP/1.1 request; the response's status, head (names in lower case) and body.
fn raw_http(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(address).expect("connect to the gateway");
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("host: {address}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    conn.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The response is go-micro's error JSON with `code` as its status, its detail holding
/// `detail`.
fn expect_error((status, body): (u16, String), code: u16, detail: &str) {
    let err = json(&body);
    assert_eq!(
        (status, err["code"].as_u64()),
        (code, Some(code as u64)),
        "{body}"
    );
    assert!(
        err["detail"].as_str().unwrap_or_default().contains(detail),
        "{body}"
    );
    assert!(err["status"].is_string(), "{body}");
}

const JSON: (&str, &str) = ("content-type", "application/json");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
/// What a browser says of a request from a page of the server's own origin.
const SAME_ORIGIN: (&str, &str) = ("sec-fetch-site", "same-origin");

/// go-micro's API gateway: paths resolved under the namespace, `/rpc`, requests from JSON
/// bodies, form fields and query parameters, errors as go-micro's error JSON with their
/// HTTP status.
#[test]
fn micro_api_turns_http_into_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    // Named in the default namespace, as go-micro's API expects its services.
    let child = Command::new(example_binary("greeter-server"))
        .args([
            "--server_address",
            "127.0.0.1:0",
            "--server_name",
            "go.micro.api.greeter",
        ])
        .args(&dir.0)
        .stderr(Stdio::null())
        .spawn()
        .expect("start greeter-server");
    let _greeter = Proc(child);
    let deadline = Instant::now() + PATIENCE;
    while addresses(dir, "go.micro.api.greeter").is_empty() {
        assert!(Instant::now() < deadline, "the greeter did not register");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A dead node fails at once, not after the client's retries.
    let mut gateway = Reg::local(tmp.path());
    gateway
        .0
        .extend(["--client_retries", "0", "--max_message_size", "1000"].map(str::to_owned));
    let (_api, api) = start_api(&gateway, &[]);

    let hello = |name: &str| serde_json::json!({ "greeting": format!("Hello, {name}!") });
    let (status, body) = http(
        &api,
        "POST",
        "/greeter/hello",
        &[JSON],
        r#"{"name": "John"}"#,
    );
    assert_eq!((status, json(&body)), (200, hello("John")));
    let (status, body) = http(&api, "GET", "/greeter/hello?name=Ada", &[], "");
    assert_eq!((status, json(&body)), (200, hello("Ada")));
    // Form fields, from a page of the gateway's own origin; a form with no origin at all is
    // what a page elsewhere could send, refused.
    let (status, body) = http(
        &api,
        "POST",
        "/greeter/hello",
        &[FORM, SAME_ORIGIN],
        "name=B%C3%B8+B",
    );
    assert_eq!((status, json(&body)), (200, hello("Bø B")));
    let (status, body) = http(&api, "POST", "/greeter/hello", &[FORM], "name=B%C3%B8+B");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("send JSON"), "{body}");
    let (status, body) = http(&api, "POST", "/greeter/hello", &[("timeout", "5")], "");
    assert_eq!((status, json(&body)), (200, hello("")));

    let rpc = r#"{"service": "go.micro.api.greeter", "endpoint": "Greeter.Hello", "request": {"name": "Cy"}}"#;
    let (status, body) = http(&api, "POST", "/rpc", &[JSON], rpc);
    assert_eq!((status, json(&body)), (200, hello("Cy")));
    let rpc = r#"{"service": "go.micro.api.greeter", "method": "Greeter.Hello", "request": "{\"name\": \"Di\"}"}"#;
    let (status, body) = http(&api, "POST", "/rpc", &[JSON], rpc);
    assert_eq!((status, json(&body)), (200, hello("Di")));
    let form =
        "service=go.micro.api.greeter&endpoint=Greeter.Hello&request=%7B%22name%22%3A%22Ed%22%7D";
    let (status, body) = http(&api, "POST", "/rpc", &[FORM, SAME_ORIGIN], form);
    assert_eq!((status, json(&body)), (200, hello("Ed")));
    let (status, body) = http(&api, "GET", &format!("/rpc?{form}"), &[], "");
    assert_eq!((status, json(&body)), (200, hello("Ed")));
    // A CORS preflight calls nothing.
    let (status, body) = http(&api, "OPTIONS", "/greeter/hello", &[], "");
    assert_eq!((status, body.as_str()), (204, ""));

    // Errors: go-micro's JSON, its code as the status.
    let (status, body) = http(&api, "GET", "/nosuch/hello", &[], "");
    expect_error((status, body), 404, "go.micro.api.nosuch");
    let (status, body) = http(&api, "GET", "/greeter/nope", &[], "");
    expect_error((status, body), 501, "Nope");
    let (status, body) = http(&api, "POST", "/greeter/hello", &[JSON], "{oops");
    expect_error((status, body), 400, "not JSON");
    let (status, body) = http(&api, "POST", "/greeter/hello", &[JSON], r#"{"name": 5}"#);
    expect_error((status, body), 400, "decode json");
    let (status, body) = http(&api, "POST", "/greeter/hello", &[("timeout", "soon")], "");
    expect_error((status, body), 400, "Timeout");
    let (status, body) = http(
        &api,
        "POST",
        "/rpc",
        &[JSON],
        r#"{"endpoint": "Greeter.Hello"}"#,
    );
    expect_error((status, body), 400, "service and endpoint");
    let dead = r#"{"service": "go.micro.api.greeter", "endpoint": "Greeter.Hello", "address": "127.0.0.1:1"}"#;
    let (status, body) = http(&api, "POST", "/rpc", &[JSON], dead);
    expect_error((status, body), 503, "");
    let (status, body) = http(&api, "GET", "/", &[], "");
    expect_error((status, body), 400, "no service");
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(2000));
    let (status, body) = http(&api, "POST", "/greeter/hello", &[JSON], &big);
    expect_error((status, body), 413, "");
}

/// With no namespace the path names the registered service itself. CORS headers go only to
/// the origins `--cors` names (go-micro's headers), on preflights and calls alike; a gateway
/// without `--cors` sends none.
#[test]
fn micro_api_without_a_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let (_greeter, _) = start("greeter-server", "greeter", dir);
    let allowed = "http://app.example";
    let cors = format!("{allowed}, http://other.example");
    let (_api, api) = start_api(dir, &["--namespace", "", "--cors", &cors]);
    let (status, head, body) = http_with_head(
        &api,
        "GET",
        "/greeter/hello?name=Flo",
        &[("origin", allowed)],
        "",
    );
    assert_eq!(
        (status, json(&body)),
        (200, serde_json::json!({ "greeting": "Hello, Flo!" }))
    );
    let has = |head: &str, lines: &[&str]| {
        for line in lines {
            assert!(
                head.contains(&format!("{line}\r\n")),
                "{line} not in {head}"
            );
        }
    };
    has(
        &head,
        &[
            &format!("access-control-allow-origin: {allowed}"),
            "access-control-allow-credentials: true",
        ],
    );
    let (status, head, _) = http_with_head(
        &api,
        "OPTIONS",
        "/greeter/hello",
        &[("origin", allowed)],
        "",
    );
    assert_eq!(status, 204);
    has(
        &head,
        &[
            "access-control-allow-methods: post, get, options, put, delete",
            "access-control-allow-headers: content-type, content-length, accept-encoding, x-csrf-token, authorization",
        ],
    );
    // Another origin calls nothing, and gets no CORS headers.
    let (status, head, _) = http_with_head(
        &api,
        "GET",
        "/greeter/hello",
        &[("origin", "http://elsewhere.example")],
        "",
    );
    assert_eq!(status, 403);
    assert!(!head.contains("access-control"), "{head}");
    let (_plain, plain) = start_api(dir, &["--namespace", ""]);
    let (_, head, _) = http_with_head(&plain, "OPTIONS", "/x", &[("origin", allowed)], "");
    assert!(!head.contains("access-control"), "{head}");
}

type Socket = tungstenite::WebSocket<std::net::TcpStream>;
type Handshake = tungstenite::HandshakeError<tungstenite::ClientHandshake<std::net::TcpStream>>;

/// A WebSocket to `path` at `address` (reads time out after PATIENCE).
fn websocket(
    address: &str,
    path: &str,
) -> Result<(Socket, tungstenite::handshake::client::Response), Box<Handshake>> {
    websocket_with(address, path, &[])
}

/// A WebSocket to `path` at `address`, its upgrade request with `headers` added.
fn websocket_with(
    address: &str,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<(Socket, tungstenite::handshake::client::Response), Box<Handshake>> {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{address}{path}")
        .into_client_request()
        .expect("a WebSocket request");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("a header value"));
    }
    let stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    tungstenite::client(request, stream).map_err(Box::new)
}

/// The gateway and the sidecar refuse (403) and call nothing for what a web page elsewhere
/// sends through a browser: a cross-site request, a form or `text/plain` POST with no origin,
/// another origin, a host name rebound to this machine (unless `--allowed_hosts` names it),
/// and WebSockets of such pages.
#[test]
fn micro_api_and_sidecar_refuse_other_sites_and_rebound_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let (_greeter, _) = start("greeter-server", "greeter", dir);
    let (_api, api) = start_api(dir, &["--namespace", ""]);
    let (_sidecar, sidecar) = start_server("sidecar", dir, &[]);
    let hello = r#"{"name": "Mallory"}"#;
    let refused =
        |address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
            let (status, body) = http(address, method, path, headers, body);
            assert_eq!(status, 403, "{method} {path} {headers:?}: {body}");
            assert!(
                json(&body)["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("refused:")),
                "{body}"
            );
        };
    for address in [&api, &sidecar] {
        // DNS rebinding: a name of the attacker's pointing at this machine.
        refused(
            address,
            "POST",
            "/greeter/hello",
            &[("host", "evil.com"), JSON],
            hello,
        );
        refused(
            address,
            "GET",
            "/greeter/hello?name=x",
            &[("host", "evil.com:8080")],
            "",
        );
        // A page elsewhere: its form, its fetch (text/plain needs no preflight), an image.
        let form = [("origin", "https://evil.com"), FORM];
        refused(
            address,
            "POST",
            "/rpc",
            &form,
            "service=greeter&endpoint=Greeter.Hello",
        );
        refused(
            address,
            "POST",
            "/greeter/hello",
            &[("content-type", "text/plain")],
            hello,
        );
        refused(
            address,
            "GET",
            "/greeter/hello",
            &[("sec-fetch-site", "cross-site")],
            "",
        );
        let cross = [("sec-fetch-site", "same-site"), JSON];
        refused(address, "POST", "/greeter/hello", &cross, hello);
        // Tools pass.
        let (status, body) = http(address, "POST", "/greeter/hello", &[JSON], hello);
        assert_eq!(status, 200, "{body}");
        // A WebSocket of a page on a rebound name: Host and Origin agree, still refused.
        let socket = websocket_with(
            address,
            "/echo/server-stream?message=x&count=1",
            &[("host", "evil.com"), ("origin", "http://evil.com")],
        );
        match socket.map_err(|e| *e) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(rsp))) => {
                assert_eq!(rsp.status(), 403);
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a WebSocket from a rebound host was accepted"),
        }
    }
    // The sidecar's registry: a page elsewhere registers nothing.
    let record = r#"{"name": "planted", "nodes": [{"id": "planted-1", "address": "127.0.0.1:1"}]}"#;
    refused(
        &sidecar,
        "POST",
        "/registry",
        &[
            ("origin", "https://evil.com"),
            ("content-type", "text/plain"),
        ],
        record,
    );
    refused(
        &sidecar,
        "POST",
        "/registry",
        &[("content-type", "text/plain")],
        record,
    );
    let err = fails(dir, &["get", "service", "planted"]);
    assert!(err.starts_with("error: NotFound"), "{err}");
    // Behind a proxy, by name: --allowed_hosts.
    let (_named, named) = start_api(
        dir,
        &["--namespace", "", "--allowed_hosts", "api.example.com"],
    );
    let (status, body) = http(
        &named,
        "POST",
        "/greeter/hello",
        &[("host", "api.example.com"), JSON],
        hello,
    );
    assert_eq!(status, 200, "{body}");
    refused(
        &named,
        "POST",
        "/greeter/hello",
        &[("host", "evil.com"), JSON],
        hello,
    );
}

/// The sidecar keeps one record per node registered through it: the same node POSTed 300
/// times (a record of ~900 KB) is one record, not 300 (its memory grew by ~290 MB before).
#[test]
fn micro_sidecar_keeps_one_record_per_node() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let (sidecar, address) = start_server("sidecar", dir, &[]);
    let big = "x".repeat(900_000);
    let record = serde_json::json!({
        "name": "bulky",
        "metadata": {"blob": big},
        "nodes": [{"id": "bulky-1", "address": "127.0.0.1:1"}],
    })
    .to_string();
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", sidecar.0.id())).unwrap();
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .trim()
                    .strip_suffix(" kB")?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap()
    };
    let post = || {
        let (status, body) = http(&address, "POST", "/registry", &[JSON], &record);
        assert_eq!(status, 200, "{body}");
    };
    for _ in 0..20 {
        post();
    }
    let warm = rss();
    for _ in 0..280 {
        post();
    }
    let grown = rss().saturating_sub(warm) / 1024;
    assert!(
        grown < 50,
        "the sidecar grew by {grown} MB over 280 POSTs of one node"
    );
    let out = ok(dir, &["get", "service", "bulky"]);
    assert_eq!(
        records(&out)[0]["nodes"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );
}

/// A client that sends its request head a byte at a time, or nothing, is closed at the
/// header timeout (`--header_timeout`), by the gateway, the sidecar and the dashboard.
#[test]
fn http_fronts_close_trickling_and_silent_connections() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    for command in ["api", "sidecar", "web"] {
        let (_front, address) = start_server(command, dir, &["--header_timeout", "1s"]);
        let started = std::time::Instant::now();
        let mut silent = std::net::TcpStream::connect(&address).unwrap();
        let mut trickling = std::net::TcpStream::connect(&address).unwrap();
        let mut closed = false;
        for byte in b"GET / HTTP/1.1\r\nx-slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            if trickling.write_all(&[*byte]).is_err() {
                closed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        assert!(
            closed,
            "micro {command} kept a trickling connection for 10 s"
        );
        silent.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = [0u8; 512];
        loop {
            match silent.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("micro {command} kept a silent connection: {e}"),
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "micro {command}: {:?}",
            started.elapsed()
        );
    }
}

/// `micro api` serves streaming endpoints over WebSocket, as go-micro's rpc handler does:
/// a server stream takes its request from the query, a bidirectional one from the socket's
/// messages; each response is a text message, the stream's end a close frame (1000), its
/// failure 1011 with the error, a message that is not JSON 1007. A WebSocket request for
/// a unary endpoint is answered as a call.
#[test]
fn micro_api_streams_over_websocket() {
    use tungstenite::Message;
    use tungstenite::protocol::CloseFrame;
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let (_echo, _) = start("echo-server", "echo", dir);
    let (_api, api) = start_api(dir, &["--namespace", ""]);
    let open = |path: &str| websocket(&api, path);
    let echo = |message: &Message| -> (String, u64) {
        let Message::Text(text) = message else {
            panic!("expected a text message, got {message:?}");
        };
        let reply = json(text);
        let index = reply.get("index").and_then(Value::as_u64).unwrap_or(0);
        (
            reply["message"].as_str().unwrap_or_default().to_owned(),
            index,
        )
    };
    let closed = |message: Message| -> (u16, String) {
        match message {
            Message::Close(Some(CloseFrame { code, reason })) => (code.into(), reason.to_string()),
            other => panic!("expected a close frame, got {other:?}"),
        }
    };

    // Server stream: the request from the query (values as strings, as go-micro's).
    let (mut socket, _) = open("/echo/server-stream?message=hi&count=3").expect("upgrade");
    for i in 0..3 {
        assert_eq!(echo(&socket.read().unwrap()), ("hi".to_owned(), i));
    }
    assert_eq!(closed(socket.read().unwrap()), (1000, String::new()));

    // Bidirectional: each message a request, text or binary, answered as it comes.
    let (mut socket, _) = open("/echo/bidi").expect("upgrade");
    socket.send(Message::text(r#"{"message": "a"}"#)).unwrap();
    assert_eq!(echo(&socket.read().unwrap()), ("a".to_owned(), 0));
    socket
        .send(Message::binary(br#"{"message": "b"}"#.to_vec()))
        .unwrap();
    assert_eq!(echo(&socket.read().unwrap()), ("b".to_owned(), 1));
    socket.send(Message::text("not json")).unwrap();
    let (code, reason) = closed(socket.read().unwrap());
    assert_eq!(code, 1007, "{reason}");
    assert!(
        reason.starts_with("InvalidArgument: request is not JSON"),
        "{reason}"
    );

    // The stream's failure (after its first reply) closes the socket with its error.
    let (mut socket, _) = open("/echo/server-stream?message=fail&count=2").expect("upgrade");
    assert_eq!(echo(&socket.read().unwrap()), ("fail".to_owned(), 0));
    let (code, reason) = closed(socket.read().unwrap());
    assert_eq!(code, 1011, "{reason}");
    assert!(reason.starts_with("InvalidArgument"), "{reason}");

    // The client closing the socket ends the relay at once.
    let (mut socket, _) = open("/echo/bidi").expect("upgrade");
    socket.close(None).unwrap();
    let end = loop {
        match socket.read() {
            Ok(Message::Close(_)) => continue,
            Ok(other) => panic!("a message after the close: {other:?}"),
            Err(end) => break end,
        }
    };
    assert!(matches!(end, tungstenite::Error::ConnectionClosed), "{end}");

    // Offered the `binary` subprotocol, responses come as binary messages.
    let (mut socket, response) = websocket_with(
        &api,
        "/echo/bidi",
        &[("sec-websocket-protocol", "x, binary")],
    )
    .expect("upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], "binary");
    socket.send(Message::text(r#"{"message": "c"}"#)).unwrap();
    match socket.read().unwrap() {
        Message::Binary(bytes) => {
            assert_eq!(json(&String::from_utf8_lossy(&bytes))["message"], "c")
        }
        other => panic!("expected a binary message, got {other:?}"),
    }

    // From a page of another origin: refused (browsers apply no CORS to WebSockets); from
    // the gateway's own origin: accepted.
    let foreign = [("origin", "http://elsewhere.example")];
    match websocket_with(&api, "/echo/bidi", &foreign).map_err(|e| *e) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected a 403, got {:?}", other.map(|_| ())),
    }
    let own = format!("http://{api}");
    websocket_with(&api, "/echo/bidi", &[("origin", &own)]).expect("upgrade from its own origin");

    // A unary endpoint: no upgrade, the call's answer.
    match open("/echo/unary?message=u").map_err(|e| *e) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 200);
            let body = response.body().as_deref().unwrap_or_default();
            assert_eq!(json(&String::from_utf8_lossy(body))["message"], "u");
        }
        other => panic!(
            "expected the call's answer, not an upgrade: {:?}",
            other.map(|_| ())
        ),
    }
}

/// `micro sidecar`'s `/broker?topic=` as a WebSocket, as go-micro's: messages on the topic
/// come as go-micro's JSON of a broker message (body in base64), messages from the socket
/// are published to it; over the HTTP broker and NATS, with `micro publish` as another
/// process.
#[test]
fn micro_sidecar_subscribes_websockets_to_the_broker() {
    use base64::prelude::{BASE64_STANDARD, Engine as _};
    use tungstenite::Message;
    for broker in BROKERS {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Reg::local(tmp.path()).with(broker);
        let (mut sidecar, address) = start_server("sidecar", &reg, &[]);
        let topic = micro_tests::broker::unique_topic("ws");
        let (mut socket, _) = websocket(&address, &format!("/broker?topic={topic}"))
            .unwrap_or_else(|e| panic!("{broker:?}: upgrade: {e}"));
        let next = |socket: &mut Socket| -> (Value, String) {
            let Message::Text(text) = socket.read().expect("a message") else {
                panic!("{broker:?}: expected a text message");
            };
            let message = json(&text);
            let body = BASE64_STANDARD
                .decode(message["Body"].as_str().expect("Body"))
                .expect("base64");
            (message["Header"].clone(), String::from_utf8(body).unwrap())
        };
        // The socket's own message, published and delivered back: the subscription is on.
        socket.send(Message::text("from the socket")).unwrap();
        let (header, body) = next(&mut socket);
        assert_eq!(body, "from the socket", "{broker:?}");
        assert_eq!(header["Content-Type"], "text/plain", "{broker:?}: {header}");
        // Another process's publish.
        ok(&reg, &["publish", &topic, r#"{"id": 7}"#]);
        let (header, body) = next(&mut socket);
        assert_eq!(json(&body), serde_json::json!({ "id": 7 }), "{broker:?}");
        assert_eq!(
            header["Micro-Topic"],
            topic.as_str(),
            "{broker:?}: {header}"
        );
        socket.close(None).unwrap();

        // No topic: refused before any upgrade.
        match websocket(&address, "/broker").map_err(|e| *e) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), 400, "{broker:?}");
            }
            other => panic!("{broker:?}: expected a 400, got {:?}", other.map(|_| ())),
        }

        // Stopping, the sidecar closes its subscribers' sockets with 1001 (and unsubscribes
        // them) before it exits.
        let (mut socket, _) = websocket(&address, &format!("/broker?topic={topic}"))
            .unwrap_or_else(|e| panic!("{broker:?}: upgrade: {e}"));
        socket.send(Message::text("ready?")).unwrap();
        assert_eq!(next(&mut socket).1, "ready?", "{broker:?}");
        sigterm(&sidecar);
        match socket.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("{broker:?}: expected a close frame, got {other:?}"),
        }
        // Our close goes out as the next read finds the socket closed.
        assert!(matches!(
            socket.read(),
            Err(tungstenite::Error::ConnectionClosed)
        ));
        exits(&mut sidecar);
    }
}

/// `tests/python/health_http.py`, healthy while `flag` exists (created here); returns it
/// with its address.
fn start_http_program(flag: &Path) -> (Proc, String) {
    std::fs::write(flag, "").unwrap();
    let mut child = python()
        .args(["tests/python/health_http.py", flag.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start health_http.py");
    let log = child.stderr.take().expect("stderr");
    let proc = Proc(child);
    let address = line_after(log, "bound ").expect("health_http.py exited before listening");
    (proc, address)
}

/// `micro sidecar --server_name --server_address --healthcheck_url`, as go-micro's: the
/// program (a Python HTTP server) is registered while its health check answers 200,
/// deregistered while it does not, registered again when it does; `/health` asks the check;
/// stopped with SIGTERM, the sidecar deregisters it (etcd keeps what a dead process wrote).
#[test]
fn micro_sidecar_registers_its_program_while_it_is_healthy() {
    let etcd = Etcd::single();
    let dir = &Reg::of("etcd", &etcd.endpoints());
    let tmp = tempfile::tempdir().unwrap();
    let healthy = tmp.path().join("healthy");
    let (_program, program) = start_http_program(&healthy);
    let url = format!("http://{program}/health");
    let (mut sidecar, address) = start_server(
        "sidecar",
        dir,
        &[
            "--server_name",
            "pyprog",
            "--server_address",
            &program,
            "--healthcheck_url",
            &url,
            "--healthcheck_interval",
            "100ms",
        ],
    );
    let registered = |expected: bool| {
        let deadline = Instant::now() + PATIENCE;
        while (addresses(dir, "pyprog") == [program.clone()]) != expected {
            assert!(Instant::now() < deadline, "registered should be {expected}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    registered(true);
    let (status, body) = http(&address, "GET", "/health", &[], "");
    assert_eq!((status, json(&body)), (200, serde_json::json!({})));

    std::fs::remove_file(&healthy).unwrap();
    registered(false);
    expect_error(http(&address, "GET", "/health", &[], ""), 503, "503");
    std::fs::write(&healthy, "").unwrap();
    registered(true);

    terminate(&mut sidecar);
    let left = etcd.etcdctl_ok(&["get", "--prefix", "--keys-only", "/micro/registry/pyprog/"]);
    assert_eq!(left.trim(), "", "the program is still registered");

    // A name without an address is a usage error.
    let o = micro(dir, &["sidecar", "--server_name", "x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// `micro api --handler http`: go-micro's reverse proxy. A Python HTTP program, registered
/// by a sidecar as `go.micro.api.pyweb`, gets requests to `/pyweb/...` as they came (method,
/// path and query, body) and its answers go back as they are; an unknown service is a 404.
#[test]
fn micro_api_proxies_http_services() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let healthy = tmp.path().join("healthy");
    let (_program, program) = start_http_program(&healthy);
    let (_sidecar, _) = start_server(
        "sidecar",
        dir,
        &[
            "--server_name",
            "go.micro.api.pyweb",
            "--server_address",
            &program,
        ],
    );
    let deadline = Instant::now() + PATIENCE;
    while addresses(dir, "go.micro.api.pyweb").is_empty() {
        assert!(Instant::now() < deadline, "the program was not registered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_api, api) = start_api(dir, &["--handler", "http"]);

    let (status, head, body) = raw_http(&api, "POST", "/pyweb/echo?x=1", &[], "ping");
    assert_eq!((status, body.as_str()), (200, "ping"), "{head}");
    assert!(head.contains("x-seen-path: /pyweb/echo?x=1\r\n"), "{head}");
    // The program speaks HTTP/1.0; the gateway answers in its own HTTP/1.1.
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (status, _, body) = raw_http(&api, "GET", "/pyweb/health", &[], "");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    std::fs::remove_file(&healthy).unwrap();
    let (status, _, _) = raw_http(&api, "GET", "/pyweb/health", &[], "");
    assert_eq!(status, 503, "the program's own status");
    expect_error(http(&api, "GET", "/nosuch/x", &[], ""), 404, "nosuch");

    let o = micro(dir, &["api", "--handler", "event"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not supported yet"), "{}", stderr(&o));
}

/// `micro watch greeter`: a node that starts is a create event, one killed a delete event
/// (the local registry drops a dead process's record at once); other services are not
/// shown.
#[test]
fn micro_watch_prints_registry_changes() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let mut child = Command::new(example_binary("micro"))
        .args(&dir.0)
        .args(["watch", "greeter"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start micro watch");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let _watch = Proc(child);
    line_after(stderr, "micro watch: watching greeter")
        .expect("micro watch exited before watching");
    let (tx, events) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || -> Value { json(&events.recv_timeout(PATIENCE).expect("no event")) };

    let (_echo, _) = start("echo-server", "echo", dir);
    let (greeter, address) = start("greeter-server", "greeter", dir);
    let created = next();
    assert_eq!(created["action"], "create", "{created}");
    assert_eq!(created["service"]["name"], "greeter", "{created}");
    assert_eq!(created["service"]["nodes"][0]["address"], address.as_str());
    drop(greeter);
    let deleted = next();
    assert_eq!(deleted["action"], "delete", "{deleted}");
    assert_eq!(deleted["service"]["nodes"][0]["address"], address.as_str());
    assert!(
        events.recv_timeout(Duration::from_millis(500)).is_err(),
        "an event for another service"
    );
}

/// The status of a `GET` of `target`, with `headers` (a `host` among them replaces the
/// address).
fn page_status(address: &str, target: &str, headers: &[(&str, &str)]) -> u16 {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(address).expect("connect");
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let host = headers
        .iter()
        .find(|(k, _)| *k == "host")
        .map_or(address, |(_, v)| *v);
    let mut request = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
    for (name, value) in headers.iter().filter(|(k, _)| *k != "host") {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code")
}

/// The text between `start` (the first after `after`) and the next `end` in `dom`.
fn between<'a>(dom: &'a str, after: &str, start: &str, end: &str) -> &'a str {
    let from = dom
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in {dom}"));
    let rest = &dom[from..];
    let begin = rest
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} after {after:?}"))
        + start.len();
    let len = rest[begin..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?}"));
    &rest[begin..begin + len]
}

/// The dashboard in headless Chromium: the services, a service's nodes (health, escaped
/// metadata) and endpoints, its call form submitted as the browser submits it, errors.
#[test]
fn micro_web_shows_services_and_calls_them_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &Reg::local(tmp.path());
    let mut greeter = Reg::local(tmp.path());
    greeter
        .0
        .extend(["--server_metadata", "note=<b>bold</b>"].map(str::to_owned));
    let (_greeter, address) = start("greeter-server", "greeter", &greeter);
    let (_echo, _) = start("echo-server", "echo", dir);
    let (_web, web) = start_server("web", dir, &[]);
    let url = |path: &str| format!("http://{web}{path}");

    let dom = chromium_dom(&url("/"));
    assert!(dom.contains(r#"<a href="/service/echo">echo</a>"#), "{dom}");
    assert!(
        dom.contains(r#"<a href="/service/greeter">greeter</a>"#),
        "{dom}"
    );

    let dom = chromium_dom(&url("/service/greeter"));
    assert!(dom.contains("<h4>Greeter.Hello</h4>"), "{dom}");
    assert!(
        dom.contains(r#"<code class="field">name string</code>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<code class="field">greeting string</code>"#),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(r#"<td class="address">{address}</td>"#)),
        "{dom}"
    );
    assert!(dom.contains(r#"<td class="health">SERVING</td>"#), "{dom}");
    // Metadata is text, never markup.
    assert!(dom.contains("note=&lt;b&gt;bold&lt;/b&gt;"), "{dom}");
    assert!(!dom.contains("<b>bold</b>"), "{dom}");
    // The form, filled in as a user would and submitted as a browser does (GET).
    let form = between(&dom, "<h4>Greeter.Hello</h4>", "<form", "</form>");
    assert!(
        form.starts_with(r#" action="/call" method="get">"#),
        "{form}"
    );
    assert!(form.contains(r#"<textarea name="request""#), "{form}");
    assert!(
        dom.contains(r#"<input type="hidden" name="service" value="greeter">"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<input type="hidden" name="endpoint" value="Greeter.Hello">"#),
        "{dom}"
    );
    let example = between(&dom, "Greeter.Hello", "<textarea", "</textarea>");
    let example = &example[example.find('>').expect("textarea") + 1..];
    let mut request: Value = json(example);
    assert_eq!(request, serde_json::json!({ "name": "" }));
    request["name"] = "Ada & Bo".into();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("service", "greeter")
        .append_pair("endpoint", "Greeter.Hello")
        .append_pair("request", &request.to_string())
        .finish();
    let dom = chromium_dom(&url(&format!("/call?{query}")));
    let result = between(&dom, "<h2>Response</h2>", r#"<pre id="result">"#, "</pre>");
    assert_eq!(
        json(&result.replace("&amp;", "&")),
        serde_json::json!({ "greeting": "Hello, Ada & Bo!" })
    );

    // Streams are shown, without a form.
    let dom = chromium_dom(&url("/service/echo"));
    assert_eq!(dom.matches(r#"<p class="stream">"#).count(), 3, "{dom}");
    assert_eq!(
        dom.matches("<form").count(),
        1,
        "only Echo.Unary has a form: {dom}"
    );

    // Statuses, and what a browser sends on another site's behalf.
    let cross_site = [("sec-fetch-site", "cross-site")];
    let same_origin = [("sec-fetch-site", "same-origin")];
    let rebound = [("host", "rebound.example:8082")];
    let hello = "/call?service=greeter&endpoint=Greeter.Hello";
    for (path, headers, status) in [
        ("/", &[][..], 200),
        ("/service/greeter", &[], 200),
        ("/service/nosuch", &[], 404),
        ("/call?service=greeter&endpoint=Greeter.Nope", &[], 501),
        ("/nope", &[], 404),
        (hello, &cross_site, 403),
        (hello, &same_origin, 200),
        ("/", &rebound, 403),
    ] {
        assert_eq!(
            page_status(&web, path, headers),
            status,
            "{path} {headers:?}"
        );
    }
    for (path, error) in [
        (
            "/call?service=greeter&endpoint=Greeter.Nope",
            "Unimplemented",
        ),
        (
            "/call?service=greeter&endpoint=Greeter.Hello&request=%7Boops",
            "not JSON",
        ),
        ("/service/nosuch", "NotFound"),
        ("/nope", "No page at"),
    ] {
        let dom = chromium_dom(&url(path));
        let shown = between(&dom, "<main>", r#"id="error""#, "</p>");
        assert!(shown.contains(error), "{path}: {shown}");
    }
}

/// The sidecar fronts a program in another language (Python's grpcio greeter), on etcd:
/// the program registers through `/registry` and micro clients call it; it calls micro
/// services and publishes through the sidecar; on SIGTERM the sidecar deregisters what it
/// registered.
#[test]
fn micro_sidecar_fronts_a_program_in_another_language() {
    let etcd = Etcd::single();
    let dir = &Reg::of("etcd", &etcd.endpoints());

    let mut child = python()
        .args(["tests/python/greeter_server.py", "--address", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start greeter_server.py");
    let python_log = child.stderr.take().expect("stderr");
    let _python = Proc(child);
    let python_address =
        line_after(python_log, "bound ").expect("greeter_server.py exited before listening");

    let (mut sidecar, address) = start_server("sidecar", dir, &[]);
    let record = serde_json::json!({
        "name": "greeter",
        "version": "python",
        "nodes": [{ "id": "greeter-python-1", "address": python_address }],
    })
    .to_string();
    let (status, body) = http(&address, "POST", "/registry", &[JSON], &record);
    assert_eq!((status, json(&body)), (200, serde_json::json!({})));
    let (status, body) = http(&address, "GET", "/registry?service=greeter", &[], "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)[0]["nodes"][0]["address"],
        python_address.as_str()
    );
    let (status, body) = http(&address, "GET", "/registry", &[], "");
    assert_eq!(
        (status, json(&body)[0]["name"].as_str()),
        (200, Some("greeter"))
    );

    // A micro client finds the Python program and calls it (protobuf, the standard path).
    let o = Command::new(example_binary("greeter-client"))
        .args(&dir.0)
        .args(["--name", "Py", "--client_request_timeout", "10s"])
        .output()
        .expect("run greeter-client");
    assert_eq!(stdout(&o), "Hello, Py!", "{}", stderr(&o));

    // The program calls a micro service through the sidecar.
    let (_echo, _) = start("echo-server", "echo", dir);
    let (status, body) = http(
        &address,
        "POST",
        "/echo/unary",
        &[JSON],
        r#"{"message": "hi"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["message"], "hi");

    // And publishes.
    let topic = micro_tests::broker::unique_topic("sidecar");
    let args: Vec<&str> = dir.0.iter().map(String::as_str).collect();
    let subscriber = EventSubscriber::start(&[&args[..], &["--topic", &topic]].concat());
    let (status, body) = http(
        &address,
        "POST",
        &format!("/broker?topic={topic}"),
        &[JSON],
        r#"{"id": 5}"#,
    );
    assert_eq!((status, body.as_str()), (200, "{}"));
    assert_eq!(subscriber.next(PATIENCE), Some(5));

    // Bad requests.
    expect_error(
        http(&address, "POST", "/registry", &[JSON], "{oops"),
        400,
        "broken registry record",
    );
    expect_error(
        http(&address, "PUT", "/registry", &[JSON], &record),
        405,
        "GET, POST and DELETE",
    );
    expect_error(
        http(&address, "POST", "/broker", &[JSON], "{}"),
        400,
        "topic",
    );
    expect_error(
        http(&address, "GET", "/broker?topic=x", &[], ""),
        405,
        "POST",
    );

    // A record of two nodes, one deregistered through the sidecar.
    let pair = |ids: &[&str]| {
        let nodes: Vec<Value> = ids
            .iter()
            .map(|id| serde_json::json!({ "id": id, "address": "127.0.0.1:1" }))
            .collect();
        serde_json::json!({ "name": "other", "nodes": nodes }).to_string()
    };
    let (status, _) = http(
        &address,
        "POST",
        "/registry",
        &[JSON],
        &pair(&["other-1", "other-2"]),
    );
    assert_eq!(status, 200);
    let (status, _) = http(
        &address,
        "DELETE",
        "/registry",
        &[JSON],
        &pair(&["other-1"]),
    );
    assert_eq!(status, 200);
    let other = "/micro/registry/other/";
    let left = etcd.etcdctl_ok(&["get", "--prefix", "--keys-only", other]);
    assert_eq!(left.trim(), "/micro/registry/other/other-2");

    // Stopped with SIGTERM, the sidecar takes what it registered out of etcd.
    let key = "/micro/registry/greeter/greeter-python-1";
    assert!(
        !etcd
            .etcdctl_ok(&["get", "--keys-only", key])
            .trim()
            .is_empty()
    );
    terminate(&mut sidecar);
    assert_eq!(etcd.etcdctl_ok(&["get", "--keys-only", key]).trim(), "");
    let left = etcd.etcdctl_ok(&["get", "--prefix", "--keys-only", other]);
    assert_eq!(
        left.trim(),
        "",
        "the node left of a partly deregistered record"
    );
}
