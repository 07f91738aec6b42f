//! The status of a gRPC response: in its headers (trailers-only), in its trailers, or an
//! HTTP status from a server that did not answer in gRPC.

use crate::codec::Codec;
use crate::error::{Code, Error, Result};

/// The codec of a response, or the error its headers carry.
pub(crate) fn check_head(parts: &http::response::Parts, sent: Codec) -> Result<Codec> {
    if parts.status != http::StatusCode::OK {
        return Err(http_status_error(parts.status));
    }
    // Trailers-only: the status came in the headers, with no message.
    if let Some(status) = super::take_status(&parts.headers) {
        return Err(status
            .err()
            .unwrap_or_else(|| Error::new(Code::Internal, "response carried no message")));
    }
    Ok(parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|ct| Codec::from_content_type(ct.as_bytes()))
        .unwrap_or(sent))
}

/// The codec of a streamed response, `None` for a trailers-only OK (no messages), or the
/// error its headers carry.
pub(crate) fn check_stream_head(
    parts: &http::response::Parts,
    sent: Codec,
) -> Result<Option<Codec>> {
    match check_head(parts, sent) {
        Ok(codec) => Ok(Some(codec)),
        Err(_) if super::take_status(&parts.headers).is_some_and(|s| s.is_ok()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The status in the trailers that end a response.
pub(crate) fn check_trailers(trailers: Option<&http::HeaderMap>) -> Result<()> {
    match trailers.and_then(super::take_status) {
        Some(status) => status,
        None => Err(Error::new(
            Code::Internal,
            "response ended without grpc-status",
        )),
    }
}

/// The error of a response message that does not decode: the server's fault.
pub(crate) fn bad_response(e: &Error) -> Error {
    Error::new(Code::Internal, format!("bad response: {}", e.detail()))
}

/// gRPC's mapping of HTTP statuses from servers that did not answer in gRPC.
fn http_status_error(status: http::StatusCode) -> Error {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Error::new(code, format!("server answered HTTP {status}"))
}
