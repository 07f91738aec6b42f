//! Compact start-up: links a service so that starting it leaves less of it resident.
//!
//! The kernel maps a program's code around each page fault in windows of 64 KiB, so what a
//! service keeps resident after starting is the number of windows its start-up touches, not
//! how much code it runs. Laid out by name, the few hundred functions that start a service
//! (flag parsing, logging, the runtime, the registry, the listener) fall into most windows of
//! the binary; a symbol ordering file, handed to the linker, puts them first and together.
//! And the dynamic loader reads every relocation of a position-independent program at start:
//! packed (`DT_RELR`), a Rust server's 200 KiB of them take a few.

use std::path::Path;

/// The oldest rustc that links `x86_64-unknown-linux-gnu` programs with its own LLD, which
/// reads symbol ordering files and packs relocations.
const LLD_BY_DEFAULT: (u32, u32) = (1, 90);

/// Where `x86_64-unknown-linux-gnu` systems keep glibc's `libc.so.6`.
const LIBC: [&str; 4] = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
];

/// From a build script: links the package's binaries for a compact start-up, when that can be
/// done safely: a release build for `x86_64-unknown-linux-gnu` by rustc 1.90 or later (which
/// links with its own LLD) with no linker chosen in Cargo's settings or `RUSTFLAGS`.
/// Otherwise the binaries link as usual. Returns whether it applied.
///
/// - The functions named in `order` (a path relative to the package; one mangled symbol per
///   line, `#` comments) go first, in that order. Names the binary does not define are
///   skipped, so a stale file costs memory, never a failed build. `scripts/startup-order` of
///   this repository writes such a file by running a service under
///   `valgrind --tool=callgrind`: every function that runs from start to idle.
/// - Relative relocations are packed (`-z pack-relative-relocs`) when the build machine's
///   glibc reads them (2.36 or later; the binary then needs that too, and says so in its
///   version requirements, so an older glibc refuses it with a clear message).
///
/// ```no_run
/// // in build.rs's main, beside compile_protos:
/// protoc_gen_micro::link_compact_startup("startup.order");
/// ```
pub fn link_compact_startup(order: impl AsRef<Path>) -> bool {
    let order = match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => Path::new(&dir).join(order),
        None => order.as_ref().to_owned(),
    };
    // Also when it is missing, so that the build links with it once it is written.
    println!("cargo:rerun-if-changed={}", order.display());
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let rustc_version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let applies = applies(
        &env("PROFILE"),
        &env("TARGET"),
        &rustc_version,
        std::env::var_os("RUSTC_LINKER").is_some(),
        &env("CARGO_ENCODED_RUSTFLAGS"),
    );
    if !applies {
        return false;
    }
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    let reads_relr = LIBC
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .is_some_and(|libc| {
            libc.windows(b"GLIBC_ABI_DT_RELR".len())
                .any(|w| w == b"GLIBC_ABI_DT_RELR")
        });
    if reads_relr {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    true
}

/// Whether this build links with rustc's LLD: see [`link_compact_startup`].
fn applies(
    profile: &str,
    target: &str,
    rustc_version: &str,
    linker_set: bool,
    rustflags: &str,
) -> bool {
    // "rustc 1.95.0 (59807616e 2026-04-14)", "rustc 1.96.0-nightly (...)".
    let version = rustc_version.split_whitespace().nth(1).and_then(|v| {
        let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next()??))
    });
    // A linker, linker flavour or self-contained linker setting may mean a linker without
    // `--symbol-ordering-file` (GNU ld).
    let linker_flags = rustflags.split('\x1f').any(|flag| {
        flag.contains("linker") || flag.contains("link-self-contained") || flag.contains("fuse-ld")
    });
    profile == "release"
        && target == "x86_64-unknown-linux-gnu"
        && version.is_some_and(|v| v >= LLD_BY_DEFAULT)
        && !linker_set
        && !linker_flags
}

#[cfg(test)]
mod tests {
    use super::applies;

    const RUSTC: &str = "rustc 1.95.0 (59807616e 2026-04-14)";
    const TARGET: &str = "x86_64-unknown-linux-gnu";

    #[test]
    fn applies_to_release_builds_linked_by_rustc_lld() {
        assert!(applies("release", TARGET, RUSTC, false, ""));
        assert!(applies(
            "release",
            TARGET,
            "rustc 1.90.0-nightly (abc 2025-07-01)",
            false,
            ""
        ));
        assert!(applies(
            "release",
            TARGET,
            RUSTC,
            false,
            "-Cforce-frame-pointers=yes"
        ));
    }

    #[test]
    fn leaves_other_builds_as_they_were() {
        assert!(!applies("debug", TARGET, RUSTC, false, ""));
        assert!(!applies(
            "release",
            "aarch64-unknown-linux-gnu",
            RUSTC,
            false,
            ""
        ));
        assert!(!applies(
            "release",
            TARGET,
            "rustc 1.89.0 (29483883e 2025-08-04)",
            false,
            ""
        ));
        assert!(!applies("release", TARGET, "", false, ""));
        assert!(!applies("release", TARGET, RUSTC, true, ""));
        assert!(!applies(
            "release",
            TARGET,
            RUSTC,
            false,
            "-Clinker-features=-lld"
        ));
        assert!(!applies(
            "release",
            TARGET,
            RUSTC,
            false,
            "-C\x1flink-self-contained=-linker"
        ));
        assert!(!applies(
            "release",
            TARGET,
            RUSTC,
            false,
            "-Clink-arg=-fuse-ld=bfd"
        ));
    }
}
