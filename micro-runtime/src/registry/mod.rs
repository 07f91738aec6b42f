//! Service discovery: where the nodes of a service are.
//!
//! The records are go-micro's ([`Record`], [`Node`], [`Endpoint`], [`Value`], with the same
//! JSON field names), so Rust and Go services can share one registry.
//!
//! Backends:
//! - [`memory`]: in-process, for tests and single-process programs;
//! - [`local`]: the default; a host-wide registry kept in a directory, so separate processes on
//!   one machine find each other with no server and no multicast;
//! - `etcd` (feature `etcd`): go-micro's etcd layout, shared with Go services.
//! - `mdns` (feature `mdns`): multicast DNS, for the hosts of one LAN with no registry server.
//!
//! Clients read through a [`cache::Cache`], never the registry on every call.

pub mod cache;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod local;
#[cfg(feature = "mdns")]
pub mod mdns;
pub mod memory;
mod named;

pub use named::from_name;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::mpsc;

use crate::error::{Code, Error, Result};

/// A service's record in the registry (go-micro's `registry.Service`): one name and version,
/// its endpoints and the nodes that serve it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The service name (`greeter`).
    pub name: String,
    /// The version (`latest` when none was set).
    #[serde(default)]
    pub version: String,
    /// Service metadata.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: BTreeMap<String, String>,
    /// What the service answers.
    #[serde(default, deserialize_with = "nullable")]
    pub endpoints: Vec<Endpoint>,
    /// Where it runs.
    #[serde(default, deserialize_with = "nullable")]
    pub nodes: Vec<Node>,
}

/// One running instance of a service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `<service name>-<uuid>`.
    pub id: String,
    /// `host:port`.
    pub address: String,
    /// Node metadata (`transport`, `broker`, `server`, `registry`, `protocol`, ...).
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: BTreeMap<String, String>,
}

/// A method of a service, `Handler.Method` (`Greeter.Hello`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `Greeter.Hello`.
    pub name: String,
    /// The request message.
    #[serde(default)]
    pub request: Option<Value>,
    /// The response message.
    #[serde(default)]
    pub response: Option<Value>,
    /// `stream: "true"|"false"`; subscribers carry `topic` and `subscriber: "true"`.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: BTreeMap<String, String>,
}

/// A message or field description: name, type and, for messages, the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// Field (or message) name.
    pub name: String,
    /// Type name (`string`, `int32`, or a message name).
    #[serde(rename = "type")]
    pub kind: String,
    /// Fields of a message; `null` for scalars.
    #[serde(
        default,
        deserialize_with = "nullable",
        serialize_with = "empty_as_null"
    )]
    pub values: Vec<Value>,
}

fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn empty_as_null<S: serde::Serializer>(v: &[Value], s: S) -> std::result::Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(v)
    }
}

impl Record {
    /// Parses a record; a broken one is an error that names what is wrong, never a panic.
    pub fn from_json(bytes: &[u8]) -> Result<Record> {
        let svc: Record = serde_json::from_slice(bytes)
            .map_err(|e| Error::new(Code::Internal, format!("broken registry record: {e}")))?;
        if svc.name.is_empty() {
            return Err(Error::new(
                Code::Internal,
                "broken registry record: empty service name",
            ));
        }
        Ok(svc)
    }

    /// The record as compact JSON, as go-micro writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What happened to a service in a [`Watcher`] event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A node appeared.
    Create,
    /// A node changed.
    Update,
    /// A node went away.
    Delete,
}

/// One change seen by a [`Watcher`] (go-micro's `registry.Result`): the service holds the
/// nodes concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub action: Action,
    /// The service, with the nodes concerned.
    pub service: Record,
}

/// A stream of registry changes; dropping it stops the watch.
#[derive(Debug)]
pub struct Watcher {
    rx: mpsc::Receiver<Result<Change>>,
}

impl Watcher {
    /// A watcher and the sender its backend feeds.
    pub fn channel() -> (mpsc::Sender<Result<Change>>, Watcher) {
        let (tx, rx) = mpsc::channel(64);
        (tx, Watcher { rx })
    }

    /// The next change; `None` when the backend stopped.
    pub async fn next(&mut self) -> Option<Result<Change>> {
        self.rx.recv().await
    }
}

