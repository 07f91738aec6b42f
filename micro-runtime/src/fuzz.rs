//! The entry points of the fuzz targets (`fuzz/` in the repository, `cargo +nightly fuzz`):
//! each takes any bytes, decodes them as the runtime decodes what peers send, and must
//! return, whatever they are: no panic, no hang, no unbounded allocation. This crate's tests
//! replay the targets' corpora (`fuzz/corpus/`) and the inputs that once failed
//! (`fuzz/regressions/`) through them.
//!
//! Not an API: its functions follow the fuzz targets.

use bytes::{Bytes, BytesMut};
use prost_reflect::DescriptorPool;

use crate::codec::json;
use crate::transport::compression::Compression;
use crate::transport::frame::Decoder;

/// The largest message the frame target lets through (the default gRPC limit).
const MAX_MESSAGE: usize = 4 << 20;

/// gRPC's length-prefixed frames, as a body arrives: the first byte picks how the rest is
/// cut into chunks and (its top two bits) the call's encoding, so that compressed messages
/// go through the decompressors; the rest is the body.
pub fn grpc_frames(data: &[u8]) {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(cut).max(1);
    let compression = match cut >> 6 {
        1 => Compression::Gzip,
        2 => Compression::Zstd,
        _ => Compression::Identity,
    };
    let mut decoder = Decoder::with_compression(MAX_MESSAGE, compression);
    for piece in body.chunks(chunk) {
        if cut % 2 == 0 {
            decoder.push(piece);
        } else {
            decoder.push_bytes(Bytes::copy_from_slice(piece));
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(at)) => {
                    assert!(decoder.message(at).len() <= MAX_MESSAGE);
                    if at.is_compressed()
                        && let Ok(message) = decoder.decompress(at)
                    {
                        assert!(message.len() <= MAX_MESSAGE);
                    }
                    decoder.consume(at);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.has_partial();
}

/// JSON requests transcoded to protobuf and back (`application/grpc+json`, the gateway's
/// bodies): the first byte picks a message type among the well-known types, the rest is
/// the JSON. What decodes must encode, and its JSON must decode and encode to the same JSON
/// (not always the same message: a `google.protobuf.Value` with no kind is written `null`,
/// which reads back as the null kind).
pub fn json_messages(data: &[u8]) {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    match pick % 8 {
        0 => round_trip::<prost_types::Struct>("google.protobuf.Struct", text),
        1 => round_trip::<prost_types::Value>("google.protobuf.Value", text),
        2 => round_trip::<prost_types::ListValue>("google.protobuf.ListValue", text),
        3 => round_trip::<prost_types::Timestamp>("google.protobuf.Timestamp", text),
        4 => round_trip::<prost_types::Duration>("google.protobuf.Duration", text),
        5 => round_trip::<prost_types::FieldMask>("google.protobuf.FieldMask", text),
        6 => round_trip::<prost_types::Any>("google.protobuf.Any", text),
        // Serde types (`#[derive(Message)]`) read JSON as serde does.
        _ => {
            let _ = json::decode_serde::<serde_json::Value>(text);
        }
    }
}

fn round_trip<M>(name: &str, text: &[u8])
where
    M: prost::Message + Default + PartialEq + std::fmt::Debug,
{
    let Some(desc) = DescriptorPool::global().get_message_by_name(name) else {
        return;
    };
    let Ok(message) = json::decode_proto::<M>(desc.clone(), text) else {
        return;
    };
    let mut out = BytesMut::new();
    if json::encode_proto(&message, desc.clone(), &mut out).is_ok() {
        let again = json::decode_proto::<M>(desc.clone(), &out).expect("what was encoded decodes");
        let mut out_again = BytesMut::new();
        json::encode_proto(&again, desc, &mut out_again).expect("what decoded encodes");
        assert_eq!(out_again, out, "a JSON round trip changed the JSON");
    }
}

/// Registry records (etcd values, the local registry's files, the sidecar's POSTs): what
/// decodes encodes and decodes again to the same record.
pub fn registry_record(data: &[u8]) {
    if let Ok(record) = crate::registry::Record::from_json(data) {
        let again = crate::registry::Record::from_json(record.to_json().as_bytes())
            .expect("what was encoded decodes");
        assert_eq!(again, record);
    }
}

/// The TXT record of an mDNS announcement (its wire form: length-prefixed strings).
#[cfg(feature = "mdns")]
pub fn mdns_txt(data: &[u8]) {
    let _ = crate::registry::mdns::decode_txt_wire(data);
}

/// A message POSTed to an HTTP broker subscriber.
pub fn broker_message(data: &[u8]) {
    let _ = crate::broker::http::decode_message(data);
}

/// An API gateway path and its query: resolved as go-micro does, and the query as a form.
pub fn gateway_path(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    if let Some((service, endpoint)) = crate::api::resolve(path) {
        assert!(!service.is_empty() || path.split('/').all(str::is_empty));
        let _ = endpoint;
    }
    let _ = crate::api::proxy_route(path);
    let _ = crate::api::form(query.as_bytes());
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Every file of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`.
    fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut out = Vec::new();
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if let Ok(data) = std::fs::read(&path) {
                    out.push((path, data));
                }
            }
        }
        out
    }

    fn replay(target: &str, f: fn(&[u8])) {
        let inputs = inputs(target);
        assert!(
            !inputs.is_empty(),
            "no corpus for {target}: fuzz/corpus/{target}"
        );
        for (path, data) in inputs {
            let run = std::panic::catch_unwind(|| f(&data));
            assert!(run.is_ok(), "{target} failed on {}", path.display());
        }
    }

    #[test]
    fn the_fuzz_corpora_and_regressions_pass() {
        replay("grpc_frames", super::grpc_frames);
        replay("json_messages", super::json_messages);
        replay("registry_record", super::registry_record);
        replay("broker_message", super::broker_message);
        replay("gateway_path", super::gateway_path);
        #[cfg(feature = "mdns")]
        replay("mdns_txt", super::mdns_txt);
    }
}
