//! The first hour of a new user: a crate of their own outside this workspace, depending on
//! the checkout by path, with protos as real projects write them; the README's first
//! service; every binary's command line.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use micro_tests::outside::{self, OutsideCrate};
use micro_tests::{Proc, example_binary, repo_root};

/// How long a service of an outside crate may take to print its start line.
const START: Duration = Duration::from_secs(60);

/// The files of `tests/outside/<name>`: `Cargo.toml.in` becomes `Cargo.toml`.
fn template(name: &str) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("read the template") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).expect("under the template");
                let rel = rel.to_string_lossy().replace("Cargo.toml.in", "Cargo.toml");
                out.push((
                    rel,
                    std::fs::read_to_string(&path).expect("read a template file"),
                ));
            }
        }
    }
    let base = repo_root().join("tests/outside").join(name);
    let mut files = Vec::new();
    walk(&base, &base, &mut files);
    files
}

/// Starts `binary` with `args`; returns it once its stderr shows `<name> started on ADDR`
/// (the default logging of a service, which the program did not set up), with ADDR.
fn start_service(binary: &Path, name: &str, args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(binary)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MICRO_LOG_LEVEL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary:?}: {e}"));
    let stderr = child.stderr.take().expect("stderr");
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = format!("{name} started on ");
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split(&marker).nth(1) {
                let addr = rest.split(',').next().unwrap_or("").to_owned();
                let _ = tx.send(Ok((addr, line.clone())));
            }
            seen.push(line);
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(START) {
        Ok(Ok((addr, line))) => {
            assert!(line.contains("INFO"), "not an info line: {line}");
            assert!(line.contains("registry local"), "no registry in: {line}");
            (proc, addr)
        }
        Ok(Err(log)) => panic!("{binary:?} exited before its start line:\n{log}"),
        Err(_) => panic!("{binary:?} printed no start line within {START:?}"),
    }
}

#[test]
fn a_crate_of_its_own_with_real_protos_builds_serves_and_calls() {
    let mut files = template("shop");
    // The protos the generator's golden case holds: a nested package that imports a package
    // of its own and the well-known types, with a streaming method.
    for proto in ["shop/v1/orders.proto", "shop/common/v1/money.proto"] {
        let text =
            std::fs::read_to_string(repo_root().join("protoc-gen-micro/tests/proto").join(proto))
                .expect("read a proto");
        files.push((format!("proto/{proto}"), text));
    }
    let files: Vec<(&str, String)> = files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    let krate = OutsideCrate::new(&files);
    let build = krate.cargo(&["build", "--bins", "--message-format=json"]);

    // The plugin writes the same files as build.rs for the same protos.
    let from_build_rs = outside::rust_files(&outside::out_dir(&build, "shop"));
    assert!(
        from_build_rs.contains_key("shop.v1.rs"),
        "{:?}",
        from_build_rs.keys()
    );
    assert!(
        from_build_rs.contains_key("shop.common.v1.rs"),
        "{:?}",
        from_build_rs.keys()
    );
    let plugin_out = tempfile::tempdir().expect("a directory");
    let status = Command::new("protoc")
        .current_dir(krate.path())
        .args(["-I", "proto"])
        .arg(format!(
            "--plugin=protoc-gen-micro={}",
            example_binary("protoc-gen-micro").display()
        ))
        .arg(format!("--micro_out={}", plugin_out.path().display()))
        .args([
            "proto/shop/v1/orders.proto",
            "proto/shop/common/v1/money.proto",
        ])
        .status()
        .expect("protoc is required (Debian's protobuf-compiler): run scripts/test");
    assert!(status.success(), "protoc failed");
    outside::assert_same_files(
        &outside::rust_files(plugin_out.path()),
        &from_build_rs,
        "the plugin against build.rs",
    );

    // Its flags come from `ServiceBuilder::from_args`: clap's behaviour, its own name.
    assert_cli(&OutsideCrate::binary("shop-server"), "shop-server");

    // The server runs, registers in a registry of the test's own, and answers the client.
    let registry = tempfile::tempdir().expect("a directory");
    let flags = [
        "--registry",
        "local",
        "--registry_address",
        registry.path().to_str().expect("a UTF-8 path"),
    ];
    let server_args: Vec<&str> = flags
        .iter()
        .copied()
        .chain(["--server_address", "127.0.0.1:0"])
        .collect();
    let (_server, addr) = start_service(&OutsideCrate::binary("shop-server"), "shop", &server_args);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let out = Command::new(OutsideCrate::binary("shop-client"))
        .args(flags)
        .output()
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now: i64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("now "))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no Timestamp in:\n{stdout}"));
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    assert!(
        (wall - now).abs() < 300,
        "the server's clock says {now}, ours {wall}"
    );
    assert!(stdout.contains("order o-1 placed "), "{stdout}");
    assert!(stdout.contains(" total 12 EUR"), "{stdout}");
    assert!(stdout.contains("watched 3 orders"), "{stdout}");
    assert!(
        stdout.contains("error InvalidArgument an order id is required"),
        "{stdout}"
    );
}

