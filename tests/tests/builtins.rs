//! Built-ins: connector crates linked into the host and called through their Rust trait
//! run the same pipelines as their plugin files, with the same output, and fail the same
//! way (panics trapped and reported with their location, config errors at their field).

use std::path::Path;
use std::time::Duration;

use weir_host::config::PipelineSpec;
use weir_host::discovery::{PluginPath, PluginRepository, register_builtins};
use weir_host::pipeline::Pipeline;
use weir_host::runtime::{self, RunReport, RuntimeOptions};
use weir_host::{Builtin, CallError, Notice, Plugin, Sides, SinkEvent, SinkReply};
use weir_sdk::{
    Connector, ConnectorContext, Error, Event, PullStatus, Result, SinkContext, SourceBatch,
    connector_plugin,
};
use weir_tests::{example_plugin, temp_dir, toml_path};

/// A connector that misbehaves on demand: a sink that panics on the event `panic_on`,
/// fails for good on `stop_on`, and fails (transiently) every event `fail_on`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultyConfig {
    #[serde(default)]
    panic_on: Option<String>,
    #[serde(default)]
    stop_on: Option<String>,
    #[serde(default)]
    fail_on: Option<String>,
    #[serde(default)]
    panic_in_new: bool,
}

struct Faulty {
    config: FaultyConfig,
}

#[connector_plugin(name = "faulty", version = "0.3.0")]
impl Connector for Faulty {
    type Config = FaultyConfig;

    fn new(config: FaultyConfig, _ctx: &ConnectorContext) -> Result<Self> {
        assert!(!config.panic_in_new, "asked to panic in new");
        Ok(Self { config })
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        let is = |what: &Option<String>| what.as_deref().map(str::as_bytes) == Some(event.bytes);
        if is(&self.config.panic_on) {
            panic!(
                "faulty: asked to panic on {:?}",
                String::from_utf8_lossy(event.bytes)
            );
        }
        if is(&self.config.stop_on) {
            return Err(Error::permanent("faulty: asked to stop"));
        }
        if is(&self.config.fail_on) {
            return Err(Error::new("faulty: asked to fail this one"));
        }
        Ok(SinkReply::Ack)
    }
}

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
        register_builtins([
            Builtin::of::<file::FileConnector>(),
            Builtin::of::<blackhole::Blackhole>(),
            Builtin::of::<Faulty>(),
            Builtin::of::<Count>(),
        ]);
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

#[test]
fn calls_into_a_builtin_fail_as_calls_into_a_plugin_do() {
    let faulty = Plugin::builtin(Builtin::of::<Faulty>());
    assert!(faulty.is_builtin());
    assert_eq!(
        (faulty.name(), faulty.info().version.as_str()),
        ("faulty", "0.3.0")
    );
    assert_eq!(faulty.info().path, Path::new(weir_host::BUILTIN_PATH));
    assert!(faulty.info().is_sink && !faulty.info().is_source);

    // A config error names the field.
    let error = faulty
        .instantiate("f", &serde_json::json!({ "panic_on": 5 }))
        .unwrap_err();
    let CallError::Config { field_path, .. } = &error else {
        panic!("expected a config error, got {error:?}")
    };
    assert_eq!(field_path.to_string(), "panic_on");

    // A panic in the constructor is reported with its location.
    let error = faulty
        .instantiate("f", &serde_json::json!({ "panic_in_new": true }))
        .unwrap_err();
    let CallError::Panicked {
        method,
        message,
        location,
        ..
    } = &error
    else {
        panic!("expected a panic, got {error:?}")
    };
    assert_eq!(
        (*method, message.as_str()),
        ("new", "asked to panic in new")
    );
    assert!(location.contains("builtins.rs"), "{location}");

    let config = serde_json::json!({ "panic_on": "boom", "fail_on": "bad", "stop_on": "stop" });
    let mut instance = faulty
        .instantiate_bound(
            "f",
            &config,
            Sides {
                source: false,
                sink: true,
            },
        )
        .unwrap();
    instance.connect(0).unwrap();
    instance.notify(Notice::Start).unwrap();
    // Pulling from a sink is refused as for a plugin.
    let mut batch = weir_host::EventBatch::new();
    assert!(matches!(
        instance.pull(&mut batch, 8),
        Err(CallError::Unsupported { side: "source", .. })
    ));
    let event = |bytes: &'static [u8], pull| {
        SinkEvent::new(bytes, weir_host::EventId { stream: 0, pull }, 0, b"")
    };
    // A transient error fails that event only, and is reported.
    let outcome = instance
        .sink_batch(&[event(b"ok", 0), event(b"bad", 1), event(b"ok", 2)])
        .unwrap();
    let replies: Vec<_> = outcome.replies().collect();
    assert_eq!(replies, [SinkReply::Ack, SinkReply::Fail, SinkReply::Ack]);
    assert_eq!(outcome.errors, ["faulty: asked to fail this one"]);
    // A permanent error ends the call.
    let error = instance.sink_batch(&[event(b"stop", 3)]).unwrap_err();
    assert!(
        matches!(&error, CallError::Permanent { message, .. } if message == "faulty: asked to stop"),
        "{error:?}"
    );
    assert!(!instance.is_poisoned());
    // A panic poisons the instance: it is not called again.
    let error = instance.sink_batch(&[event(b"boom", 4)]).unwrap_err();
    let CallError::Panicked {
        method, location, ..
    } = &error
    else {
        panic!("expected a panic, got {error:?}")
    };
    assert_eq!(*method, "sink_batch");
    assert!(location.contains("builtins.rs"), "{location}");
    assert!(instance.is_poisoned());
    assert!(matches!(
        instance.sink_batch(&[event(b"ok", 5)]),
        Err(CallError::Poisoned { .. })
    ));
    instance.close().unwrap();
}
