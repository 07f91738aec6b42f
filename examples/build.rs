//! Generates the example services' code from proto/ (no protoc needed).
fn main() {
    protoc_gen_micro::compile_protos(
        &[
            "../proto/greeter.proto",
            "../proto/echo.proto",
            "../proto/events.proto",
            "../proto/relay.proto",
        ],
        &["../proto"],
    )
    .unwrap();
}
