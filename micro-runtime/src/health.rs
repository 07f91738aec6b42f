//! The standard gRPC health service, `grpc.health.v1.Health/Check`, which every server
//! answers: load balancers, Kubernetes' gRPC probes, `grpc_health_probe` and `micro health`
//! ask it whether a node serves.
//!
//! A server answers `SERVING` for the empty service name (the server as a whole), for its
//! registered name (`greeter`) and for each service it handles, by the names its paths use
//! (`greeter.Greeter`, and go-micro's `<registered name>.Greeter`), from its start until
//! [`Server::stop`](crate::Server::stop) begins (a [`Service`](crate::Service) runs its
//! before-stop hooks first); from then on, while it deregisters and drains, `NOT_SERVING`. Any other name is `NOT_FOUND`, as the protocol asks. The health service is
//! not one of the node's registry endpoints, and `Health/Watch` is not served
//! (`UNIMPLEMENTED`, which the protocol allows). A handler of the same path registered by
//! the program takes its place.
//!
//! ```no_run
//! # async fn run(client: micro_runtime::Client) -> micro_runtime::Result<()> {
//! use micro_runtime::CallOptions;
//! use micro_runtime::health::{CHECK, HealthCheckRequest, HealthCheckResponse, ServingStatus};
//!
//! let request = HealthCheckRequest { service: "greeter".into() };
//! let options = CallOptions::new().address("127.0.0.1:9090");
//! let rsp: HealthCheckResponse = client.call("greeter", &CHECK, &request, &options).await?;
//! assert_eq!(rsp.status(), ServingStatus::Serving);
//! # Ok(()) }
//! ```

use bytes::{Bytes, BytesMut};

use crate::client::Method;
use crate::codec::{Codec, Message, json};
use crate::error::{Code, Error, Result};
use crate::registry::Value;

/// `grpc.health.v1.Health/Check`.
pub const CHECK: Method = Method {
    path: "/grpc.health.v1.Health/Check",
    endpoint: "Health.Check",
    idempotent: true,
};

/// `grpc.health.v1.HealthCheckRequest`: the service asked about, empty for the server.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HealthCheckRequest {
    /// The service name, empty for the server as a whole.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// The proto3 JSON of a [`HealthCheckRequest`]: a field left out or `null` is the default.
#[derive(serde::Deserialize)]
struct RequestJson {
    #[serde(default)]
    service: Option<String>,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HealthCheckResponse {
    /// A [`ServingStatus`].
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub status: i32,
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ServingStatus {
    /// Not known.
    Unknown = 0,
    /// Serving.
    Serving = 1,
    /// Not serving (stopping, or told to).
    NotServing = 2,
    /// Only for `Watch`: the service is not known.
    ServiceUnknown = 3,
}

impl ServingStatus {
    /// The name the protocol gives it, as in proto3 JSON: `SERVING`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServingStatus::Unknown => "UNKNOWN",
            ServingStatus::Serving => "SERVING",
            ServingStatus::NotServing => "NOT_SERVING",
            ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
        }
    }

    fn from_name(name: &str) -> Option<ServingStatus> {
        [
            ServingStatus::Unknown,
            ServingStatus::Serving,
            ServingStatus::NotServing,
            ServingStatus::ServiceUnknown,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for ServingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn health_value(name: &str, field: &str, kind: &str) -> Value {
    crate::codec::generated::value(
        name,
        name,
        vec![crate::codec::generated::value(field, kind, Vec::new())],
    )
}

impl Message for HealthCheckRequest {
    fn encode(&self, codec: Codec, buf: &mut BytesMut) -> Result<()> {
        match codec {
            Codec::Json => json::encode_serde(&serde_json::json!({ "service": self.service }), buf),
            _ => crate::codec::generated::encode_prost(self, buf),
        }
    }

    fn decode(codec: Codec, buf: Bytes) -> Result<HealthCheckRequest> {
        match codec {
            Codec::Json => {
                let json: RequestJson = json::decode_serde(&buf)?;
                Ok(HealthCheckRequest {
                    service: json.service.unwrap_or_default(),
                })
            }
            _ => crate::codec::generated::decode_prost(buf),
        }
    }

    fn describe() -> Value {
        health_value("HealthCheckRequest", "service", "string")
    }
}

impl Message for HealthCheckResponse {
    fn encode(&self, codec: Codec, buf: &mut BytesMut) -> Result<()> {
        match codec {
            Codec::Json => {
                // proto3 JSON: an enum by name, and a zero value (UNKNOWN) left out.
                let json = match self.status {
                    0 => serde_json::json!({}),
                    n => match ServingStatus::try_from(n) {
                        Ok(s) => serde_json::json!({ "status": s.as_str() }),
                        Err(_) => serde_json::json!({ "status": n }),
                    },
                };
                json::encode_serde(&json, buf)
            }
            _ => crate::codec::generated::encode_prost(self, buf),
        }
    }

    fn decode(codec: Codec, buf: Bytes) -> Result<HealthCheckResponse> {
        match codec {
            Codec::Json => {
                let json: serde_json::Value = json::decode_serde(&buf)?;
                let status = match json.get("status") {
                    None | Some(serde_json::Value::Null) => 0,
                    Some(serde_json::Value::String(s)) => ServingStatus::from_name(s)
                        .map(|s| s as i32)
                        .ok_or_else(|| bad_status(s))?,
                    Some(serde_json::Value::Number(n)) => n
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or_else(|| bad_status(n))?,
                    Some(other) => return Err(bad_status(other)),
                };
                Ok(HealthCheckResponse { status })
            }
            _ => crate::codec::generated::decode_prost(buf),
        }
    }

    fn describe() -> Value {
        health_value("HealthCheckResponse", "status", "ServingStatus")
    }
}

fn bad_status(status: &dyn std::fmt::Display) -> Error {
    Error::new(
        Code::InvalidArgument,
        format!("decode json: unknown serving status {status}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_requests_take_a_missing_or_null_name_as_the_server() {
        for json in [&b""[..], b"{}", br#"{"service": null}"#] {
            let req = HealthCheckRequest::decode(Codec::Json, Bytes::from_static(json)).unwrap();
            assert_eq!(req.service, "", "{}", String::from_utf8_lossy(json));
        }
        let req =
            HealthCheckRequest::decode(Codec::Json, Bytes::from_static(br#"{"service": "a.B"}"#))
                .unwrap();
        assert_eq!(req.service, "a.B");
        let err = HealthCheckRequest::decode(Codec::Json, Bytes::from_static(br#"{"service": 1}"#))
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[test]
    fn json_responses_name_the_status() {
        for status in [ServingStatus::Serving, ServingStatus::NotServing] {
            let mut buf = BytesMut::new();
            let rsp = HealthCheckResponse {
                status: status as i32,
            };
            rsp.encode(Codec::Json, &mut buf).unwrap();
            assert_eq!(
                std::str::from_utf8(&buf).unwrap(),
                format!(r#"{{"status":"{status}"}}"#)
            );
            assert_eq!(
                HealthCheckResponse::decode(Codec::Json, buf.freeze()).unwrap(),
                rsp
            );
        }
    }
}
