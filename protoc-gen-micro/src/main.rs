//! The protoc plugin: `protoc --plugin=protoc-gen-micro=PATH --micro_out=DIR file.proto`.
//! Reads a `CodeGeneratorRequest` on stdin, writes a `CodeGeneratorResponse` on stdout.

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut request) {
        eprintln!("protoc-gen-micro: read request: {e}");
        return ExitCode::FAILURE;
    }
    match protoc_gen_micro::plugin(&request) {
        Ok(response) => match std::io::stdout().write_all(&response) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("protoc-gen-micro: write response: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("protoc-gen-micro: {e}");
            ExitCode::FAILURE
        }
    }
}
