//! Attacks on the gRPC server, from raw HTTP/2 frames (`tests/python/h2_attack.py`, Python's
//! `h2`): what the server holds stays bounded, and it goes on answering.
//!
//! Memory is read as the server process's peak resident size (`VmHWM`), so a spike that
//! came and went counts. Each attack is bounded in count and time and ends by itself.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use micro_tests::{Proc, example_binary, repo_root};

/// A greeter-server on a free loopback port with a registry directory of its own, run by
/// `prefix` (e.g. `prlimit`); returns it with its address and the directory.
fn start_greeter(prefix: &[&str]) -> (Proc, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(example_binary("greeter-server"));
            cmd
        }
        None => Command::new(example_binary("greeter-server")),
    };
    let child = cmd
        .args([
            "--server_address",
            &address,
            "--registry",
            "local",
            "--registry_address",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start greeter-server");
    let proc = Proc(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "greeter-server did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (proc, address, dir)
}

/// A field of `/proc/PID/status`, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Runs the attack `args` against `address`; returns what it printed.
fn attack(address: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args([
            "120",
            "python3",
            "tests/python/h2_attack.py",
            "--address",
            address,
        ])
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the attack failed (is Python's h2 installed? scripts/test installs it):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `greeter-client` against the server's registry: it must answer.
fn greets(dir: &Path) {
    let out = Command::new("timeout")
        .arg("30")
        .arg(example_binary("greeter-client"))
        .args(["--registry", "local", "--registry_address"])
        .arg(dir)
        .args(["--client_request_timeout", "10s"])
        .output()
        .expect("run greeter-client");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Hello, World!",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `args` against a fresh server; fails when its peak memory grew by more than
/// `bound_mb`, or when it no longer answers.
fn bounded(args: &[&str], bound_mb: u64) -> String {
    let (server, address, dir) = start_greeter(&[]);
    let pid = server.0.id();
    let before = status_kb(pid, "VmHWM:");
    let printed = attack(&address, args);
    let peak = status_kb(pid, "VmHWM:");
    let grown = (peak.saturating_sub(before)) / 1024;
    assert!(
        grown <= bound_mb,
        "{args:?}: the server's peak memory grew by {grown} MB (bound {bound_mb} MB): {printed}"
    );
    greets(dir.path());
    printed
}

/// An HPACK "bomb": 1,000 streams whose requests each reference a 4,000-byte header 4,000
/// times (4 KiB on the wire, 16 MiB decoded). The header list limit (16 KiB) refuses them
/// before they are decoded: a server without it held ~170 MB.
#[test]
fn an_hpack_bomb_keeps_memory_bounded() {
    bounded(&["hpack-bomb", "--streams", "1000"], 32);
}

/// 20 connections each sending an endless header block of CONTINUATION frames (16 MiB
/// each): refused at the header list limit. Without it, the server grew by ~110 MB.
#[test]
fn endless_continuation_frames_keep_memory_bounded() {
    bounded(&["continuation", "--connections", "20", "--mib", "16"], 32);
}

/// 50 calls on one connection each sending a 4 MiB message at once: the connection's
/// request buffer (32 MiB) lets some through and refuses the rest with RESOURCE_EXHAUSTED.
/// Without it, the server's peak was ~210 MB.
#[test]
fn big_requests_on_one_connection_keep_memory_bounded() {
    let printed = bounded(&["bodies", "--streams", "50", "--hold", "30"], 96);
    let refused: u32 = printed
        .split_whitespace()
        .skip_while(|w| *w != "refused")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no refusals counted: {printed}"));
    assert!(refused > 0, "no call was refused: {printed}");
}

/// Rapid Reset (CVE-2023-44487): streams opened and reset at once, 2,000 per connection on 5
/// connections. The server sheds the connections and goes on answering.
#[test]
fn rapid_reset_keeps_the_server_answering() {
    bounded(
        &["rapid-reset", "--connections", "5", "--streams", "2000"],
        32,
    );
}

/// 1,100 connections that finish the HTTP/2 handshake and then hold, against a server whose
/// open-files limit is 1,024 (soft and hard): the server keeps its connections below the
/// limit, closing the one idle the longest for each new one, so a real call still gets
/// through while they are held.
#[test]
fn idle_connections_beyond_the_open_files_limit_do_not_stop_calls() {
    let (server, address, dir) = start_greeter(&["prlimit", "--nofile=1024:1024"]);
    let mut flood = Command::new("timeout")
        .args([
            "60",
            "python3",
            "tests/python/h2_attack.py",
            "--address",
            &address,
        ])
        .args(["idle", "--connections", "1100", "--hold", "15"])
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python3");
    let stdout = flood.stdout.take().expect("stdout");
    let holding = micro_tests::line_after(stdout, "holding ")
        .expect("the flood ended before it held its connections");
    let held: u32 = holding.trim().parse().expect("a count");
    assert!(held > 1000, "only {held} connections were made");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.0.id()))
        .expect("the server's descriptors")
        .count();
    assert!(
        fds < 1024,
        "the server holds {fds} descriptors of its 1,024"
    );
    greets(dir.path());
    let _ = flood.kill();
    let _ = flood.wait();
}

/// No password of a broker or registry address reaches the output: not in errors, not in
/// debug logs, not in `--help` (which shows `MICRO_*` values). Each backend is pointed at a
/// closed port with a password in its URL, by flag and by variable.
#[test]
fn passwords_in_addresses_never_reach_the_output() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = "hunter2-secret";
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--broker", "nats"], &["publish", "t", "{}"]),
        (&["--broker", "jetstream"], &["publish", "t", "{}"]),
        (&["--broker", "rabbitmq"], &["publish", "t", "{}"]),
        (&["--registry", "etcd"], &["list", "services"]),
        (&["--registry", "etcd"], &["--help"]),
    ];
    for (kind, command) in cases {
        let (flag, variable, address) = match kind[1] {
            "nats" | "jetstream" => (
                "--broker_address",
                "MICRO_BROKER_ADDRESS",
                format!(
                    "nats://user:{secret}@127.0.0.1:{closed},nats://{secret}@127.0.0.1:{closed}"
                ),
            ),
            "rabbitmq" => (
                "--broker_address",
                "MICRO_BROKER_ADDRESS",
                format!("amqp://guest:{secret}@127.0.0.1:{closed}/%2f"),
            ),
            _ => (
                "--registry_address",
                "MICRO_REGISTRY_ADDRESS",
                format!("http://user:{secret}@127.0.0.1:{closed}"),
            ),
        };
        let tmp = tempfile::tempdir().unwrap();
        for by_flag in [true, false] {
            let mut cmd = Command::new("timeout");
            cmd.args(["30"]).arg(example_binary("micro"));
            if flag == "--broker_address" {
                cmd.args(["--registry", "local", "--registry_address"])
                    .arg(tmp.path());
            }
            cmd.args(kind)
                .env("RUST_LOG", "debug")
                .env("ETCD_PASSWORD", secret)
                .env("ETCD_USERNAME", "user");
            if by_flag {
                cmd.args([flag, &address]);
            } else {
                cmd.env(variable, &address);
            }
            let out = cmd.args(command).output().expect("run micro");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !text.contains(secret),
                "micro {kind:?} {command:?} (by flag: {by_flag}) showed the password:\n{text}"
            );
            if command != ["--help"] {
                assert!(
                    !out.status.success(),
                    "{kind:?}: no error to check:\n{text}"
                );
            }
        }
    }
}
