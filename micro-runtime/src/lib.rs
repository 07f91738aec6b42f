//! The runtime of micro for Rust: the pluggable parts a microservice is made of, with
//! go-micro's concepts, settings and registry format, and gRPC on the wire so any standard
//! gRPC client can call its services.
//!
//! Most programs use [`Service`] and the code `protoc-gen-micro` generates from a `.proto`.
//! From `proto/greeter.proto`:
//!
//! ```proto
//! syntax = "proto3";
//! package greeter;
//! service Greeter { rpc Hello(HelloRequest) returns (HelloResponse); }
//! message HelloRequest { string name = 1; }
//! message HelloResponse { string greeting = 1; }
//! ```
//!
//! `build.rs` runs `protoc_gen_micro::compile_protos(&["proto/greeter.proto"], &["proto"])`
//! (no `protoc` needed), and the crate includes the generated module. A server implements
//! the generated `Greeter` trait and registers it:
//!
//! ```no_run
//! mod greeter {
//!     // In your crate: micro_runtime::include_proto!("greeter");
//!     # include!("../../protoc-gen-micro/tests/golden/greeter/greeter.rs");
//! }
//! use greeter::{HelloRequest, HelloResponse};
//! use micro_runtime::{Context, Error, Service};
//!
//! struct Hello;
//!
//! impl greeter::Greeter for Hello {
//!     async fn hello(&self, _ctx: Context, req: HelloRequest) -> Result<HelloResponse, Error> {
//!         Ok(HelloResponse { greeting: format!("Hello, {}!", req.name) })
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> micro_runtime::Result<()> {
//!     // go-micro's flags and MICRO_* variables: --registry, --server_address, ...
//!     let service = Service::builder().name("greeter").from_args().build()?;
//!     greeter::register_greeter_handler(service.server(), Hello)?;
//!     service.run().await // logs its start, serves until SIGINT/SIGTERM, deregisters, drains
//! }
//! ```
//!
//! A client, in another process, finds `greeter` through the registry (the host-wide `local`
//! one by default) and calls it:
//!
//! ```no_run
//! # mod greeter { include!("../../protoc-gen-micro/tests/golden/greeter/greeter.rs"); }
//! // mod greeter { micro_runtime::include_proto!("greeter"); }, as in the server
//! use greeter::{GreeterClient, HelloRequest};
//! use micro_runtime::Service;
//!
//! #[tokio::main]
//! async fn main() -> micro_runtime::Result<()> {
//!     let service = Service::builder().name("greeter-client").from_args().build()?;
//!     let client = GreeterClient::new("greeter", service.client());
//!     let rsp = client.hello(HelloRequest { name: "World".into() }).await?;
//!     println!("{}", rsp.greeting); // Hello, World!
//!     Ok(())
//! }
//! ```
//!
//! Both in one process, as a test would run them (this one runs):
//!
//! ```
//! # mod greeter { include!("../../protoc-gen-micro/tests/golden/greeter/greeter.rs"); }
//! # use greeter::{HelloRequest, HelloResponse};
//! # use micro_runtime::{Context, Error};
//! # struct Hello;
//! # impl greeter::Greeter for Hello {
//! #     async fn hello(&self, _ctx: Context, req: HelloRequest) -> Result<HelloResponse, Error> {
//! #         Ok(HelloResponse { greeting: format!("Hello, {}!", req.name) })
//! #     }
//! # }
//! use std::sync::Arc;
//! use micro_runtime::registry::memory::MemoryRegistry;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> micro_runtime::Result<()> {
//! let registry = Arc::new(MemoryRegistry::new());
//! let server = micro_runtime::Service::builder()
//!     .name("greeter")
//!     .address("127.0.0.1:0")
//!     .registry(registry.clone())
//!     .default_logging(false)
//!     .build()?;
//! greeter::register_greeter_handler(server.server(), Hello)?;
//! server.start().await?;
//!
//! let client = greeter::GreeterClient::new("greeter", server.client());
//! let rsp = client.hello(HelloRequest { name: "World".into() }).await?;
//! assert_eq!(rsp.greeting, "Hello, World!");
//! server.stop().await
//! # }
//! ```
//!
//! Services without a `.proto` use the macros instead (feature `macros`): `#[handler]` makes
//! an `impl` block's async methods endpoints, `#[derive(Message)]` makes serde or prost types
//! their messages, and [`Client::call_endpoint`] calls them by name.
//!
//! # Layout
//! - [`service`]: [`Service`], its builder, lifecycle hooks and signal handling;
//! - [`api`]: go-micro's API gateway paths: which service and endpoint an HTTP path names;
//! - [`server`]: the gRPC server and [`Handler`] registration;
//! - [`broker`]: pub/sub: the [`broker::Broker`] trait, the `memory` and `http` backends
//!   (`nats`, `jetstream` and `rabbitmq` by feature);
//! - [`client`]: calls by service name: cache, selector, connection pool, retries, timeouts;
//! - [`stream`]: the streams of streaming calls, on both sides;
//! - [`registry`]: the [`Registry`] trait, records, and the `memory` and `local` backends
//!   (`mdns` and `etcd` by feature);
//! - [`selector`]: the [`Selector`] trait, `random`, `roundrobin`, `leastloaded` and `hash`
//!   (consistent hashing), and outlier ejection;
//! - [`codec`]: protobuf and JSON;
//! - [`transport`]: gRPC framing, bodies and headers over HTTP/2;
//! - [`error`]: [`Error`], convertible to gRPC status and go-micro's JSON error;
//! - [`health`]: the standard gRPC health service every server answers;
//! - [`options`]: go-micro's flags and `MICRO_*` variables;
//! - [`codegen`]: what generated code uses.
//!
//! # Feature flags
//! The `memory` and `local` registries and the `memory` and `http` brokers are always built
//! in; other backends are features, none of them on by default:
//!
//! | feature | adds |
//! |---|---|
//! | `mdns` | `registry::mdns`, `--registry mdns`: multicast DNS between the hosts of one LAN, no server (the `mdns-sd` crate) |
//! | `etcd` | `registry::etcd`, `--registry etcd`: etcd in go-micro's layout, shared with Go services; TLS and authentication (this crate's own gRPC client on etcd's v3 API: no `protoc` to build) |
//! | `tls` | `transport::tls`: TLS for clients (rustls on ring); on with `etcd` |
//! | `nats` | `broker::nats`, `--broker nats` (NATS core) and `--broker jetstream` (at-least-once) (the `async-nats` crate) |
//! | `macros` | `#[handler]` and `#[derive(Message)]`: services from plain Rust types and methods, no `.proto` (the `micro-macros` crate) |
//! | `rabbitmq` | `broker::rabbitmq`, `--broker rabbitmq`: go-micro's durable topic exchange, durable queues per queue group, publisher confirms, at-least-once delivery (the `lapin` crate, on tokio) |

pub mod api;
pub mod broker;
pub mod client;
pub mod codec;
pub mod codegen;
mod context;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod health;
mod id;
pub mod logging;
pub mod options;
#[cfg(any(feature = "etcd", feature = "nats", feature = "rabbitmq"))]
mod redact;
pub mod registry;
pub mod selector;
pub mod server;
pub mod service;
pub mod stream;
pub mod transport;

pub use client::{AsCallOptions, CallOptions, Client, ClientOptions, Method};
pub use codec::{Codec, Message};
pub use context::{Context, Metadata};
pub use error::{Code, Error, Result};
/// Derives [`Message`](trait@Message) (and [`codec::Describe`]) for a serde or prost type.
#[cfg(feature = "macros")]
pub use micro_macros::Message;
/// Makes an `impl` block's async methods the endpoints of a service.
#[cfg(feature = "macros")]
pub use micro_macros::handler;
pub use options::Options;
pub use registry::Registry;
pub use selector::Selector;
pub use server::{Handler, IntoHandler, Server, ServerOptions, Subscriber, register_subscriber};
pub use service::{Service, ServiceBuilder};
pub use stream::{BoxStream, CallStream, Streaming};
pub use transport::compression::Compression;

/// The protobuf runtime generated messages derive from (`prost::Message` for `encode_to_vec`).
pub use prost;
/// protobuf's well-known types (`prost_types::Timestamp`, `Duration`, `Any`, `Struct`, ...),
/// which generated code uses for `google.protobuf.*` fields: no dependency of your own needed.
pub use prost_types;

/// Includes the code generated for a proto package by `protoc_gen_micro::compile_protos`:
/// `micro_runtime::include_proto!("greeter")` in a `mod greeter { ... }`.
///
/// Packages that refer to each other must sit where their names put them (prost writes
/// `super::common::Money` from package `shop` to package `common`); [`include_protos!`] does
/// that for every package at once.
#[macro_export]
macro_rules! include_proto {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// Includes the code generated for every proto package by `protoc_gen_micro::compile_protos`,
/// each in the module its package names (`shop.v1` in `pub mod shop { pub mod v1 { .. } }`),
/// so references across packages resolve (as `build.rs` output, it compiles only in a crate
/// whose build ran the generator, as the crate `micro new` makes):
///
/// ```text
/// micro_runtime::include_protos!();
/// use shop::v1::{OrdersClient, GetOrderRequest};
/// ```
#[macro_export]
macro_rules! include_protos {
    () => {
        include!(concat!(env!("OUT_DIR"), "/_micro_includes.rs"));
    };
}
