//! Generates tonic's greeter and echo (clients and servers), the references the benches
//! compare with.
fn main() {
    let fds = protox::compile(
        ["../proto/greeter.proto", "../proto/echo.proto"],
        ["../proto"],
    )
    .expect("compile the protos");
    tonic_prost_build::configure()
        .compile_fds(fds)
        .expect("generate tonic code");
}
