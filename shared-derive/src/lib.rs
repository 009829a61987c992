//! `#[derive(Decode, Encode)]` for the protocol's types: the page's JSON reader
//! (`shared::decode::Decode`) and writer (`shared::encode::Encode`) of a type, made from the
//! same `#[serde(...)]` attributes that make its serde implementations, so that a type's shape
//! is written once and the three cannot drift apart. `shared`'s tests still hold both to
//! serde's output, and the fuzz target to serde's reading.
//!
//! Two shapes are derived, the ones most of the protocol is made of:
//! - a struct with named fields. A field is read and written under its name or its
//!   `rename`; an `Option` may be missing or `null`; `default` gives a missing field its
//!   `Default`; `skip_serializing_if` may be `"Option::is_none"`, `"Vec::is_empty"` or
//!   `"is_false"` (the writer leaves the field out the same way); `flatten` reads and writes
//!   the field's own fields inline, through `shared::decode::DecodeFlat` and
//!   `shared::encode::EncodeFlat`, which such a type implements by hand.
//! - an enum of unit variants, written as a string: its `rename_all` (`lowercase`,
//!   `snake_case`) or each variant's `rename`.
//!
//! The tagged enums (`Call`, `ServerMessage`, ...) and the types with a custom form (`Bytes`,
//! `SockAddr`) keep their impls by hand; anything else given to the derive is a compile
//! error that says so.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, LitStr, Type, parse_macro_input};

/// Derives `shared::decode::Decode` from the type's serde attributes.
#[proc_macro_derive(Decode, attributes(serde))]
pub fn derive_decode(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input, Direction::Decode)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `shared::encode::Encode` from the type's serde attributes.
#[proc_macro_derive(Encode, attributes(serde))]
pub fn derive_encode(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input, Direction::Encode)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Decode,
    Encode,
}

/// What a field's serde attributes say.
#[derive(Default)]
struct FieldAttrs {
    rename: Option<String>,
    default: bool,
    flatten: bool,
    skip_serializing_if: Option<String>,
}

/// What a container's or a variant's serde attributes say (the ones these derives read).
#[derive(Default)]
struct NameAttrs {
    rename: Option<String>,
    rename_all: Option<String>,
}

fn field_attrs(attrs: &[syn::Attribute]) -> syn::Result<FieldAttrs> {
    let mut found = FieldAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                found.rename = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("default") {
                found.default = true;
            } else if meta.path.is_ident("flatten") {
                found.flatten = true;
            } else if meta.path.is_ident("skip_serializing_if") {
                found.skip_serializing_if = Some(meta.value()?.parse::<LitStr>()?.value());
            } else {
                return Err(meta.error("shared-derive does not know this serde attribute"));
            }
            Ok(())
        })?;
    }
    Ok(found)
}

fn name_attrs(attrs: &[syn::Attribute]) -> syn::Result<NameAttrs> {
    let mut found = NameAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                found.rename = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("rename_all") {
                found.rename_all = Some(meta.value()?.parse::<LitStr>()?.value());
            } else {
                return Err(meta.error(
                    "shared-derive derives only plain structs and enums of unit variants; \
                     write this type's Decode and Encode by hand",
                ));
            }
            Ok(())
        })?;
    }
    Ok(found)
}

fn expand(input: &DeriveInput, direction: Direction) -> syn::Result<Tokens> {
    match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => {
                name_attrs(&input.attrs)?;
                let fields = fields
                    .named
                    .iter()
                    .map(|field| {
                        let attrs = field_attrs(&field.attrs)?;
                        let ident = field.ident.clone().expect("named fields have names");
                        Ok((ident, field.ty.clone(), attrs))
                    })
                    .collect::<syn::Result<Vec<_>>>()?;
                Ok(match direction {
                    Direction::Decode => decode_struct(&input.ident, &fields),
                    Direction::Encode => encode_struct(&input.ident, &fields)?,
                })
            }
            _ => Err(syn::Error::new_spanned(
                &input.ident,
                "shared-derive derives structs with named fields only",
            )),
        },
        Data::Enum(data) => {
            let container = name_attrs(&input.attrs)?;
            let mut names = Vec::new();
            for variant in &data.variants {
                if !matches!(variant.fields, Fields::Unit) {
                    return Err(syn::Error::new_spanned(
                        variant,
                        "shared-derive derives enums of unit variants only",
                    ));
                }
                let attrs = name_attrs(&variant.attrs)?;
                let name = match (attrs.rename, container.rename_all.as_deref()) {
                    (Some(name), _) => name,
                    (None, Some(rule)) => {
                        rename(&variant.ident.to_string(), rule).ok_or_else(|| {
                            syn::Error::new_spanned(&input.ident, "unknown rename_all")
                        })?
                    }
                    (None, None) => variant.ident.to_string(),
                };
                names.push((variant.ident.clone(), name));
            }
            Ok(match direction {
                Direction::Decode => decode_enum(&input.ident, &names),
                Direction::Encode => encode_enum(&input.ident, &names),
            })
        }
        Data::Union(_) => Err(syn::Error::new_spanned(
            &input.ident,
            "unions are not derived",
        )),
    }
}

