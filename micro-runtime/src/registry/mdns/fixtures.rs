//! A record the tests of this module's files share (test builds only).

use std::time::Duration;

use super::txt::Published;
use crate::registry::{Endpoint, Node, Record, Value};

/// Node `id` of service `name`: an endpoint, metadata beyond ASCII, a TTL and a `seq`.
pub(super) fn published(name: &str, id: &str) -> Published {
    Published {
        record: Record {
            name: name.into(),
            version: "latest".into(),
            metadata: [("team".to_owned(), "ünïcode ✓".to_owned())].into(),
            endpoints: vec![Endpoint {
                name: "Greeter.Hello".into(),
                request: Some(Value {
                    name: "HelloRequest".into(),
                    kind: "HelloRequest".into(),
                    values: vec![Value {
                        name: "name".into(),
                        kind: "string".into(),
                        values: vec![],
                    }],
                }),
                response: None,
                metadata: [("stream".to_owned(), "false".to_owned())].into(),
            }],
            nodes: vec![Node {
                id: id.into(),
                address: "127.0.0.1:4242".into(),
                metadata: [("registry".to_owned(), "mdns".to_owned())].into(),
            }],
        },
        ttl: Duration::from_millis(1500),
        seq: 7,
    }
}
