//! go-micro's etcd layout: the key of a node and the prefix of a service, the record a key's
//! value holds, and reading the records under a prefix.

use super::api::{self, KeyValue};
use super::client::Conn;
use crate::error::Result;
use crate::registry::{Node, Record};

/// The root of every key go-micro's etcd registry writes.
pub const PREFIX: &str = "/micro/registry/";

impl Conn {
    /// Records under `prefix`; broken ones are skipped with a warning.
    pub(super) async fn records(&self, prefix: &str) -> Result<Vec<Record>> {
        let request = api::RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: api::prefix_end(prefix.as_bytes()),
        };
        let rsp: api::RangeResponse = self
            .unary(&api::RANGE, &request, &format!("get {prefix}"))
            .await?;
        Ok(rsp.kvs.iter().filter_map(decode).collect())
    }
}

/// The record in a key's value; broken ones are logged and skipped.
pub(super) fn decode(kv: &KeyValue) -> Option<Record> {
    match Record::from_json(&kv.value) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(key = %String::from_utf8_lossy(&kv.key), error = %e, "skipping broken registry record");
            None
        }
    }
}

/// A record with only the (escaped) service name and node id a key holds.
pub(super) fn from_key(key: &[u8]) -> Option<Record> {
    let key = std::str::from_utf8(key).ok()?.strip_prefix(PREFIX)?;
    let (name, id) = key.split_once('/')?;
    Some(Record {
        name: name.to_owned(),
        nodes: vec![Node {
            id: id.to_owned(),
            ..Node::default()
        }],
        ..Record::default()
    })
}

/// `/micro/registry/<name>/<id>`, with `/` in either replaced by `-`, as go-micro does.
pub fn node_key(service: &str, node: &str) -> String {
    format!("{}{}/{}", PREFIX, escape(service), escape(node))
}

/// `/micro/registry/<name>/`: the keys of one service.
pub fn service_prefix(service: &str) -> String {
    format!("{}{}/", PREFIX, escape(service))
}

/// A name or id as it shows in a key: `/` replaced by `-`.
fn escape(s: &str) -> String {
    s.replace('/', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_go_micros() {
        assert_eq!(
            node_key("greeter", "greeter-1"),
            "/micro/registry/greeter/greeter-1"
        );
        assert_eq!(
            node_key("go.micro/x", "a/b/c"),
            "/micro/registry/go.micro-x/a-b-c"
        );
        assert_eq!(service_prefix("a/b"), "/micro/registry/a-b/");
    }

    #[test]
    fn keys_tell_a_deleted_node() {
        let svc = from_key(b"/micro/registry/greeter/greeter-1").unwrap();
        assert_eq!(svc.name, "greeter");
        assert_eq!(svc.nodes[0].id, "greeter-1");
        assert!(from_key(b"/other/greeter/1").is_none());
        assert!(from_key(b"/micro/registry/greeter").is_none());
        assert!(from_key(&[0xff, 0xfe]).is_none());
    }
}
