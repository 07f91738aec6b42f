//! The macros end to end: handlers registered with `server.handle(T)`, described in the
//! registry, called through the client by endpoint name over a real HTTP/2 connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use micro_runtime::registry::memory::MemoryRegistry;
use micro_runtime::registry::{Endpoint, Value};
use micro_runtime::{CallOptions, Client, Code, Codec, Context, Error, Message, Service, handler};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message, Debug, PartialEq)]
struct AddRequest {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Message, Debug, PartialEq)]
struct AddResponse {
    result: i64,
}

#[derive(Serialize, Deserialize, Message, Debug)]
#[serde(rename_all = "camelCase")]
struct Stats {
    call_count: u64,
    #[serde(rename = "last")]
    last_result: Option<i64>,
    history: Vec<AddRequest>,
    #[serde(skip)]
    #[allow(dead_code)]
    secret: String,
    #[micro(type = "duration")]
    uptime: String,
}

#[derive(Serialize, Deserialize, Message)]
struct Empty {}

/// Counts its calls: state shared by concurrent calls.
#[derive(Default)]
struct Calc {
    calls: AtomicU64,
}

/// A handler error of its own, converted by `?`.
struct Overflow;

impl From<Overflow> for Error {
    fn from(_: Overflow) -> Error {
        Error::bad_request("calculator", "overflow")
    }
}

#[handler(name = "Calculator", package = "calc")]
impl Calc {
    /// `Calculator.Add`.
    async fn add(&self, _ctx: Context, req: AddRequest) -> Result<AddResponse, Overflow> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let result = req.a.checked_add(req.b).ok_or(Overflow)?;
        Ok(AddResponse { result })
    }

    /// `Calculator.Stats`: no context.
    async fn stats(&self, _req: Empty) -> Result<Stats, Error> {
        Ok(Stats {
            call_count: self.calls.load(Ordering::Relaxed),
            last_result: None,
            history: Vec::new(),
            secret: String::new(),
            uptime: "1s".into(),
        })
    }

    /// `Calculator.WhoAmI`, renamed; reads the caller's metadata.
    #[micro(name = "WhoAmI")]
    async fn who(self: Arc<Self>, ctx: Context, _req: Empty) -> Result<Stats, Error> {
        let user = ctx.metadata().get("x-user").unwrap_or("nobody").to_owned();
        Ok(Stats {
            call_count: 0,
            last_result: None,
            history: Vec::new(),
            secret: String::new(),
            uptime: user,
        })
    }
}

/// A second handler on the same server, with the default name (the type's).
struct Echo;

#[handler]
impl Echo {
    async fn say_it(&self, req: AddRequest) -> Result<AddRequest, Error> {
        Ok(req)
    }
}

/// A hand-written prost message that speaks protobuf (and JSON through serde).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize, Message)]
#[micro(proto, json)]
struct Point {
    #[prost(int64, tag = "1")]
    x: i64,
    #[prost(int64, tag = "2")]
    y: i64,
}

/// Proto only.
#[derive(Clone, PartialEq, prost::Message, Message)]
#[micro(proto)]
struct Norm {
    #[prost(int64, tag = "1")]
    manhattan: i64,
    #[prost(bytes = "vec", tag = "2")]
    trace: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    chunks: Vec<Vec<u8>>,
    #[prost(map = "string, bytes", tag = "4")]
    blobs: std::collections::HashMap<String, Vec<u8>>,
}

struct Geometry;

/// Calls of `Geometry.Norm` that ran.
static NORM_RUNS: AtomicU64 = AtomicU64::new(0);

#[handler]
impl Geometry {
    async fn norm(&self, p: Point) -> Result<Norm, Error> {
        NORM_RUNS.fetch_add(1, Ordering::Relaxed);
        Ok(Norm {
            manhattan: p.x.abs() + p.y.abs(),
            ..Norm::default()
        })
    }
}

