//! Registry descriptions of messages, computed at generation time: go-micro's `Value` tree
//! (a message named and typed by its name, its fields nested), written into the generated
//! code as a constructor expression, so services describe their endpoints with no reflection
//! at run time.
//!
//! Like go-micro's extractor, nesting stops at depth 3 and at a message already being
//! described (recursive types).

use proc_macro2::TokenStream;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use quote::quote;

/// How deep fields are described (go-micro's limit).
const MAX_DEPTH: usize = 3;

/// The expression of the description of `msg`.
pub(crate) fn message(msg: &MessageDescriptor) -> TokenStream {
    let name = msg.name();
    let fields = fields(msg, 0, &mut Vec::new());
    quote!(::micro_runtime::codegen::value(#name, #name, ::std::vec![#(#fields),*]))
}

fn fields(msg: &MessageDescriptor, depth: usize, seen: &mut Vec<String>) -> Vec<TokenStream> {
    if depth >= MAX_DEPTH || seen.iter().any(|s| s == msg.full_name()) {
        return Vec::new();
    }
    seen.push(msg.full_name().to_owned());
    let out = msg.fields().map(|f| field(&f, depth + 1, seen)).collect();
    seen.pop();
    out
}

fn field(f: &FieldDescriptor, depth: usize, seen: &mut Vec<String>) -> TokenStream {
    let (kind, values) = match f.kind() {
        Kind::Message(m) if f.is_map() => {
            let key = m
                .get_field(1)
                .map(|k| kind_name(&k.kind()))
                .unwrap_or_default();
            let value = m
                .get_field(2)
                .map(|v| kind_name(&v.kind()))
                .unwrap_or_default();
            (format!("map<{key},{value}>"), Vec::new())
        }
        Kind::Message(m) => (m.name().to_owned(), fields(&m, depth, seen)),
        k => (kind_name(&k), Vec::new()),
    };
    let kind = if f.is_list() {
        format!("[]{kind}")
    } else {
        kind
    };
    let name = f.name();
    quote!(::micro_runtime::codegen::value(#name, #kind, ::std::vec![#(#values),*]))
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(m) => return m.name().to_owned(),
        Kind::Enum(e) => return e.name().to_owned(),
    }
    .to_owned()
}
