//! The TOML walker: from the document to connector and binding specs, with every problem
//! located.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::span::{SpanTree, line_column};
use super::{
    BindingLocations, BindingSpec, ConfigError, ConnectorLocations, ConnectorSpec,
    DEFAULT_CALL_TIMEOUT, IsolationMode,
};
use crate::codec::Codec;
use crate::field_path::{FieldPath, FieldSegment};
use crate::processor::{Direction, ProcessorSpec};
use crate::runtime::{Backoff, Port};
use crate::suggest::did_you_mean;

/// The keys of a `[[connector]]` table.
const CONNECTOR_KEYS: [&str; 11] = [
    "id",
    "plugin",
    "codec",
    "preprocessors",
    "postprocessors",
    "config",
    "max_restarts",
    "isolation",
    "call_timeout_ms",
    "memory_limit_mb",
    "reconnect",
];

/// What a pipeline document defines.
pub(super) struct Parsed {
    pub(super) connectors: Vec<ConnectorSpec>,
    pub(super) bindings: Vec<BindingSpec>,
    /// `plugin_path = [...]`, as written.
    pub(super) plugin_path: Vec<String>,
}

impl<'a> Cx<'a> {
    /// A walker over `source`, and its root table, or the syntax error.
    fn open(
        file: &'a Path,
        source: &'a str,
    ) -> Result<(Self, Spanned<DeTable<'a>>), Vec<ConfigError>> {
        let mut cx = Cx {
            file,
            source,
            errors: Vec::new(),
            declared: Vec::new(),
        };
        match DeTable::parse(source) {
            Ok(root) => Ok((cx, root)),
            Err(error) => {
                let span = error.span().unwrap_or(0..0);
                cx.error(span, "", error.message().trim_end().to_owned());
                Err(cx.errors)
            }
        }
    }
}

/// A connector's config written as a TOML document of its own (what goes in its
/// `[connector.config]` table), as the JSON handed to the plugin.
pub(super) fn config_document(
    file: &Path,
    source: &str,
) -> Result<serde_json::Value, Vec<ConfigError>> {
    let (mut cx, root) = Cx::open(file, source)?;
    let config: serde_json::Map<_, _> = root
        .get_ref()
        .iter()
        .map(|(key, value)| {
            let key = key.get_ref().to_string();
            let path = FieldPath(vec![FieldSegment::Key(key.clone())]).to_string();
            (key, cx.json(value, &path))
        })
        .collect();
    if cx.errors.is_empty() {
        Ok(config.into())
    } else {
        Err(cx.errors)
    }
}

/// Walks a pipeline document: what it defines, or every problem found (in the order
/// found).
pub(super) fn parse(file: &Path, source: &str) -> Result<Parsed, Vec<ConfigError>> {
    let (mut cx, root) = Cx::open(file, source)?;
    let mut connectors = Vec::new();
    let mut raw_bindings = Vec::new();
    let mut plugin_path = Vec::new();
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
            "plugin_path" => plugin_path = cx.strings(value, "plugin_path"),
            other => cx.error(
                key.span(),
                other,
                format!(
                    "unknown key `{other}`: a pipeline file has `plugin_path`, `[[connector]]` and `[[binding]]` tables{}",
                    did_you_mean(other, ["connector", "binding", "plugin_path"])
                ),
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
    if cx.errors.is_empty() {
        Ok(Parsed {
            connectors,
            bindings,
            plugin_path,
        })
    } else {
        Err(cx.errors)
    }
}

/// Parsing context: the file, its text and the errors so far.
struct Cx<'a> {
    file: &'a Path,
    source: &'a str,
    errors: Vec<ConfigError>,
    /// Every connector id written in the file, valid or not: a binding naming a connector
    /// that has errors of its own is not reported again as naming an unknown one.
    declared: Vec<String>,
}

type Table<'i> = DeTable<'i>;

