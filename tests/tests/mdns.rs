//! The mDNS registry between processes, inside a private network namespace that each test
//! creates (`unshare --net`, with only its own loopback, multicast switched on): no packet
//! reaches a real interface.
//!
//! Runs the registry conformance suite on mDNS (this package's `mdns-conformance` binary),
//! and the examples' binaries (`greeter-server`, `greeter-client`, `mdns-demo`) from
//! `MICRO_BIN_DIR` (scripts/test sets it to target/ci), else the first of `target/ci`,
//! `target/release` and `target/debug` that has them all. Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) and `unshare`, `nsenter`,
//! `ip`, `timeout`, `kill`: without them the tests fail saying what is missing; they are never
//! skipped. Every process runs under `timeout`, every wait has a bound.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest life of any process a test starts, in seconds.
const PROCESS_LIMIT: &str = "60";

/// How long a change may take to reach the watcher.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// The directory with the examples' binaries.
fn bin_dir() -> PathBuf {
    const BINS: [&str; 3] = ["greeter-server", "greeter-client", "mdns-demo"];
    let complete = |dir: &Path| BINS.iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = std::env::var_os("MICRO_BIN_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            complete(&dir),
            "MICRO_BIN_DIR={} lacks one of {BINS:?}: run `cargo build --profile ci --workspace --bins --all-features`",
            dir.display()
        );
        return dir;
    }
    let target = micro_tests::repo_root().join("target");
    ["ci", "release", "debug"]
        .iter()
        .map(|profile| target.join(profile))
        .find(|dir| complete(dir))
        .unwrap_or_else(|| {
            panic!(
                "none of {BINS:?} in {}/{{ci,release,debug}}: run \
                 `cargo build --profile ci --workspace --bins --all-features` or set MICRO_BIN_DIR",
                target.display()
            )
        })
}

/// A private network namespace with only a loopback interface, up and multicast-capable.
/// It lives as long as its holder process (`sleep`), which is killed on drop.
struct Netns {
    holder: Child,
}

impl Netns {
    fn new() -> Netns {
        let setup = "ip link set lo up && ip link set lo multicast on \
                     && ip route add 224.0.0.0/4 dev lo && echo ready && exec sleep 120";
        let mut holder = Command::new("unshare")
            .args(["--net", "sh", "-c", setup])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `unshare` (util-linux): {e}"));
        let mut line = String::new();
        let read = BufReader::new(holder.stdout.take().expect("piped stdout")).read_line(&mut line);
        if read.is_err() || line.trim() != "ready" {
            let _ = holder.kill();
            let _ = holder.wait();
            let mut err = String::new();
            if let Some(mut stderr) = holder.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!(
                "cannot make a private network namespace with multicast on loopback (`unshare \
                 --net` needs root or CAP_SYS_ADMIN; `ip` is iproute2): {}",
                err.trim()
            );
        }
        Netns { holder }
    }

    /// The namespace, as `/proc/<pid>/ns/net` reads (`net:[4026532871]`); a new one.
    fn id(&self) -> String {
        let read = |path: String| {
            std::fs::read_link(&path)
                .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
                .to_string_lossy()
                .into_owned()
        };
        let id = read(format!("/proc/{}/ns/net", self.holder.id()));
        assert_ne!(id, read("/proc/self/ns/net".into()), "not a new namespace");
        id
    }

    /// `program args` inside the namespace, under `timeout`: `nsenter` enters and execs
    /// `timeout`, so the child's pid is `timeout`'s, which leads the process group of the
    /// program.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/proc/{}/ns/net", self.holder.id()))
            .args(["timeout", "--kill-after=5", PROCESS_LIMIT])
            .arg(program)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// [`Netns::command`] of one of the examples' binaries.
    fn example(&self, program: &str, args: &[&str]) -> Command {
        self.command(&bin_dir().join(program), args)
    }

