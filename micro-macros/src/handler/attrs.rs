//! The attributes the macro reads: its own arguments (`#[handler(name = "...", package =
//! "...")]`), and on each method the `#[micro(...)]` options (taken off, as the compiler knows
//! no such attribute) and the `#[cfg(...)]`s its registration is compiled under.

use proc_macro2::TokenStream;
use syn::LitStr;

use super::combine;

/// The attribute's arguments: `name = "Calculator"`, `package = "calc"`.
#[derive(Default)]
pub(super) struct Args {
    pub(super) name: Option<LitStr>,
    pub(super) package: Option<LitStr>,
}

/// Parses the attribute's arguments.
pub(super) fn parse_args(args: TokenStream) -> syn::Result<Args> {
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

/// A method's `#[micro(...)]` options.
#[derive(Default)]
pub(super) struct MicroAttrs {
    /// `name = "..."`: the endpoint's name.
    pub(super) name: Option<LitStr>,
    /// `subscribe = "topic"`: a subscriber method.
    pub(super) subscribe: Option<LitStr>,
    /// `queue = "group"`: the subscriber's queue group.
    pub(super) queue: Option<LitStr>,
}

/// Takes the `#[micro(...)]` attributes off a method; returns its options.
pub(super) fn take_micro_attrs(attrs: &mut Vec<syn::Attribute>) -> syn::Result<MicroAttrs> {
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
pub(super) fn cfgs(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Vec<syn::Attribute>> {
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
