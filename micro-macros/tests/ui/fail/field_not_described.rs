use micro_runtime::Message;

#[derive(serde::Serialize, serde::Deserialize)]
struct Point { x: i64, y: i64 }

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Route {
    name: String,
    stops: Vec<Point>,
}

fn main() {}
