//! The floor of `benches/grpc-compare`: hyper's HTTP/2 server answering every request with one
//! fixed `greeter.Greeter/Hello` reply (`Hello, World!`, then `grpc-status: 0`). No routing, no
//! decoding, no handler: whatever a gRPC framework does costs on top of this.
//!
//! Usage: `raw-h2 [ADDR]` (default `127.0.0.1:50052`).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

type Frames = std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>;

/// A body made of a fixed list of frames: one data frame, then the trailers.
struct Fixed(Frames);

impl futures_util::Stream for Fixed {
    type Item = Result<Frame<Bytes>, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next())
    }
}

async fn handle(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<StreamBody<Fixed>>, Infallible> {
    let _ = request.into_body().collect().await;
    let message = Bytes::from_static(b"\x00\x00\x00\x00\x0f\x0a\x0dHello, World!");
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
    let frames = vec![Ok(Frame::data(message)), Ok(Frame::trailers(trailers))];
    let mut response = Response::new(StreamBody::new(Fixed(frames.into_iter())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/grpc"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50052".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(handle))
                .await;
        });
    }
}
