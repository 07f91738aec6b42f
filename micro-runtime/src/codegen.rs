//! The one module generated code imports from (the generator writes fully qualified
//! `::micro_runtime::codegen::...` paths, so generated files need no imports of the user's).
//! Not for hand-written code: its contents follow the generator.

pub use std::future::Future;
pub use std::sync::Arc;

pub use bytes::{Bytes, BytesMut};
pub use prost;
pub use prost_types;

pub use crate::client::{CallOptions, Client, Method};
pub use crate::codec::json::Descriptors;
pub use crate::codec::{Codec, Message};
pub use crate::context::Context;
pub use crate::error::{Error, Result};
pub use crate::registry::Value;
pub use crate::server::{Handler, Server};
pub use crate::stream::{BoxStream, CallStream, Streaming};

use crate::codec::{json, proto};

/// Encodes a generated prost message in `codec`.
pub fn encode<M: prost::Message>(
    msg: &M,
    codec: Codec,
    descriptors: &Descriptors,
    full_name: &str,
    buf: &mut BytesMut,
) -> Result<()> {
    match codec {
        Codec::Proto => proto::encode(msg, buf),
        Codec::Json => json::encode_proto(msg, descriptors.message(full_name)?, buf),
    }
}

/// Decodes a generated prost message from `codec`.
pub fn decode<M: prost::Message + Default>(
    codec: Codec,
    descriptors: &Descriptors,
    full_name: &str,
    buf: Bytes,
) -> Result<M> {
    match codec {
        Codec::Proto => proto::decode(buf),
        Codec::Json => json::decode_proto(descriptors.message(full_name)?, &buf),
    }
}

/// A registry [`Value`]: what generated descriptions are made of.
pub fn value(name: &str, kind: &str, values: Vec<Value>) -> Value {
    Value {
        name: name.to_owned(),
        kind: kind.to_owned(),
        values,
    }
}

/// Implements [`Message`] for generated prost messages:
/// `impl_message!(HelloRequest, "greeter.HelloRequest", DESCRIPTORS, <description>);`.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_message {
    ($ty:ty, $full_name:literal, $descriptors:path, $description:expr) => {
        impl $crate::codegen::Message for $ty {
            fn encode(
                &self,
                codec: $crate::codegen::Codec,
                buf: &mut $crate::codegen::BytesMut,
            ) -> $crate::codegen::Result<()> {
                $crate::codegen::encode(self, codec, &$descriptors, $full_name, buf)
            }
            fn decode(
                codec: $crate::codegen::Codec,
                buf: $crate::codegen::Bytes,
            ) -> $crate::codegen::Result<Self> {
                $crate::codegen::decode(codec, &$descriptors, $full_name, buf)
            }
            fn size_hint(&self, codec: $crate::codegen::Codec) -> usize {
                match codec {
                    $crate::codegen::Codec::Proto => {
                        $crate::codegen::prost::Message::encoded_len(self)
                    }
                    _ => 2 * $crate::codegen::prost::Message::encoded_len(self) + 16,
                }
            }
            fn describe() -> $crate::codegen::Value {
                $description
            }
        }
    };
}
