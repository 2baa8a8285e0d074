//! The pipeline file: connectors and the bindings between them.
//!
//! ```toml
//! [[connector]]
//! id = "in"
//! plugin = "blaster"
//! codec = "json"                # json (default), string or binary
//! preprocessors = ["lines"]     # or [{ name = "lines", separator = "\r\n" }]
//! max_restarts = 3              # after a panic (default 3)
//! reconnect = { initial_ms = 100, max_ms = 5000 }
//! isolation = "process"         # in a child process of its own ("none": in weir's;
//!                               # default: as `weir run --isolation` says)
//! call_timeout_ms = 10000       # out of process: a call unanswered this long is a crash
//! memory_limit_mb = 512         # out of process: the child's address space (default: none)
//! [connector.config]            # handed to the plugin's typed config
//! source = "data/events.jsonl"
//!
//! [[connector]]
//! id = "out"
//! plugin = "blackhole"
//!
//! [[binding]]
//! from = "in"                   # or "in/err" for the error port
//! to = ["out"]
//! ```
//!
//! Every problem is reported with the file, line and column, and the key path, and all
//! problems of a file are reported together.

mod graph;
mod parse;
mod span;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use graph::{BindingGraph, Links};

use crate::codec::Codec;
use crate::field_path::FieldPath;
use crate::processor::ProcessorSpec;
use crate::runtime::{Backoff, Port};
use span::{SpanTree, line_column};

/// One problem in a pipeline file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Where in the document, like `connector[1].config.interval_ms`.
    pub key_path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key_path.is_empty() {
            write!(f, "`{}`: ", self.key_path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a pipeline file, in the order they appear in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, sorted by where they are in the file (the order of discovery breaks
    /// ties).
    pub fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| (e.line, e.column));
        Self(errors)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A connector's config written as a TOML document of its own (what a pipeline file puts
/// in its `[connector.config]` table), as the JSON the host hands to the plugin: the same
/// conversion, with the same errors, as for a pipeline file. `file` is only used in
/// error messages.
///
/// ```
/// let config = weir_host::config::connector_config(
///     std::path::Path::new("tick.toml"),
///     "interval_ms = 10\nlabel = \"tick\"",
/// )?;
/// assert_eq!(config, serde_json::json!({ "interval_ms": 10, "label": "tick" }));
/// # Ok::<(), weir_host::config::ConfigErrors>(())
/// ```
///
/// # Errors
/// A syntax error, or a value JSON cannot hold (an integer beyond 64 bits, `nan`, `inf`),
/// each with its location.
pub fn connector_config(file: &Path, source: &str) -> Result<serde_json::Value, ConfigErrors> {
    parse::config_document(file, source).map_err(ConfigErrors::sorted)
}

/// One connector as configured.
#[derive(Debug, Clone)]
pub struct ConnectorSpec {
    /// Its id, unique in the file.
    pub id: String,
    /// The plugin name it runs.
    pub plugin: String,
    /// Its codec.
    pub codec: Codec,
    /// Source side, before decoding.
    pub preprocessors: Vec<ProcessorSpec>,
    /// Sink side, after encoding.
    pub postprocessors: Vec<ProcessorSpec>,
    /// The plugin's config, as JSON.
    pub config: serde_json::Value,
    /// Restarts after a panic before the connector is stopped for good.
    pub max_restarts: u32,
    /// Backoff between connection attempts (and restarts).
    pub reconnect: Backoff,
    /// Where it runs: in `weir`'s process or in a child process of its own.
    pub isolation: IsolationMode,
    /// Out of process: the longest a call may go unanswered before the child is killed as
    /// hung (and restarted).
    pub call_timeout: Duration,
    /// Out of process: the most address space the child may map, in bytes
    /// (`memory_limit_mb`); none by default.
    pub memory_limit: Option<u64>,
    /// Where things are, for errors found later (the plugin's own config errors).
    locations: ConnectorLocations,
}

impl ConnectorSpec {
    /// Whether `other` configures the connector the same way: every setting but where in
    /// its file it was written.
    pub fn same_settings(&self, other: &Self) -> bool {
        self.id == other.id
            && self.plugin == other.plugin
            && self.codec == other.codec
            && self.preprocessors == other.preprocessors
            && self.postprocessors == other.postprocessors
            && self.config == other.config
            && self.max_restarts == other.max_restarts
            && self.reconnect == other.reconnect
            && self.isolation == other.isolation
            && self.call_timeout == other.call_timeout
            && self.memory_limit == other.memory_limit
    }
}

/// Where a connector runs (`isolation` in the pipeline file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IsolationMode {
    /// As `weir run --isolation` says (in process unless told otherwise).
    #[default]
    Default,
    /// `"none"`: in `weir`'s own process, called through its vtable.
    InProcess,
    /// `"process"`: in a child process, restarted when it crashes.
    Process,
}

/// How long an isolated connector's call may go unanswered, unless `call_timeout_ms` says.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct ConnectorLocations {
    index: usize,
    table: Range<usize>,
    plugin: Range<usize>,
    config: Option<SpanTree>,
}

