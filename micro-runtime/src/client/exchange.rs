//! One attempt: a node picked, the request sent on a pooled HTTP/2 connection, the response
//! checked. How it failed ([`Failure`]) decides whether the call tries again.

use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Uri};

use super::CallOptions;
use super::chain::BoxFuture;
use super::layer::{CallLayers, OutgoingCall};
use super::pick::Picker;
use super::pick::Target;
use super::pool::{Conn, Pool};
use super::retry::{Attempt, Failure, Tried};
use crate::codec::{Codec, Message};
use crate::context::{CallKind, Metadata};
use crate::error::{Code, Error, Result};
use crate::selector::{CircuitBreaker, NodeStats, now_ms};
use crate::transport::body::RecvBody;
use crate::transport::compression::{
    Compression, GRPC_ACCEPT_ENCODING, GRPC_ENCODING, accept_encoding,
};
use crate::transport::http2::h2_code;
use crate::transport::status::{self, bad_response, check_trailers};
use crate::transport::{format_timeout, frame};

/// What every attempt of a call shares: where nodes come from, the connections, the layers
/// and breaker of the client, and the call's target and options.
pub(super) struct Calling<'a> {
    pub(super) picker: &'a Picker,
    pub(super) pool: &'a Pool,
    pub(super) layers: &'a CallLayers,
    pub(super) breaker: Option<&'a CircuitBreaker>,
    pub(super) service: &'a str,
    pub(super) target: &'a Target<'a>,
    pub(super) options: &'a CallOptions,
    /// How requests are compressed (responses may be too, then).
    pub(super) compression: Compression,
}

impl Calling<'_> {
    /// Picks a node for an attempt and makes it with `exchange`, through the client's call
    /// layers, recording its outcome in the node's statistics (`tried.node` is set to them).
    async fn attempt<E: Exchange>(
        &self,
        tried: &mut Tried,
        kind: CallKind,
        exchange: &E,
    ) -> Result<E::Output, Failure> {
        let nodes = self.picker.nodes(self.service, self.options).await?;
        let (address, stats) =
            self.picker
                .pick(nodes.as_deref(), self.service, self.options, &tried.failed)?;
        tried.node = stats.cloned();
        let stats = stats.map(|s| &**s);
        let _in_flight = stats.map(NodeStats::start);
        let started = std::time::Instant::now();
        let (result, seen) = if self.layers.is_empty() {
            let result = exchange.exchange(address, &self.options.metadata).await;
            let seen = Seen::of(&result);
            (result, Some(seen))
        } else {
            let call = OutgoingCall {
                service: self.service.to_owned(),
                endpoint: self.target.endpoint.to_owned(),
                kind,
                attempt: tried.attempt,
                address: address.to_owned(),
                metadata: self.options.metadata.clone(),
            };
            through_layers(self.layers, call, exchange).await
        };
        // What the node did, not what a layer made of it: an attempt a layer refused never
        // reached the node. A stream that opened has had no answer yet.
        let failed = match seen {
            None => false,
            Some(Seen::Answered(Code::Ok)) => {
                if let (Some(stats), CallKind::Unary) = (stats, kind) {
                    stats.record_success(started.elapsed());
                }
                false
            }
            Some(Seen::Answered(code)) => {
                if let Some(stats) = stats {
                    match self.breaker {
                        Some(breaker) => {
                            stats.record_answer(breaker, code, started.elapsed(), now_ms())
                        }
                        None => stats.record_success(started.elapsed()),
                    }
                }
                code == Code::Unavailable
            }
            Some(Seen::Lost) => {
                if let Some(stats) = stats {
                    match self.breaker {
                        Some(breaker) => stats.record_failure_under(breaker, now_ms()),
                        None => stats.record_failure(now_ms()),
                    }
                }
                true
            }
        };
        if failed {
            tried.failed.push(address.to_owned());
        }
        result
    }
}

/// What became of an attempt on the wire.
#[derive(Clone, Copy)]
enum Seen {
    /// The node answered (`OK` for a good answer, or an opened stream).
    Answered(Code),
    /// The request was not taken, or the connection broke.
    Lost,
}

impl Seen {
    fn of<T>(result: &Result<T, Failure>) -> Seen {
        match result {
            Ok(_) => Seen::Answered(Code::Ok),
            Err(Failure::Answered(e)) => Seen::Answered(e.code()),
            Err(Failure::Unsent(_) | Failure::Broken(_)) => Seen::Lost,
        }
    }
}

