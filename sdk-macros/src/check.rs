//! The rules a connector impl must follow, each reported on the offending tokens.

use crate::errors::Errors;
use crate::model::{
    CONNECTOR_METHODS, ConnectorImpl, SINK_ONLY_METHODS, SOURCE_ONLY_METHODS, name,
};

/// Applies every rule, reporting all violations.
pub(crate) fn check(connector: &ConnectorImpl<'_>, errors: &mut Errors) {
    let item = connector.item;
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.error_spanned_by(
            &item.generics,
            "plugins cannot be generic: the host loads them after monomorphization",
        );
    }
    if has_elided_lifetime(connector.self_ty) {
        errors.error_spanned_by(
            connector.self_ty,
            "plugins cannot be generic: the host loads them after monomorphization \
             (name a concrete `'static` type)",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        errors.error_spanned_by(unsafety, "`Connector` is a safe trait: remove `unsafe`");
    }

    for method in &connector.methods {
        let ident = name(method);
        if let Some(asyncness) = &method.sig.asyncness {
            errors.error_spanned_by(
                asyncness,
                format!(
                    "`{ident}` cannot be `async`: the host calls connectors synchronously and \
                     runs timers, retries and I/O waits itself"
                ),
            );
        }
        if !CONNECTOR_METHODS.iter().any(|known| ident == known) {
            errors.error_spanned_by(
                ident,
                format!(
                    "`{ident}` is not a method of `Connector`; expected one of: {}",
                    CONNECTOR_METHODS.join(", ")
                ),
            );
        }
    }

    let (source, sink) = (connector.is_source(), connector.is_sink());
    if !source && !sink {
        errors.error_spanned_by(
            connector.self_ty,
            "a connector must be a source (define `pull`), a sink (define `on_event`), or both",
        );
    }
    if !sink {
        reject_side_only(connector, errors, SINK_ONLY_METHODS, "sinks", "on_event");
    }
    if !source {
        reject_side_only(connector, errors, SOURCE_ONLY_METHODS, "sources", "pull");
    }
}

/// Reports methods that are only called on one side (`sources` or `sinks`) in a connector
/// that is not on that side (does not define `defining`).
fn reject_side_only(
    connector: &ConnectorImpl<'_>,
    errors: &mut Errors,
    methods: &[&str],
    side: &str,
    defining: &str,
) {
    for method in &connector.methods {
        let ident = name(method);
        if methods.iter().any(|m| ident == m) {
            errors.error_spanned_by(
                ident,
                format!(
                    "`{ident}` is only called on {side}, and this connector is not one \
                     (it does not define `{defining}`)"
                ),
            );
        }
    }
}

/// Whether a type mentions `'_`, which makes the impl generic over a lifetime.
pub(crate) fn has_elided_lifetime(ty: &syn::Type) -> bool {
    use syn::visit::Visit;
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident == "_" {
                self.0 = true;
            }
        }
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            if reference.lifetime.is_none() {
                self.0 = true;
            }
            syn::visit::visit_type_reference(self, reference);
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}
