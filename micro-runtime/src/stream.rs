//! Streams of messages: what streaming rpcs send and receive.
//!
//! - A handler reads a request stream as a [`Streaming`] and answers a response stream with a
//!   [`BoxStream`]: any `Stream` of `Result<message>`, boxed (`Box::pin(stream)`), or the
//!   receiving half of a [`channel`].
//! - A client reads a response stream as a [`Streaming`] too; for client and bidirectional
//!   streams it holds a [`CallStream`], which also sends (`send`, `close_send`).
//!
//! Flow control is HTTP/2's, end to end: a stream is read only as fast as its reader asks for
//! messages, and a sender waits for window before writing, so a slow reader slows its writer
//! and neither side buffers more than a window. Dropping a stream on one side cancels the
//! call on the other (HTTP/2 `RST_STREAM`); a handler error ends the response stream with its
//! status, after the messages sent before it.
//!
//! Messages are compressed as the call's encoding says: a client's requests as its call
//! options ask, a server's responses as the request's encoding when the client accepts it;
//! each side reads compressed messages as the other's `grpc-encoding` names.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;

use crate::codec::{Codec, Message};
use crate::error::{Code, Error, Result};
use crate::transport::compression::{self, Compression};
use crate::transport::frame::{self, Decoder};
use crate::transport::http2::{
    BATCH, RELEASE, Unflushed, deadline_passed, send_frame, stream_error, take_batch,
};
use crate::transport::status;

/// A stream of messages a handler answers with: `Box::pin(stream)` of any
/// `Stream<Item = Result<T>> + Send + 'static`. An `Err` item ends the call with that error.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send + 'static>>;

/// A stream whose sender waits while the call's reader is behind: the way to produce a
/// response stream from a loop or another task.
///
/// `send` waits when `capacity` messages are queued and the peer is not reading (HTTP/2 flow
/// control holds the rest), and fails once the call is over (the client went away).
///
/// ```
/// use micro_runtime::stream::{channel, BoxStream};
/// use micro_runtime::Result;
///
/// fn countdown(from: u32) -> BoxStream<u32> {
///     let (tx, rx) = channel(16);
///     tokio::spawn(async move {
///         for n in (0..=from).rev() {
///             if tx.send(n).await.is_err() {
///                 return; // the caller hung up
///             }
///         }
///     });
///     rx
/// }
/// ```
pub fn channel<T: Send + 'static>(capacity: usize) -> (Sender<T>, BoxStream<T>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(capacity.max(1));
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (Sender { tx }, Box::pin(stream))
}

/// The sending half of a [`channel`].
#[derive(Debug)]
pub struct Sender<T> {
    tx: tokio::sync::mpsc::Sender<Result<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender {
            tx: self.tx.clone(),
        }
    }
}

impl<T: Send + 'static> Sender<T> {
    /// Sends a message, waiting while the reader is behind. `CANCELLED` once the call ended.
    pub async fn send(&self, message: T) -> Result<()> {
        self.tx.send(Ok(message)).await.map_err(|_| call_ended())
    }

    /// Ends the stream with `error`, after the messages already sent.
    pub async fn fail(self, error: Error) -> Result<()> {
        self.tx.send(Err(error)).await.map_err(|_| call_ended())
    }

    /// Whether the call ended: nobody reads what is sent any more.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Waits until the call ends (the client cancelled, or the response was finished).
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

fn call_ended() -> Error {
    Error::new(Code::Cancelled, "the call ended: nobody reads the stream")
}

/// The messages of an incoming stream: the requests a handler reads, or the responses a
/// client reads. Read them with [`Streaming::recv`] or as a `Stream`.
///
/// On the client, the end of the stream carries the call's status: an error status comes as
/// the last item, after the messages sent before it.
pub struct Streaming<T> {
    state: State,
    decoder: Decoder,
    codec: Codec,
    /// The server sent the status in its headers (trailers-only) or trailers: the client side.
    client: bool,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes read off the stream and not yet given back to the peer's window: see
    /// [`RELEASE`].
    unreleased: usize,
    /// On the server: the connection's request budget, held for the bytes buffered here.
    charge: Option<crate::transport::body::Charge>,
    _message: PhantomData<fn() -> T>,
}

enum State {
    /// The client waits for the response headers.
    Head(h2::client::ResponseFuture),
    Body(h2::RecvStream),
    Done,
}

