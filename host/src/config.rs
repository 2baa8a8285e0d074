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

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::codec::Codec;
use crate::processor::{Direction, ProcessorSpec};

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

/// Every problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

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

/// Backoff between connection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the second attempt.
    pub initial: Duration,
    /// Longest wait; the wait doubles up to it.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (0-based; attempt 0 does not wait).
    pub fn delay(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
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
    /// Where things are, for errors found later (the plugin's own config errors).
    locations: ConnectorLocations,
}

#[derive(Debug, Clone)]
struct ConnectorLocations {
    index: usize,
    table: Range<usize>,
    plugin: Range<usize>,
    config: Option<SpanTree>,
}

/// Which output of a connector a binding starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Port {
    /// Decoded events.
    Out,
    /// Decode and processor errors, as events.
    Err,
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
        let source = std::fs::read_to_string(file).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: file.to_owned(),
                line: 1,
                column: 1,
                key_path: String::new(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(file, source)
    }

    /// Parses a pipeline document; `file` is only used in error messages.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn parse(file: &Path, source: String) -> Result<Self, ConfigErrors> {
        let mut cx = Cx {
            file,
            source: &source,
            errors: Vec::new(),
        };
        let root = match DeTable::parse(&source) {
            Ok(root) => root,
            Err(error) => {
                let span = error.span().unwrap_or(0..0);
                cx.error(span, "", error.message().trim_end().to_owned());
                return Err(ConfigErrors(cx.errors));
            }
        };
        let mut connectors = Vec::new();
        let mut raw_bindings = Vec::new();
        for (key, value) in root.get_ref() {
            match key.get_ref().as_ref() {
                "connector" => {
                    for (index, item) in cx.array_of_tables(value, "connector").into_iter().enumerate() {
                        if let Some(connector) = cx.connector(index, item) {
                            connectors.push(connector);
                        }
                    }
                }
                "binding" => raw_bindings = cx.array_of_tables(value, "binding"),
                other => cx.error(
                    key.span(),
                    other,
                    format!("unknown key `{other}`: a pipeline file has `[[connector]]` and `[[binding]]` tables"),
                ),
            }
        }
        if connectors.is_empty() && cx.errors.is_empty() {
            cx.error(0..0, "", "no `[[connector]]` defined".to_owned());
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for connector in &connectors {
            if let Some(first) = seen.insert(&connector.id, connector.locations.index) {
                cx.error(
                    connector.locations.table.clone(),
                    &format!("connector[{}].id", connector.locations.index),
                    format!(
                        "duplicate connector id `{}` (first defined by connector[{first}])",
                        connector.id
                    ),
                );
            }
        }
        let bindings: Vec<BindingSpec> = raw_bindings
            .into_iter()
            .enumerate()
            .filter_map(|(index, table)| cx.binding(index, table, &connectors))
            .collect();
        cx.check_cycles(&connectors, &bindings);
        if !cx.errors.is_empty() {
            return Err(ConfigErrors(cx.errors));
        }
        Ok(Self {
            file: file.to_owned(),
            connectors,
            bindings,
            source,
        })
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
    /// (serde's notation, `a.b[2].c`; empty for the config table itself).
    pub fn plugin_config_error(
        &self,
        connector: usize,
        field_path: &str,
        message: String,
    ) -> ConfigError {
        let spec = &self.connectors[connector];
        let base = format!("connector[{}].config", spec.locations.index);
        let key_path = if field_path.is_empty() {
            base
        } else {
            format!("{base}.{field_path}")
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

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits serde_path_to_error's `a.b[2].c` notation.
fn path_segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.').filter(|s| !s.is_empty()).flat_map(|part| {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        let key = (!key.is_empty()).then_some(Segment::Key(key));
        let indices = indices
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse().ok().map(Segment::Index))
            .collect::<Vec<_>>();
        key.into_iter().chain(indices)
    })
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parsing context: the file, its text and the errors so far.
struct Cx<'a> {
    file: &'a Path,
    source: &'a str,
    errors: Vec<ConfigError>,
}

type Table<'i> = DeTable<'i>;

