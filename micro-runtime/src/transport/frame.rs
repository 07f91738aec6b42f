//! gRPC message framing: a 1-byte compressed flag, a 4-byte big-endian length, the message.
//!
//! A frame whose flag is 1 holds its message compressed with the call's encoding
//! (`grpc-encoding`, see [`super::compression`]); identity frames are read and
//! written as they always are, with no compression work on their way.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

use super::compression::{self, Compression, DecompressError};
use crate::codec::{Codec, Message};
use crate::error::{Code, Error, Result};

/// Length of the frame prefix.
pub const HEADER_LEN: usize = 5;

/// What can be wrong with a frame, before any message is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The body ended inside a frame.
    Incomplete,
    /// The message is larger than the limit.
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message is marked compressed, and no compression was negotiated.
    Compressed,
    /// The flag byte is neither 0 nor 1.
    BadFlag(u8),
    /// A unary call carried no message.
    Missing,
    /// A unary call carried more than one message.
    Extra,
    /// A compressed message did not decompress, or decompressed past the limit.
    Decompress(DecompressError),
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Error {
        match e {
            FrameError::Incomplete => Error::new(Code::Internal, "message frame cut short"),
            FrameError::TooLarge { len, max } => Error::new(
                Code::ResourceExhausted,
                format!("message of {len} bytes is larger than the limit of {max}"),
            ),
            // An unsupported grpc-encoding is UNIMPLEMENTED before any frame is read; a
            // compressed frame without one breaks the protocol (as grpc-go answers it).
            FrameError::Compressed => Error::new(
                Code::Internal,
                "compressed flag set on a message sent without grpc-encoding",
            ),
            FrameError::BadFlag(f) => Error::new(Code::Internal, format!("bad frame flag {f}")),
            FrameError::Missing => Error::new(Code::Internal, "no message in a unary call"),
            FrameError::Extra => {
                Error::new(Code::Internal, "more than one message in a unary call")
            }
            FrameError::Decompress(e) => e.into(),
        }
    }
}

/// Encodes `msg` as one frame; larger than `max` is `RESOURCE_EXHAUSTED`.
pub fn encode<M: Message>(msg: &M, codec: Codec, max: usize) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + msg.size_hint(codec));
    encode_into(msg, codec, max, &mut buf)?;
    Ok(buf.freeze())
}