impl<T> Streaming<T> {
    /// The request stream of a call, on the server, its compressed messages in
    /// `compression`; its buffered bytes count against the connection's request budget
    /// (`charge`).
    pub(crate) fn request(
        recv: h2::RecvStream,
        codec: Codec,
        max: usize,
        compression: Compression,
        charge: Option<crate::transport::body::Charge>,
    ) -> Streaming<T> {
        Streaming {
            state: State::Body(recv),
            decoder: Decoder::with_compression(max, compression),
            codec,
            client: false,
            deadline: None,
            unreleased: 0,
            charge,
            _message: PhantomData,
        }
    }

    /// The response stream of a call, on the client.
    pub(crate) fn response(
        response: h2::client::ResponseFuture,
        codec: Codec,
        max: usize,
        deadline: Option<tokio::time::Instant>,
    ) -> Streaming<T> {
        Streaming {
            state: State::Head(response),
            decoder: Decoder::new(max),
            codec,
            client: true,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            unreleased: 0,
            charge: None,
            _message: PhantomData,
        }
    }

    /// Ends the stream with `err` as its last item.
    fn fail<O: Item<T>>(&mut self, err: Error) -> Poll<O> {
        self.state = State::Done;
        Poll::Ready(O::message(Err(err)))
    }

    /// The next message, decoded in place from the receive buffer, in the shape the caller
    /// returns it in (`Option<Result<T>>` for `Stream`, `Result<Option<T>>` for `recv`).
    fn poll_message<O: Item<T>>(&mut self, cx: &mut Context<'_>) -> Poll<O>
    where
        T: Message,
    {
        if let Some(deadline) = &mut self.deadline
            && deadline.as_mut().poll(cx).is_ready()
            && !matches!(self.state, State::Done)
        {
            self.deadline = None;
            return self.fail(Error::new(
                Code::DeadlineExceeded,
                "stream deadline exceeded",
            ));
        }
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(O::end()),
                State::Head(response) => {
                    let rsp = match ready!(Pin::new(response).poll(cx)) {
                        Ok(rsp) => rsp,
                        Err(e) => return self.fail(stream_error(&e)),
                    };
                    let (parts, body) = rsp.into_parts();
                    match status::check_stream_head(&parts, self.codec) {
                        Ok(Some(codec)) => {
                            match compression::response_encoding(&parts.headers) {
                                Ok(c) => self.decoder.set_compression(c),
                                Err(e) => return self.fail(e),
                            }
                            self.codec = codec;
                            self.state = State::Body(body);
                        }
                        // Trailers-only with an OK status: no messages at all.
                        Ok(None) => self.state = State::Done,
                        Err(e) => return self.fail(e),
                    }
                }
                State::Body(recv) => {
                    match self.decoder.next_frame() {
                        Ok(Some(at)) => {
                            // Decoded straight into the result, which is not matched on:
                            // each move of a message out of nested enums (`next_with`'s
                            // `Result<Option<Result<T>>>`) is a copy, and on this path the
                            // copies cost more than the rest of the framing.
                            let mut decoded = if at.is_compressed() {
                                match self.decoder.decompress(at) {
                                    Ok(message) => T::decode(self.codec, message),
                                    // Corrupt or too large: how the stream ends, as it is.
                                    Err(e) => return self.fail(e.into()),
                                }
                            } else {
                                T::decode_slice(self.codec, self.decoder.message(at))
                            };
                            self.decoder.consume(at);
                            if let Some(charge) = &mut self.charge {
                                charge.give(at.size());
                            }
                            if let Err(e) = &decoded {
                                self.state = State::Done;
                                // A response the client can't decode is the server's fault
                                // (INTERNAL, as for unary calls); a request the server
                                // can't decode is the client's (INVALID_ARGUMENT).
                                if self.client {
                                    decoded = Err(status::bad_response(e));
                                }
                            }
                            return Poll::Ready(O::message(decoded));
                        }
                        Ok(None) => {}
                        Err(e) => return self.fail(e.into()),
                    }
                    let polled = recv.poll_data(cx);
                    let more = matches!(polled, Poll::Ready(Some(Ok(_))));
                    if self.unreleased > 0 && (!more || self.unreleased >= RELEASE) {
                        // Give the window back once a good part of it was read, and before
                        // waiting or at the end: a reader that waits holds none of it.
                        let _ = recv.flow_control().release_capacity(self.unreleased);
                        self.unreleased = 0;
                    }
                    match ready!(polled) {
                        Some(Ok(chunk)) => {
                            if let Some(charge) = &mut self.charge
                                && !charge.take(chunk.len())
                            {
                                let limit = charge.limit();

                                return self.fail(Error::new(
                                    Code::ResourceExhausted,
                                    crate::transport::body::BodyError::Budget(limit).to_string(),
                                ));
                            }
                            self.unreleased += chunk.len();
                            self.decoder.push_bytes(chunk);
                        }
                        Some(Err(e)) => return self.fail(stream_error(&e)),
                        None if self.decoder.has_partial() => {
                            return self.fail(frame::FrameError::Incomplete.into());
                        }
                        None if !self.client => self.state = State::Done,
                        None => {
                            let trailers = match ready!(recv.poll_trailers(cx)) {
                                Ok(t) => t,
                                Err(e) => return self.fail(stream_error(&e)),
                            };
                            self.state = State::Done;
                            if let Err(e) = status::check_trailers(trailers.as_ref()) {
                                return Poll::Ready(O::message(Err(e)));
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<T: Message> Streaming<T> {
    /// The next message; `None` at the end of the stream.
    ///
    /// (`async fn recv(&mut self) -> Result<Option<T>>`, as a named future: one poll of the
    /// stream per call, with no async state machine around it on the per-message path.)
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { stream: self }
    }
}

/// The future of [`Streaming::recv`]: the next message, `None` at the end of the stream.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Recv<'a, T> {
    stream: &'a mut Streaming<T>,
}

impl<T: Message> Future for Recv<'_, T> {
    type Output = Result<Option<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Option<T>>> {
        self.get_mut().stream.poll_message(cx)
    }
}

impl<T: Message> Stream for Streaming<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.get_mut().poll_message(cx)
    }
}

/// What one poll of a [`Streaming`] yields, in either of the shapes its callers return: a
/// message (or the error that ends the stream), or the end. Each caller gets its own shape
/// straight from the decoder, rather than one converted into the other: the conversion is a
/// copy of the message, on the path every message takes.
trait Item<T> {
    fn message(decoded: Result<T>) -> Self;
    fn end() -> Self;
}

impl<T> Item<T> for Option<Result<T>> {
    #[inline(always)]
    fn message(decoded: Result<T>) -> Self {
        Some(decoded)
    }

    #[inline(always)]
    fn end() -> Self {
        None
    }
}

impl<T> Item<T> for Result<Option<T>> {
    #[inline(always)]
    fn message(decoded: Result<T>) -> Self {
        decoded.map(Some)
    }

    #[inline(always)]
    fn end() -> Self {
        Ok(None)
    }
}

impl<T> std::fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("codec", &self.codec)
            .field("done", &matches!(self.state, State::Done))
            .finish()
    }
}

