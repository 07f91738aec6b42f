// The protos import protobuf's well-known types and a package of their own; the imports are
// generated too.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoc_gen_micro::compile_protos(&["proto/shop/v1/orders.proto"], &["proto"])?;
    Ok(())
}
