//! Real etcd servers for the tests: a single node or a static cluster, on free 127.0.0.1
//! ports, with data in a temporary directory.
//!
//! Each member runs under a small `sh` guard that holds the test's end of a pipe: when the
//! test process goes away for any reason (a panic, a timeout's kill), the pipe closes and the
//! guard kills its etcd and removes the data, so no server outlives its test. Members can be
//! killed (SIGKILL), stopped (SIGTERM) and started again on the same data and ports.
//!
//! The `etcd` and `etcdctl` binaries (Debian's `etcd-server` and `etcd-client`, 3.4) are
//! required: a missing one fails the test, saying to run `scripts/test`, which installs them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use micro_runtime::Registry;
use micro_runtime::registry::etcd::{EtcdOptions, EtcdRegistry};

/// How long a member may take to report healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `etcd ARGS` in the background with its output in LOG, prints its pid, then waits for a
/// line (a signal name) or the end of its input: kills etcd with that signal (KILL at the end
/// of input, which also removes the data directory), and waits for it.
const GUARD: &str = r#"
log=$1; data=$2; shift 2
"$@" </dev/null >>"$log" 2>&1 &
pid=$!
echo "$pid"
if read -r sig; then eof=; else eof=1; fi
kill -"${sig:-KILL}" "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -n "$eof" ]; then rm -rf "$data"; fi
exit 0
"#;

/// TLS files for an etcd that speaks only TLS to its clients and asks them for a certificate.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA that signed both certificates.
    pub ca: PathBuf,
    /// The server's certificate (for IP 127.0.0.1) and key.
    pub server_cert: PathBuf,
    /// Key of [`TlsFiles::server_cert`].
    pub server_key: PathBuf,
    /// A client certificate and key signed by the CA.
    pub client_cert: PathBuf,
    /// Key of [`TlsFiles::client_cert`].
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// A new CA, server and client certificates in `dir`, made with the `openssl` command.
    pub fn generate(dir: &Path) -> TlsFiles {
        let f = |name: &str| dir.join(name);
        // Extensions make version 3 certificates, the only ones rustls accepts.
        for (name, ext) in [
            (
                "server.ext",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            ("client.ext", "extendedKeyUsage=clientAuth\n"),
        ] {
            std::fs::write(f(name), ext).expect("write openssl extensions");
        }
        let steps: [&[&str]; 5] = [
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=micro-test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=micro-test-client",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "client.ext",
                "-out",
                "client.pem",
            ],
        ];
        for args in steps {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("the openssl command is required to make test certificates");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        TlsFiles {
            ca: f("ca.pem"),
            server_cert: f("server.pem"),
            server_key: f("server.key"),
            client_cert: f("client.pem"),
            client_key: f("client.key"),
        }
    }
}

/// One etcd server of an [`Etcd`].
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    running: Option<Guarded>,
}

/// A running member: its guard, and the guard's input that stops it.
#[derive(Debug)]
struct Guarded {
    guard: Child,
    input: ChildStdin,
    pid: u32,
}

/// etcd servers started for a test, killed (and their data removed) on drop.
#[derive(Debug)]
pub struct Etcd {
    members: Vec<Member>,
    tls: Option<TlsFiles>,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// One etcd server.
    pub fn single() -> Etcd {
        Etcd::start(1, false, &[])
    }

    /// One etcd server with more flags (`--auth-token-ttl 2`, ...).
    pub fn single_with(flags: &[&str]) -> Etcd {
        Etcd::start(1, false, flags)
    }

    /// A static cluster of `size` members.
    pub fn cluster(size: usize) -> Etcd {
        Etcd::start(size, false, &[])
    }

    /// One etcd server that talks to clients only over TLS and wants their certificates.
    pub fn single_tls() -> Etcd {
        Etcd::start(1, true, &[])
    }

    fn start(size: usize, tls: bool, flags: &[&str]) -> Etcd {
        check_binaries();
        // Free ports can be taken by someone else before etcd binds them: try fresh ones.
        let mut last = String::new();
        for _ in 0..3 {
            let mut etcd = Etcd::configure(size, tls, flags);
            for i in 0..size {
                etcd.spawn(i);
            }
            match etcd.wait_all_healthy() {
                Ok(()) => return etcd,
                Err(e) => last = e,
            }
        }
        panic!("etcd did not start: {last}");
    }