/// The sending half of a client's stream: requests go out as the server's window allows.
pub struct RequestSender<T> {
    send: Option<h2::SendStream<Bytes>>,
    codec: Codec,
    max: usize,
    /// How requests are compressed.
    compression: Compression,
    /// Bytes handed to the connection since this task last yielded to it.
    unflushed: Unflushed,
    /// The call's deadline: no request goes out after it, and it bounds each wait for the
    /// server's window.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The deadline passed: the stream was reset, every send fails with `DEADLINE_EXCEEDED`.
    expired: bool,
    _message: PhantomData<fn(T)>,
}

impl<T: Message> RequestSender<T> {
    /// Sends a request, waiting while the server's window is full. Once the call's deadline
    /// has passed (also during that wait) the stream is reset and this fails with
    /// `DEADLINE_EXCEEDED`. Fails once the call is over (the server answered, or the stream
    /// broke): the response stream then tells how it ended.
    pub async fn send(&mut self, message: T) -> Result<()> {
        let frame = frame::encode_compressed(&message, self.codec, self.max, self.compression)?;
        let len = frame.len();
        self.write(frame).await?;
        self.unflushed.sent(len).await;
        Ok(())
    }

    /// Writes `frame` as the window and the deadline allow.
    async fn write(&mut self, frame: Bytes) -> Result<()> {
        if self.expired {
            return Err(deadline_passed());
        }
        let Some(send) = &mut self.send else {
            return Err(Error::new(
                Code::FailedPrecondition,
                "send after close_send",
            ));
        };
        let sent = send_frame(send, frame, false, self.deadline.as_mut()).await;
        if sent
            .as_ref()
            .is_err_and(|e| e.code() == Code::DeadlineExceeded)
        {
            self.expired = true;
            self.send = None;
        }
        sent
    }

