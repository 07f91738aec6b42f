//! A record the tests of this module's files share (test builds only).

use crate::registry::{Node, Record};

/// Service `name` with one node, `id`.
pub(super) fn svc(name: &str, id: &str) -> Record {
    Record {
        name: name.into(),
        version: "latest".into(),
        nodes: vec![Node {
            id: id.into(),
            address: "127.0.0.1:1".into(),
            ..Node::default()
        }],
        ..Record::default()
    }
}
