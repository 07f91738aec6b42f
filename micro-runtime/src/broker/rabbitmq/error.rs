//! This backend's errors: lapin's errors as this crate's (RabbitMQ's refusals keep their
//! meaning), and RabbitMQ not answering in time.

use std::time::Duration;

use lapin::ErrorKind;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

use crate::error::{Code, Error};

/// A lapin error as ours: refusals by RabbitMQ keep their meaning, anything else (the
/// connection is gone, closed, or broke) is `UNAVAILABLE`.
pub(super) fn amqp_error(what: &str, e: &lapin::Error) -> Error {
    let code = match e.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => Code::PermissionDenied,
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => Code::NotFound,
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => Code::FailedPrecondition,
            AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED) => Code::FailedPrecondition,
            AMQPErrorKind::Soft(AMQPSoftError::CONTENTTOOLARGE) => Code::InvalidArgument,
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => Code::PermissionDenied,
            _ => Code::Unavailable,
        },
        _ => Code::Unavailable,
    };
    Error::new(code, format!("rabbitmq: {what}: {e}"))
}

/// What waiting `t` for RabbitMQ to answer `what` ends with.
pub(super) fn timed_out(what: &str, t: Duration) -> Error {
    Error::new(
        Code::Unavailable,
        format!("rabbitmq: {what}: no answer from RabbitMQ within {t:?}"),
    )
}
