//! The Rust names of what is generated: proto names qualified by their package,
//! identifiers and type paths as prost writes them, and the client's method names.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// `package.name`, or `name` in the root package.
pub(super) fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// The client methods of one rpc.
pub(super) struct ClientNames {
    /// The call with default options: the rpc's handler method name (`say_hello`), with a
    /// trailing underscore where that name is taken (see [`client_names`]).
    pub(super) call: String,
    /// The call with options: `say_hello_with`.
    pub(super) with: String,
    /// Why `call` got its underscore, for its doc comment.
    pub(super) renamed: Option<String>,
}

/// The client methods of a service's rpcs, from their handler method names (prost's snake
/// case, keywords escaped: `say_hello`, `r#type`, `self_`).
///
/// Each rpc gets `name` and `name_with`. A `name` that is taken gets a trailing underscore,
/// as prost's keyword escaping does (`self_`): `new` (the client's constructor), and a name
/// that is another rpc's call with options (`rpc HelloWith` next to `rpc Hello`, whose
/// `hello_with` it would be). Its `_with` is unchanged (`new_with`, `hello_with_with`).
/// Names that still clash are an error of [`check_names`](super::check::check_names).
pub(super) fn client_names(methods: &[&str]) -> Vec<ClientNames> {
    let with = |name: &str| {
        format!(
            "{}_with",
            name.trim_start_matches("r#").trim_end_matches('_')
        )
    };
    methods
        .iter()
        .map(|&name| {
            let renamed = if name == "new" {
                Some(" `new` is the client's constructor.".to_owned())
            } else if name == "clone" {
                // An inherent `clone(&self, request)` would hide the client's `Clone`.
                Some(" `clone` is the client's `Clone::clone`.".to_owned())
            } else {
                let base = methods.iter().find(|&&m| with(m) == name);
                base.map(|base| format!(" `{name}` is [`Self::{base}`]'s call with options."))
            };
            let call = match renamed {
                Some(_) => format!("{name}_"),
                None => name.to_owned(),
            };
            ClientNames {
                call,
                with: with(name),
                renamed: renamed.map(|why| format!(" Named `{name}_`:{why}")),
            }
        })
        .collect()
}

/// An identifier, raw (`r#type`) when prost escaped it so.
pub(super) fn ident(s: &str) -> syn::Ident {
    match s.strip_prefix("r#") {
        Some(raw) => format_ident!("r#{}", raw),
        None => format_ident!("{}", s),
    }
}

/// A Rust path as prost writes it (`HelloRequest`, `super::other::Msg`, `::prost_types::Empty`).
pub(super) fn type_path(s: &str) -> TokenStream {
    s.parse().unwrap_or_else(|_| quote!(#s))
}