impl<'a> Cx<'a> {
    fn error(&mut self, span: Range<usize>, key_path: &str, message: String) {
        let (line, column) = line_column(self.source, span.start);
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            key_path: key_path.to_owned(),
            message,
        });
    }

    fn array_of_tables<'v, 'i>(
        &mut self,
        value: &'v Spanned<DeValue<'i>>,
        key: &str,
    ) -> Vec<(Range<usize>, &'v Table<'i>)> {
        let DeValue::Array(items) = value.get_ref() else {
            self.error(
                value.span(),
                key,
                format!("`{key}` must be an array of tables: write `[[{key}]]`"),
            );
            return Vec::new();
        };
        let mut tables = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(table) => tables.push((item.span(), table)),
                _ => self.error(
                    item.span(),
                    &format!("{key}[{index}]"),
                    format!("each `{key}` must be a table"),
                ),
            }
        }
        tables
    }

    fn connector(
        &mut self,
        index: usize,
        (span, table): (Range<usize>, &Table<'_>),
    ) -> Option<ConnectorSpec> {
        let path = |key: &str| format!("connector[{index}].{key}");
        let errors_before = self.errors.len();
        let mut id = None;
        let mut plugin = None;
        let mut codec = Codec::Json;
        let mut preprocessors = Vec::new();
        let mut postprocessors = Vec::new();
        let mut config = None;
        let mut max_restarts = 3;
        let mut reconnect = Backoff::default();
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            match name {
                "id" => {
                    if let Some(s) = self.string(value, &path("id")) {
                        if s.is_empty() || s.contains('/') || s.chars().any(char::is_whitespace) {
                            self.error(
                                value.span(),
                                &path("id"),
                                format!("invalid connector id {s:?}: use a non-empty name without `/` or spaces"),
                            );
                        } else {
                            id = Some(s);
                        }
                    }
                }
                "plugin" => {
                    plugin = self
                        .string(value, &path("plugin"))
                        .map(|s| (s, value.span()))
                }
                "codec" => {
                    if let Some(name) = self.string(value, &path("codec")) {
                        match Codec::by_name(&name) {
                            Ok(c) => codec = c,
                            Err(message) => self.error(value.span(), &path("codec"), message),
                        }
                    }
                }
                "preprocessors" => {
                    preprocessors = self.processors(value, &path("preprocessors"), Direction::Pre)
                }
                "postprocessors" => {
                    postprocessors =
                        self.processors(value, &path("postprocessors"), Direction::Post)
                }
                "config" => match value.get_ref() {
                    DeValue::Table(_) => config = Some(value),
                    _ => self.error(
                        value.span(),
                        &path("config"),
                        "`config` must be a table".to_owned(),
                    ),
                },
                "max_restarts" => {
                    if let Some(n) =
                        self.integer(value, &path("max_restarts"), 0, i64::from(u32::MAX))
                    {
                        max_restarts = n as u32;
                    }
                }
                "reconnect" => reconnect = self.backoff(value, &path("reconnect")),
                other => self.error(
                    key.span(),
                    &path(other),
                    format!(
                        "unknown key `{other}`: a connector has id, plugin, codec, preprocessors, \
                         postprocessors, config, max_restarts, reconnect"
                    ),
                ),
            }
        }
        if id.is_none() && !table.iter().any(|(k, _)| k.get_ref().as_ref() == "id") {
            self.error(
                span.clone(),
                &format!("connector[{index}]"),
                "missing key `id`".to_owned(),
            );
        }
        if plugin.is_none() && !table.iter().any(|(k, _)| k.get_ref().as_ref() == "plugin") {
            self.error(
                span.clone(),
                &format!("connector[{index}]"),
                "missing key `plugin`".to_owned(),
            );
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let (plugin, plugin_span) = plugin?;
        Some(ConnectorSpec {
            id: id?,
            plugin,
            codec,
            preprocessors,
            postprocessors,
            config: config.map_or_else(|| serde_json::json!({}), |c| to_json(c.get_ref())),
            max_restarts,
            reconnect,
            locations: ConnectorLocations {
                index,
                table: span,
                plugin: plugin_span,
                config: config.map(SpanTree::of),
            },
        })
    }

    fn processors(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        direction: Direction,
    ) -> Vec<ProcessorSpec> {
        let DeValue::Array(items) = value.get_ref() else {
            self.error(
                value.span(),
                path,
                "must be an array of processor names or tables".to_owned(),
            );
            return Vec::new();
        };
        let mut specs = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let (name, options) = match item.get_ref() {
                DeValue::String(name) => (name.to_string(), serde_json::Map::new()),
                DeValue::Table(table) => {
                    let mut options = serde_json::Map::new();
                    let mut name = None;
                    for (key, value) in table {
                        if key.get_ref().as_ref() == "name" {
                            name = self.string(value, &format!("{item_path}.name"));
                        } else {
                            options.insert(key.get_ref().to_string(), to_json(value.get_ref()));
                        }
                    }
                    let Some(name) = name else {
                        self.error(
                            item.span(),
                            &item_path,
                            "a processor table needs a `name`".to_owned(),
                        );
                        continue;
                    };
                    (name, options)
                }
                _ => {
                    self.error(
                        item.span(),
                        &item_path,
                        "a processor is a name or a table with a `name`".to_owned(),
                    );
                    continue;
                }
            };
            match ProcessorSpec::new(direction, &name, &options) {
                Ok(spec) => specs.push(spec),
                Err(message) => self.error(item.span(), &item_path, message),
            }
        }
        specs
    }

    fn backoff(&mut self, value: &Spanned<DeValue<'_>>, path: &str) -> Backoff {
        let mut backoff = Backoff::default();
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                value.span(),
                path,
                "`reconnect` must be a table like `{ initial_ms = 100, max_ms = 5000 }`".to_owned(),
            );
            return backoff;
        };
        for (key, value) in table {
            let key_path = format!("{path}.{}", key.get_ref());
            match key.get_ref().as_ref() {
                "initial_ms" => {
                    if let Some(ms) = self.integer(value, &key_path, 1, 3_600_000) {
                        backoff.initial = Duration::from_millis(ms as u64);
                    }
                }
                "max_ms" => {
                    if let Some(ms) = self.integer(value, &key_path, 1, 3_600_000) {
                        backoff.max = Duration::from_millis(ms as u64);
                    }
                }
                other => self.error(
                    key.span(),
                    &key_path,
                    format!("unknown key `{other}`: expected initial_ms or max_ms"),
                ),
            }
        }
        if backoff.max < backoff.initial {
            self.error(
                value.span(),
                path,
                "`max_ms` must not be smaller than `initial_ms`".to_owned(),
            );
        }
        backoff
    }

    fn binding(
        &mut self,
        index: usize,
        (span, table): (Range<usize>, &Table<'_>),
        connectors: &[ConnectorSpec],
    ) -> Option<BindingSpec> {
        let path = |key: &str| format!("binding[{index}].{key}");
        let resolve = |cx: &mut Self,
                       value: &Spanned<DeValue<'_>>,
                       key_path: &str,
                       allowed_ports: &[&str]| {
            let reference = cx.string(value, key_path)?;
            let (id, port) = reference
                .split_once('/')
                .map_or((reference.as_str(), None), |(i, p)| (i, Some(p)));
            if let Some(port) = port.filter(|p| !allowed_ports.contains(p)) {
                cx.error(
                    value.span(),
                    key_path,
                    format!(
                        "unknown port `{port}` in `{reference}`: expected {}",
                        allowed_ports.join(" or ")
                    ),
                );
                return None;
            }
            match connectors.iter().position(|c| c.id == id) {
                Some(i) => Some((i, port.map(str::to_owned), value.span())),
                None => {
                    let known: Vec<&str> = connectors.iter().map(|c| c.id.as_str()).collect();
                    cx.error(
                        value.span(),
                        key_path,
                        format!(
                            "binding to unknown connector `{id}` (connectors: {})",
                            known.join(", ")
                        ),
                    );
                    None
                }
            }
        };
        let mut from = None;
        let mut to = Vec::new();
        let mut to_spans = Vec::new();
        let mut seen_to = false;
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "from" => from = resolve(self, value, &path("from"), &["out", "err"]),
                "to" => {
                    seen_to = true;
                    let items: Vec<&Spanned<DeValue<'_>>> = match value.get_ref() {
                        DeValue::Array(items) => items.iter().collect(),
                        DeValue::String(_) => vec![value],
                        _ => {
                            self.error(
                                value.span(),
                                &path("to"),
                                "`to` must be a connector id or an array of them".to_owned(),
                            );
                            Vec::new()
                        }
                    };
                    if items.is_empty() {
                        self.error(
                            value.span(),
                            &path("to"),
                            "`to` names no connector".to_owned(),
                        );
                    }
                    for (i, item) in items.into_iter().enumerate() {
                        if let Some((connector, _, span)) =
                            resolve(self, item, &format!("binding[{index}].to[{i}]"), &["in"])
                        {
                            to.push(connector);
                            to_spans.push(span);
                        }
                    }
                }
                other => self.error(
                    key.span(),
                    &path(other),
                    format!("unknown key `{other}`: a binding has `from` and `to`"),
                ),
            }
        }
        if !table.iter().any(|(k, _)| k.get_ref().as_ref() == "from") {
            self.error(
                span.clone(),
                &format!("binding[{index}]"),
                "missing key `from`".to_owned(),
            );
        }
        if !seen_to {
            self.error(
                span.clone(),
                &format!("binding[{index}]"),
                "missing key `to`".to_owned(),
            );
        }
        let (from, port, from_span) = from?;
        if to.is_empty() {
            return None;
        }
        let port = if port.as_deref() == Some("err") {
            Port::Err
        } else {
            Port::Out
        };
        Some(BindingSpec {
            from,
            port,
            to,
            locations: BindingLocations {
                index,
                from: from_span,
                to: to_spans,
            },
        })
    }

    /// Rejects cycles between different connectors (a binding from a connector to itself
    /// is allowed: it is how a connector replies on its own connections).
    fn check_cycles(&mut self, connectors: &[ConnectorSpec], bindings: &[BindingSpec]) {
        let n = connectors.len();
        let mut edges = vec![Vec::new(); n];
        for binding in bindings {
            for &to in &binding.to {
                if to != binding.from {
                    edges[binding.from].push((to, binding));
                }
            }
        }
        // Iterative DFS with colours; report each cycle once, at the binding that closes it.
        let mut colour = vec![0u8; n];
        for start in 0..n {
            if colour[start] != 0 {
                continue;
            }
            let mut stack = vec![(start, 0usize)];
            colour[start] = 1;
            while let Some((node, next)) = stack.last_mut() {
                let node = *node;
                if let Some(&(to, binding)) = edges[node].get(*next) {
                    *next += 1;
                    match colour[to] {
                        0 => {
                            colour[to] = 1;
                            stack.push((to, 0));
                        }
                        1 => {
                            let cycle_start = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                            let mut names: Vec<&str> = stack[cycle_start..]
                                .iter()
                                .map(|(n, _)| connectors[*n].id.as_str())
                                .collect();
                            names.push(&connectors[to].id);
                            let i = binding.to.iter().position(|t| *t == to).unwrap_or(0);
                            let span = binding
                                .locations
                                .to
                                .get(i)
                                .cloned()
                                .unwrap_or(binding.locations.from.clone());
                            self.error(
                                span,
                                &format!("binding[{}].to[{i}]", binding.locations.index),
                                format!("bindings form a cycle: {}", names.join(" -> ")),
                            );
                        }
                        _ => {}
                    }
                } else {
                    colour[node] = 2;
                    stack.pop();
                }
            }
        }
    }

    fn string(&mut self, value: &Spanned<DeValue<'_>>, path: &str) -> Option<String> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    value.span(),
                    path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn integer(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => {
                i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
            }
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let found = match value.get_ref() {
                    DeValue::Integer(i) => i.as_str().to_owned(),
                    other => type_name(other).to_owned(),
                };
                self.error(
                    value.span(),
                    path,
                    format!("expected an integer from {min} to {max}, found {found}"),
                );
                None
            }
        }
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A TOML value as the JSON document handed to a plugin.
fn to_json(value: &DeValue<'_>) -> serde_json::Value {
    match value {
        DeValue::String(s) => serde_json::Value::String(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => n.into(),
                Err(_) => serde_json::Value::String(digits),
            }
        }
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        DeValue::Boolean(b) => (*b).into(),
        DeValue::Datetime(d) => serde_json::Value::String(d.to_string()),
        DeValue::Array(items) => items.iter().map(|v| to_json(v.get_ref())).collect(),
        DeValue::Table(table) => table
            .iter()
            .map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref())))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// The spans of a TOML value and of everything in it, to locate fields named by a path.
