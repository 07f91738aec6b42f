//! The relay: a handler that calls the next service of a chain with its own call's
//! [`Context`], so the first caller's deadline and metadata carry on hop by hop, and reports
//! what each hop saw.

use std::time::{Duration, Instant};

use micro_runtime::{Client, Context, Error};

use crate::relay::{Hop, PassReply, PassRequest, Relay, RelayClient};

/// The relay of the service registered as `name`, calling on through `client`.
#[derive(Clone, Debug)]
pub struct Relayer {
    name: String,
    client: Client,
}

impl Relayer {
    /// The relay of `name`, calling the next hops through `client`.
    pub fn new(name: impl Into<String>, client: Client) -> Relayer {
        Relayer {
            name: name.into(),
            client,
        }
    }
}

impl Relay for Relayer {
    async fn pass(&self, ctx: Context, req: PassRequest) -> Result<PassReply, Error> {
        let hop = Hop {
            service: self.name.clone(),
            metadata: ctx
                .metadata()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            deadline_left_ms: ctx.deadline().map_or(-1, |deadline| {
                let left = deadline.saturating_duration_since(Instant::now());
                i64::try_from(left.as_millis()).unwrap_or(i64::MAX)
            }),
        };
        let mut next = req.next.into_iter();
        let Some(service) = next.next() else {
            // The last hop: says so when it is dropped before it answers (its caller gone).
            let guard = Unfinished(&self.name);
            tokio::time::sleep(Duration::from_millis(u64::from(req.sleep_ms))).await;
            std::mem::forget(guard);
            return Ok(PassReply { hops: vec![hop] });
        };
        let request = PassRequest {
            next: next.collect(),
            sleep_ms: req.sleep_ms,
        };
        // The one line that carries the call's deadline and metadata on.
        let reply = RelayClient::new(service, self.client.clone())
            .pass_with(request, &ctx)
            .await?;
        let mut hops = vec![hop];
        hops.extend(reply.hops);
        Ok(PassReply { hops })
    }
}

/// Prints `relay: <name> dropped unfinished` when dropped: the handler's future was dropped
/// before it answered.
struct Unfinished<'a>(&'a str);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        println!("relay: {} dropped unfinished", self.0);
    }
}
