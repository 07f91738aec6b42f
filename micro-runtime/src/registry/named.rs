//! The registry a name (`--registry`, `MICRO_REGISTRY`) and an address give.

use std::sync::Arc;

use crate::error::{Code, Error, Result};

#[cfg(feature = "etcd")]
use super::etcd;
#[cfg(feature = "mdns")]
use super::mdns;
use super::{Registry, local, memory};

/// The registry named by `--registry` (`local`, `memory`, `etcd` or `mdns`), at `--registry_address`.
pub fn from_name(name: &str, address: &str) -> Result<Arc<dyn Registry>> {
    match name {
        "" | "local" => Ok(Arc::new(if address.is_empty() {
            local::LocalRegistry::default_dir()?
        } else {
            local::LocalRegistry::new(address)?
        })),
        "memory" => Ok(Arc::new(memory::MemoryRegistry::new())),
        #[cfg(feature = "etcd")]
        "etcd" => Ok(Arc::new(etcd::EtcdRegistry::from_env(address)?)),
        #[cfg(not(feature = "etcd"))]
        "etcd" => Err(Error::new(
            Code::InvalidArgument,
            "registry etcd: this program was built without micro-runtime's `etcd` feature",
        )),
        #[cfg(feature = "mdns")]
        "mdns" => Ok(Arc::new(mdns::MdnsRegistry::from_address(address)?)),
        #[cfg(not(feature = "mdns"))]
        "mdns" => Err(Error::new(
            Code::InvalidArgument,
            "registry mdns: this program was built without micro-runtime's `mdns` feature",
        )),
        other => Err(Error::new(
            Code::InvalidArgument,
            format!("unknown registry {other:?} (expected local, memory, etcd or mdns)"),
        )),
    }
}