/// One attempt on the wire, to a node picked.
trait Exchange: Sync {
    type Output: Send;

    /// Makes the attempt to `address`, its request carrying `metadata`.
    fn exchange(
        &self,
        address: &str,
        metadata: &Metadata,
    ) -> impl Future<Output = Result<Self::Output, Failure>> + Send;
}

/// Runs an attempt through call layers: `exchange` is what the innermost calls on to. The
/// attempt's own outcome stands; a layer's error ends an attempt that succeeded (or that
/// it never let go out) as an answer would. Also what the node did, when the attempt
/// reached the wire.
async fn through_layers<E: Exchange>(
    layers: &CallLayers,
    call: OutgoingCall,
    exchange: &E,
) -> (Result<E::Output, Failure>, Option<Seen>) {
    let slot = std::sync::Mutex::new(None);
    let send = |call: OutgoingCall| -> BoxFuture<'_, Result<()>> {
        let slot = &slot;
        Box::pin(async move {
            let outcome = exchange.exchange(&call.address, &call.metadata).await;
            let result = match &outcome {
                Ok(_) => Ok(()),
                Err(f) => Err(f.error().clone()),
            };
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(outcome);
            }
            result
        })
    };
    let layered = layers.run(call, &send).await;
    let outcome = slot.into_inner().ok().flatten();
    let seen = outcome.as_ref().map(Seen::of);
    let result = match (outcome, layered) {
        (Some(Err(failure)), _) => Err(failure),
        (Some(Ok(value)), Ok(())) => Ok(value),
        (_, Err(refused)) => Err(Failure::Answered(refused)),
        (None, Ok(())) => Err(Failure::Answered(Error::new(
            Code::Internal,
            "a call layer answered without calling on",
        ))),
    };
    (result, seen)
}

/// A unary call: what each of its attempts sends.
pub(super) struct Unary<'a, Rsp> {
    pub(super) calling: Calling<'a>,
    pub(super) max_message_size: usize,
    pub(super) body: Bytes,
    pub(super) codec: Codec,
    pub(super) deadline: tokio::time::Instant,
    pub(super) response: PhantomData<fn() -> Rsp>,
}

impl<Rsp: Message> Attempt for Unary<'_, Rsp> {
    type Output = Rsp;

    async fn attempt(&self, tried: &mut Tried) -> Result<Rsp, Failure> {
        self.calling.attempt(tried, CallKind::Unary, self).await
    }
}

/// An opened HTTP/2 stream: the response to come, and the request body's sender.
pub(super) type Opened = (h2::client::ResponseFuture, h2::SendStream<Bytes>);

/// The opening of a streaming call's HTTP/2 stream.
pub(super) struct Open<'a> {
    pub(super) calling: Calling<'a>,
    pub(super) codec: Codec,
    pub(super) deadline: Option<tokio::time::Instant>,
}

impl Attempt for Open<'_> {
    type Output = Opened;

    /// Opens a stream to a node; a node that could not take it is avoided by the next
    /// attempts.
    async fn attempt(&self, tried: &mut Tried) -> Result<Opened, Failure> {
        self.calling.attempt(tried, CallKind::Streaming, self).await
    }
}

impl Exchange for Open<'_> {
    type Output = Opened;

    async fn exchange(&self, address: &str, metadata: &Metadata) -> Result<Opened, Failure> {
        let timeout = self
            .deadline
            .map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        let head = request_head(
            self.calling.pool,
            address,
            self.calling.target.path.clone(),
            self.codec,
            self.calling.compression,
            metadata,
            timeout,
        )
        .await?;
        open_stream(head, address, false).await
    }
}

