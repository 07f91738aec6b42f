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

/// A golden case: the build.rs front compiles `protos` (their imports are generated too),
/// protoc is given `protos` and `imports` (a protoc plugin generates only the files it is
/// given), and both write what `golden` holds.
struct Case {
    include: PathBuf,
    protos: Vec<&'static str>,
    imports: Vec<&'static str>,
    golden: PathBuf,
}

fn cases() -> Vec<Case> {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let case = |include: PathBuf, protos: Vec<&'static str>, imports, name: &str| Case {
        include,
        protos,
        imports,
        golden: golden.join(name),
    };
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/proto");
    vec![
        case(
            root().join("proto"),
            vec!["greeter.proto"],
            vec![],
            "greeter",
        ),
        case(root().join("proto"), vec!["echo.proto"], vec![], "echo"),
        case(
            root().join("tests/proto"),
            vec!["kitchen.proto"],
            vec!["common.proto"],
            "kitchen",
        ),
        case(
            root().join("tests/proto"),
            vec!["edge.proto", "edge_enums.proto"],
            vec![],
            "edge",
        ),
        // An imported message as a field, well-known types as fields, requests and
        // responses, a nested package importing another.
        case(
            own,
            vec!["shop/v1/orders.proto"],
            vec!["shop/common/v1/money.proto"],
            "shop",
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
    for Case {
        include,
        protos,
        golden,
        ..
    } in cases()
    {
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
    for Case {
        include,
        protos,
        imports,
        ..
    } in cases()
    {
        let out = tempfile::tempdir().unwrap();
        let status = Command::new("protoc")
            .arg("-I")
            .arg(&include)
            .arg(format!("--plugin=protoc-gen-micro={plugin}"))
            .arg(format!("--micro_out={}", out.path().display()))
            .args(protos.iter().chain(&imports).map(|p| include.join(p)))
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

/// Generates `proto` (the text of `test.proto`) with the build.rs front.
fn generate_one(proto: &str) -> Result<BTreeMap<String, String>, protoc_gen_micro::Error> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test.proto"), proto).unwrap();
    protoc_gen_micro::Builder::new()
        .out_dir(dir.path())
        .compile(&[dir.path().join("test.proto")], &[dir.path()])
        .map(|()| read_dir(dir.path()))
}

/// The error message of generating `proto`, which must fail with a name clash.
fn clash(proto: &str) -> String {
    let err = generate_one(proto).expect_err("a name clash");
    assert!(
        matches!(err, protoc_gen_micro::Error::NameClash(_)),
        "{err:?}"
    );
    err.to_string()
}

#[test]
fn a_service_named_like_a_type_of_its_package_is_an_error() {
    // protoc refuses one name twice in a package, but prost's type of `message order` is
    // `Order`, as is the handler trait of `service Order`.
    let err = clash(
        "syntax = \"proto3\"; package shop; message order {} service Order { rpc Get(order) returns (order); }",
    );
    assert_eq!(
        err,
        "name clash: service shop.Order: its handler trait `Order` has the name of the Rust type of message shop.order (both go in the module of package `shop`): rename the service or the other type"
    );
    let err = clash(
        "syntax = \"proto3\"; package shop; message OrderClient {} service Order { rpc Get(OrderClient) returns (OrderClient); }",
    );
    assert!(err.contains("service shop.Order: its client struct `OrderClient` has the name of the Rust type of message shop.OrderClient"), "{err}");
    let err = clash(
        "syntax = \"proto3\"; enum ORDER { O = 0; } message M {} service Order { rpc Get(M) returns (M); }",
    );
    assert!(
        err.contains(
            "service Order: its handler trait `Order` has the name of the Rust type of enum ORDER"
        ),
        "{err}"
    );
    // A service against another service's client.
    let err = clash(
        "syntax = \"proto3\"; package p; message M {} service Order { rpc A(M) returns (M); } service OrderClient { rpc A(M) returns (M); }",
    );
    assert!(err.contains("service p.OrderClient: its handler trait `OrderClient` has the name of the Rust type of the client struct of service p.Order"), "{err}");
    // Across the files of one package.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.proto"),
        "syntax = \"proto3\"; package p; message order {}",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.proto"), "syntax = \"proto3\"; package p; import \"a.proto\"; service Order { rpc A(order) returns (order); }").unwrap();
    let err = protoc_gen_micro::Builder::new()
        .out_dir(dir.path())
        .compile(
            &[dir.path().join("a.proto"), dir.path().join("b.proto")],
            &[dir.path()],
        )
        .unwrap_err();
    assert!(err.to_string().contains("service p.Order: its handler trait `Order` has the name of the Rust type of message p.order"), "{err}");
}

#[test]
fn rpcs_whose_methods_still_clash_are_an_error() {
    // Two rpcs, one handler method.
    let err = clash(
        "syntax = \"proto3\"; package p; message M {} service S { rpc FooBar(M) returns (M); rpc Foo_Bar(M) returns (M); }",
    );
    assert_eq!(
        err,
        "name clash: service p.S: rpc FooBar and rpc Foo_Bar are both the handler method `foo_bar`: rename one of them"
    );
    // After the underscores of `client_names`, client methods cannot clash unless handler
    // methods do: `Self` and `Self_` are both `self_`.
    let err = clash(
        "syntax = \"proto3\"; package p; message M {} service S { rpc Self(M) returns (M); rpc Self_(M) returns (M); }",
    );
    assert!(
        err.contains("service p.S: rpc Self and rpc Self_ are both the handler method `self_`"),
        "{err}"
    );
}

#[test]
fn client_methods_named_like_the_constructor_or_a_call_with_options_get_an_underscore() {
    let out = generate_one(
        "syntax = \"proto3\"; package p; message M {}
        service S { rpc New(M) returns (M); rpc Hello(M) returns (M); rpc HelloWith(M) returns (M); rpc Clone(M) returns (M); }",
    )
    .unwrap();
    let code = &out["p.rs"];
    for client_fn in [
        "pub async fn new_(",
        "pub async fn new_with(",
        "pub async fn hello(",
        "pub async fn hello_with(",
        "pub async fn hello_with_(",
        "pub async fn hello_with_with(",
        "pub async fn clone_(",
        "pub async fn clone_with(",
    ] {
        assert!(code.contains(client_fn), "no {client_fn} in\n{code}");
    }
    assert!(
        code.contains("/// Named `new_`: `new` is the client's constructor."),
        "{code}"
    );
    assert!(
        code.contains("/// Named `clone_`: `clone` is the client's `Clone::clone`."),
        "{code}"
    );
    assert!(
        code.contains(
            "/// Named `hello_with_`: `hello_with` is [`Self::hello`]'s call with options."
        ),
        "{code}"
    );
    // `fn new(&self, ..)` is against clippy's conventions, allowed.
    assert_eq!(
        code.matches("#[allow(clippy::wrong_self_convention)]")
            .count(),
        2,
        "{code}"
    );
    // The handler trait keeps the rpcs' names.
    for trait_fn in ["fn new(", "fn hello(", "fn hello_with("] {
        assert!(code.contains(trait_fn), "no {trait_fn} in\n{code}");
    }
}

#[test]
fn a_package_of_enums_only_has_no_unused_descriptors() {
    let out =
        generate_one("syntax = \"proto3\"; package p; enum E { E_UNSPECIFIED = 0; }").unwrap();
    let code = &out["p.rs"];
    assert!(code.contains("pub const FILE_DESCRIPTOR_SET"), "{code}");
    assert!(!code.contains("DESCRIPTORS:"), "{code}");
}

/// A request whose descriptors do not hold together (as no protoc sends, but a hand-made
/// or truncated one may) is answered with an error naming the file: prost-build used to
/// panic on a field whose type it could not find.
#[test]
fn plugin_answers_unresolved_types_with_an_error() {
    use prost::Message as _;
    use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};

    let file = FileDescriptorProto {
        name: Some("orders.proto".into()),
        package: Some("orders".into()),
        syntax: Some("proto3".into()),
        dependency: vec!["money.proto".into()],
        message_type: vec![DescriptorProto {
            name: Some("Order".into()),
            field: vec![FieldDescriptorProto {
                name: Some("total".into()),
                number: Some(1),
                label: Some(Label::Optional as i32),
                r#type: Some(Type::Message as i32),
                type_name: Some(".money.Money".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = CodeGeneratorRequest {
        file_to_generate: vec!["orders.proto".into()],
        proto_file: vec![file],
        ..Default::default()
    };
    let response = protoc_gen_micro::plugin(&request.encode_to_vec()).expect("a response");
    let response = CodeGeneratorResponse::decode(response.as_slice()).expect("decode");
    let error = response.error.expect("an error");
    assert!(error.contains("orders.proto"), "{error}");
    assert!(response.file.is_empty());
}
