//! The examples as separate processes, finding each other through the default `local`
//! registry (each test in its own registry directory).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_greeter-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_greeter-client");
const QUICKSTART: &str = env!("CARGO_BIN_EXE_quickstart");
const CALC_SERVER: &str = env!("CARGO_BIN_EXE_calculator-server");
const CALC_CLIENT: &str = env!("CARGO_BIN_EXE_calculator-client");

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(registry: &Path, extra: &[&str]) -> Proc {
    start(SERVER, "greeter", registry, extra)
}

/// Starts server binary `bin` on a free loopback port; returns once it registered `service`.
fn start(bin: &str, service: &str, registry: &Path, extra: &[&str]) -> Proc {
    let child = Command::new(bin)
        .args([
            "--server_address",
            "127.0.0.1:0",
            "--registry",
            "local",
            "--registry_address",
        ])
        .arg(registry)
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let proc = Proc(child);
    wait_until(
        Duration::from_secs(10),
        || records_of(registry, service) == 1,
        "the server to register",
    );
    proc
}

fn client(registry: &Path) -> Output {
    Command::new(CLIENT)
        .args(["--registry_address"])
        .arg(registry)
        .args(["--client_request_timeout", "5s"])
        .output()
        .expect("run greeter-client")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// Greeter node records in the registry directory.
fn records(registry: &Path) -> usize {
    records_of(registry, "greeter")
}

/// Node records of `service` in the registry directory.
fn records_of(registry: &Path, service: &str) -> usize {
    let Ok(dir) = std::fs::read_dir(registry.join(service)) else {
        return 0;
    };
    dir.filter(|e| {
        e.as_ref()
            .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
    })
    .count()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn quickstart_prints_the_greeting() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(QUICKSTART)
        .arg("--registry_address")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, World!");
}

#[test]
fn client_finds_server_through_the_local_registry() {
    let dir = tempfile::tempdir().unwrap();
    let _server = start_server(dir.path(), &[]);
    let out = client(dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, World!");
    let out = Command::new(CLIENT)
        .arg("--registry_address")
        .arg(dir.path())
        .args(["--name", "Ada"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "Hello, Ada!");
}

#[test]
fn settings_come_from_micro_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(SERVER)
        .env("MICRO_SERVER_ADDRESS", "127.0.0.1:0")
        .env("MICRO_REGISTRY", "local")
        .env("MICRO_REGISTRY_ADDRESS", dir.path())
        .env("MICRO_SERVER_VERSION", "2.0.0")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Proc(child);
    wait_until(
        Duration::from_secs(10),
        || records(dir.path()) == 1,
        "the server to register",
    );
    let record = std::fs::read_dir(dir.path().join("greeter"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(record).unwrap();
    assert!(text.contains(r#""version":"2.0.0""#), "{text}");
    let out = Command::new(CLIENT)
        .env("MICRO_REGISTRY_ADDRESS", dir.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "Hello, World!", "{}", stderr(&out));
}

/// As in go-micro, a variable set to nothing (`MICRO_SERVER_VERSION=${VERSION}` in a compose
/// file with VERSION unset) is no setting: the program's own values stay.
#[test]
fn empty_micro_environment_variables_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(SERVER);
    for name in [
        "MICRO_SERVER_NAME",
        "MICRO_SERVER_VERSION",
        "MICRO_SERVER_ID",
        "MICRO_REGISTER_TTL",
        "MICRO_REGISTER_INTERVAL",
        "MICRO_CLIENT_RETRIES",
        "MICRO_CLIENT_REQUEST_TIMEOUT",
        "MICRO_MAX_MESSAGE_SIZE",
    ] {
        server.env(name, "");
    }
    let _server = Proc(
        server
            .args(["--server_address", "127.0.0.1:0", "--registry_address"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(
        Duration::from_secs(10),
        || records_of(dir.path(), "greeter") == 1,
        "the server to register",
    );
    let record = record_of(dir.path(), "greeter");
    assert_eq!(record["version"], "latest", "{record}");
    let node = record["nodes"][0]["id"].as_str().unwrap();
    assert!(node.starts_with("greeter-"), "{record}");
}

#[test]
fn a_killed_server_disappears_within_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(3);
    let mut server = start_server(
        dir.path(),
        &["--register_ttl", "3", "--register_interval", "1"],
    );
    assert!(client(dir.path()).status.success());

    server.0.kill().unwrap(); // SIGKILL: no chance to deregister
    server.0.wait().unwrap();
    let killed = Instant::now();
    let out = loop {
        let out = client(dir.path());
        if !out.status.success() || killed.elapsed() > ttl + Duration::from_secs(5) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        killed.elapsed() < ttl + Duration::from_secs(2),
        "took {:?}",
        killed.elapsed()
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("service greeter: not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_stopped_server_deregisters_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(dir.path(), &[]);
    let pid = server.0.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(term.success());
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // Gone from the registry by the time the process exited.
    assert_eq!(records(dir.path()), 0);
    let out = client(dir.path());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("service greeter: not found"),
        "{}",
        stderr(&out)
    );
}

/// The go-micro service record of the one node of `service` (the local registry wraps it
/// with its expiry and owner).
fn record_of(registry: &Path, service: &str) -> serde_json::Value {
    let path = std::fs::read_dir(registry.join(service))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a node record");
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    file["service"].clone()
}

fn calculator_client(registry: &Path, a: &str, b: &str) -> Output {
    Command::new(CALC_CLIENT)
        .arg("--registry_address")
        .arg(registry)
        .args(["--client_request_timeout", "5s", "--a", a, "--b", b])
        .output()
        .expect("run calculator-client")
}

#[test]
fn calculator_client_finds_the_calculator_through_the_local_registry() {
    let dir = tempfile::tempdir().unwrap();
    let _server = start(CALC_SERVER, "calculator", dir.path(), &[]);
    let out = calculator_client(dir.path(), "1", "2");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "3");
    let out = calculator_client(dir.path(), "-40", "-2");
    assert_eq!(stdout(&out), "-42", "{}", stderr(&out));
    // The handler's own error reaches the caller.
    let out = calculator_client(dir.path(), &i64::MAX.to_string(), "1");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("a + b overflows"), "{}", stderr(&out));
}

#[test]
fn calculator_endpoint_is_described_in_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let _server = start(CALC_SERVER, "calculator", dir.path(), &[]);
    let record = record_of(dir.path(), "calculator");
    let endpoint = &record["endpoints"][0];
    assert_eq!(endpoint["name"], "Calculator.Add");
    assert_eq!(
        endpoint["request"],
        serde_json::json!({"name": "AddRequest", "type": "AddRequest", "values": [
            {"name": "a", "type": "int64", "values": null},
            {"name": "b", "type": "int64", "values": null},
        ]})
    );
    assert_eq!(
        endpoint["response"],
        serde_json::json!({"name": "AddResponse", "type": "AddResponse", "values": [
            {"name": "result", "type": "int64", "values": null},
        ]})
    );
}

/// A standard HTTP/2 client (`nghttp`, Debian's nghttp2-client, which scripts/test
/// installs) calls the calculator in `application/grpc+json` on `/calculator.Calculator/Add`.
#[test]
fn nghttp_calls_the_calculator_in_grpc_json() {
    let dir = tempfile::tempdir().unwrap();
    let _server = start(CALC_SERVER, "calculator", dir.path(), &[]);
    let record = record_of(dir.path(), "calculator");
    let address = record["nodes"][0]["address"].as_str().unwrap().to_owned();

    // One gRPC frame: not compressed, big-endian length, the JSON.
    let json = br#"{"a": 1, "b": 2}"#;
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
    frame.extend_from_slice(json);
    let body = dir.path().join("request.bin");
    std::fs::write(&body, &frame).unwrap();

    let out = Command::new("nghttp")
        .args([
            "--verbose",
            "-H",
            "content-type: application/grpc+json",
            "-H",
            "te: trailers",
            "--data",
        ])
        .arg(&body)
        .arg(format!("http://{address}/calculator.Calculator/Add"))
        .output()
        .unwrap_or_else(|e| {
            panic!("run nghttp ({e}): install Debian's nghttp2-client (scripts/test does)")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains(r#"{"result":3}"#), "{text}");
    assert!(
        text.contains("content-type: application/grpc+json"),
        "{text}"
    );
    assert!(text.contains("grpc-status: 0"), "{text}");
}