impl<Rsp: Message> Exchange for Unary<'_, Rsp> {
    type Output = Rsp;

    /// One request to `address` and its response.
    async fn exchange(&self, address: &str, metadata: &Metadata) -> Result<Rsp, Failure> {
        let remaining = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let head = request_head(
            self.calling.pool,
            address,
            self.calling.target.path.clone(),
            self.codec,
            self.calling.compression,
            metadata,
            Some(remaining),
        )
        .await?;
        let (response, mut send) = open_stream(head, address, false).await?;
        // The whole request in one DATA frame that ends the stream; h2 queues it for the
        // connection task, which writes it with the headers. A server may answer (and close
        // the stream) before it reads the request, an unknown method say: then the send
        // fails, and its answer is what counts.
        let sent = send.send_data(self.body.clone(), true);
        let (parts, body) = match (response.await, sent) {
            (Ok(response), _) => response.into_parts(),
            (Err(e), Ok(())) | (Err(_), Err(e)) => return Err(stream_failure(&e, address)),
        };
        let codec = check_head(&parts, self.codec)?;
        // Compressed messages are read as the response's grpc-encoding says.
        let compression = crate::transport::compression::response_encoding(&parts.headers)
            .map_err(Failure::Answered)?;
        let mut body = RecvBody::new(body);
        let (message, trailers) = frame::read_unary(&mut body, self.max_message_size, compression)
            .await
            .map_err(|e| match e.code() {
                // The connection broke while the answer was on its way.
                Code::Unavailable => Failure::Broken(e),
                _ => Failure::Answered(e),
            })?;
        // The status first: a server may send headers, no message and an error in the
        // trailers (grpc-go does when a failing handler has set header metadata).
        check_trailers(trailers.as_ref()).map_err(Failure::Answered)?;
        let message =
            message.ok_or_else(|| Failure::Answered(frame::FrameError::Missing.into()))?;
        Rsp::decode(codec, message).map_err(|e| Failure::Answered(bad_response(&e)))
    }
}

/// The request of a call, ready to open a stream on a pooled connection to `address`.
pub(super) struct Head {
    conn: Conn,
    request: Request<()>,
}

/// Builds the request headers of a call to `address` and takes a connection for it.
pub(super) async fn request_head(
    pool: &Pool,
    address: &str,
    path: PathAndQuery,
    codec: Codec,
    compression: Compression,
    metadata: &Metadata,
    timeout: Option<Duration>,
) -> Result<Head, Failure> {
    let conn = pool.get(address).await.map_err(Failure::Unsent)?;
    let uri = Uri::builder()
        .scheme(if conn.secure {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        })
        .authority(conn.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| Failure::Answered(Error::new(Code::Internal, format!("bad uri: {e}"))))?;
    let mut request = Request::post(uri)
        .body(())
        .map_err(|e| Failure::Answered(Error::new(Code::Internal, format!("bad request: {e}"))))?;
    let headers = request.headers_mut();
    if !metadata.is_empty() {
        headers.extend(
            metadata
                .headers()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    headers.insert(http::header::CONTENT_TYPE, codec.content_type_header());
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    // A call that compresses says so, and takes compressed responses; one that does not
    // sends neither header (as tonic's clients), and gets plain responses.
    if !compression.is_identity() {
        headers.insert(GRPC_ENCODING, compression.header_value());
        headers.insert(GRPC_ACCEPT_ENCODING, accept_encoding());
    }
    if let Some(timeout) = timeout {
        headers.insert("grpc-timeout", format_timeout(timeout));
    }
    Ok(Head { conn, request })
}

/// Opens the call's HTTP/2 stream: waits for the connection to allow one more stream, then
/// sends the headers. Nothing has reached the server when this fails.
pub(super) async fn open_stream(
    head: Head,
    address: &str,
    end_of_stream: bool,
) -> Result<Opened, Failure> {
    let Head { conn, request } = head;
    let dead = |e: h2::Error| {
        conn.mark_closed();
        Failure::Unsent(Error::new(
            Code::Unavailable,
            format!("call to {address}: {e}"),
        ))
    };
    let mut send = conn.send.clone().ready().await.map_err(dead)?;
    send.send_request(request, end_of_stream).map_err(dead)
}

/// The codec of a response, or the error its headers carry.
pub(super) fn check_head(parts: &http::response::Parts, sent: Codec) -> Result<Codec, Failure> {
    status::check_head(parts, sent).map_err(Failure::Answered)
}

/// Sorts a failed stream: retry when HTTP/2 says the server never processed it; a broken
/// connection is retried as [`Failure::Broken`]; a stream the server reset for another reason
/// is its answer (coded by [`h2_code`]).
fn stream_failure(e: &h2::Error, address: &str) -> Failure {
    let refused = e.reason() == Some(h2::Reason::REFUSED_STREAM)
        || (e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::NO_ERROR));
    let code = h2_code(e);
    let err = Error::new(code, format!("call to {address}: {e}"));
    if refused {
        Failure::Unsent(err)
    } else if code == Code::Unavailable {
        Failure::Broken(err)
    } else {
        Failure::Answered(err)
    }
}
