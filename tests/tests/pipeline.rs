//! Pipelines of real plugins over real files: what `weir run` guarantees.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use weir_host::config::PipelineSpec;
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_host::pipeline::Pipeline;
use weir_host::runtime::{self, RunReport, RuntimeOptions, StopReason};
use weir_tests::{example_plugin, fixture_plugin, temp_dir, toml_path};

fn repository() -> PluginRepository {
    let examples = example_plugin("file").parent().unwrap().to_owned();
    let fixtures = fixture_plugin("transactional").parent().unwrap().to_owned();
    PluginRepository::scan(&PluginPath::from_dirs([examples, fixtures]))
}

fn run_with(toml: &str, options: RuntimeOptions) -> RunReport {
    let spec = PipelineSpec::parse(Path::new("test.toml"), toml.to_owned())
        .unwrap_or_else(|e| panic!("{e}"));
    let pipeline = Pipeline::resolve(spec, &repository()).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            runtime::run(pipeline, options, std::future::pending()),
        )
        .await
        .expect("the pipeline finished by itself")
    });
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(!report.drain_timed_out);
    report
}

fn run(toml: &str) -> RunReport {
    run_with(toml, RuntimeOptions::default())
}

fn metrics<'r>(report: &'r RunReport, id: &str) -> &'r runtime::MetricsSnapshot {
    &report.metrics.iter().find(|(c, _)| c == id).unwrap().1
}

/// A TOML string literal for a path.
fn copy(
    input: &Path,
    output: &Path,
    codec: &str,
    pre: &str,
    post: &str,
    chunk_size: usize,
) -> RunReport {
    run(&format!(
        r#"
        [[connector]]
        id = "in"
        plugin = "file"
        codec = "{codec}"
        preprocessors = [{pre}]
        config = {{ path = {}, chunk_size = {chunk_size} }}

        [[connector]]
        id = "out"
        plugin = "file"
        codec = "{codec}"
        postprocessors = [{post}]
        config = {{ path = {}, mode = "write" }}

        [[binding]]
        from = "in"
        to = ["out"]
        "#,
        toml_path(input),
        toml_path(output)
    ))
}

fn sample_lines() -> Vec<u8> {
    (0..2000)
        .map(|i| format!("line {i}: {}\n", "x".repeat(i % 97)))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn file_copy_by_lines_is_byte_identical() {
    let dir = temp_dir("pipeline-lines");
    let (input, output) = (dir.join("in.txt"), dir.join("out.txt"));
    std::fs::write(&input, sample_lines()).unwrap();
    // Small chunks, so lines straddle chunk boundaries.
    let report = copy(&input, &output, "string", r#""lines""#, r#""lines""#, 100);
    assert_eq!(report.reason, StopReason::Finished);
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&input).unwrap()
    );
    let out = metrics(&report, "in");
    assert_eq!((out.events_out, out.acks, out.fails), (2000, 2000, 0));
    assert_eq!(metrics(&report, "out").events_in, 2000);
}

#[test]
fn file_copy_of_binary_data_is_byte_identical() {
    let dir = temp_dir("pipeline-binary");
    let (input, output) = (dir.join("in.bin"), dir.join("out.bin"));
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&input, &data).unwrap();
    copy(&input, &output, "binary", "", "", 4096);
    assert_eq!(std::fs::read(&output).unwrap(), data);
}

#[test]
fn gzip_round_trip_through_two_pipelines() {
    let dir = temp_dir("pipeline-gzip");
    let (input, compressed, back) = (dir.join("in.txt"), dir.join("out.gz"), dir.join("back.txt"));
    std::fs::write(&input, sample_lines()).unwrap();
    copy(
        &input,
        &compressed,
        "string",
        r#""lines""#,
        r#""lines", "gzip""#,
        1000,
    );
    let gz = std::fs::read(&compressed).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "a gzip stream");
    copy(
        &compressed,
        &back,
        "string",
        r#""gunzip", "lines""#,
        r#""lines""#,
        333,
    );
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&input).unwrap()
    );
}

#[test]
fn base64_round_trip_through_two_pipelines() {
    let dir = temp_dir("pipeline-base64");
    let (input, encoded, back) = (
        dir.join("in.txt"),
        dir.join("out.b64"),
        dir.join("back.txt"),
    );
    std::fs::write(&input, sample_lines()).unwrap();
    copy(
        &input,
        &encoded,
        "binary",
        r#""lines""#,
        r#""base64", "lines""#,
        512,
    );
    let text = std::fs::read_to_string(&encoded).unwrap();
    assert!(
        text.lines().next().unwrap().starts_with("bGluZSAw"),
        "base64 of `line 0`: {text:.40}"
    );
    copy(
        &encoded,
        &back,
        "binary",
        r#""lines", "base64""#,
        r#""lines""#,
        77,
    );
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&input).unwrap()
    );
}

