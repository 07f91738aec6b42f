//! The {{ p.name }} service: its handler, and the code generated from proto/{{ p.name }}.proto.

// Every proto package in the module its name gives: `{{ p.package }}` here.
micro_runtime::include_protos!();

use micro_runtime::{BoxStream, Context, Error};

pub use crate::{{ p.package }}::{
    {{ p.service }}Client, Request, Response, StreamingRequest, StreamingResponse,
    register_{{ p.module }}_handler,
};

/// The handler of `{{ p.package }}.{{ p.service }}`.
pub struct {{ p.service }};

impl crate::{{ p.package }}::{{ p.service }} for {{ p.service }} {
    async fn call(&self, _ctx: Context, req: Request) -> Result<Response, Error> {
        tracing::info!("Received {{ p.service }}.Call request");
        Ok(Response { msg: format!("Hello {}", req.name) })
    }

    async fn stream(
        &self,
        _ctx: Context,
        req: StreamingRequest,
    ) -> Result<BoxStream<StreamingResponse>, Error> {
        if req.count < 0 {
            return Err(Error::bad_request("{{ p.name }}", "count must not be negative"));
        }
        let (tx, responses) = micro_runtime::stream::channel(16);
        tokio::spawn(async move {
            for count in 0..req.count {
                // The caller went away: stop.
                if tx.send(StreamingResponse { count }).await.is_err() {
                    break;
                }
            }
        });
        Ok(responses)
    }
}
