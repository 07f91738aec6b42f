//! `micro new NAME`: a new service crate, as go-micro's `micro new` makes one: a proto with
//! `Call` and `Stream`, its handler, a server registered as NAME, a client binary, a test
//! that runs the service and calls it, a README and a Dockerfile. `--no-proto` makes the
//! same service from plain Rust types with `#[handler]`.
//!
//! The crate depends on micro by path (`--path`, or the checkout this `micro` was built
//! from) or by git (`--git`), until the crates are published. The files come from askama
//! templates (`templates/new/`).

use std::path::{Path, PathBuf};

use askama::Template;
use micro_runtime::{Code, Error, Result};

/// Where the new crate takes micro's crates from.
#[derive(Debug)]
pub(super) enum Source {
    /// A checkout: its `micro-runtime/` and `protoc-gen-micro/`.
    Path(PathBuf),
    /// A git repository holding the workspace.
    Git(String),
}

/// What the templates see.
#[derive(Debug)]
struct Project {
    /// The crate and the registered service: `inventory`, `stock-keeper`.
    name: String,
    /// The crate's Rust name, the proto package and its module: `stock_keeper`.
    module: String,
    /// The proto service and the handler type: `StockKeeper`.
    service: String,
    /// The proto package (the crate's Rust name).
    package: String,
    /// `path = "..."` or `git = "..."` of micro-runtime.
    runtime_source: String,
    /// The same, of protoc-gen-micro.
    generator_source: String,
    /// With a .proto (else `#[handler]` on plain types).
    proto: bool,
}

macro_rules! templates {
    ($($name:ident => $path:literal;)*) => {$(
        #[derive(Template)]
        #[template(path = $path, escape = "none")]
        struct $name<'a> {
            p: &'a Project,
        }
    )*};
}

templates! {
    CargoToml => "new/Cargo.toml";
    BuildRs => "new/build.rs";
    ServiceProto => "new/service.proto";
    LibProto => "new/lib_proto.rs";
    LibMacro => "new/lib_macro.rs";
    MainRs => "new/main.rs";
    ClientRs => "new/client.rs";
    TestRs => "new/test.rs";
    Readme => "new/README.md";
    Dockerfile => "new/Dockerfile";
}

/// Writes the crate `name` in `dir/name`; returns the files written, relative to it.
pub(super) fn create(
    dir: &Path,
    name: &str,
    source: Option<Source>,
    proto: bool,
) -> Result<Vec<String>> {
    check_name(name)?;
    let root = dir.join(name);
    if root.exists() {
        return Err(Error::new(
            Code::AlreadyExists,
            format!("{} already exists", root.display()),
        ));
    }
    let source = match source {
        Some(source) => source,
        None => Source::Path(own_checkout().ok_or_else(|| {
            Error::new(
                Code::InvalidArgument,
                "this micro was not built from a checkout that is still there: say where micro's crates are with --path DIR (a checkout) or --git URL",
            )
        })?),
    };
    let (runtime_source, generator_source) = match &source {
        Source::Path(path) => {
            let path = std::path::absolute(path).map_err(|e| io_error(path, e))?;
            if !path.join("micro-runtime/Cargo.toml").is_file() {
                return Err(Error::new(
                    Code::InvalidArgument,
                    format!(
                        "{} is not a checkout of micro (no micro-runtime/Cargo.toml in it)",
                        path.display()
                    ),
                ));
            }
            let dep = |krate: &str| format!("path = {:?}", path.join(krate).display().to_string());
            (dep("micro-runtime"), dep("protoc-gen-micro"))
        }
        Source::Git(url) => (format!("git = {url:?}"), format!("git = {url:?}")),
    };
    let module = name.replace('-', "_");
    let project = Project {
        name: name.to_owned(),
        service: upper_camel(name),
        package: module.clone(),
        module,
        runtime_source,
        generator_source,
        proto,
    };
    let p = &project;
    let mut files: Vec<(String, String)> = vec![
        ("Cargo.toml".into(), render(CargoToml { p })?),
        (
            "src/lib.rs".into(),
            if proto {
                render(LibProto { p })?
            } else {
                render(LibMacro { p })?
            },
        ),
        ("src/main.rs".into(), render(MainRs { p })?),
        (format!("src/bin/{name}-client.rs"), render(ClientRs { p })?),
        ("tests/service.rs".into(), render(TestRs { p })?),
        ("README.md".into(), render(Readme { p })?),
        ("Dockerfile".into(), render(Dockerfile { p })?),
        (".gitignore".into(), "/target\n".into()),
    ];
    if proto {
        files.push(("build.rs".into(), render(BuildRs { p })?));
        files.push((format!("proto/{name}.proto"), render(ServiceProto { p })?));
    }
    for (path, content) in &files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        std::fs::write(&path, content).map_err(|e| io_error(&path, e))?;
    }
    let mut names: Vec<String> = files.into_iter().map(|(path, _)| path).collect();
    names.sort();
    format_rust(&root, &names);
    Ok(names)
}

