//! gRPC message compression: the encodings (`grpc-encoding`, `grpc-accept-encoding`), and
//! the compression and bounded decompression of one message.
//!
//! gzip (the `flate2` crate, pure Rust) and zstd (the `zstd` crate) are spoken with the
//! cargo feature `compression` (on by default); without it only identity is, and the others
//! are unknown names. Decompression stops as soon as a message grows past the receiver's
//! limit (its `max_message_size`), so a small "zip bomb" costs at most that much memory and
//! fails `RESOURCE_EXHAUSTED`. Compressors and decompressors are kept per thread and reused:
//! their state (a few hundred KiB for deflate) is not allocated again for each message.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, HeaderValue};

use crate::error::{Code, Error, Result};

/// The header naming the encoding of a call's messages.
pub const GRPC_ENCODING: &str = "grpc-encoding";

/// The header listing the encodings a peer decodes.
pub const GRPC_ACCEPT_ENCODING: &str = "grpc-accept-encoding";

/// What this build decodes, as `grpc-accept-encoding` lists it.
#[cfg(feature = "compression")]
pub const ACCEPT_ENCODING: &str = "identity,gzip,zstd";
/// What this build decodes, as `grpc-accept-encoding` lists it.
#[cfg(not(feature = "compression"))]
pub const ACCEPT_ENCODING: &str = "identity";

/// A message encoding (`grpc-encoding`): how the messages of a call are compressed.
///
/// ```
/// use micro_runtime::transport::compression::Compression;
///
/// let gzip: Compression = "gzip".parse()?;
/// assert_eq!(gzip, Compression::Gzip);
/// assert_eq!(gzip.name(), "gzip");
/// assert!("snappy".parse::<Compression>().is_err());
/// # Ok::<(), micro_runtime::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    #[default]
    Identity,
    /// gzip (RFC 1952), what every gRPC implementation speaks.
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
}

impl Compression {
    /// Its name in `grpc-encoding`.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::Identity => "identity",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// Whether it is identity: no compression.
    #[inline]
    pub const fn is_identity(self) -> bool {
        matches!(self, Compression::Identity)
    }

    /// Whether this build speaks it (gzip and zstd need the feature `compression`).
    pub const fn is_supported(self) -> bool {
        self.is_identity() || cfg!(feature = "compression")
    }

    /// The encoding a `grpc-encoding` value names, when this build speaks it (names are
    /// matched as they are sent, in lower case).
    pub fn from_header(value: &[u8]) -> Option<Compression> {
        let c = match value {
            b"identity" => Compression::Identity,
            b"gzip" => Compression::Gzip,
            b"zstd" => Compression::Zstd,
            _ => return None,
        };
        c.is_supported().then_some(c)
    }

    /// The `grpc-encoding` value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.name())
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a setting: `identity` (or `none`, or empty), `gzip` or `zstd`, in any case. A
/// name this build does not speak is `INVALID_ARGUMENT`.
impl FromStr for Compression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Compression> {
        let c = match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "identity" => Compression::Identity,
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            other => {
                return Err(Error::new(
                    Code::InvalidArgument,
                    format!("unknown compression {other:?} (expected identity, gzip or zstd)"),
                ));
            }
        };
        if !c.is_supported() {
            return Err(not_built(c));
        }
        Ok(c)
    }
}

/// The `grpc-accept-encoding` value of this build: [`ACCEPT_ENCODING`].
pub fn accept_encoding() -> HeaderValue {
    HeaderValue::from_static(ACCEPT_ENCODING)
}

/// Whether a `grpc-accept-encoding` list (`identity, deflate, gzip`) names `c`. Identity is
/// always accepted.
pub fn accepts(list: &[u8], c: Compression) -> bool {
    c.is_identity()
        || list
            .split(|&b| b == b',')
            .any(|name| name.trim_ascii().eq_ignore_ascii_case(c.name().as_bytes()))
}

/// The encoding of a response's messages, from its `grpc-encoding` (identity when it has
/// none). One this build does not speak is the server's fault: `INTERNAL`, as gRPC clients
/// answer it.
pub fn response_encoding(headers: &HeaderMap) -> Result<Compression> {
    match headers.get(GRPC_ENCODING) {
        None => Ok(Compression::Identity),
        Some(v) => Compression::from_header(v.as_bytes()).ok_or_else(|| {
            Error::new(
                Code::Internal,
                format!(
                    "the response is compressed with grpc-encoding {:?}, which this client does not decompress ({ACCEPT_ENCODING})",
                    String::from_utf8_lossy(v.as_bytes())
                ),
            )
        }),
    }
}

