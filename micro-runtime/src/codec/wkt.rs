//! [`Message`] for protobuf's well-known types, so generated services can take and return
//! them directly: `google.protobuf.Empty` is `()` in prost, the nine wrappers
//! (`google.protobuf.StringValue`, ...) are Rust primitives (`String`, `bool`, `i64`,
//! `Vec<u8>`, ...), the others `prost_types` structs.
//!
//! Their JSON is the proto3 JSON mapping of the well-known type, through the descriptors of
//! prost-reflect's global pool: a wrapper is its bare value (`"hi"`, `true`), with 64-bit
//! integers as strings (`"5"`) and bytes in base64.
//!
//! And any JSON value (`serde_json::Value`) is a message of the JSON codec.

use bytes::{Bytes, BytesMut};
use prost_reflect::ReflectMessage;

use std::borrow::Cow;

use super::describe::{Describe, MAX_DEPTH};
use super::{Codec, Message, json, proto};
use crate::error::{Code, Error, Result};
use crate::registry::{Value, describe_message};

impl Message for () {
    fn encode(&self, codec: Codec, buf: &mut BytesMut) -> Result<()> {
        match codec {
            Codec::Proto => Ok(()),
            Codec::Json => {
                buf.extend_from_slice(b"{}");
                Ok(())
            }
        }
    }

    fn decode(codec: Codec, buf: Bytes) -> Result<()> {
        match codec {
            Codec::Proto => proto::decode(buf),
            Codec::Json => {
                let empty = prost_reflect::DescriptorPool::global()
                    .get_message_by_name("google.protobuf.Empty")
                    .ok_or_else(|| {
                        Error::new(Code::Internal, "no descriptor for google.protobuf.Empty")
                    })?;
                json::decode_proto(empty, &buf)
            }
        }
    }

    fn describe() -> Value {
        Value {
            name: "Empty".into(),
            kind: "Empty".into(),
            values: Vec::new(),
        }
    }
}

macro_rules! well_known {
    ($($ty:ty),* $(,)?) => {$(
        impl Message for $ty {
            fn encode(&self, codec: Codec, buf: &mut BytesMut) -> Result<()> {
                match codec {
                    Codec::Proto => proto::encode(self, buf),
                    Codec::Json => json::encode_proto(self, self.descriptor(), buf),
                }
            }

            fn decode(codec: Codec, buf: Bytes) -> Result<Self> {
                match codec {
                    Codec::Proto => proto::decode(buf),
                    Codec::Json => json::decode_proto(<$ty>::default().descriptor(), &buf),
                }
            }

            fn describe() -> Value {
                describe_message(&<$ty>::default().descriptor())
            }
        }
    )*};
}

/// [`Describe`] for the well-known message types, so hand-written prost messages
/// (`#[derive(Message)] #[micro(proto)]`) may have them as fields: described as the generator
/// describes a `google.protobuf.Timestamp` field, by message name with its fields.
macro_rules! described {
    ($($ty:ty),* $(,)?) => {$(
        impl Describe for $ty {
            fn type_name() -> Cow<'static, str> {
                Cow::Owned(<$ty>::default().descriptor().name().to_owned())
            }

            fn fields(depth: usize) -> Vec<Value> {
                if depth >= MAX_DEPTH {
                    return Vec::new();
                }
                describe_message(&<$ty>::default().descriptor()).values
            }
        }
    )*};
}

/// The well-known message types: [`Message`] and [`Describe`].
macro_rules! well_known_messages {
    ($($ty:ty),* $(,)?) => {
        well_known!($($ty),*);
        described!($($ty),*);
    };
}

well_known_messages!(
    prost_types::Timestamp,
    prost_types::Duration,
    prost_types::Struct,
    prost_types::Value,
    prost_types::ListValue,
    prost_types::Any,
    prost_types::FieldMask,
);

// The wrappers, as prost-build maps them (its extern paths): `google.protobuf.DoubleValue` is
// `f64`, and so on. prost encodes each primitive as its wrapper message (the value in field 1)
// and prost-reflect describes it as the wrapper.
well_known!(f64, f32, i64, u64, i32, u32, bool, String, Vec<u8>);