/// A binding: events of `from`'s `port` go to every connector in `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingSpec {
    /// Index of the source connector.
    pub from: usize,
    /// Which output.
    pub port: Port,
    /// Indices of the sink connectors.
    pub to: Vec<usize>,
    locations: BindingLocations,
}

impl BindingSpec {
    /// A binding with no location in any file, for unit tests of what is built from it.
    #[cfg(test)]
    pub(crate) fn for_test(index: usize, from: usize, port: Port, to: &[usize]) -> Self {
        Self {
            from,
            port,
            to: to.to_vec(),
            locations: BindingLocations {
                index,
                from: 0..0,
                to: vec![0..0; to.len()],
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BindingLocations {
    index: usize,
    from: Range<usize>,
    to: Vec<Range<usize>>,
}

/// A parsed, structurally valid pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// The file it was read from.
    pub file: PathBuf,
    /// The connectors, in file order.
    pub connectors: Vec<ConnectorSpec>,
    /// The bindings, in file order.
    pub bindings: Vec<BindingSpec>,
    /// The graph the bindings make, built once.
    pub graph: BindingGraph,
    /// Plugin directories the file asks for (`plugin_path = [...]`), relative ones taken
    /// from the file's directory; searched after `--plugin-dir` and `WEIR_PLUGIN_PATH`.
    pub plugin_path: Vec<PathBuf>,
    source: String,
}

impl PipelineSpec {
    /// Reads and parses a pipeline file.
    ///
    /// # Errors
    /// A syntax error, or every structural problem (unknown keys, wrong types, unknown
    /// codecs and processors, duplicate ids, bindings to unknown connectors, cycles), each
    /// with its location.
    pub fn read(file: &Path) -> Result<Self, ConfigErrors> {
        let opened = std::fs::File::open(file).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: file.to_owned(),
                line: 1,
                column: 1,
                key_path: String::new(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::read_from(file, opened)
    }

    /// [`read`](Self::read) from `reader`, the contents of `file` (named in errors).
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn read_from(file: &Path, reader: impl std::io::Read) -> Result<Self, ConfigErrors> {
        let error = |(line, column), message| {
            ConfigErrors(vec![ConfigError {
                file: file.to_owned(),
                line,
                column,
                key_path: String::new(),
                message,
            }])
        };
        let bytes = read_capped(reader, Self::MAX_FILE_SIZE)
            .map_err(|e| error((1, 1), format!("cannot read: {e}")))?;
        let source = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            // Valid up to `valid`, so this prefix is a string.
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            error(
                line_column(prefix, valid),
                format!(
                    "not UTF-8: byte 0x{:02x} at offset {valid} (a pipeline file is UTF-8 text)",
                    bytes[valid]
                ),
            )
        })?;
        Self::parse(file, source)
    }

    /// The largest pipeline file read, in bytes (a pipeline of thousands of connectors
    /// is well under it; `/dev/zero` is not).
    pub const MAX_FILE_SIZE: u64 = 16 << 20;

    /// Parses a pipeline document; `file` is only used in error messages.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn parse(file: &Path, source: String) -> Result<Self, ConfigErrors> {
        let parse::Parsed {
            connectors,
            bindings,
            plugin_path,
        } = parse::parse(file, &source).map_err(ConfigErrors::sorted)?;
        let graph = BindingGraph::new(connectors.len(), &bindings);
        let base = file.parent().unwrap_or(Path::new(""));
        let spec = Self {
            file: file.to_owned(),
            connectors,
            bindings,
            graph,
            plugin_path: plugin_path.iter().map(|dir| base.join(dir)).collect(),
            source,
        };
        let cycles: Vec<ConfigError> = spec
            .graph
            .cycles()
            .into_iter()
            .map(|cycle| {
                let names: Vec<&str> = cycle
                    .path
                    .iter()
                    .map(|&n| spec.connectors[n].id.as_str())
                    .collect();
                let (binding, to_index) = spec
                    .bindings
                    .iter()
                    .enumerate()
                    .find_map(|(b, binding)| {
                        let to = binding.to.iter().position(|&t| t == cycle.to)?;
                        (binding.from == cycle.from).then_some((b, to))
                    })
                    .expect("a cycle's edge comes from a binding");
                spec.binding_error(
                    binding,
                    Some(to_index),
                    format!("bindings form a cycle: {}", names.join(" -> ")),
                )
            })
            .collect();
        if !cycles.is_empty() {
            return Err(ConfigErrors::sorted(cycles));
        }
        Ok(spec)
    }

    /// A located error about the `plugin` key of `connector`.
    pub fn plugin_error(&self, connector: usize, message: String) -> ConfigError {
        let spec = &self.connectors[connector];
        self.located(
            spec.locations.plugin.clone(),
            format!("connector[{}].plugin", spec.locations.index),
            message,
        )
    }

    /// A located error about the connector's plugin config, at the field `field_path`
    /// (empty for the config table itself).
    pub fn plugin_config_error(
        &self,
        connector: usize,
        field_path: &FieldPath,
        message: String,
    ) -> ConfigError {
        let spec = &self.connectors[connector];
        let base = format!("connector[{}].config", spec.locations.index);
        let key_path = match field_path.0.first() {
            None => base,
            Some(crate::field_path::FieldSegment::Index(_)) => format!("{base}{field_path}"),
            Some(crate::field_path::FieldSegment::Key(_)) => format!("{base}.{field_path}"),
        };
        let span = spec
            .locations
            .config
            .as_ref()
            .map(|config| config.locate(field_path))
            .unwrap_or_else(|| spec.locations.table.clone());
        self.located(span, key_path, message)
    }

    /// A located error about a binding's connector reference (`to` when `to_index` is
    /// given, else `from`).
    pub fn binding_error(
        &self,
        binding: usize,
        to_index: Option<usize>,
        message: String,
    ) -> ConfigError {
        let locations = &self.bindings[binding].locations;
        let (span, key) = match to_index {
            Some(i) => (
                locations.to[i].clone(),
                format!("binding[{}].to[{i}]", locations.index),
            ),
            None => (
                locations.from.clone(),
                format!("binding[{}].from", locations.index),
            ),
        };
        self.located(span, key, message)
    }

    fn located(&self, span: Range<usize>, key_path: String, message: String) -> ConfigError {
        let (line, column) = line_column(&self.source, span.start);
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            key_path,
            message,
        }
    }
}

/// Reads `reader` whole, refusing more than `limit` bytes (a device or a growing file does
/// not exhaust memory).
fn read_capped(reader: impl std::io::Read, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB: not a pipeline file",
            limit >> 20
        )));
    }
    Ok(bytes)
}
