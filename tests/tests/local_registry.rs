//! The host-local registry (the default): in process (no heartbeat outlives a stop), and
//! between processes: the examples' `greeter-server` and `greeter-client` (from
//! `MICRO_BIN_DIR`, as scripts/test builds them) sharing one registry directory.
//!
//! A process in another pid namespace (`unshare --pid --fork --mount-proc`, as a container
//! sharing the directory would be) must find our nodes and leave them alone: our pids mean
//! nothing in its `/proc`. Needs root (or CAP_SYS_ADMIN) and `unshare`; without them the test
//! fails saying so, it is never skipped. Every call runs under `timeout`; servers are killed
//! when the test ends.

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
    // Started itself, not under `timeout`: killing `timeout` would orphan the server.
    let server = Command::new(example_binary("greeter-server"))
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
    server.0.kill().unwrap();
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

/// `micro` on the local registry at `dir` (or the default one, with `env`), run by `prefix`
/// (e.g. `setpriv` to run it as another user).
fn micro(prefix: &[&str], dir: Option<&Path>, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("30").arg(example_binary("micro"));
    if !prefix.is_empty() {
        cmd = Command::new(prefix[0]);
        cmd.args(&prefix[1..])
            .args(["timeout", "30"])
            .arg(example_binary("micro"));
    }
    cmd.args(["--registry", "local"]);
    if let Some(dir) = dir {
        cmd.arg("--registry_address").arg(dir);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.args(args).output().expect("run micro")
}

/// A record as a go-micro-shaped node of `service` that lives by no pid (pid 0).
fn plant_record(dir: &Path, service: &str, id: &str) {
    let record = serde_json::json!({
        "expires": 0,
        "pid": 0,
        "service": {"name": service, "version": "latest", "nodes": [{"id": id, "address": "127.0.0.1:1"}]}
    });
    std::fs::create_dir_all(dir.join(service)).unwrap();
    std::fs::write(
        dir.join(service).join(format!("{id}.json")),
        record.to_string(),
    )
    .unwrap();
}

/// Planted things and unreadable records are skipped with a warning naming them; the
/// lookup answers with the rest, at once. Run as `nobody` (root reads any file).
#[test]
fn planted_and_unreadable_records_are_skipped_with_a_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("registry");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    plant_record(&dir, "greeter", "real");
    plant_record(&dir, "greeter", "secret");
    let secret = dir.join("greeter/secret.json");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("greeter/zero.json")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(dir.join("greeter/fifo.json"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    std::fs::File::create(dir.join("greeter/huge.json"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    std::fs::set_permissions(dir.join("greeter"), std::fs::Permissions::from_mode(0o755)).unwrap();

    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let started = Instant::now();
    let out = micro(&nobody, Some(&dir), &[], &["get", "service", "greeter"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the lookup took {:?}",
        started.elapsed()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"real\""), "{stdout}");
    assert!(!stdout.contains("\"secret\""), "{stdout}");
    for (name, why) in [
        ("secret.json", "can't be read"),
        ("zero.json", "a symbolic link"),
        ("fifo.json", "not a regular file"),
        ("huge.json", "more than the 1048576"),
    ] {
        let line = stderr.lines().find(|l| l.contains(name));
        assert!(
            line.is_some_and(|l| l.contains("WARN") && l.contains(why)),
            "no warning for {name} ({why}):\n{stderr}"
        );
    }
}

/// The default directory (`$XDG_RUNTIME_DIR/micro-registry` here) is refused when another
/// user owns it or others may write to it: whoever can write there can plant nodes.
#[test]
fn a_default_directory_others_could_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let runtime = tempfile::tempdir().unwrap();
    let dir = runtime.path().join("micro-registry");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let env = [("XDG_RUNTIME_DIR", runtime.path())];
    let out = micro(&[], None, &env, &["list", "services"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("others may write to it (mode 777)"),
        "{stderr}"
    );

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let chown = Command::new("chown")
        .arg("65534")
        .arg(&dir)
        .status()
        .expect("chown");
    assert!(chown.success(), "chown needs root");
    let out = micro(&[], None, &env, &["list", "services"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("belongs to uid 65534"), "{stderr}");

    // A directory of its own is made private and used.
    std::fs::remove_dir(&dir).unwrap();
    let out = micro(&[], None, &env, &["list", "services"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// CPU time (user + system) of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces), counted from the state: utime
    // and stime are the 12th and 13th.
    let after = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// 10,000 services deregistered by an older version left 10,000 empty directories: a gateway
/// watching the registry removes them and then idles (the watch reads only what changed).
#[test]
fn an_idle_gateway_over_ten_thousand_leftover_services_idles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for i in 0..10_000 {
        std::fs::create_dir(dir.join(format!("gone-{i}"))).unwrap();
    }
    plant_record(dir, "greeter", "live");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let gateway = Command::new(example_binary("micro"))
        .args(["--registry", "local", "--registry_address"])
        .arg(dir)
        .args(["api", "--address", &address])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start micro api");
    let gateway = Proc(gateway);
    let started = Instant::now();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "micro api did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A call makes the gateway watch the registry (its cache).
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    use std::io::{Read as _, Write as _};
    stream
        .write_all(b"GET /nosuch/call HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    // The leftovers go within a few looks.
    let cleaned = Instant::now();
    while std::fs::read_dir(dir).unwrap().count() > 1 {
        assert!(
            cleaned.elapsed() < Duration::from_secs(30),
            "the empty directories stayed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = gateway.0.id();
    let before = cpu_ticks(pid);
    let window = Duration::from_secs(10);
    std::thread::sleep(window);
    let used = cpu_ticks(pid) - before;
    // Ticks are 1/100 s (USER_HZ): under 2% of one core is under 20 ticks in 10 s.
    assert!(
        used < 20,
        "the idle gateway used {used} ticks of CPU in {window:?}"
    );
}
