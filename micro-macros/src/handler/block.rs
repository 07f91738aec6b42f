//! The block as a whole, checked: not a trait implementation, no macros among its items, the
//! handler's name and proto package valid, no endpoint answered by two methods under the same
//! `#[cfg]`s, and at least one endpoint or subscriber. The errors of the arguments, the items
//! and the methods are reported together.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{ImplItem, ItemImpl, Type};

use super::attrs::{Args, parse_args};
use super::combine;
use super::method::Endpoint;
use crate::ident;

/// A checked block: what its `Endpoints` implementation registers.
pub(super) struct Block {
    /// The handler's name: the first half of its endpoint names (`Calculator`).
    pub(super) name: String,
    /// The proto package of its gRPC paths, empty when not given.
    pub(super) package: String,
    /// Its endpoint and subscriber methods, in the block's order.
    pub(super) endpoints: Vec<Endpoint>,
}

impl Block {
    /// The block's handler, or every error found.
    pub(super) fn check(
        args: TokenStream,
        imp: &ItemImpl,
        endpoints: Vec<syn::Result<Endpoint>>,
    ) -> syn::Result<Block> {
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
        Ok(Block {
            name,
            package,
            endpoints: checked,
        })
    }
}
