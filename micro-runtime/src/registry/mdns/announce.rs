//! What a node is published as: its DNS-SD instance (instance name, host, port and TXT
//! record; the rules are in the [`mdns`](super) module docs).

use std::net::SocketAddr;

use mdns_sd::ServiceInfo;

use super::txt::{Published, encode_txt};
use crate::error::{Code, Error, Result};

/// The DNS-SD service type every node is published under.
pub const SERVICE_TYPE: &str = "_micro._tcp.local.";

/// The longest DNS label.
const MAX_LABEL: usize = 63;

/// The mDNS instance of one node's record.
pub(super) fn service_info(published: &Published) -> Result<ServiceInfo> {
    let node = match published.record.nodes.as_slice() {
        [node] => node,
        nodes => {
            return Err(Error::new(
                Code::Internal,
                format!(
                    "mdns registry: a record holds one node, not {}",
                    nodes.len()
                ),
            ));
        }
    };
    let addr: SocketAddr = node.address.parse().map_err(|_| {
        Error::new(
            Code::InvalidArgument,
            format!(
                "mdns registry: node {} has address {:?}; mDNS needs an IP and a port \
                 (set --server_address or --server_advertise to one)",
                node.id, node.address
            ),
        )
    })?;
    let instance = instance_name(&published.record.name, &node.id)?;
    let mut info = ServiceInfo::new(
        SERVICE_TYPE,
        &instance,
        &format!("{instance}.local."),
        addr.ip(),
        addr.port(),
        encode_txt(published)?,
    )
    .map_err(|e| daemon_error(&format!("describe node {}", node.id), e))?;
    // Instance names carry the node id, unique by construction: no need to probe for
    // conflicts, which would delay every announcement by most of a second.
    info.set_requires_probe(false);
    Ok(info)
}

/// The mDNS instance name of node `id` of `service` (the rule is in the `mdns` module docs).
pub(super) fn instance_name(service: &str, id: &str) -> Result<String> {
    if id.is_empty() {
        return Err(Error::new(
            Code::InvalidArgument,
            "mdns registry: a node needs an id",
        ));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let prefix: String = id
        .chars()
        .map(|c| if plain(c) { c } else { '-' })
        .take(MAX_LABEL - 17)
        .collect();
    // The service name's length first, so that no other split of the same bytes into a
    // service name and an id hashes alike.
    let hash = fnv1a(
        (service.len() as u64)
            .to_be_bytes()
            .iter()
            .chain(service.as_bytes())
            .chain(id.as_bytes()),
    );
    Ok(format!("{prefix}-{hash:016x}"))
}

/// 64-bit FNV-1a: tiny, and the same in every process and version.
fn fnv1a<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The error of a failed call to the mDNS daemon.
pub(super) fn daemon_error(what: &str, e: mdns_sd::Error) -> Error {
    Error::new(Code::Unavailable, format!("mdns registry: {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::registry::mdns::fixtures::published;
    use crate::registry::mdns::txt::decode_txt;

    #[test]
    fn instance_names_are_dns_labels() {
        // A go-micro node id shows whole, before the hash.
        let id = "greeter-7619ed0a-6a94-4152-9335-55c693fe026c";
        let name = instance_name("greeter", id).unwrap();
        assert!(name.starts_with(&format!("{id}-")), "{name}");
        assert_eq!(name.len(), id.len() + 17);
        let long = format!("go.micro.srv.a-very-long-service-name-{}", "x".repeat(60));
        let other = format!("{long}y");
        for id in [long.as_str(), other.as_str(), "a.b", "a/b", "ünï"] {
            let name = instance_name(&long, id).unwrap();
            assert!(name.len() <= MAX_LABEL, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{name}"
            );
        }
        // Ids that read alike keep distinct names.
        let name = |service: &str, id: &str| instance_name(service, id).unwrap();
        assert_ne!(name("s", &long), name("s", &other));
        assert_ne!(name("s", "a.b"), name("s", "a/b"));
        assert_ne!(name("s", "a.b"), name("s", "a-b"));
        // So does one node id in two services, however the bytes split.
        assert_ne!(name("a", "n1"), name("b", "n1"));
        let (b49, b50) = ("b".repeat(49), "b".repeat(50));
        assert_ne!(name("a", &b50), name("ab", &b49));
        assert_eq!(name("a", "n1"), name("a", "n1"));
        assert!(instance_name("a", "").is_err());
    }

    #[test]
    fn service_info_of_a_node() {
        let p = published("greeter", "greeter-1");
        let info = service_info(&p).unwrap();
        let instance = instance_name("greeter", "greeter-1").unwrap();
        assert_eq!(
            info.get_fullname(),
            format!("{instance}._micro._tcp.local.")
        );
        assert_eq!(info.get_hostname(), format!("{instance}.local."));
        assert_eq!(info.get_port(), 4242);
        let ips: Vec<IpAddr> = info.get_addresses().iter().copied().collect();
        assert_eq!(ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(decode_txt(info.get_properties()).unwrap(), p);

        let mut v6 = p.clone();
        v6.record.nodes[0].address = "[::1]:9090".into();
        assert_eq!(service_info(&v6).unwrap().get_port(), 9090);

        for bad in ["localhost:9090", "127.0.0.1", ""] {
            let mut p = p.clone();
            p.record.nodes[0].address = bad.into();
            let err = service_info(&p).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        }
    }
}