/// Appends the frame of `msg` to `buf` (which may hold frames already); on error `buf` is
/// left as it was.
pub fn encode_into<M: Message>(
    msg: &M,
    codec: Codec,
    max: usize,
    buf: &mut BytesMut,
) -> Result<()> {
    let start = buf.len();
    buf.reserve(HEADER_LEN + msg.size_hint(codec));
    buf.put_bytes(0, HEADER_LEN);
    if let Err(e) = msg.encode(codec, buf) {
        buf.truncate(start);
        return Err(e);
    }
    let len = buf.len() - start - HEADER_LEN;
    if len > max {
        buf.truncate(start);
        return Err(FrameError::TooLarge { len, max }.into());
    }
    // `len <= max`, and limits are far below 4 GiB.
    buf[start + 1..start + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Encodes `msg` as one frame, its message compressed with `compression` (identity is
/// [`encode`]). Larger than `max` before compression is `RESOURCE_EXHAUSTED`; a message that
/// compresses to more than `max` is sent uncompressed (flag 0), which a receiver with the
/// same limit takes.
pub fn encode_compressed<M: Message>(
    msg: &M,
    codec: Codec,
    max: usize,
    compression: Compression,
) -> Result<Bytes> {
    if compression.is_identity() {
        return encode(msg, codec, max);
    }
    compressed_frame(msg, codec, max, compression).map(Bytes::from)
}

/// Appends the frame of `msg`, compressed with `compression`, to `buf` (see
/// [`encode_compressed`]); on error `buf` is left as it was.
pub fn encode_into_compressed<M: Message>(
    msg: &M,
    codec: Codec,
    max: usize,
    compression: Compression,
    buf: &mut BytesMut,
) -> Result<()> {
    if compression.is_identity() {
        return encode_into(msg, codec, max, buf);
    }
    let frame = compressed_frame(msg, codec, max, compression)?;
    buf.extend_from_slice(&frame);
    Ok(())
}

/// The frame of `msg` compressed with `compression`, or uncompressed when its compressed form
/// is over `max`.
fn compressed_frame<M: Message>(
    msg: &M,
    codec: Codec,
    max: usize,
    compression: Compression,
) -> Result<Vec<u8>> {
    let mut plain = BytesMut::with_capacity(msg.size_hint(codec));
    msg.encode(codec, &mut plain)?;
    let len = plain.len();
    if len > max {
        return Err(FrameError::TooLarge { len, max }.into());
    }
    let mut frame = Vec::with_capacity(HEADER_LEN + len / 2 + 64);
    frame.extend_from_slice(&[1, 0, 0, 0, 0]);
    compression::compress(compression, &plain, &mut frame)?;
    let mut packed = frame.len() - HEADER_LEN;
    if packed > max {
        frame.clear();
        frame.push(0);
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(&plain);
        packed = len;
    }
    // `packed <= max`, and limits are far below 4 GiB.
    frame[1..HEADER_LEN].copy_from_slice(&(packed as u32).to_be_bytes());
    Ok(frame)
}

/// Reads the header of a frame at the start of `buf`: the message length. A compressed
/// message (flag 1) is an error unless `compressed` (the call has an encoding).
#[inline]
fn header(buf: &[u8], max: usize, compressed: bool) -> Result<Option<usize>, FrameError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    match head[0] {
        0 => {}
        1 if compressed => {}
        1 => return Err(FrameError::Compressed),
        f => return Err(FrameError::BadFlag(f)),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(Some(len))
}

/// A whole frame at the front of a [`Decoder`]: where it is, and its message's length.
#[derive(Clone, Copy, Debug)]
pub struct WholeFrame {
    in_buf: bool,
    compressed: bool,
    len: usize,
}

impl WholeFrame {
    /// The frame's length on the wire: its header and its message.
    pub fn size(&self) -> usize {
        HEADER_LEN + self.len
    }

    /// Whether its message is compressed: read it with [`Decoder::decompress`].
    #[inline]
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }
}

/// Splits frames off a stream of body chunks.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    /// A chunk taken whole (no copy) while `buf` was empty: messages are decoded out of it
    /// in place, and only a frame cut at its end is copied into `buf`.
    chunk: Bytes,
    max: usize,
    /// The encoding of compressed messages; with identity, a compressed one is an error.
    compression: Compression,
}

impl Decoder {
    /// A decoder that refuses messages over `max` bytes, and compressed ones.
    pub fn new(max: usize) -> Decoder {
        Decoder::with_compression(max, Compression::Identity)
    }

    /// A decoder that refuses messages over `max` bytes, on the wire or decompressed, and
    /// reads compressed ones as `compression` (the call's `grpc-encoding`).
    pub fn with_compression(max: usize, compression: Compression) -> Decoder {
        Decoder {
            buf: BytesMut::new(),
            chunk: Bytes::new(),
            max,
            compression,
        }
    }

    /// Sets the encoding of the compressed messages to come (a response's, once its headers
    /// are read).
    pub fn set_compression(&mut self, compression: Compression) {
        self.compression = compression;
    }

    /// Whether compressed messages are taken.
    #[inline]
    fn compressed(&self) -> bool {
        !self.compression.is_identity()
    }

    /// Adds a chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.spill();
        self.buf.extend_from_slice(chunk);
    }

    /// Adds a chunk of the body, kept without copying while nothing else is buffered.
    ///
    /// When the start of a frame cut at the end of the last chunk is buffered, only the rest
    /// of that frame is copied out of `chunk`: what follows it is kept whole, and decoded in
    /// place.
    pub fn push_bytes(&mut self, mut chunk: Bytes) {
        if !self.chunk.is_empty() {
            self.push(&chunk);
            return;
        }
        if !self.buf.is_empty() {
            if self.buf.len() < HEADER_LEN {
                let n = (HEADER_LEN - self.buf.len()).min(chunk.len());
                self.buf.extend_from_slice(&chunk[..n]);
                chunk.advance(n);
            }
            // A bad header is left for `next_with` to report.
            if let Ok(Some(len)) = header(&self.buf, self.max, self.compressed()) {
                let n = (HEADER_LEN + len)
                    .saturating_sub(self.buf.len())
                    .min(chunk.len());
                self.buf.extend_from_slice(&chunk[..n]);
                chunk.advance(n);
            }
        }
        self.chunk = chunk;
    }

    /// Moves what is left of the kept chunk into the buffer, after what it holds.
    fn spill(&mut self) {
        if !self.chunk.is_empty() {
            self.buf.extend_from_slice(&self.chunk);
            self.chunk = Bytes::new();
        }
    }

    /// Makes room in the buffer for the rest of the frame it starts with.
    fn reserve_frame(&mut self) {
        if let Ok(Some(len)) = header(&self.buf, self.max, self.compressed()) {
            self.buf
                .reserve((HEADER_LEN + len).saturating_sub(self.buf.len()));
        }
    }

    /// The length of the message of the whole frame the buffer starts with, if it is whole.
    fn whole_in_buf(&self) -> Result<Option<usize>, FrameError> {
        Ok(header(&self.buf, self.max, self.compressed())?
            .filter(|&len| self.buf.len() >= HEADER_LEN + len))
    }

    /// The next whole message (decompressed, when it was compressed), `None` when more
    /// bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, FrameError> {
        self.spill();
        let Some(len) = header(&self.buf, self.max, self.compressed())? else {
            return Ok(None);
        };
        if self.buf.len() < HEADER_LEN + len {
            self.buf.reserve(HEADER_LEN + len - self.buf.len());
            return Ok(None);
        }
        let compressed = self.buf.first() == Some(&1);
        self.buf.advance(HEADER_LEN);
        let message = self.buf.split_to(len).freeze();
        if compressed {
            return self.inflate(&message).map(Some);
        }
        Ok(Some(message))
    }

    /// The compressed `message` decompressed, within the limit.
    fn inflate(&self, message: &[u8]) -> Result<Bytes, FrameError> {
        compression::decompress(self.compression, message, self.max)
            .map(Bytes::from)
            .map_err(FrameError::Decompress)
    }

    /// Runs `f` on the next whole message, in place, and drops it from the buffer; `None`
    /// when more bytes are needed.
    pub fn next_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, FrameError> {
        let Some(at) = self.next_frame()? else {
            return Ok(None);
        };
        let out = f(self.message(at));
        self.consume(at);
        Ok(Some(out))
    }

    /// Finds the next whole frame: read its message with [`Decoder::message`], then drop it
    /// with [`Decoder::consume`]. `None` when more bytes are needed.
    ///
    /// (What [`Decoder::next_with`] does, in three steps: the caller decodes straight into
    /// its own result, with no closure's result to move out of nested enums.)
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<WholeFrame>, FrameError> {
        // Buffered bytes come first: a frame that was cut across chunks (completed by
        // `push_bytes`), or what `push` copied.
        if !self.buf.is_empty() {
            let mut whole = self.whole_in_buf()?;
            if whole.is_none() && !self.chunk.is_empty() {
                self.spill();
                whole = self.whole_in_buf()?;
            }
            let Some(len) = whole else {
                self.reserve_frame();
                return Ok(None);
            };
            return Ok(Some(WholeFrame {
                in_buf: true,
                compressed: self.buf.first() == Some(&1),
                len,
            }));
        }
        if !self.chunk.is_empty() {
            if let Some(len) = header(&self.chunk, self.max, self.compressed())?
                && self.chunk.len() >= HEADER_LEN + len
            {
                return Ok(Some(WholeFrame {
                    in_buf: false,
                    compressed: self.chunk.first() == Some(&1),
                    len,
                }));
            }
            // A frame cut at the end of the chunk: it continues in the next.
            self.spill();
            self.reserve_frame();
        }
        Ok(None)
    }

    /// The message of the frame `at` found by [`Decoder::next_frame`]: as it is on the wire,
    /// compressed when [`WholeFrame::is_compressed`].
    #[inline]
    pub fn message(&self, at: WholeFrame) -> &[u8] {
        let bytes: &[u8] = if at.in_buf { &self.buf } else { &self.chunk };
        bytes
            .get(HEADER_LEN..HEADER_LEN + at.len)
            .unwrap_or_default()
    }

    /// The message of the compressed frame `at` found by [`Decoder::next_frame`],
    /// decompressed (within the decoder's limit).
    pub fn decompress(&self, at: WholeFrame) -> Result<Bytes, FrameError> {
        self.inflate(self.message(at))
    }

    /// Drops the frame `at` found by [`Decoder::next_frame`].
    #[inline]
    pub fn consume(&mut self, at: WholeFrame) {
        let n = HEADER_LEN + at.len;
        if at.in_buf {
            self.buf.advance(n.min(self.buf.len()));
        } else {
            self.chunk.advance(n.min(self.chunk.len()));
        }
    }

    /// Whether bytes of an unfinished frame are left (an error at the end of the body).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || !self.chunk.is_empty()
    }
}

