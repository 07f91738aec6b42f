//! Generates tonic's greeter (client and server), the reference the benches compare with.
fn main() {
    let fds =
        protox::compile(["../proto/greeter.proto"], ["../proto"]).expect("compile greeter.proto");
    tonic_prost_build::configure()
        .compile_fds(fds)
        .expect("generate tonic greeter");
}
