//! The options of `#[connector_plugin(...)]`, parsed with `syn::meta::parser`.

use syn::LitStr;
use syn::meta::ParseNestedMeta;

use crate::errors::Errors;

/// The options, folded: each at most once.
#[derive(Default)]
pub(crate) struct PluginOptions {
    /// The plugin name override.
    pub(crate) name: Option<LitStr>,
    /// The plugin version override.
    pub(crate) version: Option<LitStr>,
    /// The sdk path override.
    pub(crate) krate: Option<syn::Path>,
}

impl PluginOptions {
    /// Parses the attribute's arguments, reporting every problem to `errors`: an unknown or
    /// repeated option is reported and parsing goes on, so that all of them show at once;
    /// tokens that are not `key = "value"` end it.
    pub(crate) fn parse(args: proc_macro2::TokenStream, errors: &mut Errors) -> Self {
        let mut options = Self::default();
        let parser = syn::meta::parser(|meta| options.option(&meta, errors));
        if let Err(error) = syn::parse::Parser::parse2(parser, args) {
            errors.push(error);
        }
        options
    }

    /// One `key = "value"`.
    fn option(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        let key = &meta.path;
        if key.is_ident("name") {
            let value: LitStr = meta.value()?.parse()?;
            if value.value().trim().is_empty() {
                errors.error_spanned_by(&value, "plugin `name` must not be empty");
            }
            set_once(&mut self.name, value, key, errors);
        } else if key.is_ident("version") {
            let value: LitStr = meta.value()?.parse()?;
            set_once(&mut self.version, value, key, errors);
        } else if key.is_ident("crate") {
            let value: LitStr = meta.value()?.parse()?;
            match value.parse::<syn::Path>() {
                Ok(path) => set_once(&mut self.krate, path, key, errors),
                Err(_) => errors.error_spanned_by(
                    &value,
                    format!(
                        "`crate` must be a path, like `::weir_sdk`, not {:?}",
                        value.value()
                    ),
                ),
            }
        } else {
            let name = quote::ToTokens::to_token_stream(key).to_string();
            errors.error_spanned_by(
                key,
                format!("unknown option `{name}`: expected `name`, `version` or `crate`"),
            );
            // Its value is skipped, so that the options after it are still looked at.
            meta.value()?.parse::<syn::Expr>()?;
        }
        Ok(())
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, key: &syn::Path, errors: &mut Errors) {
    if slot.is_some() {
        let name = quote::ToTokens::to_token_stream(key).to_string();
        errors.error_spanned_by(key, format!("duplicate option `{name}`"));
    } else {
        *slot = Some(value);
    }
}