/// Reads the single message of a unary body (`None` when it has none), and the trailers when
/// the body has them: a response with headers and an error status in its trailers has no
/// message, and the status is what counts (see [`FrameError::Missing`] for the error when a
/// message was required).
///
/// The common case, a body of one data chunk holding exactly one frame, takes the message
/// out of that chunk without copying. A compressed message (flag 1) is decompressed as
/// `compression`, the call's `grpc-encoding`, within `max`; with identity it is an error.
pub async fn read_unary<B>(
    body: &mut B,
    max: usize,
    compression: Compression,
) -> Result<(Option<Bytes>, Option<http::HeaderMap>)>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let compressed = !compression.is_identity();
    let mut message: Option<Bytes> = None;
    let mut decoder: Option<Decoder> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| super::http2::body_error(&*e.into()))?;
        let frame = match frame.into_data() {
            Ok(mut chunk) => {
                if decoder.is_none()
                    && message.is_none()
                    && let Some(len) = header(&chunk, max, compressed)?
                    && chunk.len() == HEADER_LEN + len
                {
                    let inflate = compressed && chunk.first() == Some(&1);
                    chunk.advance(HEADER_LEN);
                    if inflate {
                        chunk = compression::decompress(compression, &chunk, max)
                            .map(Bytes::from)
                            .map_err(FrameError::Decompress)?;
                    }
                    message = Some(chunk);
                    continue;
                }
                if message.is_some() && !chunk.is_empty() {
                    return Err(FrameError::Extra.into());
                }
                let dec =
                    decoder.get_or_insert_with(|| Decoder::with_compression(max, compression));
                dec.push(&chunk);
                if let Some(msg) = dec.next_message()? {
                    message = Some(msg);
                    if dec.has_partial() {
                        return Err(FrameError::Extra.into());
                    }
                    decoder = None;
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(trailers) = frame.into_trailers() {
            return finish(message, decoder, Some(trailers));
        }
    }
    finish(message, decoder, None)
}

fn finish(
    message: Option<Bytes>,
    decoder: Option<Decoder>,
    trailers: Option<http::HeaderMap>,
) -> Result<(Option<Bytes>, Option<http::HeaderMap>)> {
    if decoder.is_some_and(|d| d.has_partial()) {
        return Err(FrameError::Incomplete.into());
    }
    Ok((message, trailers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;

    type Frames = Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>>;

    fn body(
        chunks: Vec<&'static [u8]>,
    ) -> StreamBody<futures_util::stream::Iter<<Frames as IntoIterator>::IntoIter>> {
        let frames: Frames = chunks
            .into_iter()
            .map(|c| Ok(http_body::Frame::data(Bytes::from_static(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    async fn read(chunks: Vec<&'static [u8]>, max: usize) -> Result<Bytes> {
        let (message, _) = read_unary(&mut body(chunks), max, Compression::Identity).await?;
        message.ok_or_else(|| FrameError::Missing.into())
    }

    #[tokio::test]
    async fn one_frame_in_one_chunk() {
        assert_eq!(read(vec![b"\0\0\0\0\x02hi"], 10).await.unwrap(), "hi");
    }

    #[tokio::test]
    async fn frames_split_across_chunks() {
        assert_eq!(
            read(vec![b"\0\0", b"\0\0\x02h", b"i"], 10).await.unwrap(),
            "hi"
        );
        assert_eq!(read(vec![b"\0\0\0\0\x00"], 10).await.unwrap(), "");
    }

    #[tokio::test]
    async fn bad_frames_have_codes() {
        let code = |r: Result<Bytes>| r.unwrap_err().code();
        assert_eq!(
            code(read(vec![b"\0\0\0\0\x0bhi"], 100).await),
            Code::Internal
        );
        assert_eq!(code(read(vec![b"\0\0\0"], 100).await), Code::Internal);
        assert_eq!(code(read(vec![], 100).await), Code::Internal);
        assert_eq!(
            code(read(vec![b"\0\0\0\x01\0"], 100).await),
            Code::ResourceExhausted
        );
        // Marked compressed, with no grpc-encoding negotiated.
        assert_eq!(
            code(read(vec![b"\x01\0\0\0\x01x"], 100).await),
            Code::Internal
        );
        assert_eq!(
            code(read(vec![b"\x07\0\0\0\x01x"], 100).await),
            Code::Internal
        );
        assert_eq!(
            code(read(vec![b"\0\0\0\0\x01x\0\0\0\0\x01y"], 100).await),
            Code::Internal
        );
        assert_eq!(
            code(read(vec![b"\0\0\0\0\x01x", b"\0"], 100).await),
            Code::Internal
        );
    }

    /// Compressed frames, as `encode_compressed` writes them: flag 1, read back by
    /// `read_unary` (one chunk, or cut anywhere) and by the decoder, for each encoding.
    #[cfg(feature = "compression")]
    #[tokio::test]
    async fn compressed_frames_round_trip() {
        let text = "Hello, World! ".repeat(500);
        for c in [Compression::Gzip, Compression::Zstd] {
            for msg in [String::new(), "Ada".to_owned(), text.clone()] {
                let frame = encode_compressed(&msg, Codec::Proto, 1 << 20, c).unwrap();
                assert_eq!(frame[0], 1, "{c}");
                let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
                assert_eq!(frame.len(), HEADER_LEN + len);
                let leaked: &'static [u8] = Box::leak(frame.to_vec().into_boxed_slice());
                for cut in [0, 3, leaked.len() / 2, leaked.len()] {
                    let chunks = vec![&leaked[..cut], &leaked[cut..]];
                    let (got, _) = read_unary(&mut body(chunks), 1 << 20, c).await.unwrap();
                    let back = String::decode(Codec::Proto, got.unwrap()).unwrap();
                    assert_eq!(back, msg, "{c}, cut at {cut}");
                }
                // Identity calls refuse it: the flag without an encoding.
                let err = read_unary(&mut body(vec![leaked]), 1 << 20, Compression::Identity)
                    .await
                    .unwrap_err();
                assert_eq!(err.code(), Code::Internal);
                // The decoder, in place and as whole messages.
                let mut dec = Decoder::with_compression(1 << 20, c);
                let mut wire = BytesMut::new();
                encode_into_compressed(&msg, Codec::Proto, 1 << 20, c, &mut wire).unwrap();
                encode_into(&msg, Codec::Proto, 1 << 20, &mut wire).unwrap();
                dec.push_bytes(wire.clone().freeze());
                let at = dec.next_frame().unwrap().unwrap();
                assert!(at.is_compressed());
                let back = String::decode(Codec::Proto, dec.decompress(at).unwrap()).unwrap();
                assert_eq!(back, msg);
                dec.consume(at);
                let at = dec.next_frame().unwrap().unwrap();
                assert!(
                    !at.is_compressed(),
                    "identity frames mix with compressed ones"
                );
                dec.consume(at);
                assert!(!dec.has_partial());
                let mut dec = Decoder::with_compression(1 << 20, c);
                dec.push(&wire);
                for _ in 0..2 {
                    let m = dec.next_message().unwrap().unwrap();
                    assert_eq!(String::decode(Codec::Proto, m).unwrap(), msg);
                }
            }
        }
    }

    /// A small frame that decompresses past the limit fails RESOURCE_EXHAUSTED, in every
    /// reader; one that does not decompress is INTERNAL.
    #[cfg(feature = "compression")]
    #[tokio::test]
    async fn compressed_bombs_and_garbage_have_codes() {
        let zeros = "\0".repeat(1 << 20);
        for c in [Compression::Gzip, Compression::Zstd] {
            let bomb = encode_compressed(&zeros, Codec::Proto, 2 << 20, c).unwrap();
            assert!(bomb.len() < 16 << 10, "{c}: {}", bomb.len());
            let leaked: &'static [u8] = Box::leak(bomb.to_vec().into_boxed_slice());
            let err = read_unary(&mut body(vec![leaked]), 64 << 10, c)
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::ResourceExhausted, "{c}: {err}");
            let mut dec = Decoder::with_compression(64 << 10, c);
            dec.push(leaked);
            let err = dec.next_message().unwrap_err();
            assert!(matches!(
                err,
                FrameError::Decompress(DecompressError::TooLarge { .. })
            ));
            let garbage: &'static [u8] = b"\x01\0\0\0\x03abc";
            let err = read_unary(&mut body(vec![garbage]), 100, c)
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Internal, "{c}: {err}");
        }
    }

    /// Too large before compression is refused; compressed to more than the limit (random
    /// bytes grow a little), it goes uncompressed.
    #[cfg(feature = "compression")]
    #[test]
    fn compressed_encoding_keeps_the_limit() {
        let mut rng = fastrand::Rng::with_seed(9);
        let noise: Vec<u8> = (0..4000).map(|_| rng.u8(..)).collect();
        let max = noise.len() + 3;
        let frame = encode_compressed(&noise, Codec::Proto, max, Compression::Gzip).unwrap();
        assert_eq!(frame[0], 0, "sent as it is");
        assert_eq!(frame.len(), HEADER_LEN + noise.len() + 3);
        let err = encode_compressed(&noise, Codec::Proto, 100, Compression::Zstd).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        let mut buf = BytesMut::from(&b"kept"[..]);
        assert!(
            encode_into_compressed(&noise, Codec::Proto, 100, Compression::Gzip, &mut buf).is_err()
        );
        assert_eq!(&buf[..], b"kept");
    }

    #[test]
    fn decoder_yields_each_message() {
        let mut d = Decoder::new(10);
        d.push(b"\0\0\0\0\x01a\0\0\0");
        assert_eq!(d.next_message().unwrap().unwrap(), "a");
        assert_eq!(d.next_message().unwrap(), None);
        d.push(b"\0\x01b");
        assert_eq!(d.next_message().unwrap().unwrap(), "b");
        assert!(!d.has_partial());
    }

    /// Random bytes, split at random places, never panic the decoders: they yield messages
    /// or errors.
    #[test]
    fn kept_chunks_decode_in_place_across_any_split() {
        // Three frames, cut at every pair of points: each message comes out whole, once.
        let mut wire = Vec::new();
        for m in [&b"a"[..], b"", b"hello world"] {
            wire.push(0);
            wire.extend_from_slice(&(m.len() as u32).to_be_bytes());
            wire.extend_from_slice(m);
        }
        for i in 0..=wire.len() {
            for j in i..=wire.len() {
                let mut dec = Decoder::new(64);
                let mut got = Vec::new();
                for part in [&wire[..i], &wire[i..j], &wire[j..]] {
                    dec.push_bytes(Bytes::copy_from_slice(part));
                    while let Some(m) = dec.next_with(<[u8]>::to_vec).unwrap() {
                        got.push(m);
                    }
                }
                assert_eq!(got, [&b"a"[..], b"", b"hello world"], "cut at {i}, {j}");
                assert!(!dec.has_partial());
            }
        }
    }

    /// Many frames of random sizes, cut into random chunks (some inside headers, some
    /// holding several frames): `push_bytes` and `next_with` yield every message once, in
    /// order, copying only the frames that were cut.
    #[test]
    fn kept_chunks_decode_many_frames_across_random_cuts() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..500 {
            let messages: Vec<Vec<u8>> = (0..rng.usize(1..40))
                .map(|i| vec![i as u8; rng.usize(..40)])
                .collect();
            let mut wire = Vec::new();
            for m in &messages {
                wire.push(0);
                wire.extend_from_slice(&(m.len() as u32).to_be_bytes());
                wire.extend_from_slice(m);
            }
            let mut dec = Decoder::new(64);
            let mut got = Vec::new();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rng.usize(1..=rest.len().min(90)));
                dec.push_bytes(Bytes::copy_from_slice(chunk));
                // Sometimes read only part of what is there before the next chunk comes.
                let reads = if rng.bool() {
                    usize::MAX
                } else {
                    rng.usize(..3)
                };
                for _ in 0..reads {
                    match dec.next_with(<[u8]>::to_vec).unwrap() {
                        Some(m) => got.push(m),
                        None => break,
                    }
                }
                rest = tail;
            }
            while let Some(m) = dec.next_with(<[u8]>::to_vec).unwrap() {
                got.push(m);
            }
            assert_eq!(got, messages);
            assert!(!dec.has_partial());
        }
    }

    #[tokio::test]
    async fn random_input_never_panics() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5_000 {
            let len = rng.usize(..64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            // Often a plausible header, so lengths and flags get exercised too.
            if rng.bool() && bytes.len() >= 5 {
                bytes[0] = rng.u8(..3);
                bytes[1..4].fill(0);
            }
            let mut d = Decoder::new(rng.usize(..100));
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rng.usize(..=rest.len()));
                d.push(chunk);
                while let Ok(Some(_)) = d.next_message() {}
                rest = tail;
            }
            let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            let split = rng.usize(..=leaked.len());
            for c in [Compression::Identity, Compression::Gzip, Compression::Zstd] {
                let _ = read_unary(
                    &mut body(vec![&leaked[..split], &leaked[split..]]),
                    rng.usize(..100),
                    c,
                )
                .await;
            }
            let _ = crate::transport::parse_timeout(leaked);
            let _ = crate::Codec::from_content_type(leaked);
        }
    }
}
