//! Handlers: the methods of one service, as generated code registers them.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use super::router::{Call, Route, RouteFuture};
use crate::codec::Message;
use crate::context::Context;
use crate::error::Result;
use crate::registry::{Endpoint, Metadata};

/// The methods of one service (`Greeter`) of one proto package (`greeter`), with how to call
/// each and how to describe it in the registry.
///
/// Generated `register_*_handler` functions build one; hand-written services can too:
///
/// ```
/// use std::sync::Arc;
/// use micro_runtime::{Context, Error, Handler};
/// # use micro_runtime::codegen::{Bytes, BytesMut, Codec, Value};
/// # #[derive(Default)] struct Ping;
/// # impl micro_runtime::Message for Ping {
/// #     fn encode(&self, _: Codec, _: &mut BytesMut) -> micro_runtime::Result<()> { Ok(()) }
/// #     fn decode(_: Codec, _: Bytes) -> micro_runtime::Result<Self> { Ok(Ping) }
/// #     fn describe() -> Value { Value::default() }
/// # }
/// struct Health;
/// let health = Arc::new(Health);
/// let handler = Handler::new("health", "Health").unary(
///     "Check",
///     &health,
///     |_h: Arc<Health>, _ctx: Context, req: Ping| async move { Ok::<_, Error>(req) },
/// );
/// assert_eq!(handler.endpoints()[0].name, "Health.Check");
/// ```
pub struct Handler {
    package: &'static str,
    service: &'static str,
    methods: Vec<Method>,
}

pub(super) struct Method {
    pub(super) name: &'static str,
    pub(super) route: Arc<dyn Route>,
    pub(super) endpoint: Endpoint,
}

impl Handler {
    /// The methods of service `service` in proto package `package` (empty for none).
    pub fn new(package: &'static str, service: &'static str) -> Handler {
        Handler {
            package,
            service,
            methods: Vec::new(),
        }
    }

    /// Adds a unary method: `f(handler, ctx, request)` answers each call.
    pub fn unary<H, Req, Rsp, F, Fut>(
        mut self,
        method: &'static str,
        handler: &Arc<H>,
        f: F,
    ) -> Handler
    where
        H: Send + Sync + 'static,
        Req: Message,
        Rsp: Message,
        F: Fn(Arc<H>, Context, Req) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Rsp>> + Send + 'static,
    {
        let mut metadata = Metadata::new();
        metadata.insert("stream".into(), "false".into());
        self.methods.push(Method {
            name: method,
            route: Arc::new(Unary {
                handler: handler.clone(),
                f,
                _types: PhantomData,
            }),
            endpoint: Endpoint {
                name: format!("{}.{method}", self.service),
                request: Some(Req::describe()),
                response: Some(Rsp::describe()),
                metadata,
            },
        });
        self
    }

    /// The registry endpoints (`Greeter.Hello`, ...).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.methods.iter().map(|m| m.endpoint.clone()).collect()
    }

    pub(super) fn endpoint_names(&self) -> impl Iterator<Item = &String> {
        self.methods.iter().map(|m| &m.endpoint.name)
    }

    pub(super) fn package(&self) -> &'static str {
        self.package
    }

    pub(super) fn service(&self) -> &'static str {
        self.service
    }

    pub(super) fn methods(&self) -> &[Method] {
        &self.methods
    }
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("package", &self.package)
            .field("service", &self.service)
            .field(
                "methods",
                &self.methods.iter().map(|m| m.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A unary method: one request message in, one response message out.
struct Unary<H, F, Req, Rsp> {
    handler: Arc<H>,
    f: F,
    _types: PhantomData<fn(Req) -> Rsp>,
}

impl<H, F, Fut, Req, Rsp> Route for Unary<H, F, Req, Rsp>
where
    H: Send + Sync + 'static,
    Req: Message,
    Rsp: Message,
    F: Fn(Arc<H>, Context, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Rsp>> + Send + 'static,
{
    fn call(&self, call: Call) -> RouteFuture {
        let handler = self.handler.clone();
        // The generated closures capture nothing: this clone is free.
        let f = self.f.clone();
        Box::pin(call.run(move |ctx, codec, body, max_send| async move {
            let req = Req::decode(codec, body)?;
            let rsp = f(handler, ctx, req).await?;
            crate::transport::frame::encode(&rsp, codec, max_send)
        }))
    }
}
