//! `weir new plugin`: a ready connector plugin crate to start from.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Which sides the new connector has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sides {
    Source,
    Sink,
    Both,
}

impl Sides {
    fn is_source(self) -> bool {
        matches!(self, Self::Source | Self::Both)
    }

    fn is_sink(self) -> bool {
        matches!(self, Self::Sink | Self::Both)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Source => "a source",
            Self::Sink => "a sink",
            Self::Both => "a source and a sink",
        }
    }
}

/// Rust keywords, which cannot name a crate.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Crates every Rust crate can name, which a crate of that name would shadow.
const STANDARD_CRATES: &[&str] = &["std", "core", "alloc", "proc_macro", "test"];

/// The connectors bundled with weir: a plugin of one of these names would shadow it (and
/// the generated pipeline file uses two of them).
const BUNDLED: &[&str] = &[
    "blackhole",
    "blaster",
    "cb",
    "file",
    "metronome",
    "stdout",
    "tcp",
];

/// Why `name` cannot be a plugin's (and its crate's) name, if it cannot.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a plugin needs a name (for example `my-source`)".to_owned());
    }
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` cannot name a plugin: use lowercase letters, digits, `-` and `_`, \
             starting with a letter (for example `my-source`)"
        ));
    }
    let ident = name.replace('-', "_");
    if KEYWORDS.contains(&ident.as_str()) || STANDARD_CRATES.contains(&ident.as_str()) {
        return Err(format!(
            "`{name}` cannot name a plugin: it is a Rust keyword or a standard crate's name"
        ));
    }
    if name.len() > 64 {
        return Err(format!(
            "`{name}` cannot name a plugin: at most 64 characters (its library file name has \
             to fit the file system's limit)"
        ));
    }
    // The crates the generated crate depends on, and weir's own (a path dependency's
    // workspace cannot hold a second package of the same name).
    const TAKEN: [&str; 8] = [
        "weir_sdk",
        "weir_sdk_macros",
        "weir_host",
        "weir_testing",
        "weir_tests",
        "weir_ui_tests",
        "serde",
        "serde_json",
    ];
    if TAKEN.contains(&ident.as_str()) {
        return Err(format!(
            "`{name}` cannot name a plugin: the crate depends on a crate of that name"
        ));
    }
    if BUNDLED.contains(&name) {
        return Err(format!(
            "`{name}` cannot name a plugin: a connector bundled with weir has that name, \
             and the plugin would shadow it"
        ));
    }
    Ok(())
}

/// `MyThingConnector` for `my-thing`: the suffix keeps the type clear of every name the
/// template uses (`Config`, `Event`, `String`, ...), whatever the plugin's name.
fn type_name(name: &str) -> String {
    let stem: String = name
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    stem + "Connector"
}

/// How the new crate depends on `package` (`sdk` or `testing` in this weir's workspace): by
/// path (pinned to this weir's version) when this weir was built from a checkout that is
/// still there, by version otherwise.
fn dependency(package: &str, dir: &str) -> String {
    let version = weir_sdk::builtin::SDK_VERSION;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let checkout = source
        .join("Cargo.toml")
        .is_file()
        .then(|| source.canonicalize().ok())
        .flatten()
        .and_then(|source| source.to_str().map(str::to_owned));
    match checkout {
        // With the version: a checkout that moved on to another sdk fails the build, rather
        // than making a plugin this weir refuses.
        Some(path) => format!(
            "{package} = {{ path = {}, version = \"={version}\" }}",
            toml::Value::String(path)
        ),
        None => format!("{package} = \"{version}\""),
    }
}

/// `weir new plugin NAME`: creates the crate in `path` (default `./NAME`).
pub(crate) fn plugin(name: &str, sides: Sides, path: Option<&Path>) -> ExitCode {
    if let Err(why) = check_name(name) {
        eprintln!("error: {why}");
        return ExitCode::from(2);
    }
    let dir = path.map_or_else(|| PathBuf::from(name), Path::to_owned);
    let created = match std::fs::read_dir(&dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                eprintln!(
                    "error: {} exists and is not empty: give another --path, or remove it",
                    dir.display()
                );
                return ExitCode::FAILURE;
            }
            false
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Err(error) = std::fs::create_dir_all(&dir) {
                eprintln!("error: cannot create {}: {error}", dir.display());
                return ExitCode::FAILURE;
            }
            true
        }
        Err(error) => {
            eprintln!(
                "error: cannot use {} as a directory: {error}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let files = [
        ("Cargo.toml", cargo_toml(name)),
        (".gitignore", "/target\n".to_owned()),
        ("src/lib.rs", lib_rs(name, sides)),
        ("tests/connector.rs", connector_tests(name, sides)),
        ("README.md", readme(name, sides)),
        ("pipeline.toml", pipeline(name, sides)),
    ];
    for (file, text) in &files {
        let path = dir.join(file);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        if let Err(error) = written {
            eprintln!("error: cannot write {}: {error}", path.display());
            // No half-made crate left behind (the directory was new, or empty).
            if created {
                let _ = std::fs::remove_dir_all(&dir);
            } else {
                for (file, _) in &files {
                    let _ = std::fs::remove_file(dir.join(file));
                }
                let _ = std::fs::remove_dir(dir.join("src"));
                let _ = std::fs::remove_dir(dir.join("tests"));
            }
            return ExitCode::FAILURE;
        }
    }
    let library = format!("lib{}.so", name.replace('-', "_"));
    println!(
        "created {}: plugin `{name}`, {}\n\nnext:\n  cd {}\n  cargo test\n  cargo build --release\n  \
         weir plugins inspect target/release/{library}\n  weir --plugin-dir target/release run pipeline.toml",
        dir.display(),
        sides.describe(),
        dir.display(),
    );
    ExitCode::SUCCESS
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the plugin file weir loads; rlib: to link the connector into a host as a built-in.
crate-type = ["cdylib", "rlib"]

[dependencies]
{sdk}
serde = {{ version = "1", features = ["derive"] }}

[dev-dependencies]
serde_json = "1"
# Drives the connector through the entry points the host calls (tests/connector.rs).
{testing}

# A workspace of its own, so that it builds wherever it is created.
[workspace]
"#,
        sdk = dependency("weir-sdk", "sdk"),
        testing = dependency("weir-testing", "testing"),
    )
}

/// `tests/connector.rs`: the connector driven through the entry points the host calls, and
/// the conformance suite.
fn connector_tests(name: &str, sides: Sides) -> String {
    let ty = type_name(name);
    let ident = name.replace('-', "_");
    let mut imports = vec!["Harness", "conformance"];
    let mut tests = String::new();
    let config = if sides.is_source() { "count = 5" } else { "" };
    if sides.is_source() {
        tests.push_str(&format!(
            r##"
#[test]
fn produces_count_events_then_finishes() {{
    let mut source = Harness::new::<{ty}>("message = \"hi\"\ncount = 3").unwrap();
    source.start().unwrap();
    // All three in one pull (the host asks for up to 64), and it says it has finished.
    let pulled = source.pull().unwrap();
    let texts: Vec<_> = pulled.events.iter().map(|e| e.text()).collect();
    assert_eq!(texts, ["hi 0", "hi 1", "hi 2"]);
    assert_eq!(pulled.status, PullStatus::Finished);
    source.ack_all(&pulled.events).unwrap();
    source.stop().unwrap();
}}
"##
        ));
        imports.push("PullStatus");
    }
    if sides.is_sink() {
        tests.push_str(&format!(
            r##"
#[test]
fn acks_events_and_fails_the_configured_one() {{
    let mut sink = Harness::new::<{ty}>("fail_on = \"bad\"").unwrap();
    sink.start().unwrap();
    let delivered = sink.deliver(["good", "bad"]).unwrap();
    assert_eq!(delivered.replies, [SinkReply::Ack, SinkReply::Fail]);
    sink.stop().unwrap();
}}
"##
        ));
        imports.push("SinkReply");
    }
    imports.sort_unstable();

    format!(
        r#"//! `{name}` driven through the entry points the `weir` host calls (its C vtable, the
//! sdk's panic-catching trampolines, batches as the ABI passes them), with
//! `weir-testing`'s in-process host: a panic or a call that blocks fails the test with
//! what the host would report.

{uses}

/// The checks every connector must pass: its lifecycle in order, no call blocking, acks
/// and fails taken, a drain with events in flight.
#[test]
fn conforms() {{
    conformance::check(Harness::builder::<{ty}>().config("{config}")).unwrap();
}}
{tests}"#,
        uses = {
            // In the order rustfmt puts them.
            let mut uses = [
                format!("use weir_testing::{{{}}};", imports.join(", ")),
                format!("use {ident}::{ty};"),
            ];
            uses.sort_unstable();
            uses.join("\n")
        },
    )
}

fn lib_rs(name: &str, sides: Sides) -> String {
    let ty = type_name(name);
    let mut imports = vec![
        "Connector",
        "ConnectorContext",
        "Result",
        "connector_plugin",
    ];
    if sides.is_source() {
        imports.extend(["EventId", "PullStatus", "SourceBatch"]);
    }
    if sides.is_sink() {
        imports.extend(["Event", "SinkContext", "SinkReply"]);
    }
    imports.sort_unstable();
    let mut config = String::new();
    let mut fields = String::new();
    let mut init = String::new();
    let mut methods = String::new();
    let mut tests = String::new();
    if sides.is_source() {
        config.push_str(
            r#"    /// What each event says.
    #[serde(default = "default_message")]
    pub message: String,
    /// How many events to produce before finishing.
    #[serde(default = "default_count")]
    pub count: u64,
"#,
        );
        fields.push_str("    /// Events produced so far.\n    produced: u64,\n");
        init.push_str("            produced: 0,\n");
        methods.push_str(
            r#"
    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        while self.produced < self.config.count && !batch.is_full() {
            let event = format!("{} {}", self.config.message, self.produced);
            batch.push(event.as_bytes());
            self.produced += 1;
        }
        Ok(if self.produced == self.config.count {
            PullStatus::Finished
        } else {
            PullStatus::Ready
        })
    }

    fn on_ack(&mut self, _ctx: &ConnectorContext, _id: EventId) -> Result<()> {
        // Every sink the event went to delivered it: a source that must not lose events
        // (a queue, a file offset) commits it here.
        Ok(())
    }

    fn on_fail(&mut self, _ctx: &ConnectorContext, _id: EventId) -> Result<()> {
        // Not delivered: a source that can send it again does so (this one does not).
        Ok(())
    }
"#,
        );
        tests.push_str(&format!(
            r##"
    #[test]
    fn the_config_has_defaults_and_refuses_unknown_fields() {{
        let config: Config = serde_json::from_str("{{}}").unwrap();
        assert_eq!((config.message.as_str(), config.count), ("hello", 10));
        assert!(serde_json::from_str::<Config>(r#"{{"cout": 3}}"#).is_err());
        let ctx = ConnectorContext::detached("test");
        assert!({ty}::new(config, &ctx).is_ok());
    }}
"##
        ));
    }
    if sides.is_sink() {
        config.push_str(
            r#"    /// Fail (not deliver) events whose bytes are exactly this, for trying out acks
    /// and fails.
    #[serde(default)]
    pub fail_on: Option<String>,
"#,
        );
        methods.push_str(
            r#"
    fn on_event(&mut self, ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        if self.config.fail_on.as_deref().map(str::as_bytes) == Some(event.bytes) {
            return Ok(SinkReply::Fail);
        }
        weir_sdk::tracing::debug!(connector = ctx.id(), bytes = event.bytes.len(), "received");
        Ok(SinkReply::Ack)
    }

    fn on_batch_end(&mut self, _ctx: &mut SinkContext<'_>) -> Result<()> {
        // After each batch, before the host reads the replies: a sink that buffers makes
        // its writes durable here, so that its acks mean what they promise.
        Ok(())
    }
"#,
        );
        tests.push_str(
            r##"
    #[test]
    fn fail_on_is_read_and_misspelt_fields_are_refused() {
        let config: Config = serde_json::from_str(r#"{"fail_on": "bad"}"#).unwrap();
        assert_eq!(config.fail_on.as_deref(), Some("bad"));
        assert!(serde_json::from_str::<Config>(r#"{"fail-on": "bad"}"#).is_err());
    }
"##,
        );
    }
    let defaults = if sides.is_source() {
        "\nfn default_message() -> String {\n    \"hello\".to_owned()\n}\n\nfn default_count() -> u64 {\n    10\n}\n"
    } else {
        ""
    };
    format!(
        r#"//! `{name}`: a Weir connector plugin ({describe}).
//!
//! Build it with `cargo build --release`; `weir plugins inspect target/release/lib{lib}.so`
//! checks what the host will load.

#![forbid(unsafe_code)]

{imports}

/// The connector's settings: the `config` table of its `[[connector]]` in a pipeline file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {{
{config}}}
{defaults}
/// The state of one running instance.
#[derive(Debug)]
pub struct {ty} {{
    config: Config,
{fields}}}

#[connector_plugin]
impl Connector for {ty} {{
    type Config = Config;

    fn new(config: Config, _ctx: &ConnectorContext) -> Result<Self> {{
{construct}
    }}
{methods}}}

#[cfg(test)]
mod tests {{
    use super::*;
{tests}}}
"#,
        describe = sides.describe(),
        lib = name.replace('-', "_"),
        imports = use_list(&imports),
        construct = if init.is_empty() {
            "        Ok(Self { config })".to_owned()
        } else {
            format!("        Ok(Self {{\n            config,\n{init}        }})")
        },
    )
}

/// `use weir_sdk::{...};` laid out as rustfmt lays it out: on one line if it fits in 100
/// columns, else the names filled into indented lines.
fn use_list(names: &[&str]) -> String {
    let line = format!("use weir_sdk::{{{}}};", names.join(", "));
    if line.len() <= 100 {
        return line;
    }
    let mut text = "use weir_sdk::{\n".to_owned();
    let mut current = String::from("   ");
    for name in names {
        if current.len() + 1 + name.len() + 1 > 100 {
            text.push_str(current.trim_end());
            text.push('\n');
            current = String::from("   ");
        }
        current.push(' ');
        current.push_str(name);
        current.push(',');
    }
    text.push_str(&current);
    text.push_str("\n};");
    text
}

fn readme(name: &str, sides: Sides) -> String {
    let lib = name.replace('-', "_");
    format!(
        r#"# {name}

A [Weir]({repository}) connector plugin: {describe}.

```sh
cargo test                                        # its tests, and the conformance suite
cargo build --release                             # target/release/lib{lib}.so
weir plugins inspect target/release/lib{lib}.so   # what the host checks before loading it
weir --plugin-dir target/release run pipeline.toml
```

`pipeline.toml` runs it with a bundled connector of weir's (found next to the `weir`
executable, or built in). The connector is `src/lib.rs`: its `Config` is the `config`
table of its `[[connector]]`; a panic or an error in it is reported by the host, which
keeps running. `tests/connector.rs` drives it through the entry points the host calls
(`weir-testing`), and runs the conformance suite every connector should pass. See the
weir-sdk docs (`cargo doc --open -p weir-sdk`) for the lifecycle and what an ack means.
"#,
        describe = sides.describe(),
        repository = env!("CARGO_PKG_REPOSITORY"),
    )
}

fn pipeline(name: &str, sides: Sides) -> String {
    match sides {
        Sides::Source => format!(
            r#"# {name} -> stdout (bundled with weir).
[[connector]]
id = "{name}"
plugin = "{name}"
codec = "string"
config = {{ message = "hello", count = 10 }}

[[connector]]
id = "print"
plugin = "stdout"
codec = "string"

[[binding]]
from = "{name}"
to = ["print"]
"#
        ),
        Sides::Sink => format!(
            r#"# metronome (bundled with weir) -> {name}: ten ticks, 100 ms apart.
[[connector]]
id = "ticks"
plugin = "metronome"
codec = "json"
config = {{ interval_ms = 100, count = 10 }}

[[connector]]
id = "{name}"
plugin = "{name}"
codec = "json"

[[binding]]
from = "ticks"
to = ["{name}"]
"#
        ),
        Sides::Both => format!(
            r#"# {name} as a source, into {name} as a sink (a second instance).
[[connector]]
id = "from"
plugin = "{name}"
codec = "string"
config = {{ count = 10 }}

[[connector]]
id = "to"
plugin = "{name}"
codec = "string"

[[binding]]
from = "from"
to = ["to"]
"#
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_become_type_names() {
        assert!(check_name("my-source").is_ok());
        assert!(check_name("kafka2").is_ok());
        let long = "a".repeat(65);
        for bad in [
            "", "My", "2go", "a b", "a/b", "fn", "std", "alloc", "ünï", "weir-sdk", &long,
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("my-source"), "MySourceConnector");
        assert_eq!(type_name("redis_streams2"), "RedisStreams2Connector");
        assert_eq!(type_name("config"), "ConfigConnector");
        for bundled in BUNDLED {
            assert!(check_name(bundled).is_err(), "{bundled}");
        }
    }
}
