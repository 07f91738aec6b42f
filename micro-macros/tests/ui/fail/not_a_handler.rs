use micro_runtime::{Handler, Server};

struct Calc;

fn register(server: &Server) -> micro_runtime::Result<()> {
    let _ = Handler::new("", "Calc");
    server.handle(Calc)
}

fn main() {}
