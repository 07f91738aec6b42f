//! The broker a name (`--broker`, `MICRO_BROKER`) and an address give.

use std::sync::Arc;

use crate::error::{Code, Error, Result};
use crate::registry::Registry;

#[cfg(feature = "nats")]
use super::nats;
#[cfg(feature = "rabbitmq")]
use super::rabbitmq;
use super::{Broker, http, memory};

/// The broker `--broker` names (`http` when empty), at `--broker_address`.
///
/// `http` registers its subscribers in `registry` and looks them up there.
pub fn from_name(
    name: &str,
    address: &str,
    registry: Arc<dyn Registry>,
) -> Result<Arc<dyn Broker>> {
    match name {
        "" | "http" => Ok(Arc::new(http::HttpBroker::new(address, registry)?)),
        "memory" => Ok(Arc::new(memory::MemoryBroker::new())),
        #[cfg(feature = "rabbitmq")]
        "rabbitmq" => Ok(Arc::new(rabbitmq::RabbitBroker::from_address(address)?)),
        #[cfg(not(feature = "rabbitmq"))]
        "rabbitmq" => Err(missing("rabbitmq", "rabbitmq")),
        #[cfg(feature = "nats")]
        "nats" => Ok(Arc::new(nats::NatsBroker::new(address)?)),
        #[cfg(feature = "nats")]
        "jetstream" => Ok(Arc::new(nats::NatsBroker::jetstream(address)?)),
        #[cfg(not(feature = "nats"))]
        "nats" | "jetstream" => Err(missing(name, "nats")),
        other => Err(Error::new(
            Code::InvalidArgument,
            format!(
                "unknown broker {other:?} (expected http, memory, nats, jetstream or rabbitmq)"
            ),
        )),
    }
}

/// Why a broker this program was built without cannot be used.
#[cfg_attr(all(feature = "nats", feature = "rabbitmq"), allow(dead_code))]
fn missing(name: &str, feature: &str) -> Error {
    Error::new(
        Code::InvalidArgument,
        format!(
            "broker {name}: this program was built without micro-runtime's `{feature}` feature"
        ),
    )
}
