//! The typed client of a service (`GreeterClient`): a struct holding a
//! `micro_runtime::codegen::Client` and the service's name, with two methods per rpc, the call
//! with default options (`say_hello`) and the call with options or a handler's context
//! (`say_hello_with`), each of the four call kinds (unary, client, server and bidirectional
//! streaming) its own shape.

use proc_macro2::TokenStream;
use prost_build::{Method, Service};
use quote::{format_ident, quote};

use super::docs::docs;
use super::names::{client_names, ident, type_path};

/// The client struct of `service` (`full` is its qualified proto name) and its methods, under
/// `conventions`, the lints they allow.
pub(super) fn client(service: &Service, full: &str, conventions: &TokenStream) -> TokenStream {
    let proto_name = &service.proto_name;
    let client = format_ident!("{}Client", &service.name);
    let client_doc = docs(
        &service.comments,
        &[
            String::new(),
            format!(
                " A typed client of `{full}`: calls the service registered under a name, found"
            ),
            " through the registry (or at a fixed address set in the call options).".into(),
        ],
    );
    let rust_names: Vec<&str> = service.methods.iter().map(|m| m.name.as_str()).collect();
    let mut client_methods = TokenStream::new();
    for (method, names) in service.methods.iter().zip(client_names(&rust_names)) {
        let Method {
            proto_name: method_proto,
            input_type,
            output_type,
            comments,
            options,
            ..
        } = method;
        // NO_SIDE_EFFECTS and IDEMPOTENT both make a repeated call harmless.
        let idempotent = options.idempotency_level()
            != prost_types::method_options::IdempotencyLevel::IdempotencyUnknown;
        let call_name = ident(&names.call);
        let fn_with = ident(&names.with);
        let req = type_path(input_type);
        let rsp = type_path(output_type);
        let path = format!("/{full}/{method_proto}");
        let endpoint = format!("{proto_name}.{method_proto}");
        let call_doc = match &names.renamed {
            Some(why) => docs(comments, &[String::new(), why.clone()]),
            None => docs(comments, &[]),
        };
        let with_doc = format!(
            " Like [`Self::{}`], with `CallOptions` or a handler's `Context` (its deadline and \
             metadata carry on).",
            names.call
        );
        let cg = quote!(::micro_runtime::codegen);
        let method_const = quote! {
            const METHOD: #cg::Method = #cg::Method {
                path: #path,
                endpoint: #endpoint,
                idempotent: #idempotent,
            };
        };
        // What differs between the four call kinds: the argument, the return type and the
        // call.
        let (call_args, call_ret, call) = if method.client_streaming {
            (
                quote!(),
                quote!(#cg::CallStream<#req, #rsp>),
                quote!(self.client.stream(&self.service, &METHOD, options)),
            )
        } else if method.server_streaming {
            (
                quote!(request: #req,),
                quote!(#cg::Streaming<#rsp>),
                quote!(
                    self.client
                        .server_stream(&self.service, &METHOD, &request, options)
                ),
            )
        } else {
            (
                quote!(request: #req,),
                quote!(#rsp),
                quote!(self.client.call(&self.service, &METHOD, &request, options)),
            )
        };
        let pass = if method.client_streaming {
            quote!()
        } else {
            quote!(request,)
        };
        client_methods.extend(quote! {
            #call_doc
            pub async fn #call_name(&self, #call_args) -> #cg::Result<#call_ret> {
                self.#fn_with(#pass &#cg::CallOptions::new()).await
            }
            #[doc = #with_doc]
            pub async fn #fn_with(
                &self,
                #call_args
                options: &(impl #cg::AsCallOptions + ?::core::marker::Sized),
            ) -> #cg::Result<#call_ret> {
                #method_const
                #call.await
            }
        });
    }

    quote! {
        #client_doc
        #[derive(Clone, Debug)]
        pub struct #client {
            client: ::micro_runtime::codegen::Client,
            service: ::std::string::String,
        }

        #conventions
        impl #client {
            /// A client of the service registered as `service`, calling through `client`.
            pub fn new(service: impl ::std::convert::Into<::std::string::String>, client: ::micro_runtime::codegen::Client) -> Self {
                Self { client, service: service.into() }
            }

            #client_methods
        }
    }
}