async fn start() -> (Service, Arc<Calc>, std::net::SocketAddr) {
    let registry = Arc::new(MemoryRegistry::new());
    let service = Service::builder()
        .name("calculator")
        .address("127.0.0.1:0")
        .registry(registry)
        .build()
        .unwrap();
    let calc = Arc::new(Calc::default());
    service.server().handle(calc.clone()).unwrap();
    service.server().handle(Echo).unwrap();
    service.server().handle(Geometry).unwrap();
    let addr = service.start().await.unwrap();
    (service, calc, addr)
}

fn client(service: &Service) -> Client {
    service.client()
}

#[tokio::test]
async fn calls_by_endpoint_name_through_the_registry() {
    let (service, calc, _) = start().await;
    let rsp: AddResponse = client(&service)
        .call_endpoint("calculator", "Calculator.Add", AddRequest { a: 1, b: 2 })
        .await
        .unwrap();
    assert_eq!(rsp, AddResponse { result: 3 });
    assert_eq!(calc.calls.load(Ordering::Relaxed), 1);

    let rsp: AddRequest = client(&service)
        .call_endpoint("calculator", "Echo.SayIt", AddRequest { a: 4, b: 5 })
        .await
        .unwrap();
    assert_eq!(rsp, AddRequest { a: 4, b: 5 });

    let stats: Stats = client(&service)
        .call_endpoint("calculator", "Calculator.Stats", Empty {})
        .await
        .unwrap();
    assert_eq!(stats.call_count, 1);

    let opts = CallOptions::new().metadata("x-user", "ada");
    let who: Stats = client(&service)
        .call_endpoint_with("calculator", "Calculator.WhoAmI", &Empty {}, &opts)
        .await
        .unwrap();
    assert_eq!(who.uptime, "ada");
    service.stop().await.unwrap();
}

#[tokio::test]
async fn handler_errors_convert_and_reach_the_caller() {
    let (service, _, _) = start().await;
    let err = client(&service)
        .call_endpoint::<_, AddResponse>(
            "calculator",
            "Calculator.Add",
            AddRequest { a: i64::MAX, b: 1 },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.detail(), "overflow");

    let err = client(&service)
        .call_endpoint::<_, AddResponse>("calculator", "Calculator.Nope", AddRequest { a: 1, b: 1 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err}");
    service.stop().await.unwrap();
}

#[tokio::test]
async fn a_serde_message_in_protobuf_is_invalid_argument() {
    let (service, _, addr) = start().await;
    let opts = CallOptions::new()
        .codec(Codec::Proto)
        .address(addr.to_string());
    let err = client(&service)
        .call_endpoint_with::<_, AddResponse>(
            "calculator",
            "Calculator.Add",
            &AddRequest { a: 1, b: 2 },
            &opts,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(
        err.detail().contains("AddRequest has no proto encoding"),
        "{err}"
    );
    service.stop().await.unwrap();
}

#[tokio::test]
async fn prost_messages_speak_protobuf_and_json() {
    let (service, _, _) = start().await;
    for codec in [Codec::Proto, Codec::Json] {
        let opts = CallOptions::new().codec(codec);
        let runs = NORM_RUNS.load(Ordering::Relaxed);
        let rsp: Result<Norm, _> = client(&service)
            .call_endpoint_with("calculator", "Geometry.Norm", &Point { x: -3, y: 4 }, &opts)
            .await;
        match codec {
            Codec::Proto => assert_eq!(rsp.unwrap().manhattan, 7),
            // The response speaks only protobuf: asked for JSON, the server says so, before
            // the method runs (its effects would be done, and the caller told it failed).
            _ => {
                let err = rsp.unwrap_err();
                assert_eq!(err.code(), Code::InvalidArgument, "{err}");
                assert!(err.detail().contains("Norm has no json encoding"), "{err}");
                assert_eq!(NORM_RUNS.load(Ordering::Relaxed), runs, "the method ran");
            }
        }
    }
    // Without options, the request's codec is the client's default (protobuf).
    let rsp: Norm = client(&service)
        .call_endpoint("calculator", "Geometry.Norm", Point { x: 1, y: 1 })
        .await
        .unwrap();
    assert_eq!(rsp.manhattan, 2);
    service.stop().await.unwrap();
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.values
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name} in {v:?}"))
}

fn endpoint<'a>(endpoints: &'a [Endpoint], name: &str) -> &'a Endpoint {
    endpoints
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no endpoint {name}"))
}

