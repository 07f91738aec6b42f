//! prost-build's service generator: for each service, the typed client ([`super::client`])
//! and the handler trait with its register function ([`super::server`]), written after the
//! package's messages.

use proc_macro2::TokenStream;
use prost_build::{Service, ServiceGenerator};
use quote::quote;

use super::names::qualified;
use super::{client, server};

/// Writes the micro code of each service.
pub(super) struct Services;

impl ServiceGenerator for Services {
    fn generate(&mut self, service: Service, buf: &mut String) {
        buf.push_str(&service_code(&service).to_string());
        buf.push('\n');
    }
}

fn service_code(service: &Service) -> TokenStream {
    let full = qualified(&service.package, &service.proto_name);
    // Methods named by Rust's conventions for other receivers (`rpc New` is `fn new(&self,
    // ..)`, `rpc IntoList` `fn into_list(&self, ..)`): clippy's `wrong_self_convention` would
    // flag the handler trait and the client in the user's crate.
    let conventions = if service.methods.iter().any(|m| {
        m.name == "new"
            || ["as_", "from_", "into_", "is_", "to_"]
                .iter()
                .any(|p| m.name.starts_with(p))
    }) {
        quote!(#[allow(clippy::wrong_self_convention)])
    } else {
        quote!()
    };
    let client = client::client(service, &full, &conventions);
    let server = server::server(service, &full, &conventions);
    quote! {
        #client
        #server
    }
}
