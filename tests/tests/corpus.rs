//! Real-world protos through the generator: every `.proto` of PyPI's
//! `googleapis-common-protos` (google/api, google/rpc, google/type, google/longrunning, ...)
//! compiles through the build.rs front and through protoc's plugin with the same output, and
//! the generated Rust compiles in a crate of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use micro_tests::example_binary;
use micro_tests::outside::{self, OutsideCrate};

/// The directory holding `google/api/...` of the installed `googleapis-common-protos`; fails
/// (never skips) when it is missing, saying how to get it.
fn googleapis() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import google.api, os; print(os.path.dirname(os.path.dirname(list(google.api.__path__)[0])))",
        ])
        .output()
        .expect("python3 is required");
    assert!(
        out.status.success(),
        "Python's googleapis-common-protos is required: run scripts/test, or `python3 -m pip install googleapis-common-protos`"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Every `.proto` under `dir/google`, relative to `dir`, in name order.
fn protos(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read a directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|e| e == "proto") {
                let rel = path.strip_prefix(base).expect("under the base");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &dir.join("google"), &mut out);
    out.sort();
    out
}

#[test]
fn googleapis_common_protos_generate_alike_through_both_fronts_and_compile() {
    let include = googleapis();
    let protos = protos(&include);
    assert!(
        protos.len() >= 40 && protos.iter().any(|p| p == "google/rpc/status.proto"),
        "not the googleapis-common-protos corpus: {protos:?}"
    );

    let from_build_rs = tempfile::tempdir().expect("a directory");
    let paths: Vec<PathBuf> = protos.iter().map(|p| include.join(p)).collect();
    protoc_gen_micro::Builder::new()
        .out_dir(from_build_rs.path())
        .compile(&paths, &[&include])
        .unwrap_or_else(|e| panic!("the build.rs front failed: {e}"));
    let generated = outside::rust_files(from_build_rs.path());
    for module in [
        "google.api.rs",
        "google.rpc.rs",
        "google.r#type.rs",
        "google.longrunning.rs",
    ] {
        assert!(
            generated.contains_key(module),
            "no {module} in {:?}",
            generated.keys()
        );
    }
    // google.longrunning.Operations: a service whose rpcs answer google.protobuf.Empty.
    assert!(generated["google.longrunning.rs"].contains("pub struct OperationsClient"));

    let from_plugin = tempfile::tempdir().expect("a directory");
    let status = Command::new("protoc")
        .arg("-I")
        .arg(&include)
        .arg(format!(
            "--plugin=protoc-gen-micro={}",
            example_binary("protoc-gen-micro").display()
        ))
        .arg(format!("--micro_out={}", from_plugin.path().display()))
        .args(&paths)
        .status()
        .expect("protoc is required (Debian's protobuf-compiler): run scripts/test");
    assert!(status.success(), "protoc with the plugin failed");
    outside::assert_same_files(
        &outside::rust_files(from_plugin.path()),
        &generated,
        "the plugin against build.rs",
    );

    // The generated Rust compiles, every package in its module.
    let list: Vec<String> = paths
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let krate = OutsideCrate::new(&[
        (
            "Cargo.toml",
            r#"[package]
name = "corpus"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
micro-runtime = { path = "@ROOT@/micro-runtime" }

[build-dependencies]
protoc-gen-micro = { path = "@ROOT@/protoc-gen-micro" }
"#
            .to_owned(),
        ),
        (
            "build.rs",
            format!(
                "fn main() {{\n    protoc_gen_micro::compile_protos(&[{}], &[{:?}]).unwrap();\n}}\n",
                list.join(", "),
                include.display().to_string()
            ),
        ),
        (
            "src/lib.rs",
            "#![allow(warnings)]\nmicro_runtime::include_protos!();\n\n\
             pub use google::longrunning::OperationsClient;\n"
                .to_owned(),
        ),
    ]);
    krate.cargo(&["build", "--lib"]);
}

#[test]
fn a_broken_proto_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("a directory");
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let compile = |name: &str| {
        protoc_gen_micro::Builder::new()
            .out_dir(dir.path())
            .compile(&[dir.path().join(name)], &[dir.path()])
            .expect_err("an error")
            .to_string()
    };
    write(
        "parse.proto",
        "syntax = \"proto3\";\n\nmessage A {\n  string = 1;\n}\n",
    );
    let err = compile("parse.proto");
    assert!(err.contains("parse.proto:4:"), "{err}");
    write(
        "unknown.proto",
        "syntax = \"proto3\";\npackage p;\nmessage A {\n  Missing m = 1;\n}\n",
    );
    let err = compile("unknown.proto");
    assert!(err.contains("unknown.proto:4:"), "{err}");
    assert!(err.contains("Missing"), "{err}");
    write(
        "import.proto",
        "syntax = \"proto3\";\nimport \"nowhere/common.proto\";\n",
    );
    let err = compile("import.proto");
    assert!(err.contains("import.proto:2:"), "{err}");
    assert!(err.contains("nowhere/common.proto"), "{err}");
    write(
        "wkt.proto",
        "syntax = \"proto3\";\npackage p;\nimport \"google/protobuf/descriptor.proto\";\n\
         import \"google/protobuf/empty.proto\";\n\
         service S { rpc Get(google.protobuf.FileDescriptorSet) returns (google.protobuf.Empty); }\n",
    );
    let err = compile("wkt.proto");
    assert!(
        err.contains("wkt.proto: rpc p.S.Get: google.protobuf.FileDescriptorSet as a request"),
        "{err}"
    );
}
