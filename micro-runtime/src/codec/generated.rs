//! The encoding functions that generated messages (`impl_message!`), derived ones
//! (`#[derive(Message)]`) and the runtime's own messages call; `crate::codegen` re-exports
//! them for generated code.

use bytes::{Bytes, BytesMut};

use super::json::Descriptors;
use super::{Codec, json, proto};
use crate::error::Code;
use crate::error::{Error, Result};
use crate::registry::Value;

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
