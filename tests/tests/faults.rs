//! The runtime's guarantees when plugins misbehave on purpose: it never hangs, never acks
//! what was not delivered, stops what failed for good, and says so in its report.
//!
//! Every run here is bounded: the runtime's own deadlines end it, and a guard timeout turns
//! a hang into a test failure instead of a stuck test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_host::config::PipelineSpec;
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_host::pipeline::Pipeline;
use weir_host::runtime::{self, RunReport, RuntimeOptions};
use weir_tests::{example_plugin, fixture_plugin, temp_dir, toml_path};

fn repository() -> PluginRepository {
    let examples = example_plugin("file").parent().unwrap().to_owned();
    let fixtures = fixture_plugin("misbehave").parent().unwrap().to_owned();
    PluginRepository::scan(&PluginPath::from_dirs([examples, fixtures]))
}

fn pipeline(toml: &str) -> Pipeline {
    let spec = PipelineSpec::parse(Path::new("test.toml"), toml.to_owned())
        .unwrap_or_else(|e| panic!("{e}"));
    Pipeline::resolve(spec, &repository()).unwrap_or_else(|e| panic!("{e}"))
}

/// Short deadlines, so that a test of a deadline is quick.
fn quick() -> RuntimeOptions {
    RuntimeOptions {
        drain_timeout: Duration::from_millis(500),
        stop_timeout: Duration::from_millis(500),
        ..RuntimeOptions::default()
    }
}

/// Runs until the runtime returns by itself or `interrupt` completes (then it drains and
/// stops within its deadlines); fails the test if it takes longer than `guard`.
fn run(
    toml: &str,
    options: RuntimeOptions,
    interrupt: impl std::future::Future<Output = ()>,
    guard: Duration,
) -> (RunReport, Duration) {
    let pipeline = pipeline(toml);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let report = runtime.block_on(async {
        tokio::time::timeout(guard, runtime::run(pipeline, options, interrupt))
            .await
            .unwrap_or_else(|_| panic!("the runtime did not return within {guard:?}"))
    });
    (report, started.elapsed())
}

/// Completes once `record` (a misbehave fixture's call record) has `count` lines equal to
/// `method`; panics after 30 s with what it saw.
async fn called(record: PathBuf, method: &'static str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        if text.lines().filter(|l| *l == method).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{method}` was not called {count} times within 30 s; calls: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn metrics<'r>(report: &'r RunReport, id: &str) -> &'r runtime::MetricsSnapshot {
    &report.metrics.iter().find(|(c, _)| c == id).unwrap().1
}

fn misbehave(id: &str, config: &str) -> String {
    format!(
        "[[connector]]\nid = \"{id}\"\nplugin = \"misbehave\"\ncodec = \"string\"\n\
         reconnect = {{ initial_ms = 5, max_ms = 20 }}\nconfig = {{ {config} }}\n"
    )
}

const BIND: &str = "[[binding]]\nfrom = \"in\"\nto = [\"out\"]\n";

#[test]
fn a_connector_whose_on_start_always_panics_is_given_up_and_the_run_ends() {
    let toml = r#"
        [[connector]]
        id = "in"
        plugin = "panic"
        codec = "string"
        max_restarts = 3
        reconnect = { initial_ms = 5, max_ms = 5 }
        config = { panic_in = "on_start" }
        "#
    .to_owned()
        + &misbehave("out", "")
        + BIND;
    let (report, _) = run(
        &toml,
        quick(),
        std::future::pending(),
        Duration::from_secs(30),
    );
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert_eq!(report.failed[0].0, "in");
    assert!(
        report.failed[0].1.contains("panicky: boom in on_start"),
        "{:?}",
        report.failed
    );
    assert_eq!(metrics(&report, "in").restarts, 3);
    assert!(!report.is_success());
}

#[test]
fn a_pull_that_never_returns_is_abandoned_and_named_after_the_deadlines() {
    let dir = temp_dir("faults-blocked-pull");
    let record = dir.join("calls.txt");
    let toml = misbehave(
        "in",
        &format!("record = {}, block_in = \"pull\"", toml_path(&record)),
    ) + &misbehave("out", "")
        + BIND;
    let options = quick();
    let bound = options.drain_timeout + options.stop_timeout;
    let (report, elapsed) = run(
        &toml,
        options,
        called(record, "pull", 1),
        Duration::from_secs(30),
    );
    assert_eq!(report.abandoned, vec![("in".to_owned(), "pull")]);
    assert!(report.drain_timed_out);
    assert!(!report.is_success());
    assert!(
        elapsed < bound + Duration::from_secs(5),
        "took {elapsed:?}, deadlines add up to {bound:?}"
    );
}

#[test]
fn a_slow_sink_with_a_backlog_gets_nothing_more_after_the_drain_deadline() {
    let dir = temp_dir("faults-slow-sink");
    let record = dir.join("sink.txt");
    // 4096 events in flight at 20 ms each would take 80 s to deliver.
    let toml = misbehave("in", "")
        + &misbehave(
            "out",
            &format!("record = {}, slow_ms = 20", toml_path(&record)),
        )
        + BIND;
    let (report, elapsed) = run(
        &toml,
        quick(),
        called(record.clone(), "on_event", 10),
        Duration::from_secs(30),
    );
    assert!(report.drain_timed_out);
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?}: the backlog was delivered"
    );
    let source = metrics(&report, "in");
    let sink = metrics(&report, "out");
    assert!(
        sink.events_in < 500,
        "{} events delivered after the deadline",
        sink.events_in
    );
    assert!(
        source.fails > 0,
        "the backlog is failed back to the source: {source}"
    );
    assert!(source.acks <= sink.events_in, "{source} / {sink}");
}

