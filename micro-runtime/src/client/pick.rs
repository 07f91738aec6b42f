//! Picking the node an attempt goes to: the call's fixed address, else the selector's choice
//! among the service's nodes in the registry cache.

use std::sync::Arc;

use http::uri::PathAndQuery;

use super::retry::Failure;
use super::{CallOptions, Method};
use crate::registry::cache::Cache;
use crate::selector::{NodeStats, Nodes, Selection, Selector, now_ms};

/// Where a call goes: a generated [`Method`], or an endpoint named at run time.
pub(super) struct Target<'a> {
    pub(super) path: PathAndQuery,
    pub(super) endpoint: &'a str,
    pub(super) idempotent: bool,
}

impl Target<'static> {
    pub(super) fn of(method: &Method) -> Target<'static> {
        Target {
            path: PathAndQuery::from_static(method.path),
            endpoint: method.endpoint,
            idempotent: method.idempotent,
        }
    }
}

/// Finds a service's nodes in the registry cache and has the selector pick one.
pub(super) struct Picker {
    pub(super) cache: Cache,
    pub(super) selector: Arc<dyn Selector>,
}

impl Picker {
    /// The nodes of `service`, or `None` when the call goes to a fixed address.
    pub(super) async fn nodes(
        &self,
        service: &str,
        options: &CallOptions,
    ) -> Result<Option<Arc<Nodes>>, Failure> {
        if options.address.is_some() {
            return Ok(None);
        }
        let nodes = self.cache.get(service).await;
        nodes.map(Some).map_err(Failure::Answered)
    }

    /// The address an attempt goes to, and its node's statistics.
    pub(super) fn pick<'a>(
        &self,
        nodes: Option<&'a Nodes>,
        service: &str,
        options: &'a CallOptions,
        failed: &[String],
    ) -> Result<(&'a str, Option<&'a Arc<NodeStats>>), Failure> {
        let Some(nodes) = nodes else {
            return Ok((options.address.as_deref().unwrap_or_default(), None));
        };
        let selection = Selection {
            key: options.hash_key.as_deref(),
            filter: options.filter.as_ref(),
            avoid: failed,
            now_ms: now_ms(),
        };
        let chosen = self
            .selector
            .select(nodes, &selection)
            .ok_or_else(|| Failure::Answered(crate::registry::not_found(service)))?;
        chosen.stats.picked(selection.now_ms);
        Ok((chosen.node.address.as_str(), Some(&chosen.stats)))
    }
}