/// Any JSON value is a message of the JSON codec: calls by endpoint name without the
/// service's types, as `micro call` makes them. It speaks only JSON, so a client sends it as
/// `application/grpc+json` without being asked, and every micro server answers in kind.
///
/// ```no_run
/// # async fn run(client: micro_runtime::Client) -> micro_runtime::Result<()> {
/// use serde_json::{Value, json};
///
/// let rsp: Value = client
///     .call_endpoint("greeter", "Greeter.Hello", json!({ "name": "John" }))
///     .await?;
/// assert_eq!(rsp["greeting"], "Hello, John!");
/// # Ok(()) }
/// ```
impl Message for serde_json::Value {
    fn encode(&self, codec: Codec, buf: &mut BytesMut) -> Result<()> {
        super::generated::encode_serde(self, codec, "serde_json::Value", buf)
    }

    fn decode(codec: Codec, buf: Bytes) -> Result<serde_json::Value> {
        super::generated::decode_serde(codec, "serde_json::Value", buf)
    }

    fn size_hint(&self, _: Codec) -> usize {
        128
    }

    fn describe() -> crate::registry::Value {
        super::generated::value("Value", "Value", Vec::new())
    }

    fn preferred_codec() -> Option<Codec> {
        Some(Codec::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_types_speak_json() {
        let ts = prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        };
        let mut buf = BytesMut::new();
        ts.encode(Codec::Json, &mut buf).unwrap();
        assert_eq!(&buf[..], br#""1970-01-01T00:00:01Z""#);
        let back = <prost_types::Timestamp as Message>::decode(Codec::Json, buf.freeze()).unwrap();
        assert_eq!(back, ts);
        let mut buf = BytesMut::new();
        ().encode(Codec::Json, &mut buf).unwrap();
        <() as Message>::decode(Codec::Json, buf.freeze()).unwrap();
        assert!(<() as Message>::decode(Codec::Json, Bytes::from_static(b"[1]")).is_err());
    }

    /// Encodes `value` in both codecs, checks its JSON and its protobuf bytes, decodes both.
    fn wrapper<T: Message + prost::Message + PartialEq + std::fmt::Debug>(
        value: T,
        json: &str,
        proto: &[u8],
        name: &str,
    ) {
        let mut buf = BytesMut::new();
        Message::encode(&value, Codec::Json, &mut buf).unwrap();
        assert_eq!(std::str::from_utf8(&buf).unwrap(), json, "{name}");
        assert_eq!(
            <T as Message>::decode(Codec::Json, buf.freeze()).unwrap(),
            value
        );
        let mut buf = BytesMut::new();
        Message::encode(&value, Codec::Proto, &mut buf).unwrap();
        assert_eq!(&buf[..], proto, "{name}");
        assert_eq!(
            <T as Message>::decode(Codec::Proto, buf.freeze()).unwrap(),
            value
        );
        let described = T::describe();
        assert_eq!(described.name, name);
        assert_eq!(described.values[0].name, "value");
    }

    #[test]
    fn wrappers_speak_both_codecs() {
        // The wire format of google.protobuf.*Value: the value in field 1.
        wrapper(
            1.5f64,
            "1.5",
            &[9, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f],
            "DoubleValue",
        );
        wrapper(-2.5f32, "-2.5", &[13, 0, 0, 0x20, 0xc0], "FloatValue");
        // 64-bit integers are JSON strings.
        wrapper(
            -5i64,
            r#""-5""#,
            &[8, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1],
            "Int64Value",
        );
        wrapper(
            u64::MAX,
            r#""18446744073709551615""#,
            &[8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1],
            "UInt64Value",
        );
        wrapper(7i32, "7", &[8, 7], "Int32Value");
        wrapper(8u32, "8", &[8, 8], "UInt32Value");
        wrapper(true, "true", &[8, 1], "BoolValue");
        wrapper(String::from("hi"), r#""hi""#, b"\x0a\x02hi", "StringValue");
        // Bytes are base64.
        wrapper(
            b"\x00\xffhi".to_vec(),
            r#""AP9oaQ==""#,
            b"\x0a\x04\x00\xffhi",
            "BytesValue",
        );
        // The default value is the empty message, and an empty body decodes to it.
        wrapper(0i64, r#""0""#, &[], "Int64Value");
        wrapper(String::new(), r#""""#, &[], "StringValue");
        // The JSON of a wrapper is the bare value: an object or the wrong type is refused.
        for bad in [&b"{\"value\":1}"[..], b"\"x\"", b"1 2"] {
            let err = <i32 as Message>::decode(Codec::Json, Bytes::from_static(bad)).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        }
        // Numbers are accepted as strings too, as the mapping allows.
        assert_eq!(
            <i64 as Message>::decode(Codec::Json, Bytes::from_static(b"5")).unwrap(),
            5
        );
        assert_eq!(
            <u32 as Message>::decode(Codec::Json, Bytes::from_static(b"\"5\"")).unwrap(),
            5
        );
    }
}