#[test]
fn a_sink_that_never_connects_is_never_handed_an_event() {
    let dir = temp_dir("faults-never-connects");
    let record = dir.join("sink.txt");
    let toml = misbehave("in", "")
        + &misbehave(
            "out",
            &format!("record = {}, connect = \"never\"", toml_path(&record)),
        )
        + BIND;
    let (report, _) = run(
        &toml,
        quick(),
        called(record.clone(), "connect", 3),
        Duration::from_secs(30),
    );
    let calls = std::fs::read_to_string(&record).unwrap();
    assert!(
        calls.lines().all(|l| l == "connect"),
        "only `connect` may be called on an instance that never connected: {calls:?}"
    );
    let source = metrics(&report, "in");
    assert_eq!(source.acks, 0, "{source}");
    assert!(source.events_out > 0 && source.fails > 0, "{source}");
}

#[test]
fn a_permanent_connect_error_ends_the_run_with_the_connector_named() {
    let dir = temp_dir("faults-missing-input");
    let toml = format!(
        "[[connector]]\nid = \"in\"\nplugin = \"file\"\ncodec = \"string\"\n\
         config = {{ path = {} }}\n",
        toml_path(&dir.join("does-not-exist.txt"))
    ) + &misbehave("out", "")
        + BIND;
    let (report, elapsed) = run(
        &toml,
        quick(),
        std::future::pending(),
        Duration::from_secs(30),
    );
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let (connector, error) = &report.failed[0];
    assert_eq!(connector, "in");
    assert!(
        error.contains("failed for good") && error.contains("does-not-exist.txt"),
        "{error}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn a_sink_dead_for_good_stops_its_sources_and_the_run_ends() {
    let toml = misbehave("in", "") + &misbehave("out", "connect = \"permanent\"") + BIND;
    let (report, _) = run(
        &toml,
        quick(),
        std::future::pending(),
        Duration::from_secs(30),
    );
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert_eq!(report.failed[0].0, "out");
    assert!(
        report.failed[0].1.contains("cannot ever connect"),
        "{:?}",
        report.failed
    );
    assert_eq!(metrics(&report, "in").acks, 0);
}

#[test]
fn a_full_disk_fails_the_events_and_the_run_and_acks_nothing() {
    let dir = temp_dir("faults-full-disk");
    let input = dir.join("in.txt");
    let lines: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let toml = format!(
        r#"
        [[connector]]
        id = "in"
        plugin = "file"
        codec = "string"
        preprocessors = ["lines"]
        config = {{ path = {}, chunk_size = 1000 }}

        [[connector]]
        id = "out"
        plugin = "file"
        codec = "string"
        postprocessors = ["lines"]
        config = {{ path = "/dev/full", mode = "write" }}
        "#,
        toml_path(&input)
    ) + BIND;
    let (report, _) = run(
        &toml,
        quick(),
        std::future::pending(),
        Duration::from_secs(30),
    );
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let (connector, error) = &report.failed[0];
    assert_eq!(connector, "out");
    assert!(error.contains("/dev/full"), "{error}");
    let source = metrics(&report, "in");
    assert_eq!(source.acks, 0, "nothing reached the disk: {source}");
}

#[test]
fn a_sink_dying_while_a_big_pull_is_still_routed_ends_the_run_and_fails_the_rest() {
    // One 1.3 MB chunk splits into 200,000 lines: far more than the credit, so most of the
    // pull is still waiting to be routed when the only sink dies.
    let dir = temp_dir("faults-dead-while-routing");
    let input = dir.join("in.txt");
    let lines: String = (0..200_000).map(|i| format!("{i}\n")).collect();
    std::fs::write(&input, &lines).unwrap();
    let toml = format!(
        r#"
        [[connector]]
        id = "in"
        plugin = "file"
        codec = "string"
        preprocessors = ["lines"]
        config = {{ path = {}, chunk_size = {} }}

        [[connector]]
        id = "out"
        plugin = "file"
        postprocessors = ["lines"]
        config = {{ path = "/dev/full", mode = "append" }}
        "#,
        toml_path(&input),
        lines.len()
    ) + BIND;
    let (report, elapsed) = run(
        &toml,
        RuntimeOptions::default(),
        std::future::pending(),
        Duration::from_secs(30),
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "ended by itself, took {elapsed:?}"
    );
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let source = metrics(&report, "in");
    assert_eq!(source.acks, 0, "{source}");
    assert_eq!(source.fails, 200_000, "every line failed back: {source}");
}

#[test]
fn a_failing_on_stop_fails_the_run_naming_the_connector() {
    let toml = "[[connector]]\nid = \"in\"\nplugin = \"metronome\"\ncodec = \"string\"\n\
                config = { interval_ms = 1, count = 5 }\n"
        .to_owned()
        + &misbehave("out", "fail_stop = true")
        + BIND;
    let (report, _) = run(
        &toml,
        quick(),
        std::future::pending(),
        Duration::from_secs(30),
    );
    assert_eq!(report.stop_failed.len(), 1, "{:?}", report.stop_failed);
    assert_eq!(report.stop_failed[0].0, "out");
    assert!(
        report.stop_failed[0].1.contains("cannot flush at stop"),
        "{:?}",
        report.stop_failed
    );
    assert!(!report.is_success());
    assert_eq!(metrics(&report, "in").acks, 5);
}

#[test]
fn a_sink_that_fails_everything_is_backed_off_not_spun() {
    let dir = temp_dir("faults-resend-storm");
    let record = dir.join("source.txt");
    let toml = format!(
        "[[connector]]\nid = \"in\"\nplugin = \"transactional\"\ncodec = \"string\"\n\
         config = {{ count = 10, record = {} }}\n",
        toml_path(&record)
    ) + &misbehave("out", "fail_events = true")
        + BIND;
    // The source resends every fail at once: over two seconds, an unthrottled sink would
    // see millions of attempts; with the failure backoff (10 ms doubling to 1 s) a handful
    // of batches.
    let window = Duration::from_secs(2);
    let (report, _) = run(
        &toml,
        quick(),
        async move { tokio::time::sleep(window).await },
        Duration::from_secs(30),
    );
    let sink = metrics(&report, "out");
    assert!(sink.events_failed > 0, "{sink}");
    assert!(
        sink.events_in < 1000,
        "{} delivery attempts in {window:?}",
        sink.events_in
    );
    assert_eq!(metrics(&report, "in").acks, 0);
}
