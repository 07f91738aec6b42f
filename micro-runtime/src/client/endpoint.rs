//! Calls by endpoint name (`Calculator.Add`), with no generated client: for services written
//! with `#[micro_runtime::handler]`, or any service whose message types you have.

use http::uri::PathAndQuery;

use super::{AsCallOptions, CallOptions, Client, Target};
use crate::codec::Message;
use crate::error::{Error, Result};
use crate::stream::{CallStream, Streaming};

impl Client {
    /// Calls endpoint `endpoint` (`Handler.Method`, as registered) of `service` with
    /// `request`, and decodes the response as `Rsp`.
    ///
    /// The request goes to go-micro's gRPC path `/<service>.<Handler>/<Method>`, which every
    /// micro server answers. Serde messages (`#[derive(Message)]`) are sent as JSON
    /// (`application/grpc+json`) without being asked; other messages in the client's codec.
    ///
    /// ```no_run
    /// # use micro_runtime::{Client, Message, codegen::{Bytes, BytesMut, Codec, Value}};
    /// # struct AddRequest { a: i64, b: i64 }
    /// # struct AddResponse;
    /// # macro_rules! msg { ($t:ty) => { impl Message for $t {
    /// #     fn encode(&self, _: Codec, _: &mut BytesMut) -> micro_runtime::Result<()> { Ok(()) }
    /// #     fn decode(_: Codec, _: Bytes) -> micro_runtime::Result<Self> { Err(micro_runtime::Error::new(micro_runtime::Code::Unimplemented, "example")) }
    /// #     fn describe() -> Value { Value::default() } } } }
    /// # msg!(AddRequest); msg!(AddResponse);
    /// # async fn run(client: Client) -> micro_runtime::Result<()> {
    /// let rsp = client
    ///     .call_endpoint::<AddRequest, AddResponse>("calculator", "Calculator.Add", AddRequest { a: 1, b: 2 })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn call_endpoint<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        endpoint: &str,
        request: Req,
    ) -> Result<Rsp> {
        self.call_endpoint_with(service, endpoint, &request, &CallOptions::new())
            .await
    }

    /// Like [`Client::call_endpoint`], with options for this call (or a handler's context:
    /// see [`AsCallOptions`]).
    pub async fn call_endpoint_with<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        endpoint: &str,
        request: &Req,
        options: &(impl AsCallOptions + ?Sized),
    ) -> Result<Rsp> {
        let options = options.as_call_options();
        let target = Target::endpoint(service, endpoint)?;
        self.call_target(service, target, request, &options).await
    }

    /// Calls server-streaming endpoint `endpoint` of `service` with `request`, as
    /// [`Client::server_stream`] does for a generated method: the responses come on the
    /// returned [`Streaming`].
    ///
    /// ```no_run
    /// # async fn run(client: micro_runtime::Client) -> micro_runtime::Result<()> {
    /// use micro_runtime::CallOptions;
    /// use serde_json::{Value, json};
    ///
    /// let request = json!({ "message": "hi", "count": 3 });
    /// let mut replies = client
    ///     .server_stream_endpoint::<Value, Value>("echo", "Echo.ServerStream", &request, &CallOptions::new())
    ///     .await?;
    /// while let Some(reply) = replies.recv().await? {
    ///     println!("{reply}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn server_stream_endpoint<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        endpoint: &str,
        request: &Req,
        options: &(impl AsCallOptions + ?Sized),
    ) -> Result<Streaming<Rsp>> {
        let options = options.as_call_options();
        let target = Target::endpoint(service, endpoint)?;
        self.server_stream_target(service, &target, request, &options)
            .await
    }

    /// Opens a client-streaming or bidirectional endpoint `endpoint` of `service`, as
    /// [`Client::stream`] does for a generated method.
    pub async fn stream_endpoint<Req: Message, Rsp: Message>(
        &self,
        service: &str,
        endpoint: &str,
        options: &(impl AsCallOptions + ?Sized),
    ) -> Result<CallStream<Req, Rsp>> {
        let options = options.as_call_options();
        let target = Target::endpoint(service, endpoint)?;
        self.stream_target(service, &target, &options).await
    }
}

impl<'a> Target<'a> {
    /// Endpoint `endpoint` of `service`, at go-micro's path; not idempotent.
    fn endpoint(service: &str, endpoint: &'a str) -> Result<Target<'a>> {
        Ok(Target {
            path: endpoint_path(service, endpoint)?,
            endpoint,
            idempotent: false,
        })
    }
}

/// go-micro's gRPC path of `endpoint` on `service`: `Calculator.Add` on `calculator` is
/// `/calculator.Calculator/Add`.
fn endpoint_path(service: &str, endpoint: &str) -> Result<PathAndQuery> {
    let bad = |why: &str| {
        Error::bad_request(
            "go.micro.client",
            format!("bad endpoint {endpoint:?} of service {service:?}: {why}"),
        )
    };
    let (handler, method) = endpoint
        .split_once('.')
        .ok_or_else(|| bad("expected Handler.Method"))?;
    let parts = [service, handler, method];
    if parts.iter().any(|p| p.is_empty()) || method.contains('.') {
        return Err(bad("expected Handler.Method on a named service"));
    }
    // `?` and `#` would cut the path short: a call would reach another method than named.
    if parts
        .iter()
        .any(|p| p.contains(['/', '?', '#']) || p.contains(char::is_whitespace))
    {
        return Err(bad("names may not hold '/', '?', '#' or spaces"));
    }
    PathAndQuery::try_from(format!("/{service}.{handler}/{method}"))
        .map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_go_micros() {
        let p = endpoint_path("calculator", "Calculator.Add").unwrap();
        assert_eq!(p.as_str(), "/calculator.Calculator/Add");
        let p = endpoint_path("go.micro.srv.calc", "Calc.Add").unwrap();
        assert_eq!(p.as_str(), "/go.micro.srv.calc.Calc/Add");
    }

    #[test]
    fn bad_names_are_errors() {
        for (svc, ep) in [
            ("calc", "Add"),
            ("calc", "Calc."),
            ("calc", ".Add"),
            ("", "Calc.Add"),
            ("calc", "Calc.Add.More"),
            ("calc", "Calc.Add?x=1"),
            ("calc", "Calc.A dd"),
            ("ca/lc", "Calc.Add"),
            ("calc", "Calc.\u{7f}"),
        ] {
            let err = endpoint_path(svc, ep).unwrap_err();
            assert_eq!(err.code(), crate::Code::InvalidArgument, "{svc} {ep}");
        }
    }
}