/// The numbers in a cb record, with how often each was delivered.
fn delivered(record: &Path) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for line in std::fs::read_to_string(record)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let json = line.split_once(' ').unwrap().1;
        let n = serde_json::from_str::<serde_json::Value>(json).unwrap()["n"]
            .as_u64()
            .unwrap();
        *seen.entry(n).or_insert(0) += 1;
    }
    seen
}

fn transactional(count: u64, record: &Path, commands: &str) -> String {
    format!(
        r#"
        [[connector]]
        id = "source"
        plugin = "transactional"
        codec = "binary"
        config = {{ count = {count}, record = {}, commands = {{ {commands} }} }}
        "#,
        toml_path(record)
    )
}

fn cb(id: &str, record: &Path, extra: &str) -> String {
    format!(
        r#"
        [[connector]]
        id = "{id}"
        plugin = "cb"
        codec = "binary"
        config = {{ record = {} {extra} }}
        "#,
        toml_path(record)
    )
}

#[test]
fn fan_out_delivers_every_event_to_every_sink() {
    let dir = temp_dir("pipeline-fanout");
    let toml = transactional(500, &dir.join("source.txt"), "")
        + &cb("a", &dir.join("a.txt"), "")
        + &cb("b", &dir.join("b.txt"), "")
        + "[[binding]]\nfrom = \"source\"\nto = [\"a\", \"b\"]\n";
    let report = run(&toml);
    let all: BTreeMap<u64, usize> = (0..500).map(|n| (n, 1)).collect();
    assert_eq!(delivered(&dir.join("a.txt")), all);
    assert_eq!(delivered(&dir.join("b.txt")), all);
    let source = metrics(&report, "source");
    assert_eq!(
        (source.events_out, source.acks, source.fails),
        (500, 500, 0)
    );
}

#[test]
fn fan_in_merges_sources_into_one_sink() {
    let dir = temp_dir("pipeline-fanin");
    let toml = transactional(100, &dir.join("one.txt"), "")
        .replace("id = \"source\"", "id = \"one\"")
        + &transactional(150, &dir.join("two.txt"), "").replace("id = \"source\"", "id = \"two\"")
        + &cb("sink", &dir.join("sink.txt"), "")
        + "[[binding]]\nfrom = \"one\"\nto = [\"sink\"]\n[[binding]]\nfrom = \"two\"\nto = [\"sink\"]\n";
    let report = run(&toml);
    assert_eq!(metrics(&report, "sink").events_in, 250);
    assert_eq!(metrics(&report, "one").acks, 100);
    assert_eq!(metrics(&report, "two").acks, 150);
}

