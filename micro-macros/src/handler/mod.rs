//! `#[handler]`: the endpoints of a service, from the async methods of an `impl` block, and
//! its subscribers, from the methods marked `#[micro(subscribe = "topic")]`.
//!
//! The block is kept as written (less the `#[micro(...)]` attributes of its methods), and an
//! implementation of `micro_runtime::codegen::Endpoints` is added that registers each method
//! with `Handler::unary`: the same registration generated-from-proto code makes, so a call
//! costs the same. Checks the compiler makes anyway (a request type that is not a message, a
//! future that is not `Send`) are made at the spans of the user's tokens, so the errors point
//! at the method, not at the attribute.
//!
//! - `attrs`: the attributes the macro reads, its arguments and the methods' options;
//! - `method`: one method read and checked, as an endpoint or a subscriber;
//! - `block`: the block checked as a whole;
//! - `emit`: the `Endpoints` implementation.

mod attrs;
mod block;
mod emit;
mod method;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ImplItem;

use block::Block;
use method::Endpoint;

/// The attribute's output: the block, and its `Endpoints` implementation or the errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut imp = match syn::parse2::<syn::Item>(item) {
        Ok(syn::Item::Impl(imp)) => imp,
        Ok(other) => {
            let err = syn::Error::new(
                Span::call_site(),
                "`#[handler]` goes on an `impl` block: `#[handler] impl Calc { async fn add(&self, req: AddRequest) -> Result<AddResponse, Error> { ... } }`",
            )
            .into_compile_error();
            return quote!(#other #err);
        }
        Err(e) => return e.into_compile_error(),
    };
    // The endpoints are read (and their attributes taken off) first, so that the block is
    // emitted without them even when there are errors: the user sees those errors, not
    // follow-on ones about an unknown `micro` attribute or a vanished method.
    let endpoints: Vec<_> = imp
        .items
        .iter_mut()
        .filter_map(|item| match item {
            ImplItem::Fn(f) => Some(Endpoint::parse(f)),
            _ => None,
        })
        .collect();
    match Block::check(args, &imp, endpoints).map(|block| emit::endpoints_impl(&imp, &block)) {
        Ok(endpoints) => quote!(#imp #endpoints),
        Err(e) => {
            let e = e.into_compile_error();
            quote!(#imp #e)
        }
    }
}

/// Adds `err` to the errors in `into`.
fn combine(into: &mut syn::Result<()>, err: syn::Error) {
    match into {
        Ok(()) => *into = Err(err),
        Err(e) => e.combine(err),
    }
}