    fn configure(size: usize, tls: bool, flags: &[&str]) -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix("micro-etcd-")
            .tempdir()
            .expect("temporary directory");
        let tls = tls.then(|| TlsFiles::generate(dir.path()));
        let ports = free_ports(2 * size);
        let ports: Vec<(u16, u16)> = ports.chunks(2).map(|p| (p[0], p[1])).collect();
        let cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("micro-test-{}", std::process::id());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, &(client, peer))| {
                let name = format!("m{i}");
                let data_dir = dir.path().join(&name);
                let client_url = format!("{scheme}://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let mut args: Vec<String> = [
                    "--name",
                    &name,
                    "--data-dir",
                    &data_dir.to_string_lossy(),
                    "--listen-client-urls",
                    &client_url,
                    "--advertise-client-urls",
                    &client_url,
                    "--listen-peer-urls",
                    &peer_url,
                    "--initial-advertise-peer-urls",
                    &peer_url,
                    "--initial-cluster",
                    &cluster,
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    &token,
                    "--logger",
                    "zap",
                    "--log-level",
                    "warn",
                ]
                .map(str::to_owned)
                .into();
                if let Some(t) = &tls {
                    for (flag, path) in [
                        ("--cert-file", &t.server_cert),
                        ("--key-file", &t.server_key),
                        ("--trusted-ca-file", &t.ca),
                    ] {
                        args.push(flag.into());
                        args.push(path.to_string_lossy().into_owned());
                    }
                    args.push("--client-cert-auth".into());
                }
                args.extend(flags.iter().map(|f| f.to_string()));
                Member {
                    log: dir.path().join(format!("{name}.log")),
                    name,
                    client_port: client,
                    data_dir,
                    args,
                    running: None,
                }
            })
            .collect();
        Etcd { members, tls, dir }
    }

    fn spawn(&mut self, i: usize) {
        let base = self.dir.path().to_owned();
        let m = &mut self.members[i];
        assert!(m.running.is_none(), "etcd member {} is running", m.name);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(GUARD)
            .arg("etcd-guard")
            .arg(&m.log)
            .arg(&base)
            .arg("etcd")
            .args(&m.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // etcd reads ETCD_* variables as flags: keep the tests' own (ETCD_USERNAME, ...) out.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("ETCD_") && k != "ETCD_UNSUPPORTED_ARCH" {
                cmd.env_remove(k);
            }
        }
        let mut guard = cmd.spawn().expect("start sh");
        let input = guard.stdin.take().expect("guard input");
        let mut line = String::new();
        BufReader::new(guard.stdout.take().expect("guard output"))
            .read_line(&mut line)
            .expect("read etcd's pid");
        let pid = line.trim().parse().expect("etcd's pid");
        m.running = Some(Guarded { guard, input, pid });
    }

    /// Waits until every running member reports healthy (a leader is elected).
    fn wait_all_healthy(&self) -> Result<(), String> {
        let start = Instant::now();
        for m in self.members.iter().filter(|m| m.running.is_some()) {
            loop {
                if self.healthy(m) {
                    break;
                }
                if !m.alive() {
                    return Err(format!("etcd {} exited: {}", m.name, m.log_tail()));
                }
                if start.elapsed() > START_TIMEOUT {
                    return Err(format!(
                        "etcd {} not healthy after {START_TIMEOUT:?}: {}",
                        m.name,
                        m.log_tail()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// `GET /health` answers `"health":"true"`. (Over TLS, the port answering is enough:
    /// the registry tests themselves show that requests work.)
    fn healthy(&self, m: &Member) -> bool {
        if self.tls.is_some() {
            let addr = ([127, 0, 0, 1], m.client_port).into();
            return TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
                && self.etcdctl_on(m, &["endpoint", "health"]).status.success();
        }
        http_get(m.client_port, "/health").is_some_and(|r| r.contains(r#""health":"true""#))
    }

    /// The value of the Prometheus metric `series` (`name{labels}` as etcd prints it) of
    /// member `i`, 0 when absent.
    pub fn metric(&self, i: usize, series: &str) -> f64 {
        assert!(self.tls.is_none(), "metrics are read over plain HTTP");
        let text = http_get(self.members[i].client_port, "/metrics").expect("GET /metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Client endpoints, `127.0.0.1:port` (with `https://` for a TLS server), comma separated.
    pub fn endpoints(&self) -> String {
        (0..self.members.len())
            .map(|i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client endpoint of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https://" } else { "" };
        format!("{scheme}127.0.0.1:{}", self.members[i].client_port)
    }

    /// The data directory of member `i` (kept across [`Etcd::restart`]).
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.members[i].data_dir
    }

    /// The TLS files of a [`Etcd::single_tls`] server.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Options for a registry on every member (with the client certificate over TLS).
    pub fn options(&self) -> EtcdOptions {
        let mut o = EtcdOptions::new(&self.endpoints());
        if let Some(t) = &self.tls {
            o.ca_file = Some(t.ca.clone());
            o.cert_file = Some(t.client_cert.clone());
            o.key_file = Some(t.client_key.clone());
        }
        o
    }

    /// A registry on every member.
    pub fn registry(&self) -> Arc<dyn Registry> {
        Arc::new(EtcdRegistry::new(self.options()).expect("etcd registry"))
    }

    /// Kills member `i` with SIGKILL and waits until it is gone.
    pub fn kill(&mut self, i: usize) {
        self.signal(i, "KILL");
    }

    /// Stops member `i` with SIGTERM (etcd shuts down cleanly) and waits until it is gone.
    pub fn stop(&mut self, i: usize) {
        self.signal(i, "TERM");
    }

    fn signal(&mut self, i: usize, sig: &str) {
        let m = &mut self.members[i];
        let Some(mut g) = m.running.take() else {
            panic!("etcd member {} is not running", m.name);
        };
        let _ = writeln!(g.input, "{sig}");
        let start = Instant::now();
        while g.guard.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(15) {
                // etcd ignored SIGTERM: its pid is not reused before the guard reaps it.
                let _ = Command::new("kill")
                    .args(["-KILL", &g.pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts member `i` again, on the same data directory and ports, and waits until it is
    /// healthy.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        if let Err(e) = self.wait_all_healthy() {
            panic!("etcd {i} did not come back: {e}");
        }
    }

    /// Runs `etcdctl` (API v3) with `args` against every running member.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        let endpoints = (0..self.members.len())
            .filter(|&i| self.members[i].running.is_some())
            .map(|i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",");
        self.etcdctl_with(&endpoints, args)
    }

    fn etcdctl_on(&self, m: &Member, args: &[&str]) -> Output {
        let i = self
            .members
            .iter()
            .position(|x| x.name == m.name)
            .unwrap_or(0);
        self.etcdctl_with(&self.endpoint(i), args)
    }

    fn etcdctl_with(&self, endpoints: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3").args([
            "--endpoints",
            endpoints,
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "5s",
        ]);
        if let Some(t) = &self.tls {
            cmd.arg("--cacert")
                .arg(&t.ca)
                .arg("--cert")
                .arg(&t.client_cert)
                .arg("--key")
                .arg(&t.client_key);
        }
        cmd.args(args).output().expect("run etcdctl")
    }

    /// `etcdctl ARGS`, which must succeed; its standard output.
    pub fn etcdctl_ok(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Puts `value` at `key` as is (with etcdctl, not through the registry).
    pub fn put_raw(&self, key: &str, value: &str) {
        // `--` so that a value starting with `-` is not an option.
        self.etcdctl_ok(&["put", "--", key, value]);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(g) = &mut m.running {
                let _ = writeln!(g.input, "KILL");
            }
        }
        for m in &mut self.members {
            if let Some(mut g) = m.running.take() {
                let _ = g.guard.wait();
            }
        }
    }
}

impl Member {
    /// Whether etcd still runs (not exited, not a zombie waiting for its guard).
    fn alive(&self) -> bool {
        let Some(g) = &self.running else {
            return false;
        };
        match std::fs::read_to_string(format!("/proc/{}/stat", g.pid)) {
            // `pid (comm) STATE ...`
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
            Err(_) => false,
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// One etcd server shared by the tests of this process (the conformance suite's); it lives
/// until the process exits.
pub fn shared() -> &'static Etcd {
    static SHARED: OnceLock<Etcd> = OnceLock::new();
    SHARED.get_or_init(Etcd::single)
}

/// Fails, saying how to get them, unless `etcd` and `etcdctl` run.
pub fn check_binaries() {
    for (bin, package) in [("etcd", "etcd-server"), ("etcdctl", "etcd-client")] {
        let ok = Command::new(bin)
            .arg(if bin == "etcd" {
                "--version"
            } else {
                "version"
            })
            .env("ETCDCTL_API", "3")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "`{bin}` is required (Debian's {package}, etcd 3.4): run scripts/test, which installs it"
        );
    }
}

/// The body and head of `GET path` on a plain HTTP etcd client port; `None` when it can't
/// be had.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut rsp = String::new();
    conn.read_to_string(&mut rsp).ok()?;
    Some(rsp)
}

/// `n` distinct ports nobody listens on now.
fn free_ports(n: usize) -> Vec<u16> {
    // All bound at once, so that they differ.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// Waits up to `limit` for `check` to give `Some`, polling every 50 ms.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