#[test]
fn fails_reach_the_source_with_the_right_ids_and_resent_events_arrive() {
    let dir = temp_dir("pipeline-fails");
    let (source_record, sink_record) = (dir.join("source.txt"), dir.join("sink.txt"));
    let toml = transactional(20, &source_record, r#""3" = "fail", "7" = "fail""#)
        + &cb("sink", &sink_record, "")
        + "[[binding]]\nfrom = \"source\"\nto = [\"sink\"]\n";
    let report = run(&toml);
    let record = std::fs::read_to_string(&source_record).unwrap();
    let fails: Vec<&str> = record.lines().filter(|l| l.starts_with("fail")).collect();
    // First emission: pull ids follow the numbers.
    assert_eq!(fails, ["fail 3 3", "fail 7 7"], "{record}");
    let acked: BTreeMap<u64, usize> =
        record
            .lines()
            .filter(|l| l.starts_with("ack"))
            .fold(BTreeMap::new(), |mut m, l| {
                *m.entry(l.rsplit(' ').next().unwrap().parse().unwrap())
                    .or_insert(0) += 1;
                m
            });
    assert_eq!(acked, (0..20).map(|n| (n, 1)).collect());
    assert!(
        record.contains("ack 20 3") || record.contains("ack 21 3"),
        "resent with a new pull id: {record}"
    );
    assert_eq!(delivered(&sink_record), (0..20).map(|n| (n, 1)).collect());
    let source = metrics(&report, "source");
    assert_eq!((source.events_out, source.acks, source.fails), (22, 20, 2));
}

#[test]
fn a_closed_breaker_pauses_the_source_and_nothing_is_lost_when_it_reopens() {
    let dir = temp_dir("pipeline-breaker");
    let sink_record = dir.join("sink.txt");
    let toml = transactional(300, &dir.join("source.txt"), r#""50" = "close""#)
        + &cb("sink", &sink_record, ", reopen_after_ms = 200")
        + "[[binding]]\nfrom = \"source\"\nto = [\"sink\"]\n";
    let options = RuntimeOptions {
        batch_size: 8,
        max_in_flight: 16,
        ..RuntimeOptions::default()
    };
    let started = std::time::Instant::now();
    let report = run_with(&toml, options);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the source waited for the breaker"
    );
    assert_eq!(delivered(&sink_record), (0..300).map(|n| (n, 1)).collect());
    let record = std::fs::read_to_string(&sink_record).unwrap();
    let closed = record
        .lines()
        .position(|l| l == "# circuit closed")
        .expect("closed");
    let opened = record
        .lines()
        .position(|l| l == "# circuit opened")
        .expect("opened");
    // While closed, only what was already in flight arrived.
    assert!(
        opened - closed - 1 <= 16,
        "{} events arrived while the breaker was closed",
        opened - closed - 1
    );
    assert_eq!(metrics(&report, "source").fails, 0);
}

#[test]
fn malformed_json_goes_to_the_err_port_while_good_lines_pass() {
    let dir = temp_dir("pipeline-errport");
    let (input, good, errors) = (
        dir.join("in.jsonl"),
        dir.join("good.txt"),
        dir.join("errors.jsonl"),
    );
    std::fs::write(
        &input,
        "{\"n\": 1}\nnot json\n{\"n\": 2}\n{\"n\":\n{\"n\": 3}\n",
    )
    .unwrap();
    let toml = format!(
        r#"
        [[connector]]
        id = "in"
        plugin = "file"
        codec = "json"
        preprocessors = ["lines"]
        config = {{ path = {} }}

        [[connector]]
        id = "errors"
        plugin = "file"
        codec = "json"
        postprocessors = ["lines"]
        config = {{ path = {}, mode = "write" }}

        [[binding]]
        from = "in"
        to = ["good"]

        [[binding]]
        from = "in/err"
        to = ["errors"]
        "#,
        toml_path(&input),
        toml_path(&errors)
    ) + &cb("good", &good, "");
    let report = run(&toml);
    assert_eq!(delivered(&good), [(1, 1), (2, 1), (3, 1)].into());
    let errors: Vec<serde_json::Value> = std::fs::read_to_string(&errors)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for error in &errors {
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with("json codec: invalid JSON"),
            "{error}"
        );
        assert_eq!(error["connector"], "in");
        assert_eq!(
            (error["stream"].as_u64(), error["pull"].as_u64()),
            (Some(0), Some(0))
        );
    }
    assert_eq!(metrics(&report, "in").events_err, 2);
}

#[test]
fn a_panicking_connector_is_restarted_and_the_rest_keeps_flowing() {
    let dir = temp_dir("pipeline-panic");
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\nb\npanic\nc\nd\n").unwrap();
    let toml = format!(
        r#"
        [[connector]]
        id = "lines"
        plugin = "blaster"
        codec = "string"
        preprocessors = ["lines"]
        config = {{ source = {}, iters = 1, interval_ns = 2000000 }}

        [[connector]]
        id = "fragile"
        plugin = "panic"
        codec = "string"
        max_restarts = 2
        reconnect = {{ initial_ms = 10, max_ms = 10 }}

        [[connector]]
        id = "tick"
        plugin = "metronome"
        config = {{ interval_ms = 2, count = 20 }}

        [[binding]]
        from = "lines"
        to = ["fragile"]

        [[binding]]
        from = "tick"
        to = ["sink"]
        "#,
        toml_path(&input)
    ) + &cb("sink", &dir.join("sink.txt"), "");
    // One event per pull, so one per batch: a sink that panics fails the whole batch it
    // was given (what it acked before the panic may not be durable: `on_batch_end` never
    // ran), and this test counts the events failed by one panic. The interval alone left
    // two lines in one pull on a loaded machine.
    let report = run_with(
        &toml,
        RuntimeOptions {
            batch_size: 1,
            ..RuntimeOptions::default()
        },
    );
    let fragile = metrics(&report, "fragile");
    assert_eq!(fragile.restarts, 1);
    let lines = metrics(&report, "lines");
    assert_eq!(
        (lines.events_out, lines.acks, lines.fails),
        (5, 4, 1),
        "only the panicking event failed"
    );
    assert_eq!(
        metrics(&report, "tick").acks,
        20,
        "the other branch kept flowing"
    );
}

