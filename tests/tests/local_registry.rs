//! The host-local registry (the default): in process (no heartbeat outlives a stop), and
//! between processes: the examples' `greeter-server` and `greeter-client` (from
//! `MICRO_BIN_DIR`, as scripts/test builds them) sharing one registry directory.
//!
//! A process in another pid namespace (`unshare --pid --fork --mount-proc`, as a container
//! sharing the directory would be) must find our nodes and leave them alone: our pids mean
//! nothing in its `/proc`. Needs root (or CAP_SYS_ADMIN) and `unshare`; without them the test
//! fails saying so, it is never skipped. Every process runs under `timeout`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use micro_tests::{Proc, example_binary};

/// A greeter server on a free loopback port, registered in the local registry at `dir`.
fn start_server(dir: &Path) -> Proc {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new("timeout")
        .arg("60")
        .arg(example_binary("greeter-server"))
        .args(["--server_address", &format!("127.0.0.1:{port}")])
        .args(["--registry", "local", "--registry_address"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start greeter-server");
    Proc(server)
}

/// The records of the greeter's nodes in `dir`.
fn records(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("greeter"))
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

fn wait_for_record(dir: &Path) {
    let start = Instant::now();
    while records(dir).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "greeter-server did not register in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `greeter-client --name <name>` against the local registry at `dir`, run by `prefix`.
fn call(prefix: &[&str], dir: &Path, name: &str) -> Output {
    let mut cmd = Command::new(prefix[0]);
    cmd.args(&prefix[1..])
        .args(["timeout", "30"])
        .arg(example_binary("greeter-client"))
        .args(["--name", name, "--registry", "local", "--registry_address"])
        .arg(dir);
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {prefix:?}: {e}"))
}

/// What a call printed: the greeting.
fn printed(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_process_in_another_pid_namespace_finds_our_nodes_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let _server = start_server(dir.path());
    wait_for_record(dir.path());

    let unshare = ["unshare", "--pid", "--fork", "--mount-proc"];
    let out = call(&unshare, dir.path(), "Namespace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("unshare:"),
        "cannot make a pid namespace (`unshare --pid` needs root or CAP_SYS_ADMIN): {stderr}"
    );
    assert!(out.status.success(), "the call failed: {stderr}");
    assert_eq!(printed(&out), "Hello, Namespace!");
    // Our server's record is still there, for us and for the next caller in there.
    assert_eq!(records(dir.path()).len(), 1);
    let out = call(&["env"], dir.path(), "Host");
    assert_eq!(printed(&out), "Hello, Host!");
    let out = call(&unshare, dir.path(), "Again");
    assert_eq!(printed(&out), "Hello, Again!");
}

#[test]
fn a_killed_server_leaves_no_node_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(dir.path());
    wait_for_record(dir.path());
    let out = call(&["env"], dir.path(), "Before");
    assert_eq!(printed(&out), "Hello, Before!");

    // SIGKILL: no deregistration. The record's process is gone, so is the node, at once
    // (its TTL has a minute and more to run).
    let pid = server.0.id();
    assert!(
        Command::new("pkill")
            .args(["-KILL", "-P", &pid.to_string()])
            .status()
            .expect("pkill")
            .success(),
        "no greeter-server under timeout {pid}"
    );
    server.0.wait().unwrap();
    let out = call(&["env"], dir.path(), "After");
    assert!(!out.status.success(), "a call reached a killed server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not found"), "{stderr}");
    assert!(
        records(dir.path()).is_empty(),
        "the dead node's record stayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_heartbeat_brings_a_stopped_node_back() {
    // A heartbeat every millisecond: stop() finds a re-registration under way nearly every
    // time. The local registry writes on a blocking thread, which an abort does not stop:
    // its file must not land after the deregistration.
    let dir = tempfile::tempdir().unwrap();
    let reg: std::sync::Arc<dyn micro_runtime::Registry> = std::sync::Arc::new(
        micro_runtime::registry::local::LocalRegistry::new(dir.path()).unwrap(),
    );
    for round in 0..20 {
        let builder = micro_runtime::Service::builder()
            .name("greeter")
            .registry(reg.clone())
            .register_ttl(Duration::from_secs(60), Duration::from_millis(1));
        let server = micro_tests::start_greeter_with(builder, Default::default()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        server.stop().await.unwrap();
        // Time for a straggling write to land, if one were left.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            records(dir.path()).is_empty(),
            "round {round}: a stopped node came back"
        );
    }
}
