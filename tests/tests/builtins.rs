//! Built-ins: connector crates linked into the host and called through their Rust trait
//! run the same pipelines as their plugin files, with the same output, and fail the same
//! way (panics trapped and reported with their location, config errors at their field).

use std::path::Path;
use std::time::Duration;

use weir_host::config::PipelineSpec;
use weir_host::discovery::{PluginPath, PluginRepository, register_builtins};
use weir_host::pipeline::Pipeline;
use weir_host::runtime::{self, RunReport, RuntimeOptions};
use weir_host::{Builtin, CallError, Notice, Plugin, Sides, SinkEvent};
use weir_sdk::{Connector, ConnectorContext, PullStatus, Result, SourceBatch, connector_plugin};
use weir_tests::{example_plugin, fixture_plugin, temp_dir, toml_path};

#[expect(
    unreachable_pub,
    reason = "the shared file is also a plugin crate's public API"
)]
mod faulty {
    include!("support/faulty.rs");
}
use faulty::Faulty;

/// A source of the numbers 0 to `count - 1`, as built-in only: any connector type can be
/// one, not only the bundled crates.
#[derive(Debug, serde::Deserialize)]
struct CountConfig {
    count: u64,
}

struct Count {
    next: u64,
    end: u64,
}

#[connector_plugin(name = "count", version = "1.0.0")]
impl Connector for Count {
    type Config = CountConfig;

    fn new(config: CountConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self {
            next: 0,
            end: config.count,
        })
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        while self.next < self.end && !batch.is_full() {
            batch.push(self.next.to_string().as_bytes());
            self.next += 1;
        }
        Ok(if self.next == self.end {
            PullStatus::Finished
        } else {
            PullStatus::Ready
        })
    }
}

fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let registered = register_builtins([
            Builtin::of::<file::FileConnector>(),
            Builtin::of::<blackhole::Blackhole>(),
            Builtin::of::<Faulty>(),
            Builtin::of::<Count>(),
        ]);
        registered.expect("a test build unwinds on panic");
    });
}

/// Runs `toml` to its end, resolving plugins in `dirs` (and the registered built-ins).
fn run(toml: &str, dirs: &[&Path]) -> (Pipeline, RunReport) {
    register();
    let repository =
        PluginRepository::scan(&PluginPath::from_dirs(dirs.iter().map(|d| d.to_path_buf())));
    let spec = PipelineSpec::parse(Path::new("test.toml"), toml.to_owned())
        .unwrap_or_else(|e| panic!("{e}"));
    let pipeline = Pipeline::resolve(spec, &repository).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            runtime::run(
                pipeline.clone(),
                RuntimeOptions::default(),
                std::future::pending(),
            ),
        )
        .await
        .expect("the pipeline finished by itself")
    });
    (pipeline, report)
}

fn metrics<'r>(report: &'r RunReport, id: &str) -> &'r runtime::MetricsSnapshot {
    &report.metrics.iter().find(|(c, _)| c == id).unwrap().1
}