/// The watchers of a registry that holds its view in process (memory, mDNS): events fan out
/// to each, filtered by service. A watcher that falls 64 events behind misses events rather
/// than stall the registry; its consumer's periodic lookups (the client cache's TTL) repair
/// its view.
#[derive(Debug, Default)]
pub(crate) struct Watchers(Vec<(Option<String>, mpsc::Sender<Result<Change>>)>);

impl Watchers {
    /// A new watcher of `service` (or of all, with `None`).
    pub(crate) fn add(&mut self, service: Option<&str>) -> Watcher {
        let (tx, watcher) = Watcher::channel();
        self.0.push((service.map(str::to_owned), tx));
        watcher
    }

    /// Sends an event to the watchers concerned; forgets the dropped ones.
    pub(crate) fn notify(&mut self, action: Action, service: &Record) {
        self.0.retain(|(filter, tx)| {
            if filter.as_deref().is_some_and(|f| f != service.name) {
                return !tx.is_closed();
            }
            let event = Change {
                action,
                service: service.clone(),
            };
            !matches!(
                tx.try_send(Ok(event)),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }
}

/// Options of [`Registry::register`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterOptions {
    /// How long the record lives without being registered again; zero for as long as the
    /// registry lives.
    pub ttl: Duration,
}

/// A service registry. Backends are cheap to clone behind an `Arc`.
#[async_trait::async_trait]
pub trait Registry: Send + Sync + 'static {
    /// The backend's name (`memory`, `local`, ...), as in `--registry`.
    fn name(&self) -> &'static str;

    /// Adds or refreshes the nodes of `service`.
    async fn register(&self, service: &Record, options: RegisterOptions) -> Result<()>;

    /// Removes the nodes of `service`.
    async fn deregister(&self, service: &Record) -> Result<()>;

    /// One entry per version of the named service, with its live nodes; `NOT_FOUND` when there
    /// are none.
    async fn get_service(&self, name: &str) -> Result<Vec<Record>>;

    /// Every service, one entry per name and version, without nodes' details guaranteed.
    async fn list_services(&self) -> Result<Vec<Record>>;

    /// Changes from now on, for one service or (with `None`) for all.
    async fn watch(&self, service: Option<&str>) -> Result<Watcher>;
}

/// A fresh node id for `service`: `<service>-<v4 uuid>`, as servers make theirs (go-micro's
/// form), for records registered on behalf of other programs.
///
/// ```
/// let id = micro_runtime::registry::node_id("greeter");
/// assert!(id.starts_with("greeter-") && id.len() == "greeter-".len() + 36);
/// ```
pub fn node_id(service: &str) -> String {
    crate::id::prefixed(service)
}

/// Describes a protobuf message as a registry [`Value`]: named and typed by the message name,
/// its fields nested. A message that contains itself is described once, then named only.
pub fn describe_message(desc: &prost_reflect::MessageDescriptor) -> Value {
    fn fields(desc: &prost_reflect::MessageDescriptor, seen: &mut Vec<String>) -> Vec<Value> {
        use prost_reflect::Kind;
        seen.push(desc.full_name().to_owned());
        let out = desc
            .fields()
            .map(|f| {
                let (kind, values) = match f.kind() {
                    Kind::Message(m) if f.is_map() => {
                        (format!("map<{}>", map_types(&m)), Vec::new())
                    }
                    Kind::Message(m) => {
                        let values = if seen.iter().any(|s| s == m.full_name()) {
                            Vec::new()
                        } else {
                            fields(&m, seen)
                        };
                        (m.name().to_owned(), values)
                    }
                    Kind::Enum(e) => (e.name().to_owned(), Vec::new()),
                    scalar => (scalar_name(&scalar).to_owned(), Vec::new()),
                };
                let kind = if f.is_list() {
                    format!("[]{kind}")
                } else {
                    kind
                };
                Value {
                    name: f.name().to_owned(),
                    kind,
                    values,
                }
            })
            .collect();
        seen.pop();
        out
    }
    fn map_types(entry: &prost_reflect::MessageDescriptor) -> String {
        let name = |n: u32| {
            entry.get_field(n).map(|f| match f.kind() {
                prost_reflect::Kind::Message(m) => m.name().to_owned(),
                prost_reflect::Kind::Enum(e) => e.name().to_owned(),
                k => scalar_name(&k).to_owned(),
            })
        };
        format!(
            "{},{}",
            name(1).unwrap_or_default(),
            name(2).unwrap_or_default()
        )
    }
    fn scalar_name(kind: &prost_reflect::Kind) -> &'static str {
        use prost_reflect::Kind::*;
        match kind {
            Double => "double",
            Float => "float",
            Int32 => "int32",
            Int64 => "int64",
            Uint32 => "uint32",
            Uint64 => "uint64",
            Sint32 => "sint32",
            Sint64 => "sint64",
            Fixed32 => "fixed32",
            Fixed64 => "fixed64",
            Sfixed32 => "sfixed32",
            Sfixed64 => "sfixed64",
            Bool => "bool",
            String => "string",
            Bytes => "bytes",
            Message(_) | Enum(_) => "message",
        }
    }
    Value {
        name: desc.name().to_owned(),
        kind: desc.name().to_owned(),
        values: fields(desc, &mut Vec::new()),
    }
}