#[test]
fn a_connector_that_keeps_panicking_is_stopped_and_reported_while_the_rest_flows() {
    let dir = temp_dir("pipeline-giveup");
    let toml = r#"
        [[connector]]
        id = "doomed"
        plugin = "panic"
        max_restarts = 2
        reconnect = { initial_ms = 5, max_ms = 5 }
        config = { panic_in = "connect" }

        [[connector]]
        id = "tick"
        plugin = "metronome"
        config = { interval_ms = 1, count = 30 }

        [[binding]]
        from = "doomed"
        to = ["sink"]

        [[binding]]
        from = "tick"
        to = ["sink"]
        "#
    .to_owned()
        + &cb("sink", &dir.join("sink.txt"), "");
    let spec = PipelineSpec::parse(Path::new("test.toml"), toml).unwrap();
    let pipeline = Pipeline::resolve(spec, &repository()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(runtime::run(
        pipeline,
        RuntimeOptions::default(),
        std::future::pending(),
    ));
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let (connector, error) = &report.failed[0];
    assert_eq!(connector, "doomed");
    assert!(
        error.contains("`connect` panicked") && error.contains("panicky: boom in connect"),
        "{error}"
    );
    assert_eq!(metrics(&report, "doomed").restarts, 2);
    assert_eq!(
        metrics(&report, "tick").acks,
        30,
        "the rest of the pipeline kept flowing"
    );
}

/// Delivers `line` to a `file` sink instance and checks that it was acked.
fn write_line(instance: &mut weir_host::ConnectorInstance, line: &[u8], pull: u64) {
    let event = weir_host::SinkEvent::new(line, weir_host::EventId { stream: 0, pull }, 0, b"");
    let outcome = instance.sink_batch(&[event]).unwrap();
    assert_eq!(outcome.reply(0), weir_host::SinkReply::Ack);
}

#[test]
fn a_file_writer_that_replaces_another_appends_and_one_alone_truncates() {
    let plugin = weir_host::Plugin::load(example_plugin("file")).unwrap();
    let dir = temp_dir("file-takeover");
    let path = dir.join("out.txt");
    std::fs::write(&path, "from an earlier run\n").unwrap();
    let config = serde_json::json!({ "path": path, "mode": "write" });
    let sink = weir_host::Sides {
        source: false,
        sink: true,
    };
    let read = || std::fs::read_to_string(&path).unwrap();
    let mut old = plugin.instantiate_bound("out", &config, sink).unwrap();
    old.connect(0).unwrap();
    assert_eq!(read(), "", "the first writer truncates");
    write_line(&mut old, b"one\n", 0);
    // An upgrade: the new instance connects while the old one still writes.
    let mut new = plugin.instantiate_bound("out", &config, sink).unwrap();
    new.connect(0).unwrap();
    assert_eq!(read(), "one\n", "the replacing writer does not truncate");
    write_line(&mut old, b"two\n", 1);
    drop(old);
    write_line(&mut new, b"three\n", 2);
    assert_eq!(read(), "one\ntwo\nthree\n");
    // Another upgrade while `new` holds the file: appends too, even though `new` has not
    // written since `old` let go (a writer holds the file from the moment it opens it).
    let mut third = plugin.instantiate_bound("out", &config, sink).unwrap();
    third.connect(0).unwrap();
    assert_eq!(read(), "one\ntwo\nthree\n");
    drop(new);
    let mut fourth = plugin.instantiate_bound("out", &config, sink).unwrap();
    fourth.connect(0).unwrap();
    assert_eq!(
        read(),
        "one\ntwo\nthree\n",
        "`third` still has it: no truncation"
    );
    drop(fourth);
    drop(third);
    let mut fresh = plugin.instantiate_bound("out", &config, sink).unwrap();
    fresh.connect(0).unwrap();
    assert_eq!(read(), "");
}

#[test]
fn a_file_chunk_size_beyond_the_limit_is_a_config_error_not_an_allocation() {
    let plugin = weir_host::Plugin::load(example_plugin("file")).unwrap();
    let error = plugin
        .instantiate(
            "in",
            &serde_json::json!({ "path": "in.txt", "chunk_size": 9_223_372_036_854_775_807_u64 }),
        )
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`chunk_size` must be between 1 and"),
        "{error}"
    );
}
