//! Generates the service's code from proto/ at build time (no protoc needed).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoc_gen_micro::compile_protos(&["proto/{{ p.name }}.proto"], &["proto"])?;
    Ok(())
}
