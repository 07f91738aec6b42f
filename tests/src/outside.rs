//! Crates of a user's own, outside the workspace: made in a temporary directory, depending on
//! this checkout by path, built and run with cargo as a user would.
//!
//! They share one target directory (`target/outside`), so the runtime and its
//! dependencies build once for all of them, and take the workspace's `Cargo.lock`, so they
//! resolve the versions the workspace built and need no network (`--offline`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::repo_root;

/// A crate in a temporary directory, removed on drop.
pub struct OutsideCrate {
    dir: tempfile::TempDir,
}

impl OutsideCrate {
    /// An empty directory for a crate (or for a command that makes one, like `micro new`).
    pub fn empty() -> OutsideCrate {
        OutsideCrate {
            dir: tempfile::Builder::new()
                .prefix("micro-outside-")
                .tempdir()
                .expect("a temporary directory"),
        }
    }

    /// A crate made of `files` (path, content); `@ROOT@` in a content is replaced by the
    /// checkout's path. The workspace's `Cargo.lock` is copied in.
    pub fn new(files: &[(&str, String)]) -> OutsideCrate {
        let krate = OutsideCrate::empty();
        for (path, content) in files {
            krate.write(
                path,
                &content.replace("@ROOT@", &root().display().to_string()),
            );
        }
        krate.lock();
        krate
    }

    /// The crate's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` at `path` in the crate, making its directories.
    pub fn write(&self, path: &str, content: &str) {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("make directories");
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    }

    /// Copies the workspace's `Cargo.lock` into `dir` (a crate's directory in this one, or
    /// this one), so cargo resolves the versions already built and fetched.
    pub fn lock_in(&self, dir: &Path) {
        std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    }

    fn lock(&self) {
        self.lock_in(self.dir.path());
    }

    /// `cargo ARGS` in `dir` (relative to the crate), offline, with the shared target
    /// directory; fails the test with cargo's output when cargo fails.
    pub fn cargo_in(&self, dir: &str, args: &[&str]) -> Output {
        let out = cargo()
            .args(args)
            .arg("--offline")
            .current_dir(self.dir.path().join(dir))
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cargo {} failed in {}:\n{}\n{}",
            args.join(" "),
            self.dir.path().join(dir).display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `cargo ARGS` in the crate (see [`OutsideCrate::cargo_in`]).
    pub fn cargo(&self, args: &[&str]) -> Output {
        self.cargo_in(".", args)
    }

    /// A binary the crate built (`cargo build --bins`).
    pub fn binary(name: &str) -> PathBuf {
        target_dir().join("debug").join(name)
    }
}

/// The checkout's root, without `..` (it goes into the crates' manifests).
pub fn root() -> PathBuf {
    repo_root().canonicalize().expect("the checkout's path")
}

/// The target directory every outside crate builds in.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("outside")
}

/// `cargo` with the shared target directory and none of the settings of the cargo that runs
/// the tests that would not apply to another crate.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.env("CARGO_TARGET_DIR", target_dir())
        // Line tables keep backtraces and keep the shared target directory small.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    cmd
}

/// `OUT_DIR` of `package`'s build script, from the JSON messages of a `cargo build
/// --message-format=json`.
pub fn out_dir(build: &Output, package: &str) -> PathBuf {
    let stdout = String::from_utf8_lossy(&build.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "build-script-executed")
        .filter(|m| {
            // `path+file:///...#shop@0.1.0`
            m["package_id"]
                .as_str()
                .is_some_and(|id| id.contains(&format!("#{package}@")))
        })
        .find_map(|m| m["out_dir"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("no build script of {package} in cargo's messages"))
}

/// The `.rs` files of `dir`: name -> content.
pub fn rust_files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {dir:?}: {e}"))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            (
                name,
                std::fs::read_to_string(&p).expect("read a generated file"),
            )
        })
        .collect()
}

/// Fails, naming the file and the first line that differ, unless `left` and `right` hold the
/// same files with the same contents.
pub fn assert_same_files(
    left: &std::collections::BTreeMap<String, String>,
    right: &std::collections::BTreeMap<String, String>,
    what: &str,
) {
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        right.keys().collect::<Vec<_>>(),
        "{what}: not the same files"
    );
    for (name, l) in left {
        let r = &right[name];
        if let Some((n, (a, b))) = l
            .lines()
            .zip(r.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            panic!("{what}: {name} differs at line {}:\n  {a}\n  {b}", n + 1);
        }
        assert_eq!(l.len(), r.len(), "{what}: {name} differs in length");
    }
}