#[tokio::test]
async fn endpoints_are_described_in_the_registry() {
    let (service, _, _) = start().await;
    let records = service
        .server()
        .registry()
        .get_service("calculator")
        .await
        .unwrap();
    let endpoints = &records[0].endpoints;
    let names: Vec<_> = endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Calculator.Add",
            "Calculator.Stats",
            "Calculator.WhoAmI",
            "Echo.SayIt",
            "Geometry.Norm"
        ]
    );

    let add = endpoint(endpoints, "Calculator.Add");
    assert_eq!(
        add.metadata.get("stream").map(String::as_str),
        Some("false")
    );
    // go-micro's JSON shape: a message named and typed by its name, scalars with null values.
    let json = serde_json::to_value(add.request.as_ref().unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"name": "AddRequest", "type": "AddRequest", "values": [
            {"name": "a", "type": "int64", "values": null},
            {"name": "b", "type": "int64", "values": null},
        ]})
    );

    let stats = endpoint(endpoints, "Calculator.Stats")
        .response
        .as_ref()
        .unwrap();
    let kinds: Vec<_> = stats
        .values
        .iter()
        .map(|v| (v.name.as_str(), v.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("callCount", "uint64"),
            ("last", "int64"),
            ("history", "[]AddRequest"),
            ("uptime", "duration"),
        ]
    );
    assert_eq!(field(stats, "history").values.len(), 2);

    let norm = endpoint(endpoints, "Geometry.Norm");
    assert_eq!(norm.request.as_ref().unwrap().values.len(), 2);
    let rsp = norm.response.as_ref().unwrap();
    assert_eq!(rsp.values[0].name, "manhattan");
    // As the generator describes the same fields of a .proto.
    let kinds: Vec<_> = rsp.values.iter().map(|v| v.kind.as_str()).collect();
    assert_eq!(kinds, ["int64", "bytes", "[]bytes", "map<string,bytes>"]);
    service.stop().await.unwrap();
}

/// A hand-written prost message with well-known types as fields.
#[derive(Clone, PartialEq, prost::Message, Message)]
#[micro(proto)]
struct Stamped {
    #[prost(message, optional, tag = "1")]
    at: Option<prost_types::Timestamp>,
    #[prost(message, repeated, tag = "2")]
    waits: Vec<prost_types::Duration>,
}

#[test]
fn well_known_fields_are_described_as_the_generator_does() {
    let described = Stamped::describe();
    let at = &described.values[0];
    assert_eq!((at.name.as_str(), at.kind.as_str()), ("at", "Timestamp"));
    let fields: Vec<_> = at
        .values
        .iter()
        .map(|v| (v.name.as_str(), v.kind.as_str()))
        .collect();
    assert_eq!(fields, [("seconds", "int64"), ("nanos", "int32")]);
    assert_eq!(described.values[1].kind, "[]Duration");
}

#[test]
fn preferred_codecs() {
    assert_eq!(AddRequest::preferred_codec(), Some(Codec::Json));
    assert_eq!(Point::preferred_codec(), None);
    assert_eq!(Norm::preferred_codec(), Some(Codec::Proto));
}

#[test]
fn one_endpoint_name_is_handled_once() {
    let registry = Arc::new(MemoryRegistry::new());
    let service = Service::builder()
        .name("calculator")
        .registry(registry)
        .build()
        .unwrap();
    service.server().handle(Echo).unwrap();
    let err = service.server().handle(Echo).unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
}

#[derive(Serialize, Deserialize, Message)]
struct Paged {
    #[serde(flatten)]
    query: AddRequest,
    #[serde(rename(serialize = "pageToken", deserialize = "page_token"))]
    page_token: String,
    #[micro(skip)]
    #[serde(default)]
    internal: Option<u8>,
    tags: std::collections::BTreeMap<String, Vec<u8>>,
}

