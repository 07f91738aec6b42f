//! The server's side of [`crate::health`]: its answer to `grpc.health.v1.Health/Check`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::call::{Call, Incoming, Reply, Route, RouteFuture};
use crate::codec::Message;
use crate::error::{Code, Error};
use crate::health::{HealthCheckRequest, HealthCheckResponse, ServingStatus};
use crate::transport::frame;

/// Whether a started server serves, and the service names it answers for.
pub(crate) struct Health {
    serving: AtomicBool,
    names: Vec<String>,
}

impl Health {
    /// Serving, for the empty name and `names`.
    pub(crate) fn new(names: Vec<String>) -> Health {
        Health {
            serving: AtomicBool::new(true),
            names,
        }
    }

    /// From now on `NOT_SERVING`: the server is stopping.
    pub(crate) fn stopping(&self) {
        self.serving.store(false, Ordering::Release);
    }

    fn status(&self, service: &str) -> Result<ServingStatus, Error> {
        if !service.is_empty() && !self.names.iter().any(|n| n == service) {
            return Err(Error::new(
                Code::NotFound,
                format!("unknown service {service:?}"),
            ));
        }
        Ok(if self.serving.load(Ordering::Acquire) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        })
    }

    /// The route of `Check`.
    pub(crate) fn route(self: &Arc<Health>) -> Arc<dyn Route> {
        let health = self.clone();
        Arc::new(move |call: Call| -> RouteFuture {
            let health = health.clone();
            Box::pin(call.serve(move |mut req: Incoming| async move {
                let message = req.message().await?;
                let request = HealthCheckRequest::decode(req.codec, message)?;
                let status = health.status(&request.service)? as i32;
                frame::encode_compressed(
                    &HealthCheckResponse { status },
                    req.codec,
                    req.limits.max_send,
                    req.encodings.response,
                )
                .map(Reply::Message)
            }))
        })
    }
}
