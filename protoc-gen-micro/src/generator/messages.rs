//! What each package's module gets after prost's code: its descriptors, embedded as
//! `FILE_DESCRIPTOR_SET`, and the `Message` impls of its messages, each with its registry
//! description.

use proc_macro2::{Literal, TokenStream};
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};
use quote::quote;

use super::descriptors::embedded_descriptors;
use super::names::ident;
use crate::Error;
use crate::describe;
use crate::ident::{to_snake, to_upper_camel};

/// The items after prost's code in the module of the package of `files`: the descriptors it
/// embeds (those of `files` and their imports, from `set`) and the `Message` impls of its
/// messages, described as `pool` has them.
pub(super) fn tail(
    pool: &prost_reflect::DescriptorPool,
    set: &FileDescriptorSet,
    files: &[&FileDescriptorProto],
) -> Result<TokenStream, Error> {
    let mut impls = TokenStream::new();
    for file in files {
        for msg in &file.message_type {
            message_impls(pool, file.package(), msg, &mut Vec::new(), &mut impls)?;
        }
    }
    let descriptors = Literal::byte_string(&embedded_descriptors(set, files));
    // The decoded descriptors serve the messages' `Message` impls: a package of enums
    // only has none, and an unused static would be a dead-code warning.
    let statics = if impls.is_empty() {
        quote!()
    } else {
        quote! {
            static DESCRIPTORS: ::micro_runtime::codegen::Descriptors =
                ::micro_runtime::codegen::Descriptors::new(FILE_DESCRIPTOR_SET);
        }
    };
    Ok(quote! {
        /// The descriptors of this package and its imports, encoded as a `FileDescriptorSet`.
        pub const FILE_DESCRIPTOR_SET: &[u8] = #descriptors;
        #statics
        #impls
    })
}

/// `impl_message!` for a message and its nested messages (map entries are not types).
fn message_impls(
    pool: &prost_reflect::DescriptorPool,
    package: &str,
    msg: &DescriptorProto,
    parents: &mut Vec<String>,
    out: &mut TokenStream,
) -> Result<(), Error> {
    if msg.options.as_ref().is_some_and(|o| o.map_entry()) {
        return Ok(());
    }
    let mut path: Vec<syn::Ident> = parents.iter().map(|p| ident(&to_snake(p))).collect();
    path.push(ident(&to_upper_camel(msg.name())));
    let full_name = parents.iter().map(String::as_str).chain([msg.name()]).fold(
        package.to_owned(),
        |acc, part| {
            if acc.is_empty() {
                part.to_owned()
            } else {
                format!("{acc}.{part}")
            }
        },
    );
    let desc = pool
        .get_message_by_name(&full_name)
        .ok_or_else(|| Error::MissingFile(format!("message {full_name}")))?;
    let value = describe::message(&desc);
    out.extend(quote! {
        ::micro_runtime::impl_message!(#(#path)::*, #full_name, DESCRIPTORS, #value);
    });
    parents.push(msg.name().to_owned());
    for nested in &msg.nested_type {
        message_impls(pool, package, nested, parents, out)?;
    }
    parents.pop();
    Ok(())
}