#[test]
fn a_pipeline_gives_the_same_output_with_plugin_files_and_with_builtins() {
    let dir = temp_dir("builtins-same-output");
    let input = dir.join("in.json");
    // The bundled events, many times over, plus one line that is not JSON (to `err`).
    let events = std::fs::read_to_string(
        weir_tests::workspace_root().join("examples/data/bench-events.json"),
    )
    .unwrap();
    let mut text = events.repeat(50);
    text.push_str("{not json\n");
    std::fs::write(&input, &text).unwrap();
    let pipeline = |output: &Path, errors: &Path| {
        let input = toml_path(&input);
        format!(
            r#"
            [[connector]]
            id = "in"
            plugin = "file"
            codec = "json"
            preprocessors = ["lines"]
            config = {{ path = {input}, chunk_size = 1000 }}

            [[connector]]
            id = "out"
            plugin = "file"
            codec = "json"
            postprocessors = ["lines"]
            config = {{ path = {}, mode = "write" }}

            [[connector]]
            id = "errors"
            plugin = "file"
            codec = "json"
            postprocessors = ["lines"]
            config = {{ path = {}, mode = "write" }}

            [[binding]]
            from = "in"
            to = ["out"]

            [[binding]]
            from = "in/err"
            to = ["errors"]
            "#,
            toml_path(output),
            toml_path(errors),
        )
    };
    let plugins = example_plugin("file").parent().unwrap().to_owned();
    let (with_files, plugin_report) = run(
        &pipeline(&dir.join("plugin.out"), &dir.join("plugin.err")),
        &[&plugins],
    );
    let (with_builtins, builtin_report) = run(
        &pipeline(&dir.join("builtin.out"), &dir.join("builtin.err")),
        &[],
    );
    // The files shadow the built-ins of the same version; without files, the built-ins run.
    assert!(with_files.plugins.iter().all(|p| !p.is_builtin()));
    assert!(with_builtins.plugins.iter().all(Plugin::is_builtin));
    for report in [&plugin_report, &builtin_report] {
        assert!(report.is_success(), "{report:?}");
        assert_eq!(metrics(report, "in").events_out, 5000);
        assert_eq!(metrics(report, "in").events_err, 1);
        assert_eq!(metrics(report, "in").acks, 5000);
    }
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let output = read("plugin.out");
    assert_eq!(output.iter().filter(|b| **b == b'\n').count(), 5000);
    assert!(output == read("builtin.out"), "the outputs differ");
    assert!(!read("plugin.err").is_empty());
    assert_eq!(read("plugin.err"), read("builtin.err"));
}

#[test]
fn a_connector_type_of_the_host_runs_as_a_builtin_and_its_faults_are_contained() {
    let dir = temp_dir("builtins-faults");
    let output = dir.join("out.txt");
    // `faulty` panics on event "3" and fails event "5"; it is restarted and the rest flows.
    let (_, report) = run(
        &format!(
            r#"
            [[connector]]
            id = "count"
            plugin = "count"
            codec = "string"
            config = {{ count = 10 }}

            [[connector]]
            id = "faulty"
            plugin = "faulty"
            codec = "string"
            config = {{ panic_on = "3", fail_on = "5" }}

            [[connector]]
            id = "out"
            plugin = "file"
            codec = "string"
            postprocessors = ["lines"]
            config = {{ path = {}, mode = "write" }}

            [[binding]]
            from = "count"
            to = ["faulty", "out"]
            "#,
            toml_path(&output)
        ),
        &[],
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let faulty = metrics(&report, "faulty");
    assert_eq!(faulty.restarts, 1, "{faulty:?}");
    let count = metrics(&report, "count");
    // Every event got a verdict: the two `faulty` did not deliver are failed, not acked.
    assert_eq!(count.acks + count.fails, 10, "{count:?}");
    assert!(count.fails >= 2, "{count:?}");
    let lines = std::fs::read_to_string(&output).unwrap();
    assert_eq!(lines.lines().count(), 10, "{lines}");
}

/// Every call of a misbehaving script, with what it returned; panic locations cut to the
/// file name (the plugin's and the built-in's copies of the file have different paths).
fn misbehave(plugin: &Plugin) -> Vec<(&'static str, String)> {
    let mut seen = Vec::new();
    let mut note = |what: &'static str, result: String| seen.push((what, result));
    let shown = |error: CallError| match error {
        CallError::Panicked {
            connector,
            plugin,
            method,
            message,
            location,
        } => format!(
            "{:?}",
            CallError::Panicked {
                connector,
                plugin,
                method,
                message,
                location: location.rsplit('/').next().unwrap_or_default().to_owned(),
            }
        ),
        other => format!("{other:?}"),
    };
    for config in [
        serde_json::json!({ "panic_on": 5 }),
        serde_json::json!({ "surprise": true }),
        serde_json::json!({ "panic_in_new": true }),
    ] {
        let error = plugin.instantiate("f", &config).unwrap_err();
        note("new", shown(error));
    }
    let config = serde_json::json!({ "panic_on": "boom", "fail_on": "bad", "stop_on": "stop" });
    let sink = Sides {
        source: false,
        sink: true,
    };
    let mut instance = plugin.instantiate_bound("f", &config, sink).unwrap();
    instance.connect(0).unwrap();
    instance.notify(Notice::Start).unwrap();
    let mut batch = weir_host::EventBatch::new();
    note("pull", shown(instance.pull(&mut batch, 8).unwrap_err()));
    let event = |bytes: &'static [u8], pull| {
        SinkEvent::new(bytes, weir_host::EventId { stream: 0, pull }, 0, b"")
    };
    let outcome = instance
        .sink_batch(&[event(b"ok", 0), event(b"bad", 1), event(b"ok", 2)])
        .unwrap();
    note(
        "sink_batch",
        format!(
            "{:?} {:?}",
            outcome.replies().collect::<Vec<_>>(),
            outcome.errors
        ),
    );
    let stop = instance.sink_batch(&[event(b"bad", 3), event(b"stop", 4)]);
    note("sink_batch", shown(stop.unwrap_err()));
    note("poisoned", instance.is_poisoned().to_string());
    let boom = instance.sink_batch(&[event(b"boom", 5)]);
    note("sink_batch", shown(boom.unwrap_err()));
    note("poisoned", instance.is_poisoned().to_string());
    let after = instance.sink_batch(&[event(b"ok", 6)]);
    note("sink_batch", shown(after.unwrap_err()));
    note("close", format!("{:?}", instance.close()));
    seen
}

