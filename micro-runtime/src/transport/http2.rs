//! HTTP/2 for gRPC streams, below the stream types: how message frames are batched and
//! sent as the peer's window allows, how read bytes are given back to the window, and what
//! gRPC code an HTTP/2 error is.

use std::pin::Pin;
use std::task::{Poll, ready};

use bytes::Bytes;

use crate::error::{Code, Error, Result};

/// Bytes a reader takes off a stream before it gives them back to the peer's window (HTTP/2
/// `WINDOW_UPDATE`); it gives back what it holds whenever it waits for more, and at the end.
///
/// Giving back each chunk as it is read costs a `WINDOW_UPDATE`, and a wakeup of the
/// connection's task to write it, for nearly every chunk while the sender is ahead of the
/// reader (h2 sends an update once half of the window left is read, and little is left);
/// gRPC-Go gives back a quarter of the window at a time. This is a quarter of our smallest
/// stream window (the server's, 1 MiB): the sender always has the rest to go on with. A
/// stream its owner stops reading keeps at most this much of the connection's window, besides
/// the data that arrived unread.
pub(crate) const RELEASE: usize = 256 * 1024;

/// Size of a full batch of message frames (the messages a stream has ready at once go out
/// together: fewer, fuller HTTP/2 DATA frames for small messages, as HTTP/2 peers prefer).
pub(crate) const BATCH: usize = 32 * 1024;

/// HTTP/2's default (and smallest) largest DATA frame: 16 KiB. A full batch is sent as whole
/// frames of this size, and the bytes beyond the last one start the next batch: a batch of
/// `BATCH` and a few bytes would otherwise go out as two full frames and a tiny one, which
/// costs a frame, a write and a read of its own.
pub(crate) const DATA_FRAME: usize = 16 * 1024;

/// Bytes a stream hands to its connection before it yields, so the connection writes them
/// out while more are made (on a busy thread it would otherwise run only once the send
/// buffer is full). Several batches: each yield costs a wakeup of the peer's reader.
pub(crate) const FLUSH: usize = 4 * BATCH;

/// The bytes a stream has handed to its connection since it last yielded.
#[derive(Debug, Default)]
pub(crate) struct Unflushed(usize);

impl Unflushed {
    /// Counts `len` bytes handed to the connection; after [`FLUSH`] of them, yields so the
    /// connection's task writes them while more are made (on a busy thread it would
    /// otherwise run only once the send buffer is full).
    pub(crate) async fn sent(&mut self, len: usize) {
        self.0 += len;
        if self.0 >= FLUSH {
            self.0 = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// The bytes of `buf` to send now: all of them, or when `full`, whole DATA frames' worth,
/// leaving the rest (message frames may span DATA frames) at the start of the next batch.
pub(crate) fn take_batch(buf: &mut bytes::BytesMut, full: bool) -> Bytes {
    let whole = buf.len() / DATA_FRAME * DATA_FRAME;
    if full && whole > 0 {
        buf.split_to(whole).freeze()
    } else {
        buf.split().freeze()
    }
}

/// Writes one message frame, first waiting until the peer's window has room for more: the
/// queue of written but unsent bytes stays within HTTP/2's send buffer, whatever the
/// producer's pace. Once `deadline` has passed, also while waiting for window (a peer that
/// stopped reading), the stream is reset and this fails with `DEADLINE_EXCEEDED`.
pub(crate) async fn send_frame(
    send: &mut h2::SendStream<Bytes>,
    frame: Bytes,
    end_of_stream: bool,
    mut deadline: Option<&mut Pin<Box<tokio::time::Sleep>>>,
) -> Result<()> {
    send.reserve_capacity(frame.len());
    // `None`: the deadline passed.
    let room = std::future::poll_fn(|cx| {
        if let Some(deadline) = deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        while send.capacity() == 0 {
            match ready!(send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Some(Err(send_error(&e)))),
                None => {
                    let closed = Error::new(Code::Cancelled, "the stream was closed");
                    return Poll::Ready(Some(Err(closed)));
                }
            }
        }
        Poll::Ready(Some(Ok(())))
    })
    .await;
    match room {
        Some(room) => room?,
        None => {
            send.send_reset(h2::Reason::CANCEL);
            return Err(deadline_passed());
        }
    }
    send.send_data(frame, end_of_stream)
        .map_err(|e| send_error(&e))
}

pub(crate) fn deadline_passed() -> Error {
    Error::new(Code::DeadlineExceeded, "stream deadline exceeded")
}

/// The error of a send on a stream that ended: [`stream_error`], except that a peer which
/// ended the stream with `NO_ERROR` has answered (a server may before reading all requests);
/// its response tells how the call ended.
fn send_error(e: &h2::Error) -> Error {
    if e.is_reset() && e.is_remote() && e.reason() == Some(h2::Reason::NO_ERROR) {
        return Error::new(
            Code::Cancelled,
            "the peer ended the stream: the call is over, its response tells how",
        );
    }
    stream_error(e)
}

/// The gRPC code of an HTTP/2 error, as gRPC's HTTP/2 mapping has it: a stream reset with a
/// reason says why (`CANCEL` is `CANCELLED`, `REFUSED_STREAM` is `UNAVAILABLE`,
/// `ENHANCE_YOUR_CALM` is `RESOURCE_EXHAUSTED`, `INADEQUATE_SECURITY` is
/// `PERMISSION_DENIED`, protocol failures `INTERNAL`, codes outside the mapping `UNKNOWN`); a
/// connection that failed or went away is `UNAVAILABLE`.
pub(crate) fn h2_code(e: &h2::Error) -> Code {
    use h2::Reason;
    match e.reason() {
        _ if e.is_io() || e.is_go_away() => Code::Unavailable,
        Some(Reason::CANCEL) => Code::Cancelled,
        Some(Reason::REFUSED_STREAM) | None => Code::Unavailable,
        Some(Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
        Some(Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
        Some(
            Reason::NO_ERROR
            | Reason::PROTOCOL_ERROR
            | Reason::INTERNAL_ERROR
            | Reason::FLOW_CONTROL_ERROR
            | Reason::SETTINGS_TIMEOUT
            | Reason::FRAME_SIZE_ERROR
            | Reason::COMPRESSION_ERROR
            | Reason::CONNECT_ERROR,
        ) => Code::Internal,
        Some(_) => Code::Unknown,
    }
}

/// The error of a broken or reset stream, coded by [`h2_code`].
pub(crate) fn stream_error(e: &h2::Error) -> Error {
    match h2_code(e) {
        Code::Cancelled => Error::new(Code::Cancelled, "the peer cancelled the stream"),
        code => Error::new(code, format!("stream broken: {e}")),
    }
}

/// The error of a body that failed while being read: [`stream_error`] when an HTTP/2 error
/// is behind it, `UNAVAILABLE` otherwise.
pub(crate) fn body_error(e: &(dyn std::error::Error + 'static)) -> Error {
    if let Some(super::body::BodyError::Budget(_)) = e.downcast_ref() {
        return Error::new(Code::ResourceExhausted, e.to_string());
    }
    let mut source = Some(e);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return stream_error(h2);
        }
        source = e.source();
    }
    Error::new(Code::Unavailable, format!("read body: {e}"))
}