/// A variant's name under serde's `rename_all` rule.
fn rename(variant: &str, rule: &str) -> Option<String> {
    match rule {
        "lowercase" => Some(variant.to_lowercase()),
        "snake_case" => Some(snake_case(variant)),
        _ => None,
    }
}

/// `RunStarted` as `run_started`; also, with spaces, the words of an error message.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (index, c) in name.chars().enumerate() {
        if c.is_uppercase() && index > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Whether a field's type is `Option<...>`.
fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none()
        && path.path.segments.last().is_some_and(|segment| segment.ident == "Option"))
}

fn key(ident: &syn::Ident, attrs: &FieldAttrs) -> String {
    attrs
        .rename
        .clone()
        .unwrap_or_else(|| ident.to_string().trim_start_matches("r#").to_owned())
}

fn decode_struct(name: &syn::Ident, fields: &[(syn::Ident, Type, FieldAttrs)]) -> Tokens {
    let mut slots = Vec::new();
    let mut arms = Vec::new();
    let mut flat_arms = Vec::new();
    let mut values = Vec::new();
    for (ident, ty, attrs) in fields {
        let slot = format_ident!("slot_{}", ident.to_string().trim_start_matches("r#"));
        let key = key(ident, attrs);
        if attrs.flatten {
            slots.push(quote! {
                let mut #slot = <<#ty as crate::decode::DecodeFlat>::Fields<'_> as ::core::default::Default>::default();
            });
            flat_arms.push(quote! {
                _ if <#ty as crate::decode::DecodeFlat>::read(&mut #slot, reader, key)? => Ok(()),
            });
            values.push(
                quote! { #ident: <#ty as crate::decode::DecodeFlat>::finish(#slot, reader)? },
            );
            continue;
        }
        slots.push(quote! { let mut #slot = None; });
        if is_option(ty) {
            arms.push(quote! { #key => crate::decode::optional(reader, &mut #slot), });
            values.push(quote! { #ident: #slot });
        } else if attrs.default {
            arms.push(quote! { #key => crate::decode::field(reader, &mut #slot), });
            values.push(quote! { #ident: #slot.unwrap_or_default() });
        } else {
            arms.push(quote! { #key => crate::decode::field(reader, &mut #slot), });
            values.push(quote! { #ident: crate::decode::required(reader, #slot, #key)? });
        }
    }
    quote! {
        impl crate::decode::Decode for #name {
            fn decode(reader: &mut crate::decode::Reader<'_>) -> ::core::result::Result<Self, crate::decode::DecodeError> {
                #(#slots)*
                reader.object(|reader, key| match key {
                    #(#arms)*
                    #(#flat_arms)*
                    _ => reader.skip(),
                })?;
                Ok(#name { #(#values),* })
            }
        }
    }
}

fn encode_struct(
    name: &syn::Ident,
    fields: &[(syn::Ident, Type, FieldAttrs)],
) -> syn::Result<Tokens> {
    let mut writes = Vec::new();
    for (ident, ty, attrs) in fields {
        let key = key(ident, attrs);
        let write = if attrs.flatten {
            quote! { <#ty as crate::encode::EncodeFlat>::encode_fields(&self.#ident, writer); }
        } else {
            match attrs.skip_serializing_if.as_deref() {
                None => quote! { writer.field(#key, &self.#ident); },
                Some("Option::is_none") => quote! { writer.optional(#key, self.#ident.as_ref()); },
                Some("Vec::is_empty") => quote! { writer.list(#key, &self.#ident); },
                Some("is_false") => quote! { writer.flag(#key, self.#ident); },
                Some(other) => {
                    return Err(syn::Error::new(
                        Span::call_site(),
                        format!("shared-derive cannot write skip_serializing_if = \"{other}\""),
                    ));
                }
            }
        };
        writes.push(write);
    }
    Ok(quote! {
        impl crate::encode::Encode for #name {
            fn encode(&self, writer: &mut crate::encode::Writer) {
                writer.open('{');
                #(#writes)*
                writer.close('}');
            }
        }
    })
}

fn decode_enum(name: &syn::Ident, names: &[(syn::Ident, String)]) -> Tokens {
    let what = snake_case(&name.to_string()).replace('_', " ");
    let pairs = names
        .iter()
        .map(|(variant, text)| quote! { (#text, #name::#variant) });
    quote! {
        impl crate::decode::Decode for #name {
            fn decode(reader: &mut crate::decode::Reader<'_>) -> ::core::result::Result<Self, crate::decode::DecodeError> {
                crate::decode::one_of(reader, &[#(#pairs),*], #what)
            }
        }
    }
}

fn encode_enum(name: &syn::Ident, names: &[(syn::Ident, String)]) -> Tokens {
    let arms = names
        .iter()
        .map(|(variant, text)| quote! { #name::#variant => #text, });
    quote! {
        impl crate::encode::Encode for #name {
            fn encode(&self, writer: &mut crate::encode::Writer) {
                let name = match self { #(#arms)* };
                crate::encode::Encode::encode(name, writer);
            }
        }
    }
}
