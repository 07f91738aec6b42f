//! Handlers: the methods of one service, as generated code registers them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::{Bytes, BytesMut};

use super::call::{Body, Call, Incoming, Reply, Route, RouteFuture};
use crate::codec::{Codec, Message};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::registry::Endpoint;
use crate::stream::{BoxStream, Streaming};
use crate::transport::compression::Compression;
use crate::transport::frame;
use crate::transport::http2::{BATCH, take_batch};

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
    subscribers: Vec<super::Subscriber>,
}

pub(super) struct Method {
    pub(super) name: &'static str,
    /// The call, served as it is (no handler layers).
    pub(super) route: Arc<dyn Route>,
    /// The method's own work, for handler layers to run around.
    pub(super) body: Body,
    /// Whether requests or responses (or both) are a stream.
    pub(super) stream: bool,
    pub(super) endpoint: Endpoint,
}

impl Handler {
    /// The methods of service `service` in proto package `package` (empty for none).
    pub fn new(package: &'static str, service: &'static str) -> Handler {
        Handler {
            package,
            service,
            methods: Vec::new(),
            subscribers: Vec::new(),
        }
    }

    /// Adds a subscriber, subscribed when the server that handles this starts (what
    /// `#[micro(subscribe = "topic")]` methods of a `#[handler]` block become).
    pub fn subscriber(mut self, subscriber: super::Subscriber) -> Handler {
        self.subscribers.push(subscriber);
        self
    }

    /// The subscribers added with [`Handler::subscriber`].
    pub fn subscribers(&self) -> &[super::Subscriber] {
        &self.subscribers
    }

    pub(super) fn take_subscribers(&mut self) -> Vec<super::Subscriber> {
        std::mem::take(&mut self.subscribers)
    }