/// The error of a request whose `grpc-encoding` this build does not speak: `UNIMPLEMENTED`,
/// as the gRPC spec has it (the response also lists [`ACCEPT_ENCODING`]).
pub fn unsupported_request(value: &[u8]) -> Error {
    Error::new(
        Code::Unimplemented,
        format!(
            "grpc-encoding {:?} is not supported (grpc-accept-encoding: {ACCEPT_ENCODING})",
            String::from_utf8_lossy(value)
        ),
    )
}

fn not_built(c: Compression) -> Error {
    Error::new(
        Code::Unimplemented,
        format!("{c} compression needs micro-runtime's cargo feature `compression`"),
    )
}

/// Why a compressed message did not decompress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecompressError {
    /// The bytes are not a valid stream of the encoding (or identity was named).
    Corrupt(Compression),
    /// The message decompresses to more than the limit (or, in zstd, asks the decoder for
    /// a window larger than such a message needs).
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// This build does not speak the encoding.
    Unsupported(Compression),
}

impl From<DecompressError> for Error {
    fn from(e: DecompressError) -> Error {
        match e {
            DecompressError::Corrupt(c) => Error::new(
                Code::Internal,
                format!("a message marked {c}-compressed does not decompress"),
            ),
            DecompressError::TooLarge { max } => Error::new(
                Code::ResourceExhausted,
                format!("decompressed message is larger than the limit of {max} bytes"),
            ),
            DecompressError::Unsupported(c) => not_built(c),
        }
    }
}

/// Appends `input` compressed with `c` to `out`.
pub fn compress(c: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    match c {
        Compression::Identity => {
            out.extend_from_slice(input);
            Ok(())
        }
        #[cfg(feature = "compression")]
        Compression::Gzip => imp::gzip(input, out),
        #[cfg(feature = "compression")]
        Compression::Zstd => imp::zstd(input, out),
        #[cfg(not(feature = "compression"))]
        other => Err(not_built(other)),
    }
}

/// `input` decompressed with `c`, at most `max` bytes of it: a message that would be larger
/// fails as soon as it grows past `max`, before more is allocated.
pub fn decompress(
    c: Compression,
    input: &[u8],
    max: usize,
) -> std::result::Result<Vec<u8>, DecompressError> {
    match c {
        // A message marked compressed, in a call whose encoding is identity.
        Compression::Identity => Err(DecompressError::Corrupt(c)),
        #[cfg(feature = "compression")]
        Compression::Gzip => imp::gunzip(input, max),
        #[cfg(feature = "compression")]
        Compression::Zstd => imp::unzstd(input, max),
        #[cfg(not(feature = "compression"))]
        other => {
            let _ = (input, max);
            Err(DecompressError::Unsupported(other))
        }
    }
}

#[cfg(feature = "compression")]
mod imp {
    //! The codecs, on per-thread compressors and decompressors.

    use std::cell::RefCell;
    use std::thread::LocalKey;

    use flate2::{Compress, Crc, Decompress, FlushCompress, FlushDecompress, Status};
    use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
    use zstd::zstd_safe::{self, CCtx, DCtx, DParameter, InBuffer, OutBuffer, ResetDirective};

    use super::{Compression, DecompressError};
    use crate::error::{Code, Error, Result};

    thread_local! {
        static DEFLATE: RefCell<Option<Compress>> = const { RefCell::new(None) };
        static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
        static ZSTD_C: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
        static ZSTD_D: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
    }

