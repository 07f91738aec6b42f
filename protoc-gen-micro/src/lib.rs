//! `protoc-gen-micro`: Rust code for micro services from `.proto` files.
//!
//! From a `service Greeter` it generates the prost messages, a typed `GreeterClient`, a
//! `Greeter` handler trait and `register_greeter_handler`, plus the endpoint descriptions
//! that go into the registry. One core ([`generate`]) has two fronts:
//!
//! - a `build.rs` API that needs no `protoc` (it parses with [`protox`]):
//!   ```no_run
//!   // in build.rs's main:
//!   protoc_gen_micro::compile_protos(&["proto/greeter.proto"], &["proto"]).unwrap();
//!   ```
//!   then, in the crate, `micro_runtime::include_protos!();` (every package, in the module
//!   its name gives) or `mod greeter { micro_runtime::include_proto!("greeter"); }`;
//! - the protoc plugin binary `protoc-gen-micro`:
//!   `protoc -I proto --plugin=protoc-gen-micro=target/release/protoc-gen-micro --micro_out=OUT proto/greeter.proto`.
//!
//! Both write the same code for the same files: one formatted file per proto package
//! (`greeter.rs`, `shop.v1.rs`), marked `@generated`, with proto comments as doc comments,
//! and `_micro_includes.rs`, the tree of those packages' modules. build.rs also generates the
//! files its protos import (protoc hands a plugin only the files on its command line).
//! `google.protobuf.*` types are `prost_types`' (re-exported as `micro_runtime::prost_types`).
//! Generated code refers only to `::micro_runtime::codegen`, so the crate using it needs
//! `micro-runtime` and nothing else. Every failure (a parse error, a missing import, a type
//! that is not defined, names that clash in Rust) is an [`Error`] naming the file, and the
//! line where it is known; the plugin answers protoc with it.
//!
//! # Layout
//! - `generator`: the core, over prost-build;
//! - `describe`: registry descriptions of messages, computed at generation time;
//! - `ident`: case conversion and keyword escaping;
//! - `main.rs`: the protoc plugin.
//!
//! # Feature flags
//! None.

mod describe;
mod generator;
mod ident;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_types::FileDescriptorSet;
use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse, code_generator_response};

/// What can go wrong while generating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The .proto files did not parse or resolve: the message starts with the file, and the
    /// line and column where they are known (`inventory.proto:7:3: ...`).
    #[error("compile protos: {}", located(.0))]
    Protox(#[from] protox::Error),
    /// The descriptors do not hold together (a type that is not defined, an import that is
    /// not in the set, a name defined twice): the message names the file, and the line where
    /// it is known.
    #[error("invalid descriptors: {0}")]
    Invalid(String),
    /// prost-build refused the descriptors.
    #[error("generate messages: {0}")]
    Prost(std::io::Error),
    /// A file to generate is not in the descriptor set.
    #[error("file {0} is not in the descriptor set")]
    MissingFile(String),
    /// The proto uses something not supported yet.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Two Rust items the generator would write for a package have the same name (a service
    /// named like a message, two rpcs whose methods come out alike): the message says which
    /// and what to rename.
    #[error("name clash: {0}")]
    NameClash(String),
    /// Generated code did not parse (a generator bug).
    #[error("generated code for {0} does not parse: {1}")]
    Syntax(String, String),
    /// Writing the output failed.
    #[error("write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    /// `OUT_DIR` is not set (not in a build script) and no output directory was given.
    #[error("OUT_DIR is not set: call from build.rs or set Builder::out_dir")]
    NoOutDir,
    /// The plugin request could not be decoded.
    #[error("decode CodeGeneratorRequest: {0}")]
    Request(#[from] prost::DecodeError),
}

/// Generates the Rust sources for `files` (names as in `set`, e.g. `greeter.proto`): file
/// name (`greeter.rs`) -> source. The core both fronts share.
pub fn generate(
    set: &FileDescriptorSet,
    files: &[String],
) -> Result<BTreeMap<String, String>, Error> {
    generator::generate(set, files)
}

/// Compiles `protos`, found in `includes`, into `$OUT_DIR` from a build script.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<(), Error> {
    Builder::new().compile(protos, includes)
}

/// The build.rs front, with options.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    out_dir: Option<PathBuf>,
}

impl Builder {
    /// Defaults: output to `$OUT_DIR`.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Writes to `dir` instead of `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Parses `protos` with protox (no `protoc` needed), generates, and writes each file
    /// unless it is unchanged. Prints `cargo:rerun-if-changed` for every file read.
    pub fn compile(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let mut compiler = protox::Compiler::new(includes)?;
        compiler.include_imports(true).include_source_info(true);
        compiler.open_files(protos)?;
        // The files asked for and the files they import are generated alike (as prost-build
        // does), but protobuf's own, which are `prost_types`.
        let mut files = Vec::new();
        for meta in compiler.files() {
            if let Some(path) = meta.path() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            files.push(meta.name().to_owned());
        }
        let set = compiler.file_descriptor_set();
        for (name, source) in generate(&set, &files)? {
            write_if_changed(&out_dir.join(name), &source)?;
        }
        Ok(())
    }
}

/// `file:line:column: message` of a protox error, as much of it as it knows.
fn located(err: &protox::Error) -> String {
    use miette::Diagnostic as _;
    let position = err.labels().and_then(|mut labels| {
        let label = labels.next()?;
        let source = err.source_code()?;
        let span = source.read_span(label.inner(), 0, 0).ok()?;
        Some(format!("{}:{}", span.line() + 1, span.column() + 1))
    });
    match (err.file(), position) {
        (Some(file), Some(position)) => format!("{file}:{position}: {err}"),
        (Some(file), None) => format!("{file}: {err}"),
        (None, _) => err.to_string(),
    }
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), Error> {
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Write(dir.to_owned(), e))?;
    }
    std::fs::write(path, content).map_err(|e| Error::Write(path.to_owned(), e))
}

/// The protoc plugin front: answers an encoded `CodeGeneratorRequest` with an encoded
/// `CodeGeneratorResponse`. Generation errors go into the response, as protoc expects.
pub fn plugin(request: &[u8]) -> Result<Vec<u8>, Error> {
    let request = CodeGeneratorRequest::decode(request)?;
    let set = FileDescriptorSet {
        file: request.proto_file,
    };
    let response = match generate(&set, &request.file_to_generate) {
        Ok(files) => CodeGeneratorResponse {
            supported_features: Some(code_generator_response::Feature::Proto3Optional as u64),
            file: files
                .into_iter()
                .map(|(name, content)| code_generator_response::File {
                    name: Some(name),
                    content: Some(content),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
        Err(e) => CodeGeneratorResponse {
            error: Some(e.to_string()),
            ..Default::default()
        },
    };
    Ok(response.encode_to_vec())
}