#[test]
fn calls_into_a_builtin_or_a_linked_plugin_fail_exactly_as_calls_into_its_plugin_file_do() {
    let builtin = Plugin::builtin(Builtin::of::<Faulty>());
    let plugin = Plugin::load(fixture_plugin("faulty")).unwrap();
    assert!(builtin.is_builtin() && !plugin.is_builtin());
    assert_eq!(builtin.info().path, Path::new(weir_host::BUILTIN_PATH));
    for (field, a, b) in [
        ("name", &builtin.info().name, &plugin.info().name),
        ("version", &builtin.info().version, &plugin.info().version),
    ] {
        assert_eq!(a, b, "{field}");
    }
    assert_eq!(builtin.info().abi, plugin.info().abi);
    assert_eq!(
        (builtin.info().is_source, builtin.info().is_sink),
        (false, true)
    );
    // The same type linked into this test, validated and called through the C ABI.
    let linked = Plugin::linked::<Faulty>().unwrap();
    assert!(!linked.is_builtin());
    assert_eq!(linked.info().path, std::env::current_exe().unwrap());
    assert_eq!(linked.info().abi, plugin.info().abi);
    let (as_builtin, as_plugin) = (misbehave(&builtin), misbehave(&plugin));
    assert_eq!(as_builtin, as_plugin);
    assert_eq!(misbehave(&linked), as_plugin);
    // And what they did is what the script asked for.
    let said = |what: &str| {
        as_builtin
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, r)| r.as_str())
            .collect::<Vec<_>>()
    };
    let new = said("new");
    assert!(
        new[0].starts_with("Config") && new[0].contains("panic_on"),
        "{}",
        new[0]
    );
    assert!(new[1].contains("unknown field `surprise`"), "{}", new[1]);
    assert!(
        new[2].starts_with("Panicked") && new[2].contains("faulty.rs:"),
        "{}",
        new[2]
    );
    assert!(
        said("pull")[0].starts_with("Unsupported"),
        "{:?}",
        said("pull")
    );
    let sunk = said("sink_batch");
    assert_eq!(
        sunk[0],
        r#"[Ack, Fail, Ack] ["faulty: asked to fail this one"]"#
    );
    assert!(
        sunk[1].starts_with("Permanent")
            && sunk[1].contains("faulty: asked to fail this one; faulty: asked to stop"),
        "{}",
        sunk[1]
    );
    assert!(
        sunk[2].starts_with("Panicked") && sunk[2].contains("faulty.rs:"),
        "{}",
        sunk[2]
    );
    assert!(sunk[3].starts_with("Poisoned"), "{}", sunk[3]);
    assert_eq!(said("poisoned"), ["false", "true"]);
}