/// Formats the crate's Rust files with rustfmt when there is one (the templates can't lay out
/// lines whose length depends on the name); the crate builds either way.
fn format_rust(root: &Path, files: &[String]) {
    let rust: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.ends_with(".rs"))
        .map(|f| root.join(f))
        .collect();
    let formatted = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&rust)
        .stderr(std::process::Stdio::null())
        .status();
    if !formatted.is_ok_and(|s| s.success()) {
        tracing::debug!("rustfmt did not format the new crate");
    }
}

fn render(template: impl Template) -> Result<String> {
    let mut text = template
        .render()
        .map_err(|e| Error::new(Code::Internal, format!("render a template: {e}")))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(Code::Internal, format!("{}: {e}", path.display()))
}

/// The checkout this binary was built from, when it is still there (`cargo install --path`
/// and `cargo run` builds; a `--git` install keeps its checkout in cargo's home).
fn own_checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("micro-runtime/Cargo.toml")
        .is_file()
        .then(|| root.to_owned())
}

/// A name that is a crate name, a proto package and a Rust module at once: lowercase ASCII
/// letters and digits, words joined by `-` or `_`, starting with a letter, not a keyword.
fn check_name(name: &str) -> Result<()> {
    const RESERVED: &[&str] = &[
        "as",
        "async",
        "await",
        "break",
        "const",
        "continue",
        "crate",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "type",
        "unsafe",
        "use",
        "where",
        "while",
        "abstract",
        "become",
        "box",
        "do",
        "final",
        "gen",
        "macro",
        "override",
        "priv",
        "try",
        "typeof",
        "unsized",
        "virtual",
        "yield",
        "alloc",
        "core",
        "std",
        "proc_macro",
        "test",
        "micro",
        "micro_runtime",
    ];
    let words_ok = name.split(['-', '_']).all(|w| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    let starts_ok = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !words_ok || !starts_ok {
        return Err(Error::new(
            Code::InvalidArgument,
            format!(
                "{name:?} can't name a service: use lowercase letters and digits, words joined by - or _, starting with a letter (e.g. inventory, stock-keeper)"
            ),
        ));
    }
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        return Err(Error::new(
            Code::InvalidArgument,
            format!("{name:?} is a Rust keyword or a reserved crate name: choose another"),
        ));
    }
    Ok(())
}

/// `stock-keeper` -> `StockKeeper`.
fn upper_camel(name: &str) -> String {
    name.split(['-', '_'])
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_crates_packages_and_modules() {
        for good in ["inventory", "stock-keeper", "orders_v2", "a1"] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            "Inventory",
            "1orders",
            "stock--keeper",
            "-x",
            "x-",
            "stock keeper",
            "type",
            "test",
            "ünïcode",
        ] {
            assert_eq!(
                check_name(bad).unwrap_err().code(),
                Code::InvalidArgument,
                "{bad:?}"
            );
        }
        assert_eq!(upper_camel("stock-keeper"), "StockKeeper");
        assert_eq!(upper_camel("orders_v2"), "OrdersV2");
    }

    #[test]
    fn a_crate_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let files = create(
            dir.path(),
            "stock-keeper",
            Some(Source::Path(checkout.into())),
            true,
        )
        .unwrap();
        assert!(
            files.contains(&"proto/stock-keeper.proto".to_owned()),
            "{files:?}"
        );
        assert!(
            files.contains(&"src/bin/stock-keeper-client.rs".to_owned()),
            "{files:?}"
        );
        let proto =
            std::fs::read_to_string(dir.path().join("stock-keeper/proto/stock-keeper.proto"))
                .unwrap();
        assert!(proto.contains("package stock_keeper;"), "{proto}");
        assert!(proto.contains("service StockKeeper {"), "{proto}");
        let again = create(dir.path(), "stock-keeper", None, true).unwrap_err();
        assert_eq!(again.code(), Code::AlreadyExists);
        let bad_path = create(
            dir.path(),
            "other",
            Some(Source::Path(dir.path().into())),
            false,
        )
        .unwrap_err();
        assert!(
            bad_path.detail().contains("not a checkout of micro"),
            "{bad_path}"
        );
    }
}