#[derive(Debug, Clone)]
struct SpanTree {
    span: Range<usize>,
    children: SpanChildren,
}

#[derive(Debug, Clone)]
enum SpanChildren {
    Scalar,
    Table(Vec<(String, SpanTree)>),
    Array(Vec<SpanTree>),
}

impl SpanTree {
    fn of(value: &Spanned<DeValue<'_>>) -> Self {
        let children = match value.get_ref() {
            DeValue::Table(table) => SpanChildren::Table(
                table
                    .iter()
                    .map(|(k, v)| (k.get_ref().to_string(), SpanTree::of(v)))
                    .collect(),
            ),
            DeValue::Array(items) => SpanChildren::Array(items.iter().map(SpanTree::of).collect()),
            _ => SpanChildren::Scalar,
        };
        Self {
            span: value.span(),
            children,
        }
    }

    /// The span of the deepest value along `path` that exists.
    fn locate(&self, path: &str) -> Range<usize> {
        let mut current = self;
        for segment in path_segments(path) {
            let next = match (&current.children, segment) {
                (SpanChildren::Table(entries), Segment::Key(key)) => {
                    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
                }
                (SpanChildren::Array(items), Segment::Index(i)) => items.get(i),
                _ => None,
            };
            match next {
                Some(next) => current = next,
                None => break,
            }
        }
        current.span.clone()
    }
}