    /// Adds a unary method: `f(handler, ctx, request)` answers each call.
    pub fn unary<H, Req, Rsp, F, Fut>(self, method: &'static str, handler: &Arc<H>, f: F) -> Handler
    where
        H: Send + Sync + 'static,
        Req: Message,
        Rsp: Message,
        F: Fn(Arc<H>, Context, Req) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Rsp>> + Send + 'static,
    {
        let handler = handler.clone();
        let body = move |mut req: Incoming| {
            // The generated closures capture nothing: these clones are an atomic increment
            // and a no-op.
            let (handler, f) = (handler.clone(), f.clone());
            async move {
                answerable::<Rsp>(req.codec)?;
                let message = req.message().await?;
                let rsp = f(handler, req.ctx, Req::decode(req.codec, message)?).await?;
                let response = req.encodings.response;
                frame::encode_compressed(&rsp, req.codec, req.limits.max_send, response)
                    .map(Reply::Message)
            }
        };
        self.add::<Req, Rsp, _, _>(method, false, body)
    }

    /// Adds a server-streaming method: `f(handler, ctx, request)` returns the stream of
    /// responses.
    pub fn server_streaming<H, Req, Rsp, F, Fut>(
        self,
        method: &'static str,
        handler: &Arc<H>,
        f: F,
    ) -> Handler
    where
        H: Send + Sync + 'static,
        Req: Message,
        Rsp: Message,
        F: Fn(Arc<H>, Context, Req) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<BoxStream<Rsp>>> + Send + 'static,
    {
        let handler = handler.clone();
        let body = move |mut req: Incoming| {
            let (handler, f) = (handler.clone(), f.clone());
            async move {
                answerable::<Rsp>(req.codec)?;
                let message = req.message().await?;
                let (codec, max) = (req.codec, req.limits.max_send);
                let response = req.encodings.response;
                let responses = f(handler, req.ctx, Req::decode(codec, message)?).await?;
                Ok(Reply::Stream(frames(responses, codec, max, response)))
            }
        };
        self.add::<Req, Rsp, _, _>(method, true, body)
    }

    /// Adds a client-streaming method: `f(handler, ctx, requests)` reads the stream of
    /// requests and returns the one response.
    pub fn client_streaming<H, Req, Rsp, F, Fut>(
        self,
        method: &'static str,
        handler: &Arc<H>,
        f: F,
    ) -> Handler
    where
        H: Send + Sync + 'static,
        Req: Message,
        Rsp: Message,
        F: Fn(Arc<H>, Context, Streaming<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Rsp>> + Send + 'static,
    {
        let handler = handler.clone();
        let body = move |req: Incoming| {
            let (handler, f) = (handler.clone(), f.clone());
            async move {
                let (codec, max) = (req.codec, req.limits.max_send);
                let response = req.encodings.response;
                answerable::<Rsp>(codec)?;
                let (ctx, requests) = req.into_stream();
                let rsp = f(handler, ctx, requests).await?;
                frame::encode_compressed(&rsp, codec, max, response).map(Reply::Message)
            }
        };
        self.add::<Req, Rsp, _, _>(method, true, body)
    }

    /// Adds a bidirectional streaming method: `f(handler, ctx, requests)` returns the stream
    /// of responses, and may go on reading requests while it is sent.
    pub fn bidi_streaming<H, Req, Rsp, F, Fut>(
        self,
        method: &'static str,
        handler: &Arc<H>,
        f: F,
    ) -> Handler
    where
        H: Send + Sync + 'static,
        Req: Message,
        Rsp: Message,
        F: Fn(Arc<H>, Context, Streaming<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<BoxStream<Rsp>>> + Send + 'static,
    {
        let handler = handler.clone();
        let body = move |req: Incoming| {
            let (handler, f) = (handler.clone(), f.clone());
            async move {
                let (codec, max) = (req.codec, req.limits.max_send);
                let response = req.encodings.response;
                answerable::<Rsp>(codec)?;
                let (ctx, requests) = req.into_stream();
                let responses = f(handler, ctx, requests).await?;
                Ok(Reply::Stream(frames(responses, codec, max, response)))
            }
        };
        self.add::<Req, Rsp, _, _>(method, true, body)
    }

    /// Adds `method`, whose work is `body`: served as it is, and boxed for handler layers.
    fn add<Req, Rsp, B, Fut>(mut self, method: &'static str, stream: bool, body: B) -> Handler
    where
        Req: Message,
        Rsp: Message,
        B: Fn(Incoming) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply>> + Send + 'static,
    {
        let served = body.clone();
        let route = move |call: Call| -> RouteFuture { Box::pin(call.serve(served.clone())) };
        let body: Body = Arc::new(move |incoming: Incoming| {
            Box::pin(body(incoming)) as Pin<Box<dyn Future<Output = Result<Reply>> + Send>>
        });
        let mut metadata = BTreeMap::new();
        metadata.insert("stream".into(), stream.to_string());
        self.methods.push(Method {
            name: method,
            route: Arc::new(route),
            body,
            stream,
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

/// Fails a call made in a codec its response type has no encoding in, before the method
/// runs: its effects would be done, and the caller told only that it failed.
#[inline]
fn answerable<Rsp: Message>(codec: Codec) -> Result<()> {
    match Rsp::preferred_codec() {
        Some(only) if only != codec => Err(crate::codec::generated::unsupported_codec(
            std::any::type_name::<Rsp>(),
            codec,
        )),
        _ => Ok(()),
    }
}

/// A response stream as batches of encoded frames: the messages ready at once go into one
/// buffer (up to [`BATCH`] bytes), sent as one HTTP/2 DATA frame, each compressed as
/// `compression` says. One that can't be encoded ends the stream with its error, after the
/// batch before it.
fn frames<Rsp: Message>(
    responses: BoxStream<Rsp>,
    codec: Codec,
    max: usize,
    compression: Compression,
) -> BoxStream<Bytes> {
    Box::pin(Batches {
        responses,
        codec,
        max,
        compression,
        buf: BytesMut::new(),
        end: None,
    })
}

struct Batches<Rsp> {
    responses: BoxStream<Rsp>,
    codec: Codec,
    max: usize,
    compression: Compression,
    buf: BytesMut,
    /// How the stream ended, held back while a batch goes out first.
    end: Option<Option<Error>>,
}

impl<Rsp: Message> futures_util::Stream for Batches<Rsp> {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = self.get_mut();
        if let Some(end) = this.end.take() {
            this.end = Some(None);
            return Poll::Ready(end.map(Err));
        }
        while this.buf.len() < BATCH {
            match this.responses.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(rsp))) => {
                    let (codec, max, compression) = (this.codec, this.max, this.compression);
                    if let Err(e) =
                        frame::encode_into_compressed(&rsp, codec, max, compression, &mut this.buf)
                    {
                        this.end = Some(Some(e));
                        break;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.end = Some(Some(e));
                    break;
                }
                Poll::Ready(None) => {
                    this.end = Some(None);
                    break;
                }
                Poll::Pending if this.buf.is_empty() => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        if this.buf.is_empty() {
            // Ended with nothing left to send.
            let end = this.end.take().flatten();
            this.end = Some(None);
            return Poll::Ready(end.map(Err));
        }
        // A full batch goes out as whole DATA frames, its last bytes start the next one; a
        // batch cut short (nothing more ready, or the end) goes out whole.
        let full = this.end.is_none() && this.buf.len() >= BATCH;
        Poll::Ready(Some(Ok(take_batch(&mut this.buf, full))))
    }
}
