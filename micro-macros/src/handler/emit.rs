//! The code the macro adds after the block: an implementation of
//! `micro_runtime::codegen::Endpoints` that registers each endpoint with `Handler::unary` and
//! each subscriber with `Handler::subscriber`, written at the spans of the user's tokens so
//! that the compiler's errors (a request that is not a message, a future that is not `Send`)
//! point at the method.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ItemImpl;
use syn::spanned::Spanned;

use super::block::Block;
use super::method::{Endpoint, Receiver};

/// The `Endpoints` implementation of the block's type.
pub(super) fn endpoints_impl(imp: &ItemImpl, block: &Block) -> TokenStream {
    let Block {
        name,
        package,
        endpoints,
    } = block;
    let self_ty = &imp.self_ty;
    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    let registrations = endpoints.iter().map(|e| {
        let (cfgs, registration) = (&e.cfgs, e.register());
        quote!(#(#cfgs)* let handler = handler #registration;)
    });
    quote! {
        impl #impl_generics ::micro_runtime::codegen::Endpoints for #self_ty #where_clause {
            fn handler(
                this: &::std::sync::Arc<Self>,
            ) -> ::micro_runtime::codegen::Handler {
                let handler = ::micro_runtime::codegen::Handler::new(#package, #name);
                #(#registrations)*
                handler
            }
        }
    }
}

impl Endpoint {
    /// `.unary("Add", this, |h, ctx, req| async move { ... })`, with the user's spans.
    fn register(&self) -> TokenStream {
        if self.subscribe.is_some() {
            return self.register_subscriber();
        }
        let Endpoint {
            ident,
            name,
            request,
            output,
            ..
        } = self;
        let span = ident.span();
        let (ctx_param, call) = self.call(quote!(req));
        // A return type that is not `Result<Message, impl Into<Error>>`, at the return type.
        let out = quote_spanned!(output.span()=> out);
        let into_result = quote_spanned! {output.span()=>
            ::micro_runtime::codegen::EndpointResult::into_result(#out)
        };
        // A request that is not a message, at the request type: the closure is what
        // `Handler::unary` checks it on, so the closure carries the type's span.
        let closure = quote_spanned! {request.span()=>
            |h: ::std::sync::Arc<Self>, #ctx_param: ::micro_runtime::codegen::Context, req: #request| async move {
                let #out = #call.await;
                #into_result
            }
        };
        quote_spanned! {span=>
            .unary(#name, this, #closure)
        }
    }

    /// The closure's context parameter, and the call of the method on handler `h` with the
    /// context (when the method takes it) and `arg`. A future that is not `Send` is reported
    /// at the method's name.
    fn call(&self, arg: TokenStream) -> (TokenStream, TokenStream) {
        let span = self.ident.span();
        let ident = &self.ident;
        let recv = match self.receiver {
            Receiver::Ref => quote_spanned!(span=> &*h),
            Receiver::Arc => quote_spanned!(span=> h),
            Receiver::RefArc => quote_spanned!(span=> &h),
        };
        let (ctx_param, ctx_arg) = match &self.ctx {
            Some(ty) => (quote!(ctx), quote_spanned!(ty.span()=> ctx,)),
            None => (quote!(_ctx), quote!()),
        };
        let call = quote_spanned! {span=>
            ::micro_runtime::codegen::assert_send(Self::#ident(#recv, #ctx_arg #arg))
        };
        (ctx_param, call)
    }

    /// `.subscriber(Subscriber::new("topic", |ctx, msg| ...))`, with the user's spans.
    fn register_subscriber(&self) -> TokenStream {
        let Endpoint {
            subscribe,
            ident,
            request,
            output,
            ..
        } = self;
        let Some((topic, queue)) = subscribe else {
            return TokenStream::new();
        };
        let span = ident.span();
        let (ctx_param, call) = self.call(quote!(msg));
        let out = quote_spanned!(output.span()=> out);
        let into_result = quote_spanned! {output.span()=>
            ::micro_runtime::codegen::SubscriberResult::into_result(#out)
        };
        let closure = quote_spanned! {request.span()=>
            move |#ctx_param: ::micro_runtime::codegen::Context, msg: #request| {
                let h = ::std::sync::Arc::clone(&h);
                async move {
                    let #out = #call.await;
                    #into_result
                }
            }
        };
        let queue = queue.as_ref().map(|q| quote!(.queue(#q)));
        quote_spanned! {span=>
            .subscriber({
                let h = ::std::sync::Arc::clone(this);
                ::micro_runtime::codegen::Subscriber::new(#topic, #closure) #queue
            })
        }
    }
}
