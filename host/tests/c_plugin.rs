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

/// A C source that misbehaves as `-D` says: `BLOCK` sleeps in `pull`, `OVERPUSH` pushes
/// five events whatever it is asked for, `DROP_BLOCKS` sleeps in the vtable's `drop`.
const BROKEN_SOURCE: &str = r#"
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "weir_connector.h"

#define SLICE(literal) {(const uint8_t *)(literal), sizeof(literal) - 1}

typedef struct { const WeirConnectorVtable *vtable; } Broken;
static const WeirConnectorVtable VTABLE;

static WeirCallStatus create(WeirCreateArgs *args) {
    Broken *self = malloc(sizeof *self);
    self->vtable = &VTABLE;
    args->instance = self;
    return WEIR_CALL_STATUS_OK;
}
static WeirCallStatus ok_connect(void *s, WeirConnectArgs *a) { (void)s; a->connected = WEIR_CONNECTED_YES; return WEIR_CALL_STATUS_OK; }
static WeirCallStatus ok_notify(void *s, WeirNotifyArgs *a) { (void)s; (void)a; return WEIR_CALL_STATUS_OK; }
static WeirCallStatus bad_pull(void *s, WeirPullArgs *a) {
    (void)s;
#ifdef BLOCK
    for (;;) { sleep(60); }
#endif
    uint32_t n = 5;
#ifndef OVERPUSH
    if (n > a->max_events) { n = a->max_events; }
#endif
    for (uint32_t i = 0; i < n; i++) {
        WeirRawEvent event = { SLICE("x"), 0, {NULL, 0} };
        a->writer.push(a->writer.ctx, &event);
    }
    a->hint = WEIR_PULL_HINT_EMPTY;
    return WEIR_CALL_STATUS_OK;
}
static WeirCallStatus ok_feedback(void *s, WeirFeedbackArgs *a) { (void)s; (void)a; return WEIR_CALL_STATUS_OK; }
static WeirCallStatus no_sink(void *s, WeirSinkArgs *a) { (void)s; (void)a; return WEIR_CALL_STATUS_UNSUPPORTED; }
static WeirCallStatus ok_close(void *s, WeirCloseArgs *a) { (void)s; (void)a; return WEIR_CALL_STATUS_OK; }
static WeirCallStatus no_extension(void *s, WeirExtensionArgs *a) { (void)s; a->table = NULL; return WEIR_CALL_STATUS_OK; }
static void drop(void *s) {
#ifdef DROP_BLOCKS
    for (;;) { sleep(60); }
#endif
    free(s);
}

static const WeirConnectorVtable VTABLE = {
    ok_connect, ok_notify, bad_pull, ok_feedback, no_sink, ok_close, no_extension, drop,
};
static const WeirConnectorPluginDecl DECL = {
    .header = {
        .magic = WEIR_MAGIC,
        .header_size = sizeof(WeirPluginHeader),
        .kind = WEIR_PLUGIN_KIND_CONNECTOR,
        .abi = {WEIR_CONNECTOR_ABI_MAJOR, WEIR_CONNECTOR_ABI_MINOR},
        .decl_size = sizeof(WeirConnectorPluginDecl),
        .layout_fingerprint = WEIR_LAYOUT_FINGERPRINT,
        .panic_strategy = WEIR_PANIC_STRATEGY_UNWIND,
        .target = SLICE(WEIR_TARGET),
        .sdk_version = SLICE(WEIR_SDK_VERSION),
        .name = SLICE("broken"),
        .version = SLICE("0.1.0"),
    },
    .capabilities = WEIR_CAPABILITIES_SOURCE,
    .vtable = &VTABLE,
    .create = create,
};
__attribute__((visibility("default")))
const WeirPluginHeader *weir_plugin_metadata(WeirErrorSink error) { (void)error; return &DECL.header; }
"#;

/// Compiles `BROKEN_SOURCE` with `-D{define}` into `dir`.
fn broken_c_plugin(dir: &std::path::Path, define: &str) -> std::path::PathBuf {
    let source = dir.join("broken.c");
    std::fs::write(&source, BROKEN_SOURCE).unwrap();
    let library = dir.join(format!("libbroken_{}.so", define.to_lowercase()));
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .args([
            "-std=c11",
            "-D_DEFAULT_SOURCE",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .args(["-shared", "-fPIC", "-fvisibility=hidden"])
        .arg(format!("-D{define}"))
        .arg("-I")
        .arg(weir_tests::workspace_root().join("sdk/include"))
        .arg(&source)
        .arg("-o")
        .arg(&library)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    library
}

fn weir_plugins_test(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["plugins", "test"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn weir_plugins_test_passes_a_good_plugin_and_names_what_a_broken_one_does_wrong() {
    let library = c_example_plugin();
    let (code, said, _) = weir_plugins_test(&[
        library.as_os_str(),
        "--config".as_ref(),
        "count = 20".as_ref(),
    ]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.starts_with(
            "conformance of connector `ccounter` (plugin `ccounter` 0.1.0, source+sink): passed"
        ),
        "{said}"
    );

    let dir = temp_dir("c-plugin-broken");
    let overpush = broken_c_plugin(&dir, "OVERPUSH");
    let (code, said, _) = weir_plugins_test(&[overpush.as_os_str()]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("  FAIL pull: pull 1 returned 5 events when asked for at most 1"),
        "{said}"
    );

    let block = broken_c_plugin(&dir, "BLOCK");
    let started = Instant::now();
    let (code, said, _) = weir_plugins_test(&[
        block.as_os_str(),
        "--call-bound-ms".as_ref(),
        "200".as_ref(),
    ]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("  FAIL pull: `pull` did not return within 200ms"),
        "{said}"
    );
    assert!(
        said.contains("  skip stop and drop: the connector is still in `pull`"),
        "{said}"
    );

    // Freeing the instance is a call too: a `drop` that blocks fails the suite in time.
    let drop_blocks = broken_c_plugin(&dir, "DROP_BLOCKS");
    let started = Instant::now();
    let (code, said, _) = weir_plugins_test(&[
        drop_blocks.as_os_str(),
        "--call-bound-ms".as_ref(),
        "200".as_ref(),
    ]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(
            "  FAIL stop and drop: `drop` (the connector's Drop) did not return within 200ms"
        ),
        "{said}"
    );

    // What cannot be tested at all exits 2, naming the problem.
    let sink_only = example_plugin("blackhole");
    let (code, _, err) =
        weir_plugins_test(&[sink_only.as_os_str(), "--as".as_ref(), "source".as_ref()]);
    assert_eq!(code, Some(2));
    assert!(
        err.ends_with("cannot be bound that way: plugin `blackhole` is sink\n"),
        "{err}"
    );
    let (code, _, err) = weir_plugins_test(&[
        library.as_os_str(),
        "--config".as_ref(),
        "count = ".as_ref(),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("error: the config is not valid:\n--config:1:"),
        "{err}"
    );
    let (code, _, err) = weir_plugins_test(&[dir.join("broken.c").as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("broken.c"), "{err}");
}
