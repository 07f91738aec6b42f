//! Doc comments of generated items: the proto comments of a service or an rpc, then lines
//! the generator adds.

use proc_macro2::TokenStream;
use prost_build::Comments;
use quote::quote;

/// `#[doc]` attributes of proto comments, then `extra` lines.
pub(super) fn docs(comments: &Comments, extra: &[String]) -> TokenStream {
    let lines = comments
        .leading
        .iter()
        .chain(&comments.trailing)
        .cloned()
        .chain(extra.iter().cloned());
    let lines: Vec<String> = lines
        .map(|l| {
            if l.starts_with(' ') || l.is_empty() {
                l
            } else {
                format!(" {l}")
            }
        })
        .collect();
    quote! { #(#[doc = #lines])* }
}
