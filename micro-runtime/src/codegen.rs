//! The one module generated code imports from (the generator writes fully qualified
//! `::micro_runtime::codegen::...` paths, so generated files need no imports of the user's).
//! Not for hand-written code: its contents follow the generator.

pub use std::future::Future;
pub use std::sync::Arc;

pub use bytes::{Bytes, BytesMut};
pub use prost;
pub use prost_types;

pub use crate::client::{AsCallOptions, CallOptions, Client, Method};
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

pub use crate::codec::generated::{
    assert_send, decode, decode_prost, decode_serde, decode_slice, encode, encode_prost,
    encode_serde, unsupported_codec, value,
};

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