    fn spawn(&self, program: &str, args: &[&str], log: &Path) -> Proc {
        let stderr = std::fs::File::create(log).expect("create log file");
        let child = self
            .example(program, args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `nsenter` (util-linux): {e}"));
        Proc(child)
    }

    /// `mdns-demo` watching `greeter` for `events` changes; its lines come through the
    /// returned channel. Returns once it watches.
    fn watcher(&self, events: usize, log: &Path) -> (Proc, Lines) {
        let events = events.to_string();
        let args = [
            "--service",
            "greeter",
            "--events",
            &events,
            "--timeout",
            "50s",
        ];
        let stderr = std::fs::File::create(log).expect("create log file");
        let mut child = self
            .example("mdns-demo", &args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `nsenter` (util-linux): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // Guarded before the first wait, so a failed wait leaves no process behind.
        let (proc, lines) = (Proc(child), Lines(rx));
        lines.expect("watching greeter", EVENT_WAIT, log);
        (proc, lines)
    }

    /// Runs `greeter-client` to completion.
    fn call(&self, log_dir: &Path) -> Output {
        let args = ["--registry", "mdns", "--client_request_timeout", "5s"];
        let out = self
            .example("greeter-client", &args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `nsenter` (util-linux): {e}"));
        let _ = std::fs::write(log_dir.join("client.log"), &out.stderr);
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A process in the namespace; its process group is killed on drop.
struct Proc(Child);

impl Proc {
    /// Sends `signal` to the program's process group (`timeout` and the program).
    fn signal(&mut self, signal: &str) {
        assert!(
            self.send(signal),
            "kill -{signal} -- -{} failed",
            self.0.id()
        );
    }

    /// Like [`Proc::signal`]; false when it could not be sent.
    fn send(&mut self, signal: &str) -> bool {
        if self.0.try_wait().ok().flatten().is_some() {
            return true; // exited, and reaped: its id may belong to someone else by now
        }
        Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits for the exit, at most `limit`.
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("wait for child") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "process {} still running after {limit:?}",
                self.0.id()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            if !self.send("KILL") {
                let _ = self.0.kill();
            }
            let _ = self.0.wait();
        }
    }
}

/// Lines a watcher printed.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    /// The next line, which must start with `prefix` and come within `limit`.
    fn expect(&self, prefix: &str, limit: Duration, log: &Path) -> String {
        match self.0.recv_timeout(limit) {
            Ok(line) if line.starts_with(prefix) => line,
            Ok(line) => panic!("expected {prefix:?}, the watcher printed {line:?}"),
            Err(e) => panic!(
                "expected {prefix:?} within {limit:?}, got none ({e}); watcher log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }

    /// Nothing more within `window`.
    fn expect_none(&self, window: Duration) {
        if let Ok(line) = self.0.recv_timeout(window) {
            panic!("expected no change for {window:?}, the watcher printed {line:?}");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for name in ["server.log", "client.log", "watch.log"] {
        if let Ok(s) = std::fs::read_to_string(dir.join(name)) {
            out += &format!("--- {name}\n{s}\n");
        }
    }
    out
}

#[test]
fn two_services_in_a_private_network_namespace_discover_each_other() {
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let log = |name: &str| dir.path().join(name);
    // A long-lived watcher, a registry of its own: sees the node come and go.
    let (mut watch, lines) = ns.watcher(2, &log("watch.log"));

    let mut server = ns.spawn(
        "greeter-server",
        &["--registry", "mdns", "--server_address", "127.0.0.1:0"],
        &log("server.log"),
    );
    let created = lines.expect("create greeter greeter-", EVENT_WAIT, &log("watch.log"));
    let fields: Vec<&str> = created.split(' ').collect();
    let (id, address) = (fields[2], fields[3]);
    assert!(address.starts_with("127.0.0.1:"), "{created}");

    // Another process, another registry: finds greeter by name and calls it.
    let out = ns.call(dir.path());
    assert!(
        out.status.success(),
        "greeter-client failed: {}\n{}",
        text(&out.stderr),
        logs(dir.path())
    );
    assert_eq!(text(&out.stdout), "Hello, World!");

    // SIGTERM: the server deregisters (an mDNS goodbye) and exits cleanly.
    server.signal("TERM");
    let stopped = Instant::now();
    let status = server.wait(Duration::from_secs(15));
    assert!(
        status.success(),
        "server exit: {status}\n{}",
        logs(dir.path())
    );
    lines.expect(
        &format!("delete greeter {id} {address}"),
        EVENT_WAIT,
        &log("watch.log"),
    );
    let goodbye = stopped.elapsed();
    assert!(goodbye < Duration::from_secs(5), "goodbye took {goodbye:?}");
    let status = watch.wait(Duration::from_secs(5));
    assert!(status.success(), "watcher exit: {status}");

    // A fresh client now hears of no greeter, and says so within its discovery wait.
    let start = Instant::now();
    let out = ns.call(dir.path());
    let took = start.elapsed();
    assert!(
        !out.status.success(),
        "called a stopped server: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("service greeter: not found"),
        "{}",
        text(&out.stderr)
    );
    assert!(took < Duration::from_secs(10), "not found took {took:?}");
}

#[test]
fn a_node_that_dies_without_goodbye_expires_at_its_ttl() {
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let log = |name: &str| dir.path().join(name);
    let (mut watch, lines) = ns.watcher(2, &log("watch.log"));

    // TTL 2 s, refreshed every second.
    let mut server = ns.spawn(
        "greeter-server",
        &[
            "--registry",
            "mdns",
            "--server_address",
            "127.0.0.1:0",
            "--server_id",
            "greeter-ttl",
            "--register_ttl",
            "2",
            "--register_interval",
            "1",
        ],
        &log("server.log"),
    );
    lines.expect("create greeter greeter-ttl ", EVENT_WAIT, &log("watch.log"));
    // Refreshes keep it past its TTL, and are not changes.
    lines.expect_none(Duration::from_secs(4));

    // SIGKILL: no goodbye; the DNS records would live 120 s, the TTL ends it sooner.
    server.signal("KILL");
    let killed = Instant::now();
    server.wait(Duration::from_secs(5));
    lines.expect("delete greeter greeter-ttl ", EVENT_WAIT, &log("watch.log"));
    let gone = killed.elapsed();
    assert!(
        gone < Duration::from_secs(5),
        "a dead node with a 2 s TTL lasted {gone:?}"
    );
    let status = watch.wait(Duration::from_secs(5));
    assert!(status.success(), "watcher exit: {status}");
}

/// A TTL and refresh interval beyond any clock (`u64::MAX` seconds) mean "never expires" and
/// "never refresh": the server registers and answers (an `Instant` overflow panicked it).
#[test]
fn a_ttl_beyond_any_clock_never_expires() {
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let log = |name: &str| dir.path().join(name);
    let (_watch, lines) = ns.watcher(1, &log("watch.log"));
    let forever = u64::MAX.to_string();
    let _server = ns.spawn(
        "greeter-server",
        &[
            "--registry",
            "mdns",
            "--server_address",
            "127.0.0.1:0",
            "--server_id",
            "greeter-forever",
            "--register_ttl",
            &forever,
            "--register_interval",
            &forever,
        ],
        &log("server.log"),
    );
    lines.expect(
        "create greeter greeter-forever ",
        EVENT_WAIT,
        &log("watch.log"),
    );
    let out = ns.call(dir.path());
    assert_eq!(
        text(&out.stdout).trim(),
        "Hello, World!",
        "{}",
        logs(dir.path())
    );
}

/// Every check of the registry conformance suite, against mDNS registries in the namespace:
/// one registry reading its own writes (`mdns`), and two as two processes (`mdns_peers`).
#[test]
fn the_registry_conformance_suite_passes_on_mdns() {
    use micro_tests::conformance::{self, CHECKS};
    // Checks that cannot apply, as `mdns-conformance` says why: a change here is a change
    // there.
    const NOT_APPLICABLE: [&str; 1] = ["mdns::broken_records"];

    let ns = Netns::new();
    let start = Instant::now();
    let out = ns
        .command(Path::new(env!("CARGO_BIN_EXE_mdns-conformance")), &[])
        .env(conformance::NETNS_VARIABLE, ns.id())
        // Panics are the checks' reports, not bugs to trace; the log is read as text.
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `nsenter` (util-linux): {e}"));
    let took = start.elapsed();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let report = format!(
        "mdns-conformance: {} after {took:?}\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );

    println!("{stdout}");

    let expected: Vec<String> = ["mdns", "mdns_peers"]
        .iter()
        .flat_map(|backend| {
            CHECKS
                .iter()
                .map(move |(check, _)| format!("{backend}::{check}"))
        })
        .collect();
    let mut seen = Vec::new();
    for line in stdout.lines() {
        let (status, rest) = line.split_once(' ').unwrap_or((line, ""));
        let label = rest.split(": ").next().unwrap_or_default().to_owned();
        match status {
            "ok" => assert!(
                !NOT_APPLICABLE.contains(&label.as_str()),
                "{label} ran\n{report}"
            ),
            "n/a" => assert!(
                NOT_APPLICABLE.contains(&label.as_str()) && line.contains(": "),
                "{label} is not applicable, or does not say why\n{report}"
            ),
            _ => panic!("{line}\n{report}"),
        }
        seen.push(label);
    }
    assert_eq!(seen, expected, "one line per check\n{report}");
    assert!(out.status.success(), "{report}");
}
