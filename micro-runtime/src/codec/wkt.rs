//! [`Message`] for protobuf's well-known types, so generated services can take and return
//! them directly (`google.protobuf.Empty` is `()` in prost, the others `prost_types` structs).

use bytes::{Bytes, BytesMut};
use prost_reflect::ReflectMessage;

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
    ($($ty:ident),*) => {$(
        impl Message for prost_types::$ty {
            fn encode(&self, codec: Codec, buf: &mut BytesMut) -> Result<()> {
                match codec {
                    Codec::Proto => proto::encode(self, buf),
                    Codec::Json => json::encode_proto(self, self.descriptor(), buf),
                }
            }

            fn decode(codec: Codec, buf: Bytes) -> Result<Self> {
                match codec {
                    Codec::Proto => proto::decode(buf),
                    Codec::Json => json::decode_proto(Self::default().descriptor(), &buf),
                }
            }

            fn describe() -> Value {
                describe_message(&Self::default().descriptor())
            }
        }
    )*};
}

well_known!(
    Timestamp, Duration, Struct, Value, ListValue, Any, FieldMask
);

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
}
