//! The handler layers that come with the server: [`RequestLog`], [`Timeout`],
//! [`ConcurrencyLimit`] (with load shedding) and [`RateLimit`] (token buckets, per endpoint
//! or per caller); [`TowerLayer`] runs tower middleware. Add them with
//! [`Server::wrap_handler`](super::Server::wrap_handler) or
//! [`ServiceBuilder::wrap_handler`](crate::ServiceBuilder::wrap_handler).

mod concurrency;
mod rate_limit;
mod request_log;
mod timeout;
mod tower;

pub use concurrency::ConcurrencyLimit;
pub use rate_limit::RateLimit;
pub use request_log::RequestLog;
pub use timeout::Timeout;
pub use tower::{CallOn, TowerCall, TowerLayer};
