//! Generates the greeter code from proto/greeter.proto (no protoc needed).
fn main() {
    protoc_gen_micro::compile_protos(&["../proto/greeter.proto"], &["../proto"]).unwrap();
}
