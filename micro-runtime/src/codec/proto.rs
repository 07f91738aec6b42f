//! The protobuf codec, over [`prost`].

use bytes::{Bytes, BytesMut};

use crate::error::{Code, Error, Result};

/// Appends the protobuf encoding of `msg` to `buf`.
///
/// A `BytesMut` grows as needed, so prost's capacity check (`Message::encode` computes the
/// encoded length first, to compare it with the room left) can never fail here: this writes
/// the fields directly, and the length is computed once, by the caller that reserves room
/// for the frame (`Message::size_hint`).
pub fn encode<M: prost::Message>(msg: &M, buf: &mut BytesMut) -> Result<()> {
    msg.encode_raw(buf);
    Ok(())
}

/// Decodes a protobuf message; undecodable bytes are `INVALID_ARGUMENT`.
pub fn decode<M: prost::Message + Default>(buf: Bytes) -> Result<M> {
    M::decode(buf).map_err(|e| Error::new(Code::InvalidArgument, format!("decode protobuf: {e}")))
}

/// Like [`decode`], from borrowed bytes (`bytes` fields are copied out).
///
/// (prost's `Message::decode`, with the error made out of line: the message is decoded in
/// the place it is returned from, with no `map`s between.)
#[inline]
pub fn decode_slice<M: prost::Message + Default>(buf: &[u8]) -> Result<M> {
    let mut message = M::default();
    match message.merge(buf) {
        Ok(()) => Ok(message),
        Err(e) => Err(decode_error(&e)),
    }
}

#[cold]
fn decode_error(e: &prost::DecodeError) -> Error {
    Error::new(Code::InvalidArgument, format!("decode protobuf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let mut buf = BytesMut::new();
        encode(&"hi".to_string(), &mut buf).unwrap();
        assert_eq!(decode::<String>(buf.freeze()).unwrap(), "hi");
        let err = decode::<String>(Bytes::from_static(&[0xff, 0xff, 0xff])).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