impl Cx<'_> {
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
        let mut isolation = IsolationMode::Default;
        let mut call_timeout = DEFAULT_CALL_TIMEOUT;
        let mut memory_limit = None;
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            match name {
                "id" => {
                    if let Some(s) = self.string(value, &path("id")) {
                        self.declared.push(s.clone());
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
                "isolation" => {
                    if let Some(mode) = self.string(value, &path("isolation")) {
                        match mode.as_str() {
                            "process" => isolation = IsolationMode::Process,
                            "none" => isolation = IsolationMode::InProcess,
                            other => self.error(
                                value.span(),
                                &path("isolation"),
                                format!(
                                    "unknown isolation {other:?}: use \"process\" (a child process of its own) or \"none\" (in weir's process)"
                                ),
                            ),
                        }
                    }
                }
                "memory_limit_mb" => {
                    // At least what `weir` and a plugin need to start.
                    if let Some(mb) = self.integer(value, &path("memory_limit_mb"), 64, 1 << 30) {
                        memory_limit = Some((mb as u64) << 20);
                    }
                }
                "call_timeout_ms" => {
                    if let Some(ms) =
                        self.integer(value, &path("call_timeout_ms"), 1, 24 * 3600 * 1000)
                    {
                        call_timeout = Duration::from_millis(ms as u64);
                    }
                }
                other => self.error(
                    key.span(),
                    &path(other),
                    format!(
                        "unknown key `{other}`: a connector has {}{}",
                        CONNECTOR_KEYS.join(", "),
                        did_you_mean(other, CONNECTOR_KEYS)
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
        let config_json =
            config.map_or_else(|| serde_json::json!({}), |c| self.json(c, &path("config")));
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
            config: config_json,
            max_restarts,
            reconnect,
            isolation,
            call_timeout,
            memory_limit,
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
                            let option_path = format!("{item_path}.{}", key.get_ref());
                            options
                                .insert(key.get_ref().to_string(), self.json(value, &option_path));
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
                    format!(
                        "unknown key `{other}`: expected initial_ms or max_ms{}",
                        did_you_mean(other, ["initial_ms", "max_ms"])
                    ),
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
                        "unknown port `{port}` in `{reference}`: expected {}{}",
                        allowed_ports.join(" or "),
                        did_you_mean(port, allowed_ports.iter().copied())
                    ),
                );
                return None;
            }
            match connectors.iter().position(|c| c.id == id) {
                Some(i) => Some((i, port.map(str::to_owned), value.span())),
                // Its own errors are reported where it is defined.
                None if cx.declared.iter().any(|d| d == id) => None,
                None => {
                    let known: Vec<&str> = cx.declared.iter().map(String::as_str).collect();
                    cx.error(
                        value.span(),
                        key_path,
                        format!(
                            "binding to unknown connector `{id}` (connectors: {}){}",
                            known.join(", "),
                            did_you_mean(id, known.iter().copied())
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
                    format!(
                        "unknown key `{other}`: a binding has `from` and `to`{}",
                        did_you_mean(other, ["from", "to"])
                    ),
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

    /// A TOML value as the JSON handed to a plugin. What JSON cannot hold (an integer
    /// beyond 64 bits, `nan`, `inf`) is an error here, at its place in the file.
    fn json(&mut self, value: &Spanned<DeValue<'_>>, path: &str) -> serde_json::Value {
        match value.get_ref() {
            DeValue::String(s) => serde_json::Value::String(s.to_string()),
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                let (negative, magnitude) = digits
                    .strip_prefix('-')
                    .map_or((false, digits.trim_start_matches('+')), |m| (true, m));
                let number = u64::from_str_radix(magnitude, i.radix())
                    .ok()
                    .and_then(|m| {
                        if negative {
                            0i64.checked_sub_unsigned(m).map(serde_json::Number::from)
                        } else {
                            Some(serde_json::Number::from(m))
                        }
                    });
                self.number(value, path, number, || {
                    format!(
                        "integer {} does not fit in 64 bits (from {} to {})",
                        i.as_str(),
                        i64::MIN,
                        u64::MAX
                    )
                })
            }
            DeValue::Float(f) => {
                let number = f
                    .as_str()
                    .replace('_', "")
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64);
                self.number(value, path, number, || {
                    format!(
                        "{} cannot be handed to a plugin: JSON has only finite numbers",
                        f.as_str()
                    )
                })
            }
            DeValue::Boolean(b) => (*b).into(),
            DeValue::Datetime(d) => serde_json::Value::String(d.to_string()),
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| self.json(item, &format!("{path}[{index}]")))
                .collect(),
            DeValue::Table(table) => table
                .iter()
                .map(|(k, v)| {
                    let key = k.get_ref().to_string();
                    let value = self.json(
                        v,
                        &format!("{path}.{}", FieldPath(vec![FieldSegment::Key(key.clone())])),
                    );
                    (key, value)
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// `number` as JSON, or an error saying `why` not (and `null`).
    fn number(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        number: Option<serde_json::Number>,
        why: impl FnOnce() -> String,
    ) -> serde_json::Value {
        number.map_or_else(
            || {
                self.error(value.span(), path, why());
                serde_json::Value::Null
            },
            serde_json::Value::Number,
        )
    }

    /// An array of strings (each reported where it is wrong).
    fn strings(&mut self, value: &Spanned<DeValue<'_>>, path: &str) -> Vec<String> {
        let DeValue::Array(items) = value.get_ref() else {
            self.error(
                value.span(),
                path,
                format!(
                    "`{path}` must be an array of strings, found {}",
                    type_name(value.get_ref())
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.string(item, &format!("{path}[{i}]")))
            .collect()
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