    /// Sends every request of `requests`, waiting on the server's window as [`send`] does;
    /// the requests ready at once go out together in one HTTP/2 DATA frame, which is much
    /// faster than one `send` each for small messages. Does not close the sending side.
    ///
    /// [`send`]: RequestSender::send
    pub async fn send_all<S>(&mut self, mut requests: S) -> Result<()>
    where
        S: Stream<Item = T> + Unpin,
    {
        use futures_util::{FutureExt, StreamExt};
        let mut buf = bytes::BytesMut::new();
        let mut done = false;
        while !done {
            // Wait for a request only when no bytes of the last batch are held back.
            if buf.is_empty() {
                let Some(first) = requests.next().await else {
                    break;
                };
                frame::encode_into_compressed(
                    &first,
                    self.codec,
                    self.max,
                    self.compression,
                    &mut buf,
                )?;
            }
            while buf.len() < BATCH {
                match requests.next().now_or_never() {
                    Some(Some(message)) => {
                        frame::encode_into_compressed(
                            &message,
                            self.codec,
                            self.max,
                            self.compression,
                            &mut buf,
                        )?;
                    }
                    Some(None) => {
                        done = true;
                        break;
                    }
                    None => break,
                }
            }
            let full = !done && buf.len() >= BATCH;
            let batch = take_batch(&mut buf, full);
            let len = batch.len();
            self.write(batch).await?;
            if done {
                break;
            }
            self.unflushed.sent(len).await;
        }
        Ok(())
    }

    /// Tells the server no more requests come (HTTP/2 `END_STREAM`). Idempotent.
    pub fn close_send(&mut self) {
        if let Some(mut send) = self.send.take() {
            let _ = send.send_data(Bytes::new(), true);
        }
    }
}

impl<T> std::fmt::Debug for RequestSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSender")
            .field("codec", &self.codec)
            .field("compression", &self.compression)
            .field("closed", &self.send.is_none())
            .finish()
    }
}

/// A client's side of a client-streaming or bidirectional call: `send` requests,
/// `close_send` when done, `recv` responses (or read it as a `Stream` of responses).
/// Dropping it cancels the call.
///
/// [`CallStream::split`] gives the halves, to send and receive from different tasks.
pub struct CallStream<Req, Rsp> {
    sender: RequestSender<Req>,
    responses: Streaming<Rsp>,
}

impl<Req: Message, Rsp: Message> CallStream<Req, Rsp> {
    /// A client's stream, its requests compressed with `compression`.
    pub(crate) fn new(
        send: h2::SendStream<Bytes>,
        responses: Streaming<Rsp>,
        codec: Codec,
        max: usize,
        compression: Compression,
        deadline: Option<tokio::time::Instant>,
    ) -> CallStream<Req, Rsp> {
        CallStream {
            sender: RequestSender {
                send: Some(send),
                codec,
                max,
                compression,
                unflushed: Unflushed::default(),
                deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
                expired: false,
                _message: PhantomData,
            },
            responses,
        }
    }

    /// Sends a request (see [`RequestSender::send`]).
    pub async fn send(&mut self, message: Req) -> Result<()> {
        self.sender.send(message).await
    }

    /// Sends every request of `requests` (see [`RequestSender::send_all`]).
    pub async fn send_all<S>(&mut self, requests: S) -> Result<()>
    where
        S: Stream<Item = Req> + Unpin,
    {
        self.sender.send_all(requests).await
    }

    /// No more requests (see [`RequestSender::close_send`]).
    pub fn close_send(&mut self) {
        self.sender.close_send();
    }

    /// The next response; `None` at the end, an error status as an `Err`.
    pub fn recv(&mut self) -> Recv<'_, Rsp> {
        self.responses.recv()
    }

    /// For client-streaming calls: closes the sending side and returns the one response.
    pub async fn finish(mut self) -> Result<Rsp> {
        self.close_send();
        match self.responses.recv().await? {
            Some(rsp) => Ok(rsp),
            None => Err(Error::new(
                Code::Internal,
                "the stream ended without a response",
            )),
        }
    }

    /// The sending and receiving halves.
    pub fn split(self) -> (RequestSender<Req>, Streaming<Rsp>) {
        (self.sender, self.responses)
    }
}

impl<Req: Message, Rsp: Message> Stream for CallStream<Req, Rsp> {
    type Item = Result<Rsp>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Rsp>>> {
        Pin::new(&mut self.get_mut().responses).poll_next(cx)
    }
}

impl<Req, Rsp> std::fmt::Debug for CallStream<Req, Rsp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallStream")
            .field("sender", &self.sender)
            .field("responses", &self.responses)
            .finish()
    }
}
