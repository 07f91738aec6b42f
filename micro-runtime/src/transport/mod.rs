//! gRPC over HTTP/2 (the `h2` crate): the pieces the server and the client share.
//!
//! - [`frame`]: the length-prefixed message framing and its errors;
//! - [`body`]: the response and request bodies (one message then trailers);
//! - [`compression`]: message compression (`grpc-encoding` gzip and zstd), bounded when
//!   decompressing;
//! - `http2`: sending frames as the peer's window allows, giving read bytes back, HTTP/2 errors
//!   as gRPC codes; `status`: a response's status from its headers or trailers;
//! - `tls` (feature `tls`): TLS for clients;
//! - the `grpc-timeout` header and the status headers, here.

pub mod body;
pub mod compression;
pub mod frame;
pub(crate) mod http2;
pub(crate) mod status;
#[cfg(feature = "tls")]
pub mod tls;

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};

use crate::error::{Code, Error};

/// Default largest message, in either direction: 4 MiB, as in gRPC.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// How much framing overhead of small, unread DATA frames a connection tolerates before it
/// closes with `ENHANCE_YOUR_CALM` (h2's defence against floods of tiny frames). h2's default
/// follows the initial window and lets only about a hundred small frames wait; gRPC peers
/// send one frame per message, so a stream of small messages read a little slower than it
/// arrives would trip it. 4 MiB lets some 17,000 small frames wait, well within what the
/// flow-control windows bound anyway.
pub(crate) const DATA_FRAME_BUDGET: usize = 4 << 20;

/// The trailer our servers add to errors: go-micro's JSON error, so our clients rebuild the
/// error exactly (id and HTTP-style code included). Other peers ignore it.
pub(crate) const MICRO_ERROR: &str = "micro-error";

/// Characters percent-encoded in `grpc-message` (the spec's set: controls, `%`, non-ASCII).
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

/// Parses a `grpc-timeout` value (`1S`, `250m`, up to 8 digits and a unit).
///
/// ```
/// use std::time::Duration;
/// use micro_runtime::transport::parse_timeout;
/// assert_eq!(parse_timeout(b"250m"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_timeout(b"2S"), Some(Duration::from_secs(2)));
/// assert_eq!(parse_timeout(b"2x"), None);
/// ```
pub fn parse_timeout(v: &[u8]) -> Option<Duration> {
    let (digits, unit) = v.split_at_checked(v.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        [b'H'] => Duration::from_secs(n * 3600),
        [b'M'] => Duration::from_secs(n * 60),
        [b'S'] => Duration::from_secs(n),
        [b'm'] => Duration::from_millis(n),
        [b'u'] => Duration::from_micros(n),
        [b'n'] => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Longer than any process lives: what a timeout or interval too long for the clock becomes.
pub(crate) const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The instant `timeout` from now. A timeout too long to add to the clock (`Duration::MAX`
/// as "no limit") is a deadline a century away, never an overflow.
pub(crate) fn deadline_in(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout).unwrap_or(now + CENTURY)
}

/// Formats a duration as a `grpc-timeout` value, in the finest unit that fits 8 digits.
///
/// ```
/// use std::time::Duration;
/// use micro_runtime::transport::format_timeout;
/// assert_eq!(format_timeout(Duration::from_millis(250)), "250000u");
/// assert_eq!(format_timeout(Duration::from_secs(3600 * 24)), "86400000m");
/// ```
pub fn format_timeout(d: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = d.as_nanos();
    let (n, unit) = if nanos <= MAX {
        (nanos, 'n')
    } else if nanos / 1_000 <= MAX {
        (nanos / 1_000, 'u')
    } else if nanos / 1_000_000 <= MAX {
        (nanos / 1_000_000, 'm')
    } else if nanos / 1_000_000_000 <= MAX {
        (nanos / 1_000_000_000, 'S')
    } else if nanos / 60_000_000_000 <= MAX {
        (nanos / 60_000_000_000, 'M')
    } else {
        ((nanos / 3_600_000_000_000).min(MAX), 'H')
    };
    HeaderValue::try_from(format!("{n}{unit}")).unwrap_or(HeaderValue::from_static("99999999H"))
}

/// Writes the status of `err` into `headers` (trailers, or the headers of a trailers-only
/// response): `grpc-status`, `grpc-message` and our `micro-error`.
pub(crate) fn put_status(headers: &mut HeaderMap, err: &Error) {
    headers.insert("grpc-status", err.code().as_header());
    if let Ok(v) =
        HeaderValue::try_from(utf8_percent_encode(err.detail(), GRPC_MESSAGE).to_string())
    {
        headers.insert("grpc-message", v);
    }
    let json = err.to_json();
    if let Ok(v) = HeaderValue::try_from(utf8_percent_encode(&json, GRPC_MESSAGE).to_string()) {
        headers.insert(MICRO_ERROR, v);
    }
}

/// Reads the status out of response trailers (or trailers-only headers): `Ok(())` for
/// `grpc-status: 0`, the error otherwise. `None` when there is no `grpc-status`.
pub(crate) fn take_status(headers: &HeaderMap) -> Option<Result<(), Error>> {
    let code = Code::from_bytes(headers.get("grpc-status")?.as_bytes());
    if code == Code::Ok {
        return Some(Ok(()));
    }
    let decode = |name: &str| {
        headers.get(name).map(|v| {
            percent_decode(v.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
    };
    let message = decode("grpc-message").unwrap_or_default();
    let micro = decode(MICRO_ERROR);
    Some(Err(Error::from_grpc(
        code,
        &message,
        micro.as_deref().map(str::as_bytes),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_roundtrip() {
        for d in [
            Duration::from_nanos(5),
            Duration::from_millis(1),
            Duration::from_secs(30),
            Duration::from_secs(1 << 30),
        ] {
            let parsed = parse_timeout(format_timeout(d).as_bytes()).unwrap();
            assert!(
                parsed <= d && d - parsed <= d / 1000 + Duration::from_secs(3600),
                "{d:?}"
            );
        }
        for bad in [&b""[..], b"S", b"123456789S", b"1.5S", b"-1S"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn status_roundtrip_keeps_go_micro_fields() {
        let err = Error::bad_request("greeter", "naïve 100% wrong\nline");
        let mut h = HeaderMap::new();
        put_status(&mut h, &err);
        assert_eq!(h["grpc-status"], "3");
        let back = take_status(&h).unwrap().unwrap_err();
        assert_eq!(back, err);
    }

    #[test]
    fn status_of_a_plain_grpc_peer() {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("5"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("no%20such%20thing"),
        );
        let err = take_status(&h).unwrap().unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(err.detail(), "no such thing");
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(take_status(&h).unwrap().is_ok());
    }
}