    /// Runs `f` on this thread's `T` (made on first use), or on a fresh one when the
    /// thread's is in use or gone (a thread being torn down).
    fn with_cached<T: 'static, R>(
        key: &'static LocalKey<RefCell<Option<T>>>,
        make: impl Fn() -> T,
        mut f: impl FnMut(&mut T) -> R,
    ) -> R {
        let cached = key.try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            Some(f(slot.get_or_insert_with(&make)))
        });
        match cached {
            Ok(Some(r)) => r,
            _ => f(&mut make()),
        }
    }

    /// gzip's fixed header: deflate, no flags, no time, unknown OS (as Go's writer).
    const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

    fn failed(what: &str, e: impl std::fmt::Display) -> Error {
        Error::new(Code::Internal, format!("{what}: {e}"))
    }

    pub(super) fn gzip(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&GZIP_HEADER);
        with_cached(
            &DEFLATE,
            || Compress::new(flate2::Compression::default(), false),
            |deflate| -> Result<()> {
                deflate.reset();
                // Deflate's worst case is a few bytes per 16 KiB block over the input.
                out.reserve(input.len() + input.len() / 1000 + 64);
                loop {
                    let read = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
                    let rest = input.get(read..).unwrap_or_default();
                    let status = deflate
                        .compress_vec(rest, out, FlushCompress::Finish)
                        .map_err(|e| failed("gzip compression failed", e))?;
                    match status {
                        Status::StreamEnd => break,
                        Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
                    }
                }
                Ok(())
            },
        )?;
        let mut crc = Crc::new();
        crc.update(input);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE: the length modulo 2^32.
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        Ok(())
    }

    /// The length of the gzip member header at the start of `data` (RFC 1952 2.3).
    fn gzip_header_len(data: &[u8]) -> Option<usize> {
        const FHCRC: u8 = 2;
        const FEXTRA: u8 = 4;
        const FNAME: u8 = 8;
        const FCOMMENT: u8 = 16;
        let head = data.get(..10)?;
        if head[..3] != [0x1f, 0x8b, 8] || head[3] & 0xe0 != 0 {
            return None;
        }
        let flags = head[3];
        let mut at = 10;
        if flags & FEXTRA != 0 {
            let xlen = data.get(at..at + 2)?;
            at += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        }
        for flag in [FNAME, FCOMMENT] {
            if flags & flag != 0 {
                at += data.get(at..)?.iter().position(|&b| b == 0)? + 1;
            }
        }
        if flags & FHCRC != 0 {
            at += 2;
        }
        (at <= data.len()).then_some(at)
    }

    /// Room for more output: double, up to `max + 1` (one byte past the limit tells a message
    /// over it). `false` when the output is at that bound already.
    fn grow(out: &mut Vec<u8>, max: usize) -> bool {
        let bound = max.saturating_add(1);
        if out.len() >= bound {
            return false;
        }
        let more = out.capacity().max(256).min(bound - out.len());
        out.reserve_exact(more);
        true
    }

    pub(super) fn gunzip(input: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
        let corrupt = DecompressError::Corrupt(Compression::Gzip);
        // The last member's ISIZE: the size to expect, as a hint (it is the sender's word, so
        // no more than deflate's best ratio, 1032:1, makes of the input).
        let hint = input
            .len()
            .checked_sub(4)
            .and_then(|at| input.get(at..))
            .map_or(0, |t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize)
            .min(input.len().saturating_mul(1032));
        let mut out = Vec::with_capacity(hint.min(max).saturating_add(1));
        let mut rest = input;
        // Members one after another, as gzip readers take them.
        loop {
            let start = out.len();
            rest = rest
                .get(gzip_header_len(rest).ok_or(corrupt)?..)
                .ok_or(corrupt)?;
            let read = with_cached(
                &INFLATE,
                || Decompress::new(false),
                |inflate| -> Result<usize, DecompressError> {
                    inflate.reset(false);
                    loop {
                        if out.len() == out.capacity() && !grow(&mut out, max) {
                            return Err(DecompressError::TooLarge { max });
                        }
                        let (read, wrote) = (inflate.total_in(), inflate.total_out());
                        let done = usize::try_from(read).map_err(|_| corrupt)?;
                        let status = inflate
                            .decompress_vec(
                                rest.get(done..).unwrap_or_default(),
                                &mut out,
                                FlushDecompress::None,
                            )
                            .map_err(|_| corrupt)?;
                        if status == Status::StreamEnd {
                            return usize::try_from(inflate.total_in()).map_err(|_| corrupt);
                        }
                        // No progress with room left: the input ended inside the stream.
                        if inflate.total_in() == read
                            && inflate.total_out() == wrote
                            && out.len() < out.capacity()
                        {
                            return Err(corrupt);
                        }
                    }
                },
            )?;
            if out.len() > max {
                return Err(DecompressError::TooLarge { max });
            }
            let trailer = rest.get(read..read + 8).ok_or(corrupt)?;
            let mut crc = Crc::new();
            crc.update(out.get(start..).unwrap_or_default());
            let sum = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
            let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
            if sum != crc.sum() || size != crc.amount() {
                return Err(corrupt);
            }
            rest = rest.get(read + 8..).unwrap_or_default();
            if rest.is_empty() {
                return Ok(out);
            }
        }
    }

    pub(super) fn zstd(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.reserve(zstd_safe::compress_bound(input.len()));
        with_cached(&ZSTD_C, CCtx::create, |cctx| {
            let mut at = std::io::Cursor::new(&mut *out);
            at.set_position(start as u64);
            cctx.compress(&mut at, input, zstd::DEFAULT_COMPRESSION_LEVEL)
                .map(drop)
                .map_err(|code| failed("zstd compression failed", zstd_safe::get_error_name(code)))
        })
    }

    /// The window a zstd frame may ask of the decoder, as a power of two: enough for any
    /// message within `max`, and at least the 2 MiB common encoders use for data of unknown
    /// size (level 3), never the 128 MiB a hostile frame header may ask for (zstd's default
    /// bound).
    fn window_log_max(max: usize) -> u32 {
        let needed = usize::BITS - max.saturating_sub(1).leading_zeros();
        needed.clamp(21, 31)
    }

    pub(super) fn unzstd(input: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
        let corrupt = DecompressError::Corrupt(Compression::Zstd);
        // The size the frame says it holds: refused at once when over the limit (zstd checks
        // that the content matches it), else the output's size.
        let hint = match zstd_safe::get_frame_content_size(input) {
            Ok(Some(size)) => {
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                if size > max {
                    return Err(DecompressError::TooLarge { max });
                }
                // The sender's word: no more memory at once than the input could make at
                // deflate's best ratio; the output grows past it only as it comes.
                size.min(input.len().saturating_mul(1032))
            }
            Ok(None) => input.len().saturating_mul(4),
            Err(_) => return Err(corrupt),
        };
        let mut out = Vec::with_capacity(hint.min(max).saturating_add(1));
        with_cached(&ZSTD_D, DCtx::create, |dctx| {
            dctx.reset(ResetDirective::SessionAndParameters)
                .map_err(|_| corrupt)?;
            dctx.set_parameter(DParameter::WindowLogMax(window_log_max(max)))
                .map_err(|_| corrupt)?;
            let mut source = InBuffer::around(input);
            loop {
                if out.len() == out.capacity() && !grow(&mut out, max) {
                    return Err(DecompressError::TooLarge { max });
                }
                let (read, wrote) = (source.pos(), out.len());
                // Written after what `out` holds; its length follows what zstd writes.
                let hint = dctx
                    .decompress_stream(&mut OutBuffer::around_pos(&mut out, wrote), &mut source)
                    .map_err(|code| {
                        let window = ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge;
                        if zstd_safe::is_error_kind(code, window) {
                            DecompressError::TooLarge { max }
                        } else {
                            corrupt
                        }
                    })?;
                // A frame ended where the input does: done (frames may follow each other).
                if hint == 0 && source.pos() == input.len() {
                    break;
                }
                if source.pos() == read && out.len() == wrote && out.len() < out.capacity() {
                    return Err(corrupt);
                }
            }
            Ok(())
        })?;
        if out.len() > max {
            return Err(DecompressError::TooLarge { max });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lists() {
        for c in [Compression::Identity, Compression::Gzip, Compression::Zstd] {
            assert_eq!(
                c.name().parse::<Compression>().ok(),
                c.is_supported().then_some(c)
            );
            assert_eq!(
                Compression::from_header(c.name().as_bytes()),
                c.is_supported().then_some(c)
            );
        }
        if Compression::Gzip.is_supported() {
            assert_eq!(" GZip ".parse::<Compression>().unwrap(), Compression::Gzip);
        }
        assert_eq!(
            "none".parse::<Compression>().unwrap(),
            Compression::Identity
        );
        let err = "snappy".parse::<Compression>().unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(Compression::from_header(b"snappy"), None);
        assert_eq!(
            Compression::from_header(b"GZIP"),
            None,
            "names are lower case"
        );
        assert!(accepts(b"identity, deflate, gzip", Compression::Gzip));
        assert!(accepts(b"gzip,zstd", Compression::Zstd));
        assert!(!accepts(b"identity,deflate", Compression::Gzip));
        assert!(!accepts(b"gzipx", Compression::Gzip));
        assert!(accepts(b"", Compression::Identity));
        let err = unsupported_request(b"snappy");
        assert_eq!(err.code(), Code::Unimplemented);
        assert!(err.detail().contains(ACCEPT_ENCODING), "{err}");
    }

    #[test]
    fn response_encodings() {
        let mut h = HeaderMap::new();
        assert_eq!(response_encoding(&h).unwrap(), Compression::Identity);
        h.insert(GRPC_ENCODING, HeaderValue::from_static("snappy"));
        assert_eq!(response_encoding(&h).unwrap_err().code(), Code::Internal);
        h.insert(GRPC_ENCODING, HeaderValue::from_static("identity"));
        assert_eq!(response_encoding(&h).unwrap(), Compression::Identity);
    }

    #[test]
    fn identity_is_never_a_decompression() {
        assert_eq!(
            decompress(Compression::Identity, b"abc", 10),
            Err(DecompressError::Corrupt(Compression::Identity))
        );
        let mut out = vec![1];
        compress(Compression::Identity, b"abc", &mut out).unwrap();
        assert_eq!(out, b"\x01abc");
    }

    #[cfg(not(feature = "compression"))]
    #[test]
    fn without_the_feature_only_identity_is_spoken() {
        assert_eq!(
            "gzip".parse::<Compression>().unwrap_err().code(),
            Code::Unimplemented
        );
        assert_eq!(Compression::from_header(b"gzip"), None);
        assert_eq!(
            Error::from(decompress(Compression::Zstd, b"", 10).unwrap_err()).code(),
            Code::Unimplemented
        );
        assert_eq!(ACCEPT_ENCODING, "identity");
    }

    #[cfg(feature = "compression")]
    mod codecs {
        use super::*;

        const BOTH: [Compression; 2] = [Compression::Gzip, Compression::Zstd];

        fn squeeze(c: Compression, input: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            compress(c, input, &mut out).unwrap();
            out
        }

        #[test]
        fn round_trips() {
            let mut rng = fastrand::Rng::with_seed(3);
            let random: Vec<u8> = (0..100_000).map(|_| rng.u8(..)).collect();
            let text = "Hello, World! ".repeat(10_000).into_bytes();
            for c in BOTH {
                for input in [&b""[..], b"x", b"Hello, Ada!", &text, &random] {
                    let packed = squeeze(c, input);
                    let back = decompress(c, &packed, input.len()).unwrap();
                    assert_eq!(back, input, "{c}, {} bytes", input.len());
                }
                // Text shrinks; random bytes don't grow by much.
                assert!(squeeze(c, &text).len() < text.len() / 50, "{c}");
                assert!(squeeze(c, &random).len() < random.len() + 1024, "{c}");
                // Appended after what the buffer holds.
                let mut out = b"head".to_vec();
                compress(c, b"tail", &mut out).unwrap();
                assert_eq!(&out[..4], b"head");
                assert_eq!(decompress(c, &out[4..], 4).unwrap(), b"tail");
            }
        }

        /// A message of 1 MiB of zeros compresses to a few KiB: it decompresses with a limit
        /// of 1 MiB, and fails RESOURCE_EXHAUSTED below it without growing past the limit.
        #[test]
        fn bombs_stop_at_the_limit() {
            let bomb = vec![0u8; 1 << 20];
            for c in BOTH {
                let packed = squeeze(c, &bomb);
                assert!(packed.len() < 8 << 10, "{c}: {}", packed.len());
                assert_eq!(decompress(c, &packed, 1 << 20).unwrap().len(), 1 << 20);
                let err = decompress(c, &packed, 64 << 10).unwrap_err();
                assert_eq!(err, DecompressError::TooLarge { max: 64 << 10 }, "{c}");
                assert_eq!(Error::from(err).code(), Code::ResourceExhausted);
            }
            // A zstd frame that says it holds more than the limit is refused before any
            // output is made; one that does not say so is cut at the limit as it streams.
            let mut cctx = zstd::zstd_safe::CCtx::create();
            let mut unsized_frame = Vec::new();
            let mut source = zstd::zstd_safe::InBuffer::around(&bomb);
            unsized_frame.reserve(64 << 10);
            {
                let mut sink = zstd::zstd_safe::OutBuffer::around(&mut unsized_frame);
                while source.pos() < bomb.len() {
                    cctx.compress_stream(&mut sink, &mut source).unwrap();
                }
                while cctx.end_stream(&mut sink).unwrap() > 0 {}
            }
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&unsized_frame).unwrap(),
                None
            );
            assert_eq!(
                decompress(Compression::Zstd, &unsized_frame, 1 << 20)
                    .unwrap()
                    .len(),
                1 << 20
            );
            assert_eq!(
                decompress(Compression::Zstd, &unsized_frame, 1000),
                Err(DecompressError::TooLarge { max: 1000 })
            );
            // A frame asking for a window of 128 MiB (as zstd lets an encoder) is refused
            // before the decoder takes the memory, however small its content.
            let mut cctx = zstd::zstd_safe::CCtx::create();
            cctx.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
                .unwrap();
            let mut wide = Vec::with_capacity(1024);
            {
                let mut sink = zstd::zstd_safe::OutBuffer::around(&mut wide);
                let mut source = zstd::zstd_safe::InBuffer::around(b"tiny");
                cctx.compress_stream(&mut sink, &mut source).unwrap();
                while cctx.end_stream(&mut sink).unwrap() > 0 {}
            }
            assert_eq!(
                decompress(Compression::Zstd, &wide, 1 << 20),
                Err(DecompressError::TooLarge { max: 1 << 20 })
            );
            assert_eq!(
                decompress(Compression::Zstd, &wide, 128 << 20).unwrap(),
                b"tiny"
            );
            // A gzip member that lies about its size (ISIZE) is still cut at the limit.
            let mut liar = squeeze(Compression::Gzip, &bomb);
            let at = liar.len() - 4;
            liar[at..].copy_from_slice(&10u32.to_le_bytes());
            assert_eq!(
                decompress(Compression::Gzip, &liar, 1000),
                Err(DecompressError::TooLarge { max: 1000 })
            );
        }

        #[test]
        fn corrupt_input_is_internal_never_a_panic() {
            let text = "Hello, World! ".repeat(100).into_bytes();
            for c in BOTH {
                let packed = squeeze(c, &text);
                let corrupt = DecompressError::Corrupt(c);
                assert_eq!(decompress(c, b"", 100), Err(corrupt));
                assert_eq!(decompress(c, b"not compressed", 100), Err(corrupt));
                // Cut short.
                assert_eq!(
                    decompress(c, &packed[..packed.len() - 1], 10_000),
                    Err(corrupt)
                );
                assert_eq!(Error::from(corrupt).code(), Code::Internal);
            }
            // A flipped bit in the data: the gzip CRC catches what deflate lets through.
            let mut packed = squeeze(Compression::Gzip, &text);
            let at = packed.len() - 12;
            packed[at] ^= 1;
            assert!(decompress(Compression::Gzip, &packed, 10_000).is_err());
            // Random bytes.
            let mut rng = fastrand::Rng::with_seed(5);
            for _ in 0..2_000 {
                let mut bytes: Vec<u8> = (0..rng.usize(..64)).map(|_| rng.u8(..)).collect();
                if rng.bool() && bytes.len() > 10 {
                    bytes[..10].copy_from_slice(&[0x1f, 0x8b, 8, rng.u8(..), 0, 0, 0, 0, 0, 0]);
                }
                for c in BOTH {
                    let _ = decompress(c, &bytes, 1000);
                }
            }
        }

        /// gzip members written by other gzip writers: with a file name and a comment, and
        /// two members one after the other (as `cat a.gz b.gz`).
        #[test]
        fn gzip_of_other_writers() {
            use std::io::Write;
            let mut named = flate2::GzBuilder::new()
                .filename("a.txt")
                .comment("made by flate2")
                .extra(b"xx".to_vec())
                .write(Vec::new(), flate2::Compression::best());
            named.write_all(b"first ").unwrap();
            let mut two = named.finish().unwrap();
            two.extend(squeeze(Compression::Gzip, b"second"));
            assert_eq!(
                decompress(Compression::Gzip, &two, 100).unwrap(),
                b"first second"
            );
            assert_eq!(
                decompress(Compression::Gzip, &two, 8),
                Err(DecompressError::TooLarge { max: 8 })
            );
        }

        #[test]
        fn unknown_names_are_not_decoded() {
            let mut h = HeaderMap::new();
            h.insert(GRPC_ENCODING, HeaderValue::from_static("deflate"));
            let err = response_encoding(&h).unwrap_err();
            assert!(err.detail().contains("\"deflate\""), "{err}");
            h.insert(GRPC_ENCODING, HeaderValue::from_static("zstd"));
            assert_eq!(response_encoding(&h).unwrap(), Compression::Zstd);
        }
    }
}
