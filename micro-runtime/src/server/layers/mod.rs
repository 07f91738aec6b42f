//! The handler layers that come with the server: [`RequestLog`], [`Timeout`] and
//! [`ConcurrencyLimit`] (with load shedding). Add them with
//! [`Server::wrap_handler`](super::Server::wrap_handler) or
//! [`ServiceBuilder::wrap_handler`](crate::ServiceBuilder::wrap_handler).

mod concurrency;
mod request_log;
mod timeout;

pub use concurrency::ConcurrencyLimit;
pub use request_log::RequestLog;
pub use timeout::Timeout;
