//! Codecs: how a message becomes the bytes of a gRPC frame, and back.
//!
//! The codec of a call is picked from its content type: `application/grpc` and
//! `application/grpc+proto` are protobuf ([`proto`]), `application/grpc+json` is JSON ([`json`]).
//! [`Codec`] is a small enum rather than a trait object so the request path dispatches with a
//! `match` and no allocation; each message type says how it speaks each codec by implementing
//! [`Message`] (generated code does it for proto messages, with [`crate::impl_message!`];
//! `#[derive(Message)]`, feature `macros`, does it for serde and hand-written prost types).
//! [`Describe`] describes Rust types for the registry, field by field.

pub mod describe;
pub(crate) mod generated;
pub mod json;
pub mod proto;
mod wkt;

use bytes::{Bytes, BytesMut};

pub use describe::Describe;

use crate::error::Result;

/// A wire format for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Codec {
    /// Protocol buffers (`application/grpc`, `application/grpc+proto`).
    #[default]
    Proto,
    /// JSON (`application/grpc+json`), with protobuf's JSON mapping for proto messages.
    Json,
}

impl Codec {
    /// The codec for a gRPC content type, or `None` when it is not gRPC. A subtype other than
    /// `json` and `proto` (`application/grpc+bytes`, go-micro's raw frames) is read as
    /// protobuf, as grpc-go does.
    ///
    /// ```
    /// use micro_runtime::Codec;
    /// assert_eq!(Codec::from_content_type(b"application/grpc"), Some(Codec::Proto));
    /// assert_eq!(Codec::from_content_type(b"application/grpc+json"), Some(Codec::Json));
    /// assert_eq!(Codec::from_content_type(b"application/grpc+bytes"), Some(Codec::Proto));
    /// assert_eq!(Codec::from_content_type(b"text/plain"), None);
    /// ```
    pub fn from_content_type(ct: &[u8]) -> Option<Codec> {
        // Parameters such as `; charset=utf-8` are allowed after the type.
        let end = ct.iter().position(|&b| b == b';').unwrap_or(ct.len());
        match trim_ascii(&ct[..end]) {
            b"application/grpc" | b"application/grpc+proto" => Some(Codec::Proto),
            b"application/grpc+json" => Some(Codec::Json),
            other if other.starts_with(b"application/grpc+") => Some(Codec::Proto),
            _ => None,
        }
    }

    /// The gRPC content type of this codec.
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Proto => "application/grpc",
            Codec::Json => "application/grpc+json",
        }
    }

    /// The content type as a header value.
    pub fn content_type_header(self) -> http::HeaderValue {
        http::HeaderValue::from_static(self.content_type())
    }

    /// The name go-micro uses for the codec in content types (`proto`, `json`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Proto => "proto",
            Codec::Json => "json",
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// A message that can cross the wire: it encodes to and decodes from each [`Codec`] it
/// supports, and returns `INVALID_ARGUMENT` for one it does not.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a micro message",
    label = "requests and responses must implement `micro_runtime::Message`",
    note = "derive it next to serde's derives: `#[derive(Serialize, Deserialize, micro_runtime::Message)]` (feature `macros`), or generate the type from a .proto"
)]
pub trait Message: Sized + Send + 'static {
    /// Appends the encoding of `self` to `buf`.
    fn encode(&self, codec: Codec, buf: &mut BytesMut) -> Result<()>;

    /// Decodes a message from `buf`.
    fn decode(codec: Codec, buf: Bytes) -> Result<Self>;

    /// Decodes a message from borrowed bytes: how streams decode, straight out of their
    /// receive buffer. The default copies into a `Bytes` for [`Message::decode`]; generated
    /// messages decode in place.
    fn decode_slice(codec: Codec, buf: &[u8]) -> Result<Self> {
        Self::decode(codec, Bytes::copy_from_slice(buf))
    }

    /// A guess of the encoded size, to size buffers once.
    fn size_hint(&self, codec: Codec) -> usize {
        let _ = codec;
        64
    }

    /// The description of this message for registry endpoints (field names and types).
    fn describe() -> crate::registry::Value;

    /// The one codec this message speaks, when it does not speak every codec (a serde type
    /// speaks only JSON): clients then send it so unless a call says otherwise, and servers
    /// refuse a call in another codec before running a method that answers with it. `None`
    /// (the default) leaves the choice to the client's options.
    fn preferred_codec() -> Option<Codec> {
        None
    }
}
