//! A pipeline file resolved against the plugins available: every configuration error is
//! found here, before anything starts.

use crate::config::{ConfigError, ConfigErrors, PipelineSpec};
use crate::discovery::{PluginRepository, ResolveError};
use crate::error::CallError;
use crate::field_path::FieldPath;
use crate::loader::{Plugin, Sides};
use crate::runtime::Port;
use crate::suggest::did_you_mean;

/// A pipeline whose plugins exist, whose bindings connect sources to sinks, and whose
/// connector configs were accepted by their plugins.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The parsed file.
    pub spec: PipelineSpec,
    /// The plugin of each connector, in the order of `spec.connectors`.
    pub plugins: Vec<Plugin>,
}

impl Pipeline {
    /// Resolves `spec` against `repository` and validates every connector's config by
    /// creating (and dropping) an instance: constructors create state but open nothing.
    ///
    /// # Errors
    /// Every problem, located in the pipeline file: unknown plugins (listing the available
    /// ones), bindings from a connector that is not a source or to one that is not a sink,
    /// and the plugins' own config errors at the offending field.
    pub fn resolve(
        spec: PipelineSpec,
        repository: &PluginRepository,
    ) -> Result<Self, ConfigErrors> {
        let mut errors: Vec<ConfigError> = Vec::new();
        let mut plugins = Vec::with_capacity(spec.connectors.len());
        for (index, connector) in spec.connectors.iter().enumerate() {
            match repository.resolve(&connector.plugin) {
                Ok(plugin) => plugins.push(Some(plugin.clone())),
                Err(ResolveError::Unknown { name }) => {
                    let available = repository.names();
                    let available = if available.is_empty() {
                        "none found on the plugin path".to_owned()
                    } else {
                        available.join(", ")
                    };
                    errors.push(spec.plugin_error(
                        index,
                        format!(
                            "unknown plugin `{name}` (available: {available}){}",
                            did_you_mean(&name, repository.names())
                        ),
                    ));
                    plugins.push(None);
                }
                Err(other) => {
                    errors.push(spec.plugin_error(index, other.to_string()));
                    plugins.push(None);
                }
            }
        }
        for (b, binding) in spec.bindings.iter().enumerate() {
            if let Some(plugin) = &plugins[binding.from]
                && !plugin.info().is_source
            {
                errors.push(spec.binding_error(
                    b,
                    None,
                    format!(
                        "connector `{}` (plugin `{}`) is not a source: it has no `{}` port",
                        spec.connectors[binding.from].id,
                        plugin.name(),
                        if binding.port == Port::Err {
                            "err"
                        } else {
                            "out"
                        }
                    ),
                ));
            }
            for (t, &to) in binding.to.iter().enumerate() {
                if let Some(plugin) = &plugins[to]
                    && !plugin.info().is_sink
                {
                    errors.push(spec.binding_error(
                        b,
                        Some(t),
                        format!(
                            "connector `{}` (plugin `{}`) is not a sink: it cannot receive events",
                            spec.connectors[to].id,
                            plugin.name()
                        ),
                    ));
                }
            }
        }
        for (index, (connector, plugin)) in spec.connectors.iter().zip(&plugins).enumerate() {
            let Some(plugin) = plugin else { continue };
            // The connector sees how it is bound, as it will when it runs, so a config that
            // cannot work that way (a `file` in read mode as a sink) is reported here.
            let links = spec.graph.links(index);
            let bound_as = Sides {
                source: links.is_source(),
                sink: links.is_sink(),
            };
            match plugin.instantiate_bound(&connector.id, &connector.config, bound_as) {
                Ok(instance) => drop(instance),
                Err(CallError::Config {
                    field_path,
                    message,
                    ..
                }) => {
                    errors.push(spec.plugin_config_error(index, &field_path, message));
                }
                Err(other) => errors.push(spec.plugin_config_error(
                    index,
                    &FieldPath::default(),
                    other.to_string(),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors::sorted(errors));
        }
        Ok(Self {
            spec,
            plugins: plugins
                .into_iter()
                .map(|p| p.expect("all resolved"))
                .collect(),
        })
    }
}
