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
    // The examples run where they are built: packed relocations are safe.
    protoc_gen_micro::CompactStartup::new("startup.order")
        .pack_relocations()
        .link();
}
