//! Shared by the benches: tonic's greeter, and servers on their own runtimes.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use examples::{Hello, greeter};
use micro_runtime::Service;
use micro_runtime::registry::memory::MemoryRegistry;

pub mod tonic_greeter {
    tonic::include_proto!("greeter");
}

pub mod tonic_echo {
    tonic::include_proto!("echo");
}

use tonic_greeter::greeter_server::{Greeter as TonicGreeterTrait, GreeterServer};

/// tonic's greeter, as `examples/tonic-greeter.rs` serves it.
pub struct TonicHello;

#[tonic::async_trait]
impl TonicGreeterTrait for TonicHello {
    async fn hello(
        &self,
        r: tonic::Request<tonic_greeter::HelloRequest>,
    ) -> Result<tonic::Response<tonic_greeter::HelloResponse>, tonic::Status> {
        let greeting = format!("Hello, {}!", r.into_inner().name);
        Ok(tonic::Response::new(tonic_greeter::HelloResponse {
            greeting,
        }))
    }
}

/// A runtime with `workers` threads named `name-N`.
pub fn runtime(name: &'static str, workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Our greeter on 127.0.0.1, registered in `registry`.
pub fn start_micro(
    rt: &tokio::runtime::Runtime,
    registry: Arc<MemoryRegistry>,
) -> (Service, SocketAddr) {
    start_with(rt, registry, |server| {
        greeter::register_greeter_handler(server, Hello)
    })
}

/// A `greeter` service on 127.0.0.1, registered in `registry`, its handlers added by
/// `register`.
pub fn start_with(
    rt: &tokio::runtime::Runtime,
    registry: Arc<MemoryRegistry>,
    register: impl FnOnce(&micro_runtime::Server) -> micro_runtime::Result<()>,
) -> (Service, SocketAddr) {
    rt.block_on(async {
        let service = Service::builder()
            .name("greeter")
            .address("127.0.0.1:0")
            .registry(registry)
            .build()
            .expect("service");
        register(service.server()).expect("register");
        let addr = service.start().await.expect("start");
        (service, addr)
    })
}

/// tonic's greeter on 127.0.0.1.
pub fn start_tonic(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_service(GreeterServer::new(TonicHello))
            .serve_with_incoming(incoming)
            .await
            .expect("tonic server");
    });
    addr
}

/// Our echo on 127.0.0.1, registered in `registry` as `echo`.
pub fn start_micro_echo(rt: &tokio::runtime::Runtime, registry: Arc<MemoryRegistry>) -> Service {
    rt.block_on(async {
        let service = Service::builder()
            .name("echo")
            .address("127.0.0.1:0")
            .registry(registry)
            .build()
            .expect("service");
        examples::echo::register_echo_handler(service.server(), examples::Echo).expect("register");
        service.start().await.expect("start");
        service
    })
}

/// tonic's echo: the same four methods as `examples::Echo` (without the `fail` switch).
pub struct TonicEcho;

type TonicStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<tonic_echo::EchoResponse, tonic::Status>> + Send>,
>;

#[tonic::async_trait]
impl tonic_echo::echo_server::Echo for TonicEcho {
    async fn unary(
        &self,
        r: tonic::Request<tonic_echo::EchoRequest>,
    ) -> Result<tonic::Response<tonic_echo::EchoResponse>, tonic::Status> {
        let message = r.into_inner().message;
        Ok(tonic::Response::new(tonic_echo::EchoResponse {
            message,
            index: 0,
        }))
    }

    type ServerStreamStream = TonicStream;

    async fn server_stream(
        &self,
        r: tonic::Request<tonic_echo::EchoRequest>,
    ) -> Result<tonic::Response<TonicStream>, tonic::Status> {
        use futures_util::StreamExt;
        let req = r.into_inner();
        let replies = futures_util::stream::iter(0..req.count).map(move |index| {
            Ok(tonic_echo::EchoResponse {
                message: req.message.clone(),
                index,
            })
        });
        Ok(tonic::Response::new(Box::pin(replies)))
    }

    async fn client_stream(
        &self,
        r: tonic::Request<tonic::Streaming<tonic_echo::EchoRequest>>,
    ) -> Result<tonic::Response<tonic_echo::EchoResponse>, tonic::Status> {
        let mut requests = r.into_inner();
        let mut messages = Vec::new();
        while let Some(req) = requests.message().await? {
            messages.push(req.message);
        }
        let index = messages.len() as u32;
        Ok(tonic::Response::new(tonic_echo::EchoResponse {
            message: messages.join(","),
            index,
        }))
    }

    type BidiStream = TonicStream;

    async fn bidi(
        &self,
        r: tonic::Request<tonic::Streaming<tonic_echo::EchoRequest>>,
    ) -> Result<tonic::Response<TonicStream>, tonic::Status> {
        use futures_util::StreamExt;
        let replies = r.into_inner().enumerate().map(|(index, req)| {
            let req = req?;
            Ok(tonic_echo::EchoResponse {
                message: req.message,
                index: index as u32,
            })
        });
        Ok(tonic::Response::new(Box::pin(replies)))
    }
}

/// tonic's echo on 127.0.0.1.
pub fn start_tonic_echo(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_service(tonic_echo::echo_server::EchoServer::new(TonicEcho))
            .serve_with_incoming(incoming)
            .await
            .expect("tonic server");
    });
    addr
}
