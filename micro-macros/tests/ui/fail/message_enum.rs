use micro_runtime::Message;

#[derive(serde::Serialize, serde::Deserialize, Message)]
enum Shape {
    Circle { r: f64 },
    Square { side: f64 },
}

fn main() {}
