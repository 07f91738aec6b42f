//! The examples as separate processes, finding each other through the default `local`
//! registry (each test in its own registry directory).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_greeter-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_greeter-client");
const QUICKSTART: &str = env!("CARGO_BIN_EXE_quickstart");

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(registry: &Path, extra: &[&str]) -> Proc {
    let child = Command::new(SERVER)
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
        .expect("start greeter-server");
    let proc = Proc(child);
    wait_until(
        Duration::from_secs(10),
        || records(registry) == 1,
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

/// Node records in the registry directory.
fn records(registry: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(registry.join("greeter")) else {
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
