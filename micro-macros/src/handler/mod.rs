//! `#[handler]`: the endpoints of a service, from the async methods of an `impl` block, and
//! its subscribers, from the methods marked `#[micro(subscribe = "topic")]`.
//!
//! The block is kept as written (less the `#[micro(...)]` attributes of its methods), and an
//! implementation of `micro_runtime::codegen::Endpoints` is added that registers each method
//! with `Handler::unary`: the same registration generated-from-proto code makes, so a call
//! costs the same. Checks the compiler makes anyway (a request type that is not a message, a
//! future that is not `Send`) are made at the spans of the user's tokens, so the errors point
//! at the method, not at the attribute.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr, PatType, ReturnType, Type};

use crate::ident;

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
    match generate(args, &imp, endpoints) {
        Ok(endpoints) => quote!(#imp #endpoints),
        Err(e) => {
            let e = e.into_compile_error();
            quote!(#imp #e)
        }
    }
}

/// How an endpoint method takes its handler.
enum Receiver {
    /// `&self`.
    Ref,
    /// `self: Arc<Self>`.
    Arc,
    /// `self: &Arc<Self>`.
    RefArc,
}

/// One endpoint (or subscriber) method, checked.
struct Endpoint {
    /// The method's `#[cfg(...)]` attributes: its registration is compiled under them too.
    cfgs: Vec<syn::Attribute>,
    /// `Some` for a subscriber method: its topic and queue group.
    subscribe: Option<(LitStr, Option<LitStr>)>,
    ident: syn::Ident,
    /// `Add`.
    name: String,
    /// Where the name comes from: the method's name, or its `#[micro(name)]`.
    name_span: Span,
    receiver: Receiver,
    /// The context parameter's type, when the method takes one.
    ctx: Option<Type>,
    request: Type,
    output: Type,
}

impl Endpoint {
    /// Reads and checks a method, taking its `#[micro(...)]` attributes off.
    fn parse(f: &mut ImplItemFn) -> syn::Result<Endpoint> {
        let MicroAttrs {
            name: rename,
            subscribe,
            queue,
        } = take_micro_attrs(&mut f.attrs)?;
        let cfgs = cfgs(&mut f.attrs)?;
        let subscribe = match (subscribe, queue, &rename) {
            (Some(_), _, Some(name)) => {
                return Err(syn::Error::new_spanned(
                    name,
                    "a subscriber method has a topic, not an endpoint name: drop `name`",
                ));
            }
            (None, Some(q), _) => {
                return Err(syn::Error::new_spanned(
                    q,
                    "`queue` is for subscriber methods: `#[micro(subscribe = \"topic\", queue = \"group\")]`",
                ));
            }
            (Some(topic), queue, None) => {
                if topic.value().is_empty() {
                    return Err(syn::Error::new_spanned(topic, "the topic is empty"));
                }
                Some((topic, queue))
            }
            (None, None, _) => None,
        };
        let sig = &f.sig;
        let ident = sig.ident.clone();
        let method = ident::unraw(&ident);
        if sig.asyncness.is_none() {
            return Err(syn::Error::new_spanned(
                sig.fn_token,
                format!(
                    "endpoint method `{method}` must be `async`: every method of a `#[handler]` block is an endpoint (`async fn {method}(&self, req: Request) -> Result<Response, Error>`); put helpers in another `impl` block"
                ),
            ));
        }
        if let Some(t) = &sig.constness {
            return Err(syn::Error::new_spanned(
                t,
                "endpoint methods cannot be `const`",
            ));
        }
        if let Some(t) = &sig.unsafety {
            return Err(syn::Error::new_spanned(
                t,
                "endpoint methods cannot be `unsafe`",
            ));
        }
        if let Some(abi) = &sig.abi {
            return Err(syn::Error::new_spanned(
                abi,
                "endpoint methods cannot be `extern`",
            ));
        }
        if let Some(v) = &sig.variadic {
            return Err(syn::Error::new_spanned(
                v,
                "endpoint methods cannot be variadic",
            ));
        }
        let only_lifetimes = sig
            .generics
            .params
            .iter()
            .all(|p| matches!(p, syn::GenericParam::Lifetime(_)));
        if !only_lifetimes || sig.generics.where_clause.is_some() {
            return Err(syn::Error::new_spanned(
                &sig.generics,
                format!(
                    "endpoint method `{method}` cannot be generic: an endpoint has one request and one response type"
                ),
            ));
        }

        let mut inputs = sig.inputs.iter();
        let receiver = match inputs.next() {
            Some(FnArg::Receiver(r)) => receiver(r)?,
            _ => {
                return Err(syn::Error::new_spanned(
                    &sig.ident,
                    format!(
                        "endpoint method `{method}` must take `&self`: `async fn {method}(&self, req: Request)`"
                    ),
                ));
            }
        };
        let args = inputs
            .map(|arg| match arg {
                FnArg::Typed(t) => Ok(t),
                FnArg::Receiver(r) => Err(syn::Error::new_spanned(r, "unexpected `self`")),
            })
            .collect::<syn::Result<Vec<&PatType>>>()?;
        let (ctx, request) = match args.as_slice() {
            [request] => (None, *request),
            [ctx, request] => (Some((*ctx.ty).clone()), *request),
            [] => {
                return Err(syn::Error::new_spanned(
                    &sig.inputs,
                    format!(
                        "endpoint method `{method}` takes no request: `async fn {method}(&self, ctx: Context, req: Request)` (the context is optional)"
                    ),
                ));
            }
            [_, _, extra, ..] => {
                return Err(syn::Error::new_spanned(
                    extra,
                    "too many parameters: an endpoint method takes a context (optional) and one request, `(&self, ctx: Context, req: Request)`",
                ));
            }
        };
        if let Type::ImplTrait(t) = &*request.ty {
            return Err(syn::Error::new_spanned(
                t,
                "the request must be a concrete message type, not `impl Trait`",
            ));
        }
        let output = match &sig.output {
            ReturnType::Type(_, ty) => (**ty).clone(),
            ReturnType::Default => {
                return Err(syn::Error::new_spanned(
                    &f.sig,
                    format!(
                        "endpoint method `{method}` returns nothing: it must return `Result<Response, Error>`"
                    ),
                ));
            }
        };
        let (name, name_span) = match rename {
            Some(lit) => (lit.value(), lit.span()),
            None => (ident::upper_camel(&method), ident.span()),
        };
        if !ident::is_name(&name) {
            return Err(syn::Error::new(
                name_span,
                format!(
                    "`{name}` is not a valid endpoint name: letters, digits and `_`, not starting with a digit"
                ),
            ));
        }
        Ok(Endpoint {
            cfgs,
            subscribe,
            ident,
            name,
            name_span,
            receiver,
            ctx,
            request: (*request.ty).clone(),
            output,
        })
    }

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
}

impl Endpoint {
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

/// `&self` or `self: Arc<Self>`; anything else is an error that says why.
fn receiver(r: &syn::Receiver) -> syn::Result<Receiver> {
    if r.colon_token.is_none() {
        return match (&r.reference, &r.mutability) {
            (Some(_), None) => Ok(Receiver::Ref),
            (Some(_), Some(_)) => Err(syn::Error::new_spanned(
                r,
                "endpoint methods take `&self`, not `&mut self`: calls run concurrently on one shared handler; keep mutable state behind a `Mutex` or atomics",
            )),
            (None, _) => Err(syn::Error::new_spanned(
                r,
                "endpoint methods take `&self` (or `self: Arc<Self>`), not `self`: one handler answers every call",
            )),
        };
    }
    let is_arc = |t: &Type| matches!(t, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Arc"));
    match &*r.ty {
        Type::Reference(t) if t.mutability.is_none() && is_arc(&t.elem) => Ok(Receiver::RefArc),
        Type::Reference(t)
            if t.mutability.is_none()
                && matches!(&*t.elem, Type::Path(p) if p.path.is_ident("Self")) =>
        {
            Ok(Receiver::Ref)
        }
        t if is_arc(t) => Ok(Receiver::Arc),
        _ => Err(syn::Error::new_spanned(
            &r.ty,
            "endpoint methods take `&self`, `self: Arc<Self>` or `self: &Arc<Self>`",
        )),
    }
}

/// A method's `#[micro(...)]` options.
#[derive(Default)]
struct MicroAttrs {
    /// `name = "..."`: the endpoint's name.
    name: Option<LitStr>,
    /// `subscribe = "topic"`: a subscriber method.
    subscribe: Option<LitStr>,
    /// `queue = "group"`: the subscriber's queue group.
    queue: Option<LitStr>,
}

/// Takes the `#[micro(...)]` attributes off a method; returns its options.
fn take_micro_attrs(attrs: &mut Vec<syn::Attribute>) -> syn::Result<MicroAttrs> {
    let mut out = MicroAttrs::default();
    let mut result = Ok(());
    attrs.retain(|attr| {
        if !attr.path().is_ident("micro") {
            return true;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            let slot = if meta.path.is_ident("name") {
                &mut out.name
            } else if meta.path.is_ident("subscribe") {
                &mut out.subscribe
            } else if meta.path.is_ident("queue") {
                &mut out.queue
            } else {
                return Err(meta.error(
                    "unknown `micro` option on a method: expected `name = \"...\"`, or `subscribe = \"topic\"` and `queue = \"group\"`",
                ));
            };
            *slot = Some(meta.value()?.parse::<LitStr>()?);
            Ok(())
        });
        if let Err(e) = parsed {
            combine(&mut result, e);
        }
        false
    });
    result.map(|()| out)
}

/// The method's `#[cfg(...)]` attributes. A `#[cfg_attr(..., micro(...))]` is an error (and
/// taken off): the macro runs before `cfg_attr` is evaluated, so it would never see the option.
fn cfgs(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Vec<syn::Attribute>> {
    let mentions_micro = |attr: &syn::Attribute| {
        attr.path().is_ident("cfg_attr")
            && attr.meta.require_list().is_ok_and(|l| {
                l.tokens
                    .clone()
                    .into_iter()
                    .any(|t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "micro"))
            })
    };
    if let Some(i) = attrs.iter().position(mentions_micro) {
        let attr = attrs.remove(i);
        return Err(syn::Error::new_spanned(
            attr,
            "`micro` options cannot sit in `cfg_attr` (the handler macro reads them before `cfg_attr` is applied): use two methods under `#[cfg(...)]` instead",
        ));
    }
    Ok(attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect())
}

fn combine(into: &mut syn::Result<()>, err: syn::Error) {
    match into {
        Ok(()) => *into = Err(err),
        Err(e) => e.combine(err),
    }
}

/// The attribute's arguments: `name = "Calculator"`, `package = "calc"`.
#[derive(Default)]
struct Args {
    name: Option<LitStr>,
    package: Option<LitStr>,
}

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            out.name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("package") {
            out.package = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown `handler` argument: expected `name = \"...\"` or `package = \"...\"`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(out)
}

/// The `Endpoints` implementation, or every error found.
fn generate(
    args: TokenStream,
    imp: &ItemImpl,
    endpoints: Vec<syn::Result<Endpoint>>,
) -> syn::Result<TokenStream> {
    let mut errors = Ok(());
    let args = parse_args(args).unwrap_or_else(|e| {
        combine(&mut errors, e);
        Args::default()
    });
    if let Some((_, path, _)) = &imp.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "`#[handler]` goes on an inherent `impl` block (`impl Calc { ... }`), not on a trait implementation",
        ));
    }
    for item in &imp.items {
        if let ImplItem::Macro(m) = item {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    m,
                    "macros in a `#[handler]` block are not expanded into endpoints: move them to another `impl` block",
                ),
            );
        }
    }
    let name = match &args.name {
        Some(lit) => {
            let name = lit.value();
            if !ident::is_name(&name) {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(
                        lit,
                        format!(
                            "`{name}` is not a valid handler name: letters, digits and `_`, not starting with a digit"
                        ),
                    ),
                );
            }
            name
        }
        None => match &*imp.self_ty {
            Type::Path(p) => p
                .path
                .segments
                .last()
                .map(|s| ident::unraw(&s.ident))
                .unwrap_or_default(),
            other => {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(
                        other,
                        "name the handler: `#[handler(name = \"Calculator\")]`",
                    ),
                );
                String::new()
            }
        },
    };
    let package = match &args.package {
        Some(lit) => {
            let package = lit.value();
            if !package.split('.').all(ident::is_name) {
                combine(
                    &mut errors,
                    syn::Error::new_spanned(
                        lit,
                        format!(
                            "`{package}` is not a valid proto package: dot-separated names (`shop.calc`)"
                        ),
                    ),
                );
            }
            package
        }
        None => String::new(),
    };

    let mut checked = Vec::new();
    // Methods under different `#[cfg]`s may answer one endpoint: one per build.
    let mut seen: HashMap<(String, String), syn::Ident> = HashMap::new();
    for endpoint in endpoints {
        match endpoint {
            Ok(e) if e.subscribe.is_some() => checked.push(e),
            Ok(e) => {
                let cfgs = e.cfgs.iter().map(|a| quote!(#a).to_string()).collect();
                let key = (e.name.clone(), cfgs);
                if let Some(first) = seen.get(&key) {
                    combine(
                        &mut errors,
                        syn::Error::new(
                            e.name_span,
                            format!(
                                "endpoint `{name}.{}` is answered twice: by `{}` and by `{}`; rename one with `#[micro(name = \"...\")]`",
                                e.name,
                                ident::unraw(first),
                                ident::unraw(&e.ident),
                            ),
                        ),
                    );
                    continue;
                }
                seen.insert(key, e.ident.clone());
                checked.push(e);
            }
            Err(e) => combine(&mut errors, e),
        }
    }
    errors?;
    if checked.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "this `#[handler]` block has no endpoint methods: add `async fn add(&self, req: Request) -> Result<Response, Error>` (or a subscriber, `#[micro(subscribe = \"topic\")] async fn on_event(&self, msg: Event) -> Result<(), Error>`)",
        ));
    }

    let self_ty = &imp.self_ty;
    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    let registrations = checked.iter().map(|e| {
        let (cfgs, registration) = (&e.cfgs, e.register());
        quote!(#(#cfgs)* let handler = handler #registration;)
    });
    Ok(quote! {
        impl #impl_generics ::micro_runtime::codegen::Endpoints for #self_ty #where_clause {
            fn handler(
                this: &::std::sync::Arc<Self>,
            ) -> ::micro_runtime::codegen::Handler {
                let handler = ::micro_runtime::codegen::Handler::new(#package, #name);
                #(#registrations)*
                handler
            }
        }
    })
}
