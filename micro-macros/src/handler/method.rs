//! One method of a `#[handler]` block, read and checked: an endpoint (`async fn add(&self,
//! [ctx: Context,] req: Request) -> Result<Response, E>`) or, marked `#[micro(subscribe =
//! "topic")]`, a subscriber. A method that cannot be either is an error at its own tokens that
//! says what to write instead.

use proc_macro2::Span;
use syn::{FnArg, ImplItemFn, LitStr, PatType, ReturnType, Type};

use super::attrs::{MicroAttrs, cfgs, take_micro_attrs};
use crate::ident;

/// How an endpoint method takes its handler.
pub(super) enum Receiver {
    /// `&self`.
    Ref,
    /// `self: Arc<Self>`.
    Arc,
    /// `self: &Arc<Self>`.
    RefArc,
}

/// One endpoint (or subscriber) method, checked.
pub(super) struct Endpoint {
    /// The method's `#[cfg(...)]` attributes: its registration is compiled under them too.
    pub(super) cfgs: Vec<syn::Attribute>,
    /// `Some` for a subscriber method: its topic and queue group.
    pub(super) subscribe: Option<(LitStr, Option<LitStr>)>,
    pub(super) ident: syn::Ident,
    /// `Add`.
    pub(super) name: String,
    /// Where the name comes from: the method's name, or its `#[micro(name)]`.
    pub(super) name_span: Span,
    pub(super) receiver: Receiver,
    /// The context parameter's type, when the method takes one.
    pub(super) ctx: Option<Type>,
    pub(super) request: Type,
    pub(super) output: Type,
}

impl Endpoint {
    /// Reads and checks a method, taking its `#[micro(...)]` attributes off.
    pub(super) fn parse(f: &mut ImplItemFn) -> syn::Result<Endpoint> {
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