#[test]
fn flatten_rename_skip_and_maps_are_described_as_serde_writes_them() {
    let paged = Paged::describe();
    let kinds: Vec<_> = paged
        .values
        .iter()
        .map(|v| (v.name.as_str(), v.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a", "int64"),
            ("b", "int64"),
            ("pageToken", "string"),
            ("tags", "map<string,[]uint32>"),
        ]
    );
    let json = serde_json::to_value(Paged {
        query: AddRequest { a: 1, b: 2 },
        page_token: "t".into(),
        internal: None,
        tags: Default::default(),
    })
    .unwrap();
    assert!(
        json.get("pageToken").is_some() && json.get("a").is_some(),
        "{json}"
    );
}

#[tokio::test]
async fn the_package_path_answers_too() {
    let (service, _, addr) = start().await;
    // With a fixed address the service name only names the path: `/calc.Calculator/Add`,
    // the standard path of `package = "calc"`, next to go-micro's `/calculator.Calculator/Add`.
    let opts = CallOptions::new().address(addr.to_string());
    for name in ["calc", "calculator"] {
        let rsp: AddResponse = client(&service)
            .call_endpoint_with(name, "Calculator.Add", &AddRequest { a: 2, b: 3 }, &opts)
            .await
            .unwrap();
        assert_eq!(rsp.result, 5, "{name}");
    }
    let err = client(&service)
        .call_endpoint_with::<_, AddResponse>(
            "other",
            "Calculator.Add",
            &AddRequest { a: 2, b: 3 },
            &opts,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    service.stop().await.unwrap();
}

/// A handler with an endpoint and subscriber methods.
#[derive(Default)]
struct Audit {
    seen: std::sync::Mutex<Vec<String>>,
}

#[handler]
impl Audit {
    async fn count(&self, _req: Empty) -> Result<Stats, Error> {
        let seen = self.seen.lock().unwrap().len() as u64;
        Ok(Stats {
            call_count: seen,
            last_result: None,
            history: Vec::new(),
            secret: String::new(),
            uptime: "0s".into(),
        })
    }

    #[micro(subscribe = "audit.added")]
    async fn on_added(&self, ctx: Context, req: AddRequest) -> Result<(), Error> {
        let who = ctx.metadata().get("x-user").unwrap_or("?").to_owned();
        self.seen
            .lock()
            .unwrap()
            .push(format!("{who}:{}", req.a + req.b));
        Ok(())
    }

    #[micro(subscribe = "audit.rejected", queue = "auditors")]
    async fn on_rejected(self: Arc<Self>, req: AddRequest) -> Result<(), Overflow> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("rejected:{}", req.a));
        Ok(())
    }
}

#[tokio::test]
async fn subscriber_methods_handle_published_messages() {
    let broker: Arc<dyn micro_runtime::broker::Broker> =
        Arc::new(micro_runtime::broker::memory::MemoryBroker::new());
    let registry = Arc::new(MemoryRegistry::new());
    let service = Service::builder()
        .name("audit")
        .address("127.0.0.1:0")
        .registry(registry.clone())
        .broker(broker)
        .build()
        .unwrap();
    let audit = Arc::new(Audit::default());
    service.server().handle(audit.clone()).unwrap();
    service.start().await.unwrap();

    let record = &micro_runtime::Registry::get_service(&*registry, "audit")
        .await
        .unwrap()[0];
    let names: Vec<_> = record.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Audit.Count", "audit.added", "audit.rejected"]);
    let sub = endpoint(&record.endpoints, "audit.rejected");
    assert_eq!(sub.metadata["subscriber"], "true");
    assert_eq!(sub.metadata["queue"], "auditors");
    assert_eq!(sub.request.as_ref().unwrap().name, "AddRequest");

    let client = service.client();
    let opts = CallOptions::new().metadata("x-user", "ada");
    client
        .publish_with("audit.added", &AddRequest { a: 1, b: 2 }, &opts)
        .await
        .unwrap();
    client
        .publish("audit.rejected", &AddRequest { a: 7, b: 0 })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while audit.seen.lock().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "not delivered");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut seen = audit.seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["ada:3", "rejected:7"]);
    service.stop().await.unwrap();
}
