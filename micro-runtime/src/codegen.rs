//! The one module generated code imports from (the generator writes fully qualified
//! `::micro_runtime::codegen::...` paths, so generated files need no imports of the user's).
//! Not for hand-written code: its contents follow the generator.

pub use std::future::Future;
pub use std::sync::Arc;

pub use bytes::{Bytes, BytesMut};
pub use prost;
pub use prost_types;

pub use crate::client::{CallOptions, Client, Method};
pub use crate::codec::describe::{MAX_DEPTH, field};
pub use crate::codec::json::Descriptors;
pub use crate::codec::{Codec, Describe, Message};
pub use crate::context::Context;
pub use crate::error::{Error, Result};
pub use crate::registry::Value;
pub use crate::server::{EndpointResult, Endpoints, Handler, Server, Subscriber, SubscriberResult};
pub use crate::stream::{BoxStream, CallStream, Streaming};
pub use std::borrow::Cow;
pub use std::vec::Vec;

use crate::codec::{json, proto};
use crate::error::Code;

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

/// Encodes a `#[derive(Message)]` serde type: JSON only.
pub fn encode_serde<M: serde::Serialize>(
    msg: &M,
    codec: Codec,
    type_name: &str,
    buf: &mut BytesMut,
) -> Result<()> {
    match codec {
        Codec::Json => json::encode_serde(msg, buf),
        other => Err(unsupported_codec(type_name, other)),
    }
}

/// Decodes a generated prost message from `codec`, from borrowed bytes.
#[inline]
pub fn decode_slice<M: prost::Message + Default>(
    codec: Codec,
    descriptors: &Descriptors,
    full_name: &str,
    buf: &[u8],
) -> Result<M> {
    match codec {
        Codec::Proto => proto::decode_slice(buf),
        Codec::Json => json::decode_proto(descriptors.message(full_name)?, buf),
    }
}

/// Decodes a `#[derive(Message)]` serde type: JSON only; any other codec is
/// `INVALID_ARGUMENT`.
pub fn decode_serde<M: serde::de::DeserializeOwned>(
    codec: Codec,
    type_name: &str,
    buf: Bytes,
) -> Result<M> {
    match codec {
        Codec::Json => json::decode_serde(&buf),
        other => Err(unsupported_codec(type_name, other)),
    }
}

/// Encodes a hand-written prost message in protobuf (`#[derive(Message)] #[micro(proto)]`).
pub fn encode_prost<M: prost::Message>(msg: &M, buf: &mut BytesMut) -> Result<()> {
    proto::encode(msg, buf)
}

/// Decodes a hand-written prost message from protobuf.
pub fn decode_prost<M: prost::Message + Default>(buf: Bytes) -> Result<M> {
    proto::decode(buf)
}

/// The `INVALID_ARGUMENT` error of a message asked for in a codec it does not speak.
pub fn unsupported_codec(type_name: &str, codec: Codec) -> Error {
    Error::new(
        Code::InvalidArgument,
        format!(
            "{type_name} has no {} encoding: call with another content type (application/grpc+json for JSON)",
            codec.name()
        ),
    )
}

/// Makes the compiler check, at the span of the call, that an endpoint method's future can
/// move between threads (so the error points at the method, not inside a macro).
#[inline(always)]
pub fn assert_send<F: Future + Send>(future: F) -> F {
    future
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
            #[inline]
            fn decode_slice(
                codec: $crate::codegen::Codec,
                buf: &[u8],
            ) -> $crate::codegen::Result<Self> {
                $crate::codegen::decode_slice(codec, &$descriptors, $full_name, buf)
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
