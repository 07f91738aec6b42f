//! `#[derive(Message)]`: the codecs and the registry description of a struct.
//!
//! The description is written as code that asks each field's type for its own
//! (`micro_runtime::codec::Describe`), at the field type's span: a type that cannot be
//! described is an error at the field. Field names follow serde's attributes, so the
//! registry shows the names the JSON carries.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use crate::ident;

/// Which codecs a message speaks.
#[derive(Clone, Copy)]
struct Codecs {
    proto: bool,
    json: bool,
}

/// Options of the struct: `#[micro(name = "...", proto, json)]`, and serde's `rename_all`.
struct Container {
    name: Option<LitStr>,
    codecs: Codecs,
    rename_all: Option<String>,
}

/// How one field is described.
enum Described {
    /// By its type (`Describe`).
    Typed,
    /// By a type name given with `#[micro(type = "...")]`.
    Named(LitStr),
    /// Its fields in place of it (`#[serde(flatten)]`).
    Flattened,
    /// Not at all (`#[micro(skip)]`, `#[serde(skip)]`).
    Skipped,
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let container = container(&input)?;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "`#[derive(Message)]` does not support generic types: a message is one concrete type per endpoint",
        ));
    }
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(_) | Fields::Unit => {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "`#[derive(Message)]` needs a struct with named fields: they are the message's fields (`struct Empty {}` for none)",
                ));
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new_spanned(
                e.enum_token,
                "`#[derive(Message)]` needs a struct with named fields, not an enum: wrap it in a struct field",
            ));
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "`#[derive(Message)]` needs a struct with named fields, not a union",
            ));
        }
    };

    let ty = &input.ident;
    let type_name = match &container.name {
        Some(lit) => lit.value(),
        None => ident::unraw(ty),
    };
    let mut described = Vec::new();
    for field in fields {
        let Some(field_ident) = &field.ident else {
            continue;
        };
        let field_ty = &field.ty;
        let name = field_name(field_ident, &field.attrs, container.rename_all.as_deref());
        let value = match how_described(&field.attrs)? {
            Described::Skipped => continue,
            Described::Typed => quote_spanned! {field_ty.span()=>
                fields.push(::micro_runtime::codegen::field::<#field_ty>(#name, depth));
            },
            Described::Named(kind) => quote! {
                fields.push(::micro_runtime::codegen::value(#name, #kind, ::micro_runtime::codegen::Vec::new()));
            },
            Described::Flattened => quote_spanned! {field_ty.span()=>
                fields.extend(<#field_ty as ::micro_runtime::codegen::Describe>::fields(depth));
            },
        };
        described.push(value);
    }
    let field_count = described.len();

    let Codecs { proto, json } = container.codecs;
    let codec = quote!(::micro_runtime::codegen::Codec);
    let (encode, decode) = match (proto, json) {
        (true, true) => (
            quote! {
                match codec {
                    #codec::Proto => ::micro_runtime::codegen::encode_prost(self, buf),
                    other => ::micro_runtime::codegen::encode_serde(self, other, #type_name, buf),
                }
            },
            quote! {
                match codec {
                    #codec::Proto => ::micro_runtime::codegen::decode_prost(buf),
                    other => ::micro_runtime::codegen::decode_serde(other, #type_name, buf),
                }
            },
        ),
        (true, false) => (
            quote! {
                match codec {
                    #codec::Proto => ::micro_runtime::codegen::encode_prost(self, buf),
                    other => ::std::result::Result::Err(::micro_runtime::codegen::unsupported_codec(#type_name, other)),
                }
            },
            quote! {
                match codec {
                    #codec::Proto => ::micro_runtime::codegen::decode_prost(buf),
                    other => ::std::result::Result::Err(::micro_runtime::codegen::unsupported_codec(#type_name, other)),
                }
            },
        ),
        _ => (
            quote!(::micro_runtime::codegen::encode_serde(self, codec, #type_name, buf)),
            quote!(::micro_runtime::codegen::decode_serde(codec, #type_name, buf)),
        ),
    };
    let size_hint = proto.then(|| {
        quote! {
            fn size_hint(&self, codec: #codec) -> usize {
                match codec {
                    #codec::Proto => ::micro_runtime::codegen::prost::Message::encoded_len(self),
                    _ => 64,
                }
            }
        }
    });
    let preferred = match (proto, json) {
        (true, true) => quote!(::std::option::Option::None),
        (true, false) => quote!(::std::option::Option::Some(#codec::Proto)),
        _ => quote!(::std::option::Option::Some(#codec::Json)),
    };

    Ok(quote! {
        impl ::micro_runtime::codegen::Message for #ty {
            fn encode(
                &self,
                codec: #codec,
                buf: &mut ::micro_runtime::codegen::BytesMut,
            ) -> ::micro_runtime::codegen::Result<()> {
                #encode
            }

            fn decode(
                codec: #codec,
                buf: ::micro_runtime::codegen::Bytes,
            ) -> ::micro_runtime::codegen::Result<Self> {
                #decode
            }

            #size_hint

            fn describe() -> ::micro_runtime::codegen::Value {
                ::micro_runtime::codegen::value(
                    #type_name,
                    #type_name,
                    <Self as ::micro_runtime::codegen::Describe>::fields(0),
                )
            }

            fn preferred_codec() -> ::std::option::Option<#codec> {
                #preferred
            }
        }

        impl ::micro_runtime::codegen::Describe for #ty {
            fn type_name() -> ::micro_runtime::codegen::Cow<'static, str> {
                ::micro_runtime::codegen::Cow::Borrowed(#type_name)
            }

            fn fields(depth: usize) -> ::micro_runtime::codegen::Vec<::micro_runtime::codegen::Value> {
                if depth >= ::micro_runtime::codegen::MAX_DEPTH {
                    return ::micro_runtime::codegen::Vec::new();
                }
                let mut fields = ::micro_runtime::codegen::Vec::with_capacity(#field_count);
                #(#described)*
                fields
            }
        }
    })
}

/// The struct's `#[micro(...)]` options and serde's `rename_all`.
fn container(input: &DeriveInput) -> syn::Result<Container> {
    let mut name = None;
    let mut proto = false;
    let mut json = false;
    for attr in &input.attrs {
        if !attr.path().is_ident("micro") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if !ident::is_name(&lit.value()) {
                    return Err(syn::Error::new_spanned(
                        &lit,
                        "a message name is letters, digits and `_`, not starting with a digit",
                    ));
                }
                name = Some(lit);
            } else if meta.path.is_ident("proto") {
                proto = true;
            } else if meta.path.is_ident("json") {
                json = true;
            } else {
                return Err(meta.error(
                    "unknown `micro` option on a message: expected `name = \"...\"`, `proto` or `json`",
                ));
            }
            Ok(())
        })?;
    }
    Ok(Container {
        name,
        codecs: Codecs {
            proto,
            json: json || !proto,
        },
        rename_all: serde_option(&input.attrs, "rename_all"),
    })
}

/// A field's `#[micro(...)]` and serde's `flatten`/`skip`.
fn how_described(attrs: &[syn::Attribute]) -> syn::Result<Described> {
    let mut how = Described::Typed;
    for attr in attrs {
        if !attr.path().is_ident("micro") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("type") {
                how = Described::Named(meta.value()?.parse()?);
            } else if meta.path.is_ident("skip") {
                how = Described::Skipped;
            } else {
                return Err(meta.error(
                    "unknown `micro` option on a field: expected `type = \"...\"` or `skip`",
                ));
            }
            Ok(())
        })?;
    }
    if matches!(how, Described::Typed) {
        if flag(attrs, "serde", "skip") {
            how = Described::Skipped;
        } else if flag(attrs, "serde", "flatten") {
            how = Described::Flattened;
        } else if let Some(kind) = prost_bytes(attrs) {
            how = Described::Named(LitStr::new(&kind, proc_macro2::Span::call_site()));
        }
    }
    Ok(how)
}

/// How the generator names a prost field whose bytes its Rust type would describe as
/// numbers: `bytes`, `[]bytes` (repeated), `map<string,bytes>`.
fn prost_bytes(attrs: &[syn::Attribute]) -> Option<String> {
    if flag(attrs, "prost", "bytes") {
        let repeated = flag(attrs, "prost", "repeated");
        return Some(if repeated { "[]bytes" } else { "bytes" }.to_owned());
    }
    let map = option(attrs, "prost", "map")?;
    let (key, value) = map.split_once(',')?;
    (value.trim() == "bytes").then(|| format!("map<{},bytes>", key.trim()))
}

/// The name serde writes a field under.
fn field_name(field: &syn::Ident, attrs: &[syn::Attribute], rename_all: Option<&str>) -> String {
    if let Some(name) = serde_option(attrs, "rename") {
        return name;
    }
    let name = ident::unraw(field);
    rename_all
        .and_then(|rule| ident::rename_field(rule, &name))
        .unwrap_or(name)
}

/// The string value of serde option `key` (`key = "v"`, or the `serialize` half of
/// `key(serialize = "v", ...)`). Attributes serde would reject are ignored: serde reports
/// them.
fn serde_option(attrs: &[syn::Attribute], key: &str) -> Option<String> {
    option(attrs, "serde", key)
}

/// The string value of option `key` of attribute `attr` (`#[prost(map = "string, bytes")]`).
fn option(attrs: &[syn::Attribute], attr: &str, key: &str) -> Option<String> {
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(attr)) {
        let _ = attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident(key) {
                return skip_value(&meta);
            }
            if meta.input.peek(syn::Token![=]) {
                found = Some(meta.value()?.parse::<LitStr>()?.value());
                return Ok(());
            }
            meta.parse_nested_meta(|inner| {
                if inner.path.is_ident("serialize") {
                    found = Some(inner.value()?.parse::<LitStr>()?.value());
                    Ok(())
                } else {
                    skip_value(&inner)
                }
            })
        });
    }
    found
}

/// Whether option `key` of attribute `attr` is there (`#[serde(flatten)]`,
/// `#[prost(bytes = "vec", tag = "1")]`).
fn flag(attrs: &[syn::Attribute], attr: &str, key: &str) -> bool {
    let mut found = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident(attr)) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(key) {
                found = true;
            }
            skip_value(&meta)
        });
    }
    found
}

/// Skips the value of a nested option we do not read (`= expr` or `(...)`).
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}
