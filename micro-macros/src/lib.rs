//! Macros of micro for Rust: services from plain Rust types and methods, with no `.proto`.
//! What go-micro does by reflection at run time (any struct's methods become endpoints),
//! done at compile time.
//!
//! Use them through `micro-runtime` with its `macros` feature, as
//! `micro_runtime::handler` and `micro_runtime::Message`; the code they write refers to
//! `::micro_runtime`, so depend on it under that name.
//!
//! ```
//! use micro_runtime::{Context, Error, Message, Server, handler};
//! use serde::{Deserialize, Serialize};
//!
//! /// What `Calculator.Add` takes.
//! #[derive(Serialize, Deserialize, Message)]
//! struct AddRequest {
//!     a: i64,
//!     b: i64,
//! }
//!
//! /// What it answers.
//! #[derive(Serialize, Deserialize, Message)]
//! struct AddResponse {
//!     result: i64,
//! }
//!
//! struct Calc;
//!
//! #[handler(name = "Calculator")]
//! impl Calc {
//!     /// `Calculator.Add`.
//!     async fn add(&self, _ctx: Context, req: AddRequest) -> Result<AddResponse, Error> {
//!         Ok(AddResponse { result: req.a + req.b })
//!     }
//! }
//!
//! # fn register(server: &Server) -> micro_runtime::Result<()> {
//! server.handle(Calc)?; // registers Calculator.Add, its request and response described
//! # Ok(()) }
//! ```
//!
//! Misuse (a method that is not `async`, a wrong signature, a future that is not `Send`, two
//! methods answering one endpoint, a message type the registry cannot describe) is a
//! compiler error at the offending code, never a panic.
//!
//! # Layout
//! - `handler`: `#[handler]`, endpoints from an `impl` block;
//! - `message`: `#[derive(Message)]`, codecs and registry descriptions of a type;
//! - `ident`: case conversion (endpoint names, serde's renaming rules).
//!
//! # Feature flags
//! None.

use proc_macro::TokenStream;

mod handler;
mod ident;
mod message;

/// Makes the async methods of an `impl` block the endpoints of a service, so
/// `micro_runtime::Server::handle` takes the type itself (or an `Arc` of it).
///
/// ```
/// # use micro_runtime::{Context, Error, Message, handler};
/// # #[derive(serde::Serialize, serde::Deserialize, Message)] struct AddRequest { a: i64, b: i64 }
/// # #[derive(serde::Serialize, serde::Deserialize, Message)] struct AddResponse { result: i64 }
/// struct Calc;
///
/// #[handler(name = "Calculator")]
/// impl Calc {
///     /// `Calculator.Add`: the context is optional.
///     async fn add(&self, req: AddRequest) -> Result<AddResponse, Error> {
///         Ok(AddResponse { result: req.a + req.b })
///     }
///
///     /// `Calculator.Sum`, renamed; any error type that converts into `micro_runtime::Error`.
///     #[micro(name = "Sum")]
///     async fn total(&self, ctx: Context, req: AddRequest) -> Result<AddResponse, Error> {
///         let _caller = ctx.metadata().get("x-user");
///         self.add(req).await
///     }
/// }
///
/// let handler = micro_runtime::IntoHandler::into_handler(Calc);
/// let names: Vec<_> = handler.endpoints().into_iter().map(|e| e.name).collect();
/// assert_eq!(names, ["Calculator.Add", "Calculator.Sum"]);
/// ```
///
/// Arguments, all optional:
/// - `name = "Calculator"`: the handler's name, the first half of its endpoint names
///   (`Calculator.Add`) and of its gRPC paths; the type's name when not given;
/// - `package = "calc"`: a proto package, for the standard gRPC path
///   `/calc.Calculator/Add`. The server also answers go-micro's path
///   `/<registered service name>.Calculator/Add`, which needs no package.
///
/// Every method of the block is an endpoint: `async fn name(&self, [ctx: Context,] req: Req)
/// -> Result<Rsp, E>` where `Req` and `Rsp` implement `micro_runtime::Message` and
/// `E: Into<micro_runtime::Error>`; the receiver may also be `self: Arc<Self>`. The
/// endpoint is the method's name in UpperCamelCase (`say_hello` answers `SayHello`), or
/// the one given by `#[micro(name = "...")]` on the method. Helpers go in another `impl`
/// block. The type must be `Send + Sync + 'static`, and the methods' futures `Send`.
///
/// A method marked `#[micro(subscribe = "topic")]` (and optionally `queue = "group"`) is a
/// subscriber instead (go-micro's subscriber methods): `async fn name(&self, [ctx: Context,]
/// msg: Msg) -> Result<(), E>`, subscribed to the topic when the server that handles the
/// type starts, and listed in the registry with the topic:
///
/// ```
/// # use micro_runtime::{Context, Error, Message, handler};
/// # #[derive(serde::Serialize, serde::Deserialize, Message)] struct Created { id: u64 }
/// struct Mailer;
///
/// #[handler]
/// impl Mailer {
///     /// One mail per created user, from one member of the `mailers` group.
///     #[micro(subscribe = "user.created", queue = "mailers")]
///     async fn on_created(&self, _ctx: Context, user: Created) -> Result<(), Error> {
///         println!("mail to user {}", user.id);
///         Ok(())
///     }
/// }
///
/// let handler = micro_runtime::IntoHandler::into_handler(Mailer);
/// assert_eq!(handler.subscribers()[0].topic(), "user.created");
/// assert_eq!(handler.subscribers()[0].options().get_queue(), Some("mailers"));
/// ```
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(args.into(), item.into()).into()
}

/// Implements `micro_runtime::Message` and `micro_runtime::codec::Describe` for a struct
/// with named fields, so it can be a request or response of an endpoint.
///
/// By default the struct is a serde type (derive `Serialize` and `Deserialize` too) that
/// speaks JSON (`application/grpc+json`): clients send it so without being asked, and a
/// protobuf request is answered `INVALID_ARGUMENT`. With `#[micro(proto)]` it is a prost
/// message (derive `prost::Message`) that speaks protobuf; `#[micro(proto, json)]` speaks
/// both (derive all four).
///
/// ```
/// use micro_runtime::Message;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Message)]
/// #[serde(rename_all = "camelCase")]
/// struct Order {
///     order_id: String,
///     lines: Vec<Line>,
///     #[micro(type = "timestamp")]
///     placed_at: String,
/// }
///
/// #[derive(Serialize, Deserialize, Message)]
/// struct Line {
///     sku: String,
///     count: u32,
/// }
///
/// let order = Order::describe();
/// assert_eq!(order.kind, "Order");
/// let fields: Vec<_> = order.values.iter().map(|v| (v.name.as_str(), v.kind.as_str())).collect();
/// assert_eq!(fields, [("orderId", "string"), ("lines", "[]Line"), ("placedAt", "timestamp")]);
/// assert_eq!(order.values[1].values[1].name, "count");
/// ```
///
/// The registry describes each field by name (as serde writes it: `rename`, `rename_all`,
/// `flatten` and `skip` are followed) and type: scalars by their protobuf names (`int64`,
/// `string`, ...), sequences as `[]item`, maps as `map<key,value>`, messages by name with
/// their fields nested. A field's type must implement `micro_runtime::codec::Describe`, or
/// the field be given a type name with `#[micro(type = "...")]`, or be left out of the
/// description with `#[micro(skip)]`. `#[micro(name = "...")]` on the struct sets the name
/// it is described by.
#[proc_macro_derive(Message, attributes(micro))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    message::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
