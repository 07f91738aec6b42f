//! The server side of a service: the handler trait (`Greeter`), one method per rpc, and the
//! register function (`register_greeter_handler`) that routes each rpc of a server to it,
//! under both the gRPC path and go-micro's.

use proc_macro2::TokenStream;
use prost_build::{Method, Service};
use quote::{format_ident, quote};

use super::docs::docs;
use super::names::{ident, type_path};
use crate::ident::to_snake;

/// The handler trait of `service` (`full` is its qualified proto name), under `conventions`,
/// the lints it allows, and its register function.
pub(super) fn server(service: &Service, full: &str, conventions: &TokenStream) -> TokenStream {
    let name = &service.name;
    let proto_name = &service.proto_name;
    let package = &service.package;
    let handler_trait = format_ident!("{}", name);
    let register = format_ident!(
        "register_{}_handler",
        to_snake(name).trim_start_matches("r#")
    );
    let trait_doc = docs(
        &service.comments,
        &[
            String::new(),
            format!(" The handler of `{full}`: implement it and register it with [`{register}`]."),
        ],
    );
    let register_doc = format!(
        " Registers `handler` on `server` for every method of `{full}`, answering both `/{full}/<Method>` and go-micro's `/<service name>.{proto_name}/<Method>`."
    );

    // The handler's type parameter: `H`, unless a type of the package that the service uses
    // is named so (a bare path is one of the package's own types), which it would shadow.
    let generic = if name == "H"
        || service
            .methods
            .iter()
            .any(|m| m.input_type == "H" || m.output_type == "H")
    {
        format_ident!("__H")
    } else {
        format_ident!("H")
    };
    let mut trait_methods = TokenStream::new();
    let mut routes = TokenStream::new();
    for method in &service.methods {
        let Method {
            name: rust_name,
            proto_name: method_proto,
            input_type,
            output_type,
            comments,
            ..
        } = method;
        let fn_name = ident(rust_name);
        let req = type_path(input_type);
        let rsp = type_path(output_type);
        let doc = docs(comments, &[]);
        let cg = quote!(::micro_runtime::codegen);
        // What differs between the four call kinds: the handler's argument and answer; the
        // Handler builder method.
        let (arg, arg_ty) = if method.client_streaming {
            (quote!(requests), quote!(#cg::Streaming<#req>))
        } else {
            (quote!(request), quote!(#req))
        };
        let answer = if method.server_streaming {
            quote!(#cg::BoxStream<#rsp>)
        } else {
            quote!(#rsp)
        };
        let register = match (method.client_streaming, method.server_streaming) {
            (false, false) => quote!(unary),
            (false, true) => quote!(server_streaming),
            (true, false) => quote!(client_streaming),
            (true, true) => quote!(bidi_streaming),
        };
        trait_methods.extend(quote! {
            #doc
            fn #fn_name(
                &self,
                ctx: #cg::Context,
                #arg: #arg_ty,
            ) -> impl #cg::Future<Output = #cg::Result<#answer>> + ::core::marker::Send;
        });
        routes.extend(quote! {
            .#register(
                #method_proto,
                &handler,
                // The trait's method, named: `h.clone(..)` would be the `Arc`'s.
                |h: #cg::Arc<#generic>, ctx: #cg::Context, #arg: #arg_ty| async move {
                    <#generic as #handler_trait>::#fn_name(&*h, ctx, #arg).await
                },
            )
        });
    }

    quote! {
        #trait_doc
        #conventions
        pub trait #handler_trait: ::core::marker::Send + ::core::marker::Sync + 'static {
            #trait_methods
        }

        #[doc = #register_doc]
        pub fn #register<#generic: #handler_trait>(
            server: &::micro_runtime::codegen::Server,
            handler: #generic,
        ) -> ::micro_runtime::codegen::Result<()> {
            let handler = ::micro_runtime::codegen::Arc::new(handler);
            server.handle(
                ::micro_runtime::codegen::Handler::new(#package, #proto_name)
                    #routes
            )
        }
    }
}
