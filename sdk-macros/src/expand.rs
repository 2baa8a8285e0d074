//! Code generation. Only called with an impl that passed every check, except for
//! [`fallback`], which keeps the user's impl compiling next to the errors.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ImplItem, Item, ItemImpl};

use crate::attr::PluginOptions;
use crate::check::check;
use crate::errors::Errors;
use crate::model::{CONNECTOR_METHODS, ConnectorImpl};

/// The whole expansion of `#[connector_plugin(args)] input`.
pub(crate) fn connector_plugin(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = PluginOptions::parse(args, &mut errors);
    let item: Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => {
            errors.push(error);
            return fallback(input, errors);
        }
    };
    let Some(connector) = ConnectorImpl::from_item(&item, &mut errors) else {
        return fallback(input, errors);
    };
    check(&connector, &mut errors);
    if !errors.is_empty() {
        let cleaned = strip_invalid(connector.item)
            .map(|item| quote!(#item))
            .unwrap_or_default();
        return fallback(cleaned, errors);
    }
    generate(&connector, &options)
}

/// The user's impl, unchanged, and the export glue.
fn generate(connector: &ConnectorImpl<'_>, options: &PluginOptions) -> TokenStream {
    let item = connector.item;
    let self_ty = connector.self_ty;
    let krate = match &options.krate {
        Some(path) => quote!(#path),
        None => quote!(::weir_sdk),
    };
    let name = match &options.name {
        Some(name) => quote!(#name),
        None => quote!(::core::env!("CARGO_PKG_NAME")),
    };
    let version = match &options.version {
        Some(version) => quote!(#version),
        None => quote!(::core::env!("CARGO_PKG_VERSION")),
    };
    let capabilities = match (connector.is_source(), connector.is_sink()) {
        (true, true) => quote!(#krate::abi::Capabilities::ALL),
        (true, false) => quote!(#krate::abi::Capabilities::SOURCE),
        _ => quote!(#krate::abi::Capabilities::SINK),
    };
    let symbol = metadata_symbol(item, self_ty);
    quote! {
        #item

        const _: () = {
            impl #krate::__private::Export for #self_ty {
                const NAME: &'static str = #name;
                const VERSION: &'static str = #version;
                const CAPABILITIES: #krate::abi::Capabilities = #capabilities;
            }
            #krate::__private::export_connector!(#self_ty, #symbol);
        };
    }
}

/// The errors, plus the user's tokens, so that follow-on errors do not cascade and IDEs
/// keep working (like thiserror's and tokio's fallbacks).
fn fallback(item: TokenStream, errors: Errors) -> TokenStream {
    let errors = errors.into_compile_errors();
    quote! {
        #errors
        #item
    }
}

/// The impl without what was already reported: unknown methods are removed, `async` and
/// `unsafe` dropped, so rustc does not report the same mistakes a second time. An impl that
/// is generic over a lifetime can never satisfy `Connector: 'static`; it is left out.
fn strip_invalid(item: &ItemImpl) -> Option<ItemImpl> {
    let lifetime_generic = item.generics.lifetimes().next().is_some()
        || crate::check::has_elided_lifetime(&item.self_ty);
    if lifetime_generic {
        return None;
    }
    let mut item = item.clone();
    item.unsafety = None;
    item.items.retain(|i| match i {
        ImplItem::Fn(f) => CONNECTOR_METHODS.iter().any(|known| f.sig.ident == known),
        _ => true,
    });
    for i in &mut item.items {
        if let ImplItem::Fn(f) = i {
            f.sig.asyncness = None;
        }
    }
    Some(item)
}

/// The name the metadata function is exported under: `weir_plugin_metadata__` and the
/// crate's name, its version, the type and a hash of the impl, so that several connector
/// crates (or several connector types of one crate, even of one name in two modules) can be
/// linked into one binary as built-ins. Cargo sets the crate's name and version for the
/// compiler, which runs this macro; without them, the type and the hash still tell impls
/// apart.
fn metadata_symbol(item: &ItemImpl, self_ty: &syn::Type) -> String {
    let var = |name| std::env::var(name).unwrap_or_default();
    let ty = quote!(#self_ty).to_string();
    let parts = [var("CARGO_CRATE_NAME"), var("CARGO_PKG_VERSION"), ty];
    let suffix: Vec<String> = parts
        .iter()
        .map(|part| {
            part.chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect()
        })
        .collect();
    // FNV-1a of the impl's tokens: stable for the same source, different for another impl.
    let hash = quote!(#item)
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!(
        "weir_plugin_metadata__{}__{:08x}",
        suffix.join("__"),
        hash >> 32
    )
}
