//! Compact start-up: links a service so that starting it leaves less of it resident.
//!
//! The kernel maps a program's code around each page fault in windows of 64 KiB, so what a
//! service keeps resident after starting is the number of windows its start-up touches, not
//! how much code it runs. Laid out by name, the few hundred functions that start a service
//! (flag parsing, logging, the runtime, the registry, the listener) fall into most windows of
//! the binary; a symbol ordering file, handed to the linker, puts them first and together.
//! And the dynamic loader reads every relocation of a position-independent program at start:
//! packed (`DT_RELR`), a Rust server's 200 KiB of them take a few.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where `x86_64-unknown-linux-gnu` systems keep glibc's `libc.so.6`.
const LIBC: [&str; 4] = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
];

/// From a build script: links the package's binaries for a compact start-up, when the
/// build's linker can: release builds for `x86_64-unknown-linux-gnu` with no linker chosen in
/// Cargo's settings or `RUSTFLAGS`, whose linker (rustc's own LLD, the default of rustup's
/// rustc since 1.90) links a probe program with the same options. Otherwise the binaries
/// link as usual.
///
/// The functions named in the order file (a path relative to the package; one mangled
/// symbol per line, `#` comments) go first, in that order. Names the binary does not define
/// are skipped, so a stale file costs memory, never a failed build. `scripts/startup-order`
/// of this repository writes such a file by running a service under
/// `valgrind --tool=callgrind`: every function that runs from start to idle, and serving
/// calls.
///
/// ```no_run
/// // in build.rs's main, beside compile_protos:
/// protoc_gen_micro::CompactStartup::new("startup.order").link();
/// ```
#[derive(Clone, Debug)]
pub struct CompactStartup {
    order: PathBuf,
    pack_relocations: bool,
}

impl CompactStartup {
    /// Links with the symbol order in `order`, relative to the package's directory.
    pub fn new(order: impl AsRef<Path>) -> CompactStartup {
        CompactStartup {
            order: order.as_ref().to_owned(),
            pack_relocations: false,
        }
    }

    /// Also packs relative relocations (`-z pack-relative-relocs`) when the build machine's
    /// glibc reads them. The binaries then need glibc 2.36 or later where they run (an older
    /// one refuses them, naming the missing `GLIBC_ABI_DT_RELR`): for programs run where
    /// they are built, or on systems as new.
    pub fn pack_relocations(mut self) -> CompactStartup {
        self.pack_relocations = true;
        self
    }

    /// Prints the build script's instructions to Cargo; returns whether the binaries link
    /// compactly. Warns (`cargo:warning`) when the order file is missing.
    pub fn link(self) -> bool {
        let order = match std::env::var_os("CARGO_MANIFEST_DIR") {
            Some(dir) => Path::new(&dir).join(&self.order),
            None => self.order.clone(),
        };
        if !order.is_file() {
            // No rerun-if-changed for it: Cargo would rerun a missing file's script each build.
            println!(
                "cargo:warning=start-up order {} is missing: linked as usual",
                order.display()
            );
            return false;
        }
        println!("cargo:rerun-if-changed={}", order.display());
        let env = |name: &str| std::env::var(name).unwrap_or_default();
        if !eligible(
            &env("PROFILE"),
            &env("TARGET"),
            std::env::var_os("RUSTC_LINKER").is_some(),
            &env("CARGO_ENCODED_RUSTFLAGS"),
        ) {
            return false;
        }
        let mut args = vec!["--symbol-ordering-file".into(), order.into_os_string()];
        args.push("--no-warn-symbol-ordering".into());
        if self.pack_relocations && glibc_reads_relr() {
            args.extend(["-z".into(), "pack-relative-relocs".into()]);
        }
        let Some(out_dir) = std::env::var_os("OUT_DIR") else {
            return false;
        };
        if !links(Path::new(&out_dir), &args) {
            return false;
        }
        for arg in &args {
            // One linker argument each: a path may hold the commas `-Wl,` splits on.
            println!("cargo:rustc-link-arg-bins=-Xlinker");
            println!("cargo:rustc-link-arg-bins={}", arg.to_string_lossy());
        }
        true
    }
}

/// Whether this build may link compactly at all: see [`CompactStartup::link`].
fn eligible(profile: &str, target: &str, linker_set: bool, rustflags: &str) -> bool {
    // A linker, linker flavour or self-contained linker setting: what links is the user's
    // choice, not to be second-guessed.
    let linker_flags = rustflags.split('\x1f').any(|flag| {
        flag.contains("linker") || flag.contains("link-self-contained") || flag.contains("fuse-ld")
    });
    profile == "release" && target == "x86_64-unknown-linux-gnu" && !linker_set && !linker_flags
}

/// Whether the build machine's glibc applies packed relocations (2.36 or later).
fn glibc_reads_relr() -> bool {
    LIBC.iter()
        .find_map(|path| std::fs::read(path).ok())
        .is_some_and(|libc| {
            libc.windows(b"GLIBC_ABI_DT_RELR".len())
                .any(|w| w == b"GLIBC_ABI_DT_RELR")
        })
}

/// Whether this build's rustc links an empty program with `args` handed to its linker (GNU
/// ld, say, refuses `--symbol-ordering-file`).
fn links(out_dir: &Path, args: &[OsString]) -> bool {
    let source = out_dir.join("compact_startup_probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    rustc
        .arg(&source)
        .arg("-o")
        .arg(out_dir.join("compact_startup_probe"));
    if let Ok(target) = std::env::var("TARGET") {
        rustc.args(["--target", &target]);
    }
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    rustc.args(rustflags.split('\x1f').filter(|flag| !flag.is_empty()));
    for arg in args {
        rustc.arg("-C").arg("link-arg=-Xlinker");
        let mut link_arg = OsString::from("link-arg=");
        link_arg.push(arg);
        rustc.arg("-C").arg(link_arg);
    }
    rustc.stdout(Stdio::null()).stderr(Stdio::null());
    rustc.status().is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: &str = "x86_64-unknown-linux-gnu";

    #[test]
    fn only_release_builds_for_linux_with_the_default_linker() {
        assert!(eligible("release", TARGET, false, ""));
        assert!(eligible(
            "release",
            TARGET,
            false,
            "-Cforce-frame-pointers=yes"
        ));
        assert!(!eligible("debug", TARGET, false, ""));
        assert!(!eligible("release", "aarch64-unknown-linux-gnu", false, ""));
        assert!(!eligible("release", TARGET, true, ""));
        assert!(!eligible(
            "release",
            TARGET,
            false,
            "-Clinker-features=-lld"
        ));
        assert!(!eligible(
            "release",
            TARGET,
            false,
            "-C\x1flink-self-contained=-linker"
        ));
        assert!(!eligible(
            "release",
            TARGET,
            false,
            "-Clink-arg=-fuse-ld=bfd"
        ));
    }

    /// The probe: this test's rustc links with an ordering file (rustup's rustc 1.90 and later
    /// link with LLD) and refuses an option no linker knows.
    #[test]
    fn the_probe_links_what_the_linker_reads() {
        let dir = tempfile::tempdir().unwrap();
        let order = dir.path().join("order, with a comma");
        std::fs::write(&order, "# none\nmain\n").unwrap();
        let ordered = ["--symbol-ordering-file".into(), order.into_os_string()];
        assert!(links(dir.path(), &ordered));
        assert!(!links(dir.path(), &["--no-such-linker-option".into()]));
    }
}
