//! Generates the example services' code from proto/ (no protoc needed), and links them for a
//! compact start-up: their start-up functions together (`startup.order`, written by
//! `scripts/startup-order`), relocations packed.
fn main() {
    protoc_gen_micro::compile_protos(
        &[
            "../proto/greeter.proto",
            "../proto/echo.proto",
            "../proto/events.proto",
        ],
        &["../proto"],
    )
    .unwrap();
    protoc_gen_micro::link_compact_startup("startup.order");
}
