//! The options of `#[connector_plugin(...)]`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Token};

use crate::errors::Errors;

/// One `key = "value"` option, as written.
pub(crate) enum PluginOption {
    /// `name = "..."`: the plugin name.
    Name(LitStr),
    /// `version = "..."`: the plugin's own version.
    Version(LitStr),
    /// `crate = "..."`: path of the sdk crate.
    Crate(LitStr),
}

/// A parsed option with the key that introduced it, for error spans.
pub(crate) struct SpannedOption {
    key: Ident,
    option: Result<PluginOption, syn::Error>,
}

impl Parse for SpannedOption {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = if input.peek(Token![crate]) {
            let token: Token![crate] = input.parse()?;
            Ident::new("crate", token.span)
        } else {
            input.parse::<Ident>()?
        };
        input.parse::<Token![=]>()?;
        let value: LitStr = input.parse()?;
        let option = match key.to_string().as_str() {
            "name" => Ok(PluginOption::Name(value)),
            "version" => Ok(PluginOption::Version(value)),
            "crate" => Ok(PluginOption::Crate(value)),
            other => Err(syn::Error::new(
                key.span(),
                format!("unknown option `{other}`: expected `name`, `version` or `crate`"),
            )),
        };
        Ok(Self { key, option })
    }
}

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
    /// Parses the attribute's arguments, reporting every problem to `errors`.
    pub(crate) fn parse(args: proc_macro2::TokenStream, errors: &mut Errors) -> Self {
        let mut options = Self::default();
        let parsed = match syn::parse::Parser::parse2(
            Punctuated::<SpannedOption, Token![,]>::parse_terminated,
            args,
        ) {
            Ok(parsed) => parsed,
            Err(error) => {
                errors.push(error);
                return options;
            }
        };
        for SpannedOption { key, option } in parsed {
            match option {
                Ok(PluginOption::Name(value)) => {
                    if value.value().trim().is_empty() {
                        errors.error_spanned_by(&value, "plugin `name` must not be empty");
                    }
                    set_once(&mut options.name, value, &key, errors);
                }
                Ok(PluginOption::Version(value)) => {
                    set_once(&mut options.version, value, &key, errors);
                }
                Ok(PluginOption::Crate(value)) => match value.parse::<syn::Path>() {
                    Ok(path) => set_once(&mut options.krate, path, &key, errors),
                    Err(_) => errors.error_spanned_by(
                        &value,
                        format!(
                            "`crate` must be a path, like `::weir_sdk`, not {:?}",
                            value.value()
                        ),
                    ),
                },
                Err(error) => errors.push(error),
            }
        }
        options
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, key: &Ident, errors: &mut Errors) {
    if slot.is_some() {
        errors.error_spanned_by(key, format!("duplicate option `{key}`"));
    } else {
        *slot = Some(value);
    }
}
