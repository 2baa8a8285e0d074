//! `weir run` as a user runs it: a real process, real plugins, real signals.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_tests::example_plugin;

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-run-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn lit(path: &Path) -> String {
    serde_json::to_string(&path.to_str().unwrap()).unwrap()
}

fn weir(args: &[&std::ffi::OsStr], rust_log: &str) -> Command {
    let plugins = example_plugin("metronome").parent().unwrap().to_owned();
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .arg("--plugin-dir")
        .arg(plugins)
        .args(args)
        .env("RUST_LOG", rust_log);
    command
}

/// `connector in=.. out=.. acks=.. fails=..` from the final metrics on stderr.
fn final_metric(stderr: &str, connector: &str, key: &str) -> u64 {
    let section = stderr.rsplit("final metrics:").next().unwrap();
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with(connector))
        .unwrap_or_else(|| panic!("{stderr}"));
    line.split_whitespace()
        .find_map(|field| field.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .parse()
        .unwrap()
}

#[test]
fn ctrl_c_drains_every_event_in_flight_and_exits_cleanly() {
    let dir = temp_dir("ctrlc");
    let (pipeline, output) = (dir.join("pipeline.toml"), dir.join("out.txt"));
    std::fs::write(
        &pipeline,
        format!(
            "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\nconfig = {{ interval_ms = 1 }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
             config = {{ path = {}, mode = \"write\" }}\n\
             [[binding]]\nfrom = \"tick\"\nto = [\"out\"]\n",
            lit(&output)
        ),
    )
    .unwrap();
    let mut child = weir(&["run".as_ref(), pipeline.as_os_str()], "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: sending SIGINT to our own child process, whose pid we just got.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let started = Instant::now();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "drained promptly"
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("interrupted: draining"), "{stderr}");
    let (out, acks, fails) = (
        final_metric(&stderr, "tick", "out"),
        final_metric(&stderr, "tick", "acks"),
        final_metric(&stderr, "tick", "fails"),
    );
    assert!(out > 50, "the metronome ran: {stderr}");
    assert_eq!(
        acks + fails,
        out,
        "every event in flight was delivered or failed back: {stderr}"
    );
    let written = std::fs::read_to_string(&output).unwrap();
    assert_eq!(
        written.lines().count() as u64,
        acks,
        "every acked event is in the file"
    );
}

#[test]
fn a_plugins_tracing_events_appear_in_the_host_log_with_its_connector_id() {
    let dir = temp_dir("tracing");
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(
        &pipeline,
        "[[connector]]\nid = \"my-ticker\"\nplugin = \"metronome\"\nconfig = { interval_ms = 1, count = 3 }\n\
         [[connector]]\nid = \"out\"\nplugin = \"stdout\"\n\
         [[binding]]\nfrom = \"my-ticker\"\nto = [\"out\"]\n",
    )
    .unwrap();
    let output = weir(&["run".as_ref(), pipeline.as_os_str()], "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("metronome started"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("INFO"), "{line}");
    assert!(
        line.contains("my-ticker"),
        "tagged with the connector id: {line}"
    );
    assert!(line.contains("metronome"), "and the plugin: {line}");
    assert!(line.contains("interval_ms=1"), "with its fields: {line}");
    // Filtered by RUST_LOG like any other log.
    let quiet = weir(&["run".as_ref(), pipeline.as_os_str()], "warn")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("metronome started"));
    // The sink wrote the three events to stdout.
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 3);
}

#[test]
fn run_reports_config_errors_with_locations_and_exits_1() {
    let dir = temp_dir("config");
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(&pipeline, "[[connector]]\nid = \"a\"\nplugin = \"nope\"\n").unwrap();
    let output = weir(&["run".as_ref(), pipeline.as_os_str()], "warn")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{}:3:10: `connector[0].plugin`: unknown plugin `nope`",
            pipeline.display()
        )),
        "{stderr}"
    );
    let output = weir(&["check".as_ref(), pipeline.as_os_str()], "warn")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}
