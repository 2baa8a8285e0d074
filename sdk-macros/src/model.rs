//! The annotated item, parsed into what the checks and the expansion need. Every node keeps
//! a reference to the original tokens so errors point at them.

use syn::{Ident, ImplItem, ImplItemFn, Item, ItemImpl, Type};

use crate::errors::Errors;

/// `impl Connector for T { ... }`, as the user wrote it.
pub(crate) struct ConnectorImpl<'a> {
    /// The whole impl block.
    pub(crate) item: &'a ItemImpl,
    /// `T`.
    pub(crate) self_ty: &'a Type,
    /// The methods defined in the impl.
    pub(crate) methods: Vec<&'a ImplItemFn>,
}

impl<'a> ConnectorImpl<'a> {
    /// Recognizes `impl Connector for T`; anything else is reported and yields `None`.
    pub(crate) fn from_item(item: &'a Item, errors: &mut Errors) -> Option<Self> {
        const RULE: &str = "`#[connector_plugin]` must be placed on `impl Connector for T`";
        let Item::Impl(item) = item else {
            errors.error_spanned_by(item_head(item), RULE);
            return None;
        };
        let Some((negative, trait_path, _)) = &item.trait_ else {
            errors.error_spanned_by(&item.self_ty, format!("{RULE}, not on an inherent impl"));
            return None;
        };
        if negative.is_some()
            || trait_path
                .segments
                .last()
                .is_none_or(|s| s.ident != "Connector")
        {
            errors.error_spanned_by(trait_path, format!("{RULE}: this implements another trait"));
            return None;
        }
        let methods = item
            .items
            .iter()
            .filter_map(|i| match i {
                ImplItem::Fn(f) => Some(f),
                _ => None,
            })
            .collect();
        Some(Self {
            item,
            self_ty: &item.self_ty,
            methods,
        })
    }

    /// The method named `name`, if the impl defines it.
    pub(crate) fn method(&self, name: &str) -> Option<&'a ImplItemFn> {
        self.methods.iter().copied().find(|m| m.sig.ident == name)
    }

    /// Whether the impl makes the connector a source.
    pub(crate) fn is_source(&self) -> bool {
        self.method("pull").is_some()
    }

    /// Whether the impl makes the connector a sink.
    pub(crate) fn is_sink(&self) -> bool {
        self.method("on_event").is_some()
    }
}

/// The tokens that best name an item in an error: its keyword and name.
fn item_head(item: &Item) -> proc_macro2::TokenStream {
    use quote::quote;
    match item {
        Item::Fn(f) => {
            let sig = &f.sig;
            let (fn_token, ident) = (&sig.fn_token, &sig.ident);
            quote!(#fn_token #ident)
        }
        Item::Struct(s) => {
            let (kw, ident) = (&s.struct_token, &s.ident);
            quote!(#kw #ident)
        }
        Item::Enum(e) => {
            let (kw, ident) = (&e.enum_token, &e.ident);
            quote!(#kw #ident)
        }
        Item::Trait(t) => {
            let (kw, ident) = (&t.trait_token, &t.ident);
            quote!(#kw #ident)
        }
        Item::Mod(m) => {
            let (kw, ident) = (&m.mod_token, &m.ident);
            quote!(#kw #ident)
        }
        other => quote!(#other),
    }
}

/// Names of the methods of `weir_sdk::Connector`, in declaration order.
pub(crate) const CONNECTOR_METHODS: &[&str] = &[
    "new",
    "connect",
    "on_start",
    "on_pause",
    "on_resume",
    "on_drain",
    "on_stop",
    "pull",
    "on_ack",
    "on_fail",
    "on_circuit",
    "on_tick",
    "on_event",
    "on_batch_end",
];

/// Methods that are only ever called on sources.
pub(crate) const SOURCE_ONLY_METHODS: &[&str] = &["on_ack", "on_fail", "on_circuit"];

/// Methods that are only ever called on sinks.
pub(crate) const SINK_ONLY_METHODS: &[&str] = &["on_tick", "on_batch_end"];

/// The method's name.
pub(crate) fn name(method: &ImplItemFn) -> &Ident {
    &method.sig.ident
}

#[cfg(test)]
mod tests {
    use super::CONNECTOR_METHODS;

    /// The functions of `trait Connector` (or of `impl Connector for ...`) in a source file.
    fn connector_fns(path: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let text = std::fs::read_to_string(&path).unwrap();
        let file = syn::parse_file(&text).unwrap();
        let mut names = Vec::new();
        for item in file.items {
            match item {
                syn::Item::Trait(t) if t.ident == "Connector" => {
                    for item in t.items {
                        if let syn::TraitItem::Fn(f) = item {
                            names.push(f.sig.ident.to_string());
                        }
                    }
                }
                syn::Item::Impl(i)
                    if i.trait_
                        .as_ref()
                        .is_some_and(|(_, p, _)| p.is_ident("Connector")) =>
                {
                    for item in i.items {
                        if let syn::ImplItem::Fn(f) = item {
                            names.push(f.sig.ident.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        names.sort();
        names
    }

    #[test]
    fn the_method_list_is_the_traits_and_the_every_method_test_has_them_all() {
        let mut known: Vec<String> = CONNECTOR_METHODS.iter().map(|m| (*m).to_owned()).collect();
        known.sort();
        assert_eq!(
            connector_fns("../sdk/src/connector.rs"),
            known,
            "CONNECTOR_METHODS must list the methods of `weir_sdk::Connector`"
        );
        assert_eq!(
            connector_fns("../ui-tests/tests/pass/source-and-sink-with-every-method.rs"),
            known,
            "the pass test with every method must define each of them"
        );
    }
}
