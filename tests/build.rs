//! Generates the test protos with the build.rs front.
fn main() {
    protoc_gen_micro::compile_protos(
        &[
            "proto/kitchen.proto",
            "proto/common.proto",
            "proto/edge.proto",
            "proto/edge_enums.proto",
        ],
        &["proto"],
    )
    .unwrap();
}
