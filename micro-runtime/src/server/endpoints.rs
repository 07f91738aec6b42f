//! What [`Server::handle`](super::Server::handle) accepts: a [`Handler`], or a type whose
//! methods are endpoints ([`Endpoints`], implemented by `#[micro_runtime::handler]`).

use std::sync::Arc;

use super::Handler;
use crate::codec::Message;
use crate::error::{Error, Result};

/// Something that becomes a [`Handler`]: a `Handler` itself, a type implementing
/// [`Endpoints`] (what `#[micro_runtime::handler]` generates), or an `Arc` of one (to keep a
/// reference to the handler's state).
pub trait IntoHandler {
    /// The handler.
    fn into_handler(self) -> Handler;
}

impl IntoHandler for Handler {
    fn into_handler(self) -> Handler {
        self
    }
}

/// A type whose async methods are the endpoints of one service: implemented by
/// `#[micro_runtime::handler]` on an `impl` block (feature `macros`).
///
/// ```
/// use std::sync::Arc;
/// use micro_runtime::server::{Endpoints, IntoHandler};
/// use micro_runtime::{Context, Error, Handler};
/// # use micro_runtime::codegen::{Bytes, BytesMut, Codec, Value};
/// # #[derive(Default)] struct Ping;
/// # impl micro_runtime::Message for Ping {
/// #     fn encode(&self, _: Codec, _: &mut BytesMut) -> micro_runtime::Result<()> { Ok(()) }
/// #     fn decode(_: Codec, _: Bytes) -> micro_runtime::Result<Self> { Ok(Ping) }
/// #     fn describe() -> Value { Value::default() }
/// # }
///
/// struct Health;
///
/// // What the attribute writes, by hand.
/// impl Endpoints for Health {
///     fn handler(this: &Arc<Self>) -> Handler {
///         Handler::new("", "Health").unary(
///             "Check",
///             this,
///             |_h: Arc<Health>, _ctx: Context, req: Ping| async move { Ok::<_, Error>(req) },
///         )
///     }
/// }
///
/// assert_eq!(Health.into_handler().endpoints()[0].name, "Health.Check");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no endpoints",
    label = "not a handler",
    note = "put `#[micro_runtime::handler]` on an `impl` block of `{Self}` with its async endpoint methods"
)]
pub trait Endpoints: Send + Sync + 'static {
    /// The handler whose methods call `this`.
    fn handler(this: &Arc<Self>) -> Handler;
}

impl<T: Endpoints> IntoHandler for T {
    fn into_handler(self) -> Handler {
        T::handler(&Arc::new(self))
    }
}

impl<T: Endpoints> IntoHandler for Arc<T> {
    fn into_handler(self) -> Handler {
        T::handler(&self)
    }
}

/// What an endpoint method returns: `Result<Response, E>` with a [`Message`] response and an
/// error convertible into [`Error`] (so handlers may use `?` on their own error types).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not what an endpoint method returns",
    label = "endpoint methods return `Result<Response, E>`",
    note = "the response implements `micro_runtime::Message`, and `E: Into<micro_runtime::Error>`"
)]
pub trait EndpointResult {
    /// The response message.
    type Response: Message;

    /// The outcome, the error converted.
    fn into_result(self) -> Result<Self::Response>;
}

impl<T: Message, E: Into<Error>> EndpointResult for std::result::Result<T, E> {
    type Response = T;

    #[inline]
    fn into_result(self) -> Result<T> {
        self.map_err(Into::into)
    }
}

/// What a subscriber method returns: `Result<(), E>` with an error convertible into [`Error`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not what a subscriber method returns",
    label = "subscriber methods return `Result<(), E>`",
    note = "`E: Into<micro_runtime::Error>`; an error leaves the message to be delivered again"
)]
pub trait SubscriberResult {
    /// The outcome, the error converted.
    fn into_result(self) -> Result<()>;
}

impl<E: Into<Error>> SubscriberResult for std::result::Result<(), E> {
    #[inline]
    fn into_result(self) -> Result<()> {
        self.map_err(Into::into)
    }
}
