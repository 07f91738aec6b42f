//! The part of etcd's v3 gRPC API the registry speaks (`etcdserverpb` and `mvccpb`), as prost
//! messages: the fields of etcd's `rpc.proto` and `kv.proto` that it reads or sets, with
//! their numbers (fields it leaves out are skipped on decoding, as protobuf allows).

use crate::client::Method;

/// A method of `etcdserverpb` (none is safe to repeat blindly: the registry retries by itself).
const fn method(path: &'static str, endpoint: &'static str) -> Method {
    Method {
        path,
        endpoint,
        idempotent: false,
    }
}

/// `KV.Range`.
pub(super) const RANGE: Method = method("/etcdserverpb.KV/Range", "KV.Range");
/// `KV.Put`.
pub(super) const PUT: Method = method("/etcdserverpb.KV/Put", "KV.Put");
/// `KV.DeleteRange`.
pub(super) const DELETE_RANGE: Method = method("/etcdserverpb.KV/DeleteRange", "KV.DeleteRange");
/// `Watch.Watch`, bidirectional.
pub(super) const WATCH: Method = method("/etcdserverpb.Watch/Watch", "Watch.Watch");
/// `Lease.LeaseGrant`.
pub(super) const LEASE_GRANT: Method = method("/etcdserverpb.Lease/LeaseGrant", "Lease.LeaseGrant");
/// `Lease.LeaseKeepAlive`, bidirectional.
pub(super) const LEASE_KEEP_ALIVE: Method =
    method("/etcdserverpb.Lease/LeaseKeepAlive", "Lease.LeaseKeepAlive");
/// `Auth.Authenticate`.
pub(super) const AUTHENTICATE: Method =
    method("/etcdserverpb.Auth/Authenticate", "Auth.Authenticate");

/// `etcdserverpb.ResponseHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ResponseHeader {
    #[prost(int64, tag = "3")]
    pub(super) revision: i64,
}

/// `mvccpb.KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) key: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub(super) mod_revision: i64,
    /// 0 for a deleted key (a tombstone in a watch event).
    #[prost(int64, tag = "4")]
    pub(super) version: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub(super) value: Vec<u8>,
}

/// `mvccpb.Event` (its type is read off the key's version: a tombstone has version 0).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct WatchEvent {
    #[prost(message, optional, tag = "2")]
    pub(super) kv: Option<KeyValue>,
    #[prost(message, optional, tag = "3")]
    pub(super) prev_kv: Option<KeyValue>,
}

/// `etcdserverpb.RangeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct RangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(super) range_end: Vec<u8>,
}

/// `etcdserverpb.RangeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct RangeResponse {
    #[prost(message, repeated, tag = "2")]
    pub(super) kvs: Vec<KeyValue>,
}

/// `etcdserverpb.PutRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(super) value: Vec<u8>,
    /// 0 for none.
    #[prost(int64, tag = "3")]
    pub(super) lease: i64,
}

/// `etcdserverpb.PutResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct PutResponse {}

/// `etcdserverpb.DeleteRangeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct DeleteRangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) key: Vec<u8>,
}

/// `etcdserverpb.DeleteRangeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct DeleteRangeResponse {}

/// `etcdserverpb.WatchRequest`, with only its `create_request`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct WatchRequest {
    #[prost(message, optional, tag = "1")]
    pub(super) create_request: Option<WatchCreateRequest>,
}

/// `etcdserverpb.WatchCreateRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct WatchCreateRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub(super) range_end: Vec<u8>,
    /// 0 for "from now".
    #[prost(int64, tag = "3")]
    pub(super) start_revision: i64,
    #[prost(bool, tag = "4")]
    pub(super) progress_notify: bool,
    #[prost(bool, tag = "6")]
    pub(super) prev_kv: bool,
}

/// `etcdserverpb.WatchResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct WatchResponse {
    #[prost(message, optional, tag = "1")]
    pub(super) header: Option<ResponseHeader>,
    #[prost(bool, tag = "3")]
    pub(super) created: bool,
    #[prost(bool, tag = "4")]
    pub(super) canceled: bool,
    #[prost(int64, tag = "5")]
    pub(super) compact_revision: i64,
    #[prost(string, tag = "6")]
    pub(super) cancel_reason: String,
    #[prost(message, repeated, tag = "11")]
    pub(super) events: Vec<WatchEvent>,
}

/// `etcdserverpb.LeaseGrantRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct LeaseGrantRequest {
    #[prost(int64, tag = "1")]
    pub(super) ttl: i64,
}

/// `etcdserverpb.LeaseGrantResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct LeaseGrantResponse {
    #[prost(int64, tag = "2")]
    pub(super) id: i64,
    #[prost(string, tag = "4")]
    pub(super) error: String,
}

/// `etcdserverpb.LeaseKeepAliveRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct LeaseKeepAliveRequest {
    #[prost(int64, tag = "1")]
    pub(super) id: i64,
}

/// `etcdserverpb.LeaseKeepAliveResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct LeaseKeepAliveResponse {
    /// 0 or less when the lease is gone.
    #[prost(int64, tag = "3")]
    pub(super) ttl: i64,
}

/// `etcdserverpb.AuthenticateRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct AuthenticateRequest {
    #[prost(string, tag = "1")]
    pub(super) name: String,
    #[prost(string, tag = "2")]
    pub(super) password: String,
}

/// `etcdserverpb.AuthenticateResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct AuthenticateResponse {
    #[prost(string, tag = "2")]
    pub(super) token: String,
}

/// [`crate::Message`] for messages of etcd's API: protobuf only.
macro_rules! protobuf_only {
    ($($ty:ident),* $(,)?) => {$(
        impl crate::codec::Message for $ty {
            fn encode(
                &self,
                codec: crate::codec::Codec,
                buf: &mut bytes::BytesMut,
            ) -> crate::error::Result<()> {
                match codec {
                    crate::codec::Codec::Proto => crate::codec::proto::encode(self, buf),
                    other => Err(crate::codec::generated::unsupported_codec(stringify!($ty), other)),
                }
            }

            fn decode(
                codec: crate::codec::Codec,
                buf: bytes::Bytes,
            ) -> crate::error::Result<Self> {
                match codec {
                    crate::codec::Codec::Proto => crate::codec::proto::decode(buf),
                    other => Err(crate::codec::generated::unsupported_codec(stringify!($ty), other)),
                }
            }

            fn describe() -> crate::registry::Value {
                crate::codec::generated::value(stringify!($ty), stringify!($ty), Vec::new())
            }

            fn preferred_codec() -> Option<crate::codec::Codec> {
                Some(crate::codec::Codec::Proto)
            }
        }
    )*};
}

protobuf_only!(
    RangeRequest,
    RangeResponse,
    PutRequest,
    PutResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    WatchRequest,
    WatchResponse,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseKeepAliveRequest,
    LeaseKeepAliveResponse,
    AuthenticateRequest,
    AuthenticateResponse,
);

/// The end of the range of every key that starts with `prefix` (etcd's `WithPrefix`): the
/// prefix with its last byte below 0xff incremented, or `\0` (every key) when it has none.
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_as_etcds_clients_make_them() {
        assert_eq!(prefix_end(b"/micro/registry/"), b"/micro/registry0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }
}
