//! The JSON codec: serde for plain Rust types, protobuf's JSON mapping (through
//! [`prost_reflect`]) for generated proto messages.

use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::error::{Code, Error, Result};

/// Appends the JSON of a serde value to `buf`.
pub fn encode_serde<M: serde::Serialize>(msg: &M, buf: &mut BytesMut) -> Result<()> {
    serde_json::to_writer(buf.writer(), msg)
        .map_err(|e| Error::new(Code::Internal, format!("encode json: {e}")))
}

/// Decodes a serde value from JSON; bad JSON is `INVALID_ARGUMENT`. An empty message is read
/// as `{}` (go-micro's JSON codec takes no bytes for the zero message).
pub fn decode_serde<M: serde::de::DeserializeOwned>(buf: &[u8]) -> Result<M> {
    let buf = if buf.is_empty() { b"{}" } else { buf };
    serde_json::from_slice(buf)
        .map_err(|e| Error::new(Code::InvalidArgument, format!("decode json: {e}")))
}

/// The descriptors of a generated proto package: an encoded `FileDescriptorSet`, decoded on
/// first use. Generated code holds one in a `static`.
pub struct Descriptors {
    bytes: &'static [u8],
    pool: OnceLock<Result<DescriptorPool, String>>,
}

impl Descriptors {
    /// Descriptors from an encoded `FileDescriptorSet`.
    pub const fn new(bytes: &'static [u8]) -> Descriptors {
        Descriptors {
            bytes,
            pool: OnceLock::new(),
        }
    }

    /// The decoded pool: protobuf's well-known types (prost-reflect's), which the generator
    /// leaves out of what it embeds, and the embedded files.
    pub fn pool(&self) -> Result<&DescriptorPool> {
        self.pool
            .get_or_init(|| {
                let mut pool = DescriptorPool::global();
                pool.decode_file_descriptor_set(self.bytes)
                    .map_err(|e| e.to_string())?;
                Ok(pool)
            })
            .as_ref()
            .map_err(|e| Error::new(Code::Internal, format!("bad embedded descriptors: {e}")))
    }

    /// The descriptor of a message by its full name (`greeter.HelloRequest`).
    pub fn message(&self, full_name: &str) -> Result<MessageDescriptor> {
        self.pool()?
            .get_message_by_name(full_name)
            .ok_or_else(|| Error::new(Code::Internal, format!("no descriptor for {full_name}")))
    }
}

impl std::fmt::Debug for Descriptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Descriptors")
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Appends the proto3 JSON of a prost message to `buf` (field names as in the .proto).
pub fn encode_proto<M: prost::Message>(
    msg: &M,
    desc: MessageDescriptor,
    buf: &mut BytesMut,
) -> Result<()> {
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .map_err(|e| Error::new(Code::Internal, format!("encode json: {e}")))?;
    let mut ser = serde_json::Serializer::new(buf.writer());
    let options = SerializeOptions::new().use_proto_field_name(true);
    dynamic
        .serialize_with_options(&mut ser, &options)
        .map_err(|e| Error::new(Code::Internal, format!("encode json: {e}")))
}

/// Decodes a prost message from proto3 JSON (either field-name spelling is accepted). An
/// empty message is the zero message, as in go-micro's JSON codec.
pub fn decode_proto<M: prost::Message + Default>(desc: MessageDescriptor, buf: &[u8]) -> Result<M> {
    if buf.is_empty() {
        return Ok(M::default());
    }
    let bad =
        |e: &dyn std::fmt::Display| Error::new(Code::InvalidArgument, format!("decode json: {e}"));
    let mut de = serde_json::Deserializer::from_slice(buf);
    let dynamic = DynamicMessage::deserialize(desc, &mut de).map_err(|e| bad(&e))?;
    de.end().map_err(|e| bad(&e))?;
    M::decode(Bytes::from(dynamic.encode_to_vec())).map_err(|e| bad(&e))
}
