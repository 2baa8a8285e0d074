//! Upgrading running connectors to another plugin build without losing an event.

use std::path::Path;
use std::time::Duration;

use weir_host::Plugin;
use weir_host::config::PipelineSpec;
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_host::pipeline::Pipeline;
use weir_host::runtime::{self, RunReport, RuntimeOptions};
use weir_tests::{example_plugin, fixture_plugin, temp_dir, toml_path};

/// counter 0.1.0 -> file, with `count` events at `interval_ms`.
fn pipeline(output: &Path, count: u64, interval_ms: u64, sink: &str) -> Pipeline {
    let dir = temp_dir(&format!(
        "upgrade-plugins-{}",
        output.file_name().unwrap().to_string_lossy()
    ));
    std::fs::copy(fixture_plugin("counter"), dir.join("libcounter.so")).unwrap();
    let repository = PluginRepository::scan(&PluginPath::from_dirs([
        dir,
        example_plugin("file").parent().unwrap().to_owned(),
    ]));
    let source = format!(
        "[[connector]]\nid = \"in\"\nplugin = \"counter\"\n\
         config = {{ count = {count}, interval_ms = {interval_ms} }}\n\
         [[connector]]\nid = \"out\"\nplugin = \"{sink}\"\npostprocessors = [\"lines\"]\n\
         config = {{ path = {} }}\n\
         [[binding]]\nfrom = \"in\"\nto = [\"out\"]\n",
        toml_path(output)
    );
    let spec = PipelineSpec::parse(Path::new("upgrade.toml"), source).unwrap();
    Pipeline::resolve(spec, &repository).unwrap_or_else(|e| panic!("{e}"))
}

/// The numbers written so far, with their version: whole lines only (the file may end in
/// the part of a line a write has copied so far).
fn versions(output: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(output).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                value["n"].as_u64().unwrap(),
                value["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 30 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn metrics<'r>(report: &'r RunReport, id: &str) -> &'r runtime::MetricsSnapshot {
    &report.metrics.iter().find(|(c, _)| c == id).unwrap().1
}

#[test]
fn a_source_upgraded_mid_run_loses_nothing_and_the_new_version_runs() {
    let dir = temp_dir("upgrade-source");
    let output = dir.join("out.jsonl");
    let pipeline = pipeline(&output, 2000, 1, "file");
    let images = temp_dir("upgrade-source-images");
    let (controller, commands) = runtime::control_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let run = tokio::spawn(runtime::run_controlled(
            pipeline,
            RuntimeOptions::default(),
            std::future::pending(),
            commands,
        ));
        wait_for("100 events of the first version", || {
            versions(&output).len() >= 100
        })
        .await;
        let v2 = Plugin::load_copy(fixture_plugin("counter-v2"), &images).unwrap();
        let upgraded = controller.upgrade("in", v2).await.unwrap();
        assert_eq!(
            (upgraded.from.version.as_str(), upgraded.to.version.as_str()),
            ("0.1.0", "0.2.0")
        );
        assert_eq!(upgraded.failed_back, 0, "the old instance drained");
        let status = controller.status().await.unwrap();
        assert_eq!(status[0].plugin.version, "0.2.0");
        assert_eq!(status[0].state, "running");
        // The new version starts afresh (plugin state does not survive) and runs to its end.
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the run ended")
            .unwrap()
    });
    assert!(report.is_success(), "{report:?}");
    let lines = versions(&output);
    let old: Vec<u64> = lines
        .iter()
        .filter(|(_, v)| v == "0.1.0")
        .map(|(n, _)| *n)
        .collect();
    let new: Vec<u64> = lines
        .iter()
        .filter(|(_, v)| v == "0.2.0")
        .map(|(n, _)| *n)
        .collect();
    assert!(!old.is_empty() && !new.is_empty());
    assert_eq!(
        old,
        (0..old.len() as u64).collect::<Vec<_>>(),
        "the old version's events, each once, in order"
    );
    assert_eq!(
        new,
        (0..2000).collect::<Vec<_>>(),
        "the new version ran to its end"
    );
    let source = metrics(&report, "in");
    assert_eq!(source.fails, 0, "{source}");
    assert_eq!(
        source.acks, source.events_out,
        "every event pulled was delivered: {source}"
    );
    assert_eq!(source.acks, lines.len() as u64);
}

#[test]
fn an_upgrade_that_cannot_start_leaves_the_running_version_alone() {
    let dir = temp_dir("upgrade-refused");
    let output = dir.join("out.jsonl");
    let pipeline = pipeline(&output, 1_000_000, 1, "file");
    let images = temp_dir("upgrade-refused-images");
    let (controller, commands) = runtime::control_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.block_on(async {
        let run = tokio::spawn(runtime::run_controlled(
            pipeline,
            RuntimeOptions::default(),
            async move {
                let _ = stopped.await;
            },
            commands,
        ));
        wait_for("the first events", || !versions(&output).is_empty()).await;
        // Another plugin altogether.
        let other = Plugin::load_copy(example_plugin("metronome"), &images).unwrap();
        let refused = controller.upgrade("in", other).await.unwrap_err();
        assert!(
            refused.contains("runs plugin `counter`, not `metronome`"),
            "{refused}"
        );
        // No such connector.
        let v2 = Plugin::load_copy(fixture_plugin("counter-v2"), &images).unwrap();
        let refused = controller.upgrade("nope", v2.clone()).await.unwrap_err();
        assert!(refused.contains("no connector `nope`"), "{refused}");
        let status = controller.status().await.unwrap();
        assert_eq!(status[0].plugin.version, "0.1.0", "still the first version");
        let before = versions(&output).len();
        wait_for("more events from the first version", || {
            versions(&output).len() > before + 50
        })
        .await;
        stop.send(()).unwrap();
        let report = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("the run ended")
            .unwrap();
        assert!(report.is_success(), "{report:?}");
    });
    assert!(versions(&output).iter().all(|(_, v)| v == "0.1.0"));
}

#[test]
fn a_sink_upgraded_mid_run_writes_every_event_once() {
    let dir = temp_dir("upgrade-sink");
    let output = dir.join("out.jsonl");
    let pipeline = pipeline(&output, 3000, 1, "file");
    let images = temp_dir("upgrade-sink-images");
    let (controller, commands) = runtime::control_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let run = tokio::spawn(runtime::run_controlled(
            pipeline,
            RuntimeOptions {
                max_in_flight: 256,
                ..RuntimeOptions::default()
            },
            std::future::pending(),
            commands,
        ));
        wait_for("some events written", || !versions(&output).is_empty()).await;
        // A new build of the file plugin (the same file, a new image).
        let file = Plugin::load_copy(example_plugin("file"), &images).unwrap();
        let upgraded = controller.upgrade("out", file).await;
        assert!(upgraded.is_ok(), "{upgraded:?}");
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the run ended")
            .unwrap()
    });
    assert!(report.is_success(), "{report:?}");
    let numbers: Vec<u64> = versions(&output).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        numbers,
        (0..3000).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let source = metrics(&report, "in");
    assert_eq!((source.acks, source.fails), (3000, 0), "{source}");
}
