use micro_runtime::handler;

struct Calc;

#[handler]
impl Default for Calc {
    fn default() -> Calc {
        Calc
    }
}

fn main() {}
