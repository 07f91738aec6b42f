//! The error that crosses the wire: one type for handlers, clients and the transport.
//!
//! An [`Error`] carries a gRPC [`Code`] and go-micro's fields (`id`, `code`, `detail`,
//! `status`), so it converts losslessly to a gRPC status (for standard gRPC peers) and to
//! go-micro's JSON error (for go-micro peers and tools).
//!
//! ```
//! use micro_runtime::{Code, Error};
//!
//! let err = Error::bad_request("greeter", "name is empty");
//! assert_eq!(err.code(), Code::InvalidArgument);
//! assert_eq!(err.http_code(), 400);
//! assert_eq!(
//!     err.to_json(),
//!     r#"{"id":"greeter","code":400,"detail":"name is empty","status":"Bad Request"}"#
//! );
//! assert_eq!(Error::from_json(&err.to_json()), err);
//! ```

use std::fmt;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// gRPC status codes (the numbers on the wire in `grpc-status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // the names are gRPC's own
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The code for a `grpc-status` number; unknown numbers become [`Code::Unknown`].
    pub fn from_i32(n: i32) -> Code {
        use Code::*;
        match n {
            0 => Ok,
            1 => Cancelled,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }

    /// The code for a `grpc-status` header value.
    pub fn from_bytes(b: &[u8]) -> Code {
        match b {
            [d] if d.is_ascii_digit() => Code::from_i32(i32::from(d - b'0')),
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                Code::from_i32(i32::from((a - b'0') * 10 + (b - b'0')))
            }
            _ => Code::Unknown,
        }
    }

    /// The value of the `grpc-status` header for this code.
    pub fn as_header(self) -> http::HeaderValue {
        const VALUES: [&str; 17] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
            "16",
        ];
        http::HeaderValue::from_static(VALUES[self as usize])
    }

    /// The HTTP-style code go-micro uses for this gRPC code.
    pub fn http_code(self) -> u16 {
        use Code::*;
        match self {
            Ok => 200,
            Cancelled => 499,
            Unknown | Internal | DataLoss => 500,
            InvalidArgument | FailedPrecondition | OutOfRange => 400,
            DeadlineExceeded => 408,
            NotFound => 404,
            AlreadyExists | Aborted => 409,
            PermissionDenied => 403,
            ResourceExhausted => 429,
            Unimplemented => 501,
            Unavailable => 503,
            Unauthenticated => 401,
        }
    }

    /// The gRPC code for a go-micro (HTTP-style) code.
    pub fn from_http(code: u16) -> Code {
        use Code::*;
        match code {
            200..=299 => Ok,
            400 => InvalidArgument,
            401 => Unauthenticated,
            403 => PermissionDenied,
            404 => NotFound,
            405 | 501 => Unimplemented,
            408 | 504 => DeadlineExceeded,
            409 => AlreadyExists,
            413 | 429 => ResourceExhausted,
            499 => Cancelled,
            500 => Internal,
            502 | 503 => Unavailable,
            _ => Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An error of a call: what a handler returns and what a client receives.
///
/// Build one with the helpers ([`Error::bad_request`], [`Error::not_found`], ...) or with
/// [`Error::new`] for any gRPC code.
///
/// One pointer wide (its fields are boxed): errors are the rare path, and every `Result` of
/// the crate stays the size of its `Ok` value, so messages move through the hot paths
/// (decoding a stream, a call's reply) as small values rather than as large enums.
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Fields>);

#[derive(Clone, PartialEq, Eq)]
struct Fields {
    code: Code,
    http_code: u16,
    id: String,
    detail: String,
}

macro_rules! helpers {
    ($($(#[$doc:meta])* $name:ident => $http:literal;)*) => {$(
        $(#[$doc])*
        pub fn $name(id: impl Into<String>, detail: impl Into<String>) -> Error {
            Error::with_http_code($http, id, detail)
        }
    )*};
}

impl Error {
    /// An error with a gRPC code; go-micro's code is derived from it. An error is never
    /// `OK` on the wire: [`Code::Ok`] becomes [`Code::Unknown`].
    pub fn new(code: Code, detail: impl Into<String>) -> Error {
        let code = not_ok(code);
        Error(Box::new(Fields {
            code,
            http_code: code.http_code(),
            id: String::new(),
            detail: detail.into(),
        }))
    }

    /// An error with go-micro's HTTP-style code; the gRPC code is derived from it, and is
    /// [`Code::Unknown`] for a success code (2xx): an error must not read as `OK`.
    pub fn with_http_code(code: u16, id: impl Into<String>, detail: impl Into<String>) -> Error {
        Error(Box::new(Fields {
            code: not_ok(Code::from_http(code)),
            http_code: code,
            id: id.into(),
            detail: detail.into(),
        }))
    }

    helpers! {
        /// 400, `INVALID_ARGUMENT`.
        bad_request => 400;
        /// 401, `UNAUTHENTICATED`.
        unauthorized => 401;
        /// 403, `PERMISSION_DENIED`.
        forbidden => 403;
        /// 404, `NOT_FOUND`.
        not_found => 404;
        /// 405, `UNIMPLEMENTED`.
        method_not_allowed => 405;
        /// 408, `DEADLINE_EXCEEDED`.
        timeout => 408;
        /// 409, `ALREADY_EXISTS`.
        conflict => 409;
        /// 500, `INTERNAL`.
        internal_server_error => 500;
    }

    /// Sets the id (go-micro uses the service name).
    pub fn with_id(mut self, id: impl Into<String>) -> Error {
        self.0.id = id.into();
        self
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        self.0.code
    }

    /// go-micro's HTTP-style code.
    pub fn http_code(&self) -> u16 {
        self.0.http_code
    }

    /// The id (usually the name of the service that made the error).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// What went wrong, for people.
    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    /// The HTTP status text of go-micro's code (`"Bad Request"` for 400).
    pub fn status(&self) -> &'static str {
        http::StatusCode::from_u16(self.0.http_code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(match self.0.http_code {
                499 => "Client Closed Request",
                _ => "",
            })
    }

    /// go-micro's JSON form: `{"id","code","detail","status"}`, empty fields left out.
    pub fn to_json(&self) -> String {
        let wire = WireError {
            id: &self.0.id,
            code: self.0.http_code,
            detail: &self.0.detail,
            status: self.status(),
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses go-micro's JSON error; text that is not one becomes an `INTERNAL` error whose
    /// detail is the text, as go-micro's `errors.Parse` does.
    pub fn from_json(text: &str) -> Error {
        #[derive(serde::Deserialize)]
        struct Owned {
            #[serde(default)]
            id: String,
            #[serde(default)]
            code: u16,
            #[serde(default)]
            detail: String,
        }
        match serde_json::from_str::<Owned>(text) {
            Ok(e) if e.code != 0 || !e.detail.is_empty() || !e.id.is_empty() => {
                let code = if e.code == 0 { 500 } else { e.code };
                Error::with_http_code(code, e.id, e.detail)
            }
            _ => Error::internal_server_error("", text),
        }
    }

    /// Rebuilds an error from what a gRPC peer sent: `grpc-status`, the percent-decoded
    /// `grpc-message`, and our own `micro-error` trailer (go-micro's JSON) when present.
    pub(crate) fn from_grpc(code: Code, message: &str, micro: Option<&[u8]>) -> Error {
        if let Some(json) = micro.and_then(|b| std::str::from_utf8(b).ok()) {
            let mut err = Error::from_json(json);
            err.0.code = code;
            return err;
        }
        Error::new(code, message)
    }
}

/// The gRPC code of an error: `grpc-status: 0` would make a failure look like a success.
fn not_ok(code: Code) -> Code {
    match code {
        Code::Ok => Code::Unknown,
        code => code,
    }
}

#[derive(serde::Serialize)]
struct WireError<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    code: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    detail: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    status: &'a str,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.0.code)
            .field("http_code", &self.0.http_code)
            .field("id", &self.0.id)
            .field("detail", &self.0.detail)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.id.is_empty() {
            write!(f, "{}: {}", self.0.code, self.0.detail)
        } else {
            write!(f, "{} ({}): {}", self.0.code, self.0.id, self.0.detail)
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(Code::Unavailable, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_map_to_grpc_codes() {
        let cases = [
            (Error::bad_request("s", "d"), Code::InvalidArgument, 400),
            (Error::unauthorized("s", "d"), Code::Unauthenticated, 401),
            (Error::forbidden("s", "d"), Code::PermissionDenied, 403),
            (Error::not_found("s", "d"), Code::NotFound, 404),
            (
                Error::method_not_allowed("s", "d"),
                Code::Unimplemented,
                405,
            ),
            (Error::timeout("s", "d"), Code::DeadlineExceeded, 408),
            (Error::conflict("s", "d"), Code::AlreadyExists, 409),
            (Error::internal_server_error("s", "d"), Code::Internal, 500),
        ];
        for (err, code, http) in cases {
            assert_eq!(err.code(), code, "{err}");
            assert_eq!(err.http_code(), http);
            assert_eq!(Error::from_json(&err.to_json()), err);
        }
    }

    #[test]
    fn json_leaves_out_empty_fields() {
        let err = Error::new(Code::NotFound, "gone");
        assert_eq!(
            err.to_json(),
            r#"{"code":404,"detail":"gone","status":"Not Found"}"#
        );
    }

    #[test]
    fn text_that_is_not_json_becomes_internal() {
        let err = Error::from_json("boom");
        assert_eq!(err.code(), Code::Internal);
        assert_eq!(err.detail(), "boom");
    }

    #[test]
    fn an_error_is_never_ok() {
        let errs = [
            Error::with_http_code(200, "s", "d"),
            Error::with_http_code(204, "s", "d"),
            Error::from_json(r#"{"id":"s","code":200,"detail":"d"}"#),
            Error::new(Code::Ok, "d"),
        ];
        for err in errs {
            assert_eq!(err.code(), Code::Unknown, "{err:?}");
            let mut headers = http::HeaderMap::new();
            crate::transport::put_status(&mut headers, &err);
            assert_eq!(headers["grpc-status"], "2");
        }
        // go-micro's code is kept as given.
        assert_eq!(Error::with_http_code(200, "s", "d").http_code(), 200);
    }

    #[test]
    fn status_header_roundtrip() {
        for n in 0..=16 {
            let code = Code::from_i32(n);
            assert_eq!(Code::from_bytes(code.as_header().as_bytes()), code);
        }
        assert_eq!(Code::from_bytes(b"99"), Code::Unknown);
        assert_eq!(Code::from_bytes(b""), Code::Unknown);
    }
}
