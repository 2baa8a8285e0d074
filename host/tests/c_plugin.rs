//! A connector plugin written in C against the generated header (`examples/c/counter.c`,
//! `sdk/include/weir_connector.h`): it loads, passes the conformance suite through the same
//! entry points as a Rust plugin, and runs in a pipeline of `weir run`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_testing::{CallError, Harness, HarnessError, PullStatus, SinkReply, conformance};
use weir_tests::{c_example_plugin, example_plugin, temp_dir, toml_path};

#[test]
fn the_c_plugin_loads_and_says_what_it_is() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["plugins", "inspect"])
        .arg(c_example_plugin())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("name:       ccounter"), "{said}");
    assert!(said.contains("connector (source+sink)"), "{said}");
    assert!(
        said.contains("abi:        connector 1.2 (host 1.2)"),
        "{said}"
    );
}

#[test]
fn the_c_plugin_passes_the_conformance_suite() {
    let report =
        conformance::check(Harness::load(c_example_plugin()).config("count = 40")).unwrap();
    assert!(report.passed());
}

#[test]
fn the_c_plugin_produces_acks_and_reports_config_errors_as_a_rust_plugin_does() {
    let mut source = Harness::load(c_example_plugin())
        .config("count = 3")
        .build()
        .unwrap();
    source.start().unwrap();
    let pulled = source.pull().unwrap();
    let texts: Vec<_> = pulled
        .events
        .iter()
        .map(|e| e.text().into_owned())
        .collect();
    assert_eq!(texts, ["c 0", "c 1", "c 2"]);
    assert_eq!(pulled.status, PullStatus::Finished);
    assert_eq!(pulled.ended_streams, [0]);
    source.ack_all(&pulled.events[..2]).unwrap();
    source.fail(pulled.events[2].id).unwrap();
    let delivered = source.deliver(["one", "fail"]).unwrap();
    assert_eq!(delivered.replies, [SinkReply::Ack, SinkReply::Fail]);
    source.stop().unwrap();
    assert!(
        source.logged("ccounter stopping: produced 3 (acked 2, failed 1), received 2"),
        "{:?}",
        source.logs()
    );

    let error = Harness::load(c_example_plugin())
        .config("count = -1")
        .build()
        .unwrap_err();
    let HarnessError::Call(CallError::Config {
        field_path,
        message,
        ..
    }) = &error
    else {
        panic!("{error}");
    };
    assert_eq!(field_path.to_string(), "count");
    assert_eq!(message, "`count` must be a non-negative integer");
    let error = Harness::load(c_example_plugin())
        .config("cuont = 1")
        .build()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("invalid config: unknown field: ccounter has only `count`"),
        "{error}"
    );
}

#[test]
fn the_c_plugin_runs_in_a_pipeline() {
    let dir = temp_dir("c-plugin-pipeline");
    let output = dir.join("out.txt");
    std::fs::write(
        dir.join("pipeline.toml"),
        format!(
            r#"
            [[connector]]
            id = "counter"
            plugin = "ccounter"
            codec = "binary"
            config = {{ count = 100 }}

            [[connector]]
            id = "out"
            plugin = "file"
            codec = "binary"
            postprocessors = ["lines"]
            config = {{ path = {} }}

            [[binding]]
            from = "counter"
            to = ["out"]
            "#,
            toml_path(&output)
        ),
    )
    .unwrap();
    let bundled = example_plugin("file").parent().unwrap().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--plugin-dir")
        .arg(c_example_plugin().parent().unwrap())
        .arg("--plugin-dir")
        .arg(&bundled)
        .args(["run", "pipeline.toml", "--no-admin-socket"])
        .current_dir(&dir)
        .env_remove("WEIR_PLUGIN_PATH")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the pipeline did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let written = std::fs::read_to_string(&output).unwrap();
    let expected: String = (0..100).map(|n| format!("c {n}\n")).collect();
    assert_eq!(written, expected);
    // Every event was acked, and the plugin's own log line went to the host's log.
    assert!(
        log.contains("ccounter stopping: produced 100 (acked 100, failed 0), received 0"),
        "{log}"
    );
}