/// `micro new NAME --path CHECKOUT` (and `--no-proto`) in an empty directory: the crate it
/// makes is formatted, passes its own test as made, and its server registers by name and
/// answers its client.
fn micro_new(name: &str, extra: &[&str], greeting: &str) {
    let dir = OutsideCrate::empty();
    let root = outside::root();
    let out = Command::new(example_binary("micro"))
        .current_dir(dir.path())
        .args(["new", name, "--path"])
        .arg(&root)
        .args(extra)
        .output()
        .expect("run micro new");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "Cargo.toml",
        "README.md",
        "Dockerfile",
        "src/main.rs",
        "src/lib.rs",
        "tests/service.rs",
    ] {
        assert!(
            dir.path().join(name).join(file).is_file(),
            "no {file}:\n{stdout}"
        );
    }
    let krate = dir.path().join(name);
    dir.lock_in(&krate);
    let fmt = outside::cargo()
        .args(["fmt", "--check"])
        .current_dir(&krate)
        .output()
        .expect("cargo fmt");
    assert!(
        fmt.status.success(),
        "{}",
        String::from_utf8_lossy(&fmt.stdout)
    );
    let test = dir.cargo_in(name, &["test"]);
    let output = String::from_utf8_lossy(&test.stderr);
    assert!(output.contains("Running tests/service.rs"), "{output}");
    dir.cargo_in(name, &["build", "--bins"]);

    let registry = tempfile::tempdir().expect("a directory");
    let flags = [
        "--registry",
        "local",
        "--registry_address",
        registry.path().to_str().expect("a UTF-8 path"),
    ];
    let server_args: Vec<&str> = flags
        .iter()
        .copied()
        .chain(["--server_address", "127.0.0.1:0"])
        .collect();
    let (_server, _) = start_service(&OutsideCrate::binary(name), name, &server_args);
    let out = Command::new(OutsideCrate::binary(&format!("{name}-client")))
        .args(flags)
        .args(["--name", "Alice"])
        .output()
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with(greeting), "{stdout}");
}

#[test]
fn micro_new_makes_a_service_from_a_proto() {
    micro_new(
        "inventory",
        &[],
        "Hello Alice\nstream 0\nstream 1\nstream 2\n",
    );
}

#[test]
fn micro_new_no_proto_makes_a_service_from_rust_types() {
    micro_new("stock-keeper", &["--no-proto"], "Hello Alice\n");
}

/// `--help` and `--version` print to stdout and exit 0 under the program's own name; an
/// unknown flag exits 2 with clap's message on stderr.
fn assert_cli(binary: &Path, name: &str) {
    let run = |flag: &str| {
        Command::new(binary)
            .arg(flag)
            .env_remove("RUST_LOG")
            .output()
            .unwrap_or_else(|e| panic!("run {binary:?}: {e}"))
    };
    let help = run("--help");
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{name} --help: {text}");
    assert!(
        text.contains(&format!("Usage: {name}")),
        "{name} --help:\n{text}"
    );
    assert!(text.contains("--registry"), "{name} --help:\n{text}");
    let version = run("--version");
    let text = String::from_utf8_lossy(&version.stdout);
    assert_eq!(version.status.code(), Some(0), "{name} --version: {text}");
    assert!(
        text.starts_with(&format!("{name} ")),
        "{name} --version: {text}"
    );
    let bogus = run("--bogus");
    let text = String::from_utf8_lossy(&bogus.stderr);
    assert_eq!(bogus.status.code(), Some(2), "{name} --bogus: {text}");
    assert!(
        text.contains("unexpected argument '--bogus'"),
        "{name} --bogus: {text}"
    );
}

