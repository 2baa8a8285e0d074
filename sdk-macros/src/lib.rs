//! The `#[connector_plugin]` attribute of `weir-sdk`. Use it through `weir_sdk`, which
//! documents it; this crate is an implementation detail.
//!
//! Structure: `attr` parses the options, `model` the annotated impl, `check` applies the
//! rules (collecting every error), and `expand` generates code. Generated code is thin glue
//! into `weir_sdk::__private`.

mod attr;
mod check;
mod errors;
mod expand;
mod model;

use proc_macro::TokenStream;

/// See `weir_sdk::connector_plugin`.
#[proc_macro_attribute]
pub fn connector_plugin(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::connector_plugin(args.into(), input.into()).into()
}
