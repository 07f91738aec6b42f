//! The generator's two fronts, checked against golden files and against each other:
//! the build.rs front (protox) and the protoc plugin run by Debian's `protoc`.
//!
//! `UPDATE_GOLDEN=1 cargo test -p protoc-gen-micro` rewrites the golden files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cases: (include dir, protos, golden dir).
fn cases() -> Vec<(PathBuf, Vec<&'static str>, PathBuf)> {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    vec![
        (
            root().join("proto"),
            vec!["greeter.proto"],
            golden.join("greeter"),
        ),
        (
            root().join("proto"),
            vec!["echo.proto"],
            golden.join("echo"),
        ),
        (
            root().join("tests/proto"),
            vec!["kitchen.proto", "common.proto"],
            golden.join("kitchen"),
        ),
    ]
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect()
}

fn build_rs_front(include: &Path, protos: &[&str]) -> BTreeMap<String, String> {
    let out = tempfile::tempdir().unwrap();
    let protos: Vec<PathBuf> = protos.iter().map(|p| include.join(p)).collect();
    protoc_gen_micro::Builder::new()
        .out_dir(out.path())
        .compile(&protos, &[include])
        .unwrap();
    read_dir(out.path())
}

#[test]
fn build_rs_front_matches_golden_files() {
    for (include, protos, golden) in cases() {
        let generated = build_rs_front(&include, &protos);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            let _ = std::fs::remove_dir_all(&golden);
            std::fs::create_dir_all(&golden).unwrap();
            for (name, source) in &generated {
                std::fs::write(golden.join(name), source).unwrap();
            }
        }
        let expected = read_dir(&golden);
        assert_eq!(
            generated.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "files generated for {protos:?}"
        );
        for (name, source) in &generated {
            assert!(
                source.starts_with("// @generated"),
                "{name} lacks the @generated marker"
            );
            assert!(
                *source == expected[name],
                "{name} differs from {}: rerun with UPDATE_GOLDEN=1 and review the diff",
                golden.join(name).display()
            );
        }
    }
}

#[test]
fn protoc_plugin_writes_the_same_code() {
    let plugin = env!("CARGO_BIN_EXE_protoc-gen-micro");
    for (include, protos, _) in cases() {
        let out = tempfile::tempdir().unwrap();
        let status = Command::new("protoc")
            .arg("-I")
            .arg(&include)
            .arg(format!("--plugin=protoc-gen-micro={plugin}"))
            .arg(format!("--micro_out={}", out.path().display()))
            .args(protos.iter().map(|p| include.join(p)))
            .status()
            .expect("protoc is required (Debian package protobuf-compiler): run scripts/test");
        assert!(status.success(), "protoc failed");
        assert_eq!(
            read_dir(out.path()),
            build_rs_front(&include, &protos),
            "plugin and build.rs disagree for {protos:?}"
        );
    }
}

#[test]
fn plugin_reports_errors_in_its_response() {
    use prost::Message as _;
    use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};
    use std::io::Write as _;

    let plugin = env!("CARGO_BIN_EXE_protoc-gen-micro");
    let request = CodeGeneratorRequest {
        file_to_generate: vec!["missing.proto".into()],
        ..Default::default()
    };
    let mut child = Command::new(plugin)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.encode_to_vec())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "errors go in the response, as protoc expects"
    );
    let response = CodeGeneratorResponse::decode(out.stdout.as_slice()).unwrap();
    let error = response.error.expect("an error");
    assert!(error.contains("missing.proto"), "{error}");
    assert!(response.file.is_empty());
}

#[test]
fn bad_protos_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.proto"),
        "syntax = \"proto3\"; message {",
    )
    .unwrap();
    let err = protoc_gen_micro::Builder::new()
        .out_dir(dir.path())
        .compile(&[dir.path().join("bad.proto")], &[dir.path()])
        .unwrap_err();
    assert!(err.to_string().contains("bad.proto"), "{err}");
    assert!(protoc_gen_micro::plugin(b"\xff\xff").is_err());
}