/// The error for a service with no live nodes.
pub(crate) fn not_found(name: &str) -> Error {
    Error::not_found("go.micro.client", format!("service {name}: not found"))
}

/// Merges records of single nodes into one entry per version, as go-micro's `get_service`.
pub(crate) fn merge(records: impl IntoIterator<Item = Record>) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for rec in records {
        match out
            .iter_mut()
            .find(|s| s.name == rec.name && s.version == rec.version)
        {
            Some(s) => {
                for node in rec.nodes {
                    match s.nodes.iter_mut().find(|n| n.id == node.id) {
                        Some(n) => *n = node,
                        None => s.nodes.push(node),
                    }
                }
            }
            None => out.push(rec),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_MICRO_RECORD: &str = r#"{"name":"greeter","version":"latest","metadata":null,"endpoints":[{"request":{"name":"HelloRequest","type":"HelloRequest","values":[{"name":"name","type":"string","values":null}]},"response":{"name":"HelloResponse","type":"HelloResponse","values":[{"name":"greeting","type":"string","values":null}]},"metadata":{},"name":"Greeter.Hello"}],"nodes":[{"metadata":{"broker":"http","protocol":"grpc","registry":"etcd","server":"grpc","transport":"grpc"},"id":"greeter-7619ed0a-6a94-4152-9335-55c693fe026c","address":"127.0.0.1:42135"}]}"#;

    #[test]
    fn reads_a_go_micro_record() {
        let svc = Record::from_json(GO_MICRO_RECORD.as_bytes()).unwrap();
        assert_eq!(svc.name, "greeter");
        assert_eq!(svc.nodes[0].address, "127.0.0.1:42135");
        let ep = &svc.endpoints[0];
        assert_eq!(ep.name, "Greeter.Hello");
        assert_eq!(ep.request.as_ref().unwrap().values[0].kind, "string");
        // Writing it back keeps go-micro's shape: scalars' values are null.
        let back = svc.to_json();
        assert!(
            back.contains(r#"{"name":"name","type":"string","values":null}"#),
            "{back}"
        );
        assert_eq!(Record::from_json(back.as_bytes()).unwrap(), svc);
    }

    #[test]
    fn broken_records_are_errors() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"name":""}"#,
            r#"{"name":1}"#,
            r#"{"name":"x","nodes":7}"#,
        ] {
            assert!(Record::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_groups_by_version() {
        let rec = |v: &str, id: &str| Record {
            name: "a".into(),
            version: v.into(),
            nodes: vec![Node {
                id: id.into(),
                ..Node::default()
            }],
            ..Record::default()
        };
        let merged = merge([rec("1", "x"), rec("2", "y"), rec("1", "z"), rec("1", "x")]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].nodes.len(), 2);
        assert_eq!(merged[1].nodes.len(), 1);
    }

    /// Random and mangled records are errors or records, never panics.
    #[test]
    fn random_records_never_panic() {
        let mut rng = fastrand::Rng::with_seed(11);
        let good = GO_MICRO_RECORD.as_bytes();
        for _ in 0..5_000 {
            let mut bytes = good.to_vec();
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(..bytes.len());
                match rng.u8(..3) {
                    0 => bytes[i] = rng.u8(..),
                    1 => bytes.truncate(i),
                    _ => {
                        const NOISE: &[u8] = b"{}[],:0x";
                        bytes.insert(i, NOISE[rng.usize(..NOISE.len())]);
                    }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let _ = Record::from_json(&bytes);
            let _ = crate::Error::from_json(&String::from_utf8_lossy(&bytes));
        }
    }
}