#[test]
fn every_binary_answers_help_version_and_bad_flags_as_clap_does() {
    for name in [
        "micro",
        "greeter-server",
        "greeter-client",
        "echo-server",
        "quickstart",
        "calculator-server",
        "calculator-client",
        "event-publisher",
        "event-subscriber",
        "mdns-demo",
        "macro-greeter",
    ] {
        assert_cli(&example_binary(name), name);
    }
}

/// `cargo install --path micro-cli` with no protoc to be had (`PROTOC` names a program that
/// does not exist, so any build script that runs protoc fails): the `micro` it installs
/// speaks etcd by default and lists what is registered there. (`--debug` for the test's
/// time; the build scripts are the same in every profile.)
#[test]
fn micro_installs_without_protoc_and_lists_services_in_etcd() {
    let install = tempfile::tempdir().expect("a directory");
    let out = outside::cargo()
        .args(["install", "--debug", "--locked", "--offline", "--path"])
        .arg(outside::root().join("micro-cli"))
        .arg("--root")
        .arg(install.path())
        .arg("--target-dir")
        .arg(outside::target_dir())
        .env("PROTOC", "/nonexistent/protoc")
        .output()
        .expect("run cargo install");
    assert!(
        out.status.success(),
        "cargo install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let micro = install.path().join("bin/micro");

    let etcd = micro_tests::etcd::Etcd::single();
    let endpoints = etcd.endpoints();
    let run = |args: &[&str]| {
        let out = Command::new(&micro)
            .args(["--registry", "etcd", "--registry_address", &endpoints])
            .args(args)
            .output()
            .expect("run the installed micro");
        assert!(
            out.status.success(),
            "micro {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[
        "register",
        "service",
        r#"{"name": "inventory", "nodes": [{"id": "inventory-1", "address": "127.0.0.1:9999"}]}"#,
    ]);
    assert_eq!(run(&["list", "services"]), "inventory\n");
}

/// The files of the README's first service: each fenced block after a `<!-- file: PATH -->`
/// line, with the checkout's path for `../micro/`.
fn readme_files() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let mut files = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- file: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "no code block after the file line of {path}"
        );
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let text = body.join("\n") + "\n";
        files.push((
            path.to_owned(),
            text.replace("../micro/", &format!("{}/", outside::root().display())),
        ));
    }
    files
}

#[test]
fn the_readme_first_service_builds_runs_and_answers() {
    let files = readme_files();
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Cargo.toml",
            "proto/greeter.proto",
            "build.rs",
            "src/main.rs",
            "src/bin/client.rs"
        ]
    );
    let files: Vec<(&str, String)> = files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    let krate = OutsideCrate::new(&files);
    let build = krate.cargo(&["build", "--bins"]);
    let warnings = String::from_utf8_lossy(&build.stderr);
    assert!(
        !warnings.contains("warning"),
        "the README's service builds with warnings:\n{warnings}"
    );

    let registry = tempfile::tempdir().expect("a directory");
    let flags = [
        "--registry",
        "local",
        "--registry_address",
        registry.path().to_str().expect("a UTF-8 path"),
    ];
    let server_args: Vec<&str> = flags
        .iter()
        .copied()
        .chain(["--server_address", "127.0.0.1:0"])
        .collect();
    let (_server, _) = start_service(&OutsideCrate::binary("greeter"), "greeter", &server_args);
    let out = Command::new(OutsideCrate::binary("client"))
        .args(flags)
        .output()
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "Hello, World!\n");
}
