//! What a plugin that ends its process does to `weir`. In process, no panic trap catches a
//! segfault, a stack overflow, an abort or an `exit`, so each takes the whole host down
//! with every other connector, and a plugin that hangs is abandoned at shutdown. Out of
//! process (`isolation = "process"`), each is a crash of the connector's child: the host
//! stays up, the other connectors deliver everything, the crashed one is restarted and
//! stopped for good after `max_restarts`, and the run exits 1. The `crashy` fixture does
//! each, as a source (in `pull`) and as a sink (in `on_event`), after a few events.

mod common;

use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use common::{RUNNING, Running, final_metric, write_pipeline};
use weir_tests::{temp_dir, toml_path};

/// Which side of the pipeline crashes.
#[derive(Debug, Clone, Copy)]
enum Side {
    Source,
    Sink,
}

/// Events the unrelated pipeline next to `crashy` delivers.
const OTHERS: u64 = 200;

/// A pipeline with `crashy` crashing with `crash` on `side` (in a child process when
/// `isolated`), next to an unrelated pipeline (a counter of [`OTHERS`] events into a file),
/// started in the background with `weir run` flags `extra`. Returns the run and the
/// unrelated pipeline's output file.
fn crashing(crash: &str, side: Side, isolated: bool, extra: &[&str]) -> (Running, PathBuf) {
    let dir = temp_dir(&format!("crash-{crash}-{side:?}-{isolated}"));
    let others = dir.join("others.txt");
    // A hang is found at the call deadline; the other crashes must not be mistaken for
    // one on a loaded machine (a child's start, `exec` and loading the plugin, is a call).
    let timeout_ms = if crash == "hang" { 300 } else { 10_000 };
    let isolation = if isolated {
        format!(
            "isolation = \"process\"\ncall_timeout_ms = {timeout_ms}\nmax_restarts = 2\n\
             reconnect = {{ initial_ms = 10, max_ms = 20 }}\n"
        )
    } else {
        String::new()
    };
    let crashy = format!(
        "plugin = \"crashy\"\ncodec = \"string\"\n{isolation}\
         config = {{ crash = \"{crash}\", after = 5, write = {} }}\n",
        toml_path(&dir.join("crashy.txt"))
    );
    let pipeline = match side {
        Side::Source => format!(
            "[[connector]]\nid = \"crashy\"\n{crashy}\
             [[connector]]\nid = \"hole\"\nplugin = \"blackhole\"\n\
             [[binding]]\nfrom = \"crashy\"\nto = [\"hole\"]\n"
        ),
        Side::Sink => format!(
            "[[connector]]\nid = \"numbers\"\nplugin = \"counter\"\n\
             [[connector]]\nid = \"crashy\"\n{crashy}\
             [[binding]]\nfrom = \"numbers\"\nto = [\"crashy\"]\n"
        ),
    };
    let pipeline = format!(
        "{pipeline}[[connector]]\nid = \"others\"\nplugin = \"counter\"\n\
         config = {{ count = {OTHERS}, interval_ms = 2 }}\n\
         [[connector]]\nid = \"written\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
         config = {{ path = {}, mode = \"write\" }}\n\
         [[binding]]\nfrom = \"others\"\nto = [\"written\"]\n",
        toml_path(&others)
    );
    let pipeline = write_pipeline(&dir, &pipeline);
    let running = Running::start_with(&pipeline, extra, |command| {
        // A crash writes no core file: not into the test's directory, nor anywhere else.
        command.current_dir(&dir);
        // SAFETY: the closure runs in the child between fork and exec, and calls only
        // `setrlimit`, which is async-signal-safe, on a limit it owns.
        unsafe {
            command.pre_exec(|| {
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::setrlimit(libc::RLIMIT_CORE, &none) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
    });
    (running, others)
}

/// Runs the crash on both sides; each run must end by itself as `expect` says.
fn ends_the_host(crash: &str, expect: impl Fn(ExitStatus, &str) -> bool) {
    for side in [Side::Source, Side::Sink] {
        let (status, _, stderr) = crashing(crash, side, false, &[]).0.finish();
        assert!(
            expect(status, &stderr),
            "{crash} in the {side:?}: {status:?}\n{stderr}"
        );
    }
}

#[test]
fn a_segfault_in_a_plugin_kills_the_host_with_sigsegv() {
    ends_the_host("segfault", |status, _| {
        status.signal() == Some(libc::SIGSEGV)
    });
}

#[test]
fn a_stack_overflow_in_a_plugin_aborts_the_host() {
    ends_the_host("stack_overflow", |status, stderr| {
        status.signal() == Some(libc::SIGABRT) && stderr.contains("has overflowed its stack")
    });
}

#[test]
fn an_abort_in_a_plugin_aborts_the_host() {
    ends_the_host("abort", |status, _| status.signal() == Some(libc::SIGABRT));
}

#[test]
fn an_exit_in_a_plugin_ends_the_host_with_its_status() {
    ends_the_host("exit", |status, _| status.code() == Some(3));
}

#[test]
fn a_plugin_that_hangs_is_abandoned_at_shutdown_within_the_deadlines() {
    for (side, method) in [(Side::Source, "pull"), (Side::Sink, "on_event")] {
        let (running, others) = crashing(
            "hang",
            side,
            false,
            &["--drain-timeout", "1", "--stop-timeout", "1"],
        );
        running.wait_until("the pipeline to run", |log| log.contains(RUNNING));
        let marker = others.with_file_name("crashy.txt");
        running.wait_until("the plugin to hang", |_| {
            std::fs::read_to_string(&marker).is_ok_and(|text| text.contains("hanging"))
        });
        running.signal(libc::SIGINT);
        let (status, elapsed, stderr) = running.finish();
        assert_eq!(status.code(), Some(1), "{side:?}: {stderr}");
        // The drain (1 s) and stop (1 s) deadlines, and the process's exit.
        assert!(
            elapsed < Duration::from_secs(7),
            "{side:?}: took {elapsed:?}: {stderr}"
        );
        assert!(
            stderr.contains("connector `crashy` did not stop within 1s")
                && stderr.contains(&format!("(blocked in `{method}`): abandoned")),
            "{side:?}: {stderr}"
        );
    }
}

/// Runs the crash isolated on both sides: the host must stay up, deliver every event of the
/// other pipeline, restart `crashy` twice and stop it for good, and exit 1; `reason` must
/// be in what it says of the crash.
fn is_contained(crash: &str, reason: &str) {
    for side in [Side::Source, Side::Sink] {
        let (running, others) = crashing(crash, side, true, &[]);
        let (status, _, stderr) = running.finish();
        assert_eq!(
            status.code(),
            Some(1),
            "{crash} in the {side:?}: {status:?}\n{stderr}"
        );
        assert!(
            stderr.contains("its process crashed") && stderr.contains(reason),
            "{crash} in the {side:?}: {reason:?} not said\n{stderr}"
        );
        assert!(
            stderr.contains("connector stopped for good: no restarts left (max_restarts = 2)"),
            "{crash} in the {side:?}\n{stderr}"
        );
        assert_eq!(final_metric(&stderr, "crashy", "restarts"), 2, "{stderr}");
        // The other pipeline lost nothing.
        let written = std::fs::read_to_string(&others).unwrap_or_default();
        let mut numbers: Vec<u64> = written
            .lines()
            .map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                event["n"].as_u64().unwrap()
            })
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(
            numbers,
            (0..OTHERS).collect::<Vec<_>>(),
            "{crash} in the {side:?}: the other pipeline\n{stderr}"
        );
    }
}

#[test]
fn an_isolated_segfault_is_a_restart_not_the_end_of_the_host() {
    is_contained("segfault", "killed by signal 11 (SIGSEGV)");
}

#[test]
fn an_isolated_stack_overflow_is_a_restart_not_the_end_of_the_host() {
    is_contained("stack_overflow", "has overflowed its stack");
}

#[test]
fn an_isolated_abort_is_a_restart_not_the_end_of_the_host() {
    is_contained("abort", "killed by signal 6 (SIGABRT)");
}

#[test]
fn an_isolated_exit_is_a_restart_not_the_end_of_the_host() {
    is_contained("exit", "exited with status 3");
}

#[test]
fn an_isolated_hang_is_killed_at_its_call_timeout_and_restarted() {
    is_contained("hang", "within 300ms: killed");
}

/// Runs `pipeline` to its end with `weir run` flags `extra`; returns its standard output
/// (sorted lines) and error.
fn run_to_end(pipeline: &std::path::Path, extra: &[&str]) -> (Vec<String>, String) {
    let output = common::run_once(pipeline, extra, "info");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort_unstable();
    (lines, stderr)
}

#[test]
fn an_isolated_pipeline_delivers_what_an_in_process_one_does() {
    let dir = temp_dir("crash-isolated-pipeline");
    // Events with metadata, acks back to a source that resends fails, a source that says
    // when it is next due, its log records.
    let pipeline = write_pipeline(
        &dir,
        "[[connector]]\nid = \"numbers\"\nplugin = \"counter\"\n\
         config = { count = 300, meta = true }\n\
         [[connector]]\nid = \"tick\"\nplugin = \"metronome\"\n\
         config = { interval_ms = 5, count = 3 }\n\
         [[connector]]\nid = \"out\"\nplugin = \"stdout\"\nconfig = { meta = true }\n\
         [[binding]]\nfrom = \"numbers\"\nto = [\"out\"]\n\
         [[binding]]\nfrom = \"tick\"\nto = [\"out\"]\n",
    );
    let (in_process, _) = run_to_end(&pipeline, &[]);
    let (isolated, stderr) = run_to_end(&pipeline, &["--isolation", "process"]);
    assert_eq!(in_process.len(), 303, "{in_process:?}");
    // The ticks carry their emission time: compare the numbers exactly, the ticks by count.
    let numbers = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains("\"version\""))
            .cloned()
            .collect()
    };
    assert_eq!(numbers(&isolated), numbers(&in_process), "{stderr}");
    assert_eq!(isolated.len(), 303, "{stderr}");
    assert_eq!(final_metric(&stderr, "numbers", "acks"), 300, "{stderr}");
    // The metronome's `tracing` record crossed from its child, tagged with its connector.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("metronome started") && l.contains("connector=\"tick\"")),
        "{stderr}"
    );
    assert!(!stderr.contains("crashed"), "{stderr}");
}

/// A stand-in for `weir`'s plugin-host mode that answers with `script` (a shell script
/// writing to the host on descriptor 3), to check what the host does with a child that
/// lies.
fn impostor(name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp_dir(&format!("crash-impostor-{name}"));
    let program = dir.join("impostor");
    std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

/// Creates an isolated `counter` instance whose child is `program`.
fn isolated_counter(
    program: &std::path::Path,
) -> Result<weir_host::ConnectorInstance, weir_host::CallError> {
    let plugin = weir_host::Plugin::load(weir_tests::fixture_plugin("counter")).unwrap();
    plugin.instantiate_with(
        "numbers",
        &serde_json::json!({}),
        weir_host::InstanceOptions::new()
            .bound_as(weir_host::Sides {
                source: true,
                sink: false,
            })
            .isolate(weir_host::Isolation::new(program, Duration::from_secs(2))),
    )
}

#[test]
fn a_child_that_sends_garbage_is_a_crash_with_what_it_sent() {
    // A frame header claiming 4 GiB: refused before anything is allocated for it.
    let huge = impostor("huge", r"printf '\377\377\377\377\200' >&3; sleep 5");
    let error = isolated_counter(&huge).unwrap_err();
    let text = error.to_string();
    assert!(error.is_poisoning(), "{text}");
    assert!(
        text.contains("`new`: its process crashed") && text.contains("a frame of 4294967295 bytes"),
        "{text}"
    );

    // An unknown tag.
    let tagged = impostor("tag", r"printf '\001\000\000\000\077' >&3; sleep 5");
    let text = isolated_counter(&tagged).unwrap_err().to_string();
    assert!(text.contains("unknown tag 63"), "{text}");

    // `new` answered, then a pull answered with more events than the frame holds.
    let liar = impostor(
        "liar",
        r"printf '\001\000\000\000\200' >&3
          head -c 9 <&3 >/dev/null
          printf '\027\000\000\000\200\000\000\000\000\000\000\000\000\000\377\377\377\377\377\377\377\377\000\003\000\000\000' >&3
          sleep 5",
    );
    let mut instance = isolated_counter(&liar).expect("`new` answered OK");
    let mut batch = weir_host::EventBatch::new();
    let error = instance.pull(&mut batch, 64).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("`pull`: its process crashed: it sent garbage")
            && text.contains("claims 3 items"),
        "{text}"
    );
    assert!(instance.is_poisoned(), "{text}");
    assert!(batch.is_empty(), "nothing of a lie is kept: {batch:?}");

    // A child that exits before answering.
    let quitter = impostor("quitter", "exit 7");
    let text = isolated_counter(&quitter).unwrap_err().to_string();
    assert!(text.contains("exited with status 7"), "{text}");
}

#[test]
fn an_isolated_connector_past_its_memory_limit_crashes_and_restarts() {
    let dir = temp_dir("crash-memory-limit");
    let pipeline = write_pipeline(
        &dir,
        "[[connector]]\nid = \"crashy\"\nplugin = \"crashy\"\ncodec = \"string\"\n\
         isolation = \"process\"\nmemory_limit_mb = 256\nmax_restarts = 1\n\
         reconnect = { initial_ms = 10, max_ms = 20 }\n\
         config = { crash = \"allocate\", after = 5 }\n\
         [[connector]]\nid = \"hole\"\nplugin = \"blackhole\"\n\
         [[binding]]\nfrom = \"crashy\"\nto = [\"hole\"]\n",
    );
    let (status, _, stderr) = Running::start(&pipeline, &[]).finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    // Within the limit it ran (5 events each time); the gigabyte failed, and the plugin
    // aborted, in its child.
    assert!(
        stderr.contains("memory allocation of 1073741824 bytes failed")
            && stderr.contains("killed by signal 6 (SIGABRT)"),
        "{stderr}"
    );
    assert_eq!(final_metric(&stderr, "crashy", "restarts"), 1, "{stderr}");
    assert_eq!(final_metric(&stderr, "hole", "in"), 10, "{stderr}");
}

#[test]
fn an_isolated_connectors_child_cannot_gain_privileges() {
    let dir = temp_dir("crash-no-new-privs");
    let pipeline = write_pipeline(
        &dir,
        "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\nisolation = \"process\"\n\
         config = { interval_ms = 10 }\n\
         [[connector]]\nid = \"hole\"\nplugin = \"blackhole\"\n\
         [[binding]]\nfrom = \"tick\"\nto = [\"hole\"]\n",
    );
    let running = Running::start(&pipeline, &[]);
    running.wait_until("the pipeline to run", |log| log.contains(RUNNING));
    // The children of this weir: processes whose parent it is (field 4 of /proc/PID/stat,
    // after the command name in parentheses).
    let parent = running.pid().to_string();
    let children = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| {
                let pid = entry.ok()?.file_name().into_string().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let after_name = &stat[stat.rfind(')')? + 1..];
                (after_name.split_whitespace().nth(1)? == parent).then_some(pid)
            })
            .collect()
    };
    // The connector's thread starts its child once the pipeline runs; past its `exec` (the
    // limits are set just before it), it runs `weir __plugin-host`.
    running.wait_until("one child, for `tick`, running", |_| {
        let children = children();
        children.len() == 1
            && std::fs::read(format!("/proc/{}/cmdline", children[0]))
                .is_ok_and(|cmdline| cmdline.windows(13).any(|w| w == b"__plugin-host"))
    });
    let children = children();
    let status = std::fs::read_to_string(format!("/proc/{}/status", children[0])).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    running.signal(libc::SIGINT);
    let (exit, _, stderr) = running.finish();
    assert_eq!(exit.code(), Some(0), "{stderr}");
}

#[test]
fn a_sink_crashing_a_thousand_times_loses_no_event_of_a_resending_source() {
    const CRASHES: u64 = 1000;
    // Each incarnation of the sink takes 4 events (one batch) and dies in the fifth's call,
    // so every crash moves the stream on by about one batch.
    const EVENTS: u64 = CRASHES * 4;
    let dir = temp_dir("crash-soak");
    let (record, written) = (dir.join("record.txt"), dir.join("written.txt"));
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"numbers\"\nplugin = \"transactional\"\n\
             config = {{ count = {EVENTS}, record = {} }}\n\
             [[connector]]\nid = \"crashy\"\nplugin = \"crashy\"\nisolation = \"process\"\n\
             max_restarts = {}\nreconnect = {{ initial_ms = 1, max_ms = 1 }}\n\
             config = {{ crash = \"segfault\", after = 4, write = {} }}\n\
             [[binding]]\nfrom = \"numbers\"\nto = [\"crashy\"]\n",
            toml_path(&record),
            CRASHES * 2,
            toml_path(&written),
        ),
    );
    let started = std::time::Instant::now();
    let output = common::run_once(&pipeline, &["--batch-size", "4"], "warn");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr.lines().rev().take(30).collect::<Vec<_>>().join("\n");
    assert_eq!(output.status.code(), Some(0), "{tail}");
    let crashes = final_metric(&stderr, "crashy", "restarts");
    assert!(crashes >= CRASHES, "{crashes} crashes: {tail}");
    // Every number arrived at least once; what a batch wrote before its crash came again.
    let mut seen = std::collections::BTreeMap::<u64, u64>::new();
    for line in std::fs::read_to_string(&written).unwrap().lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        *seen.entry(event["n"].as_u64().unwrap()).or_default() += 1;
    }
    let missing: Vec<u64> = (0..EVENTS).filter(|n| !seen.contains_key(n)).collect();
    assert!(missing.is_empty(), "lost {missing:?}: {tail}");
    let duplicates: u64 = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "soak: {EVENTS} events through {crashes} crashes of the sink in {took:?}, \
         {duplicates} duplicates"
    );
}

#[test]
fn ctrl_c_to_the_whole_process_group_drains_isolated_connectors_cleanly() {
    let dir = temp_dir("crash-group-sigint");
    let written = dir.join("written.txt");
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"numbers\"\nplugin = \"counter\"\n\
             config = {{ interval_ms = 1 }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
             config = {{ path = {}, mode = \"write\" }}\n\
             [[binding]]\nfrom = \"numbers\"\nto = [\"out\"]\n",
            toml_path(&written)
        ),
    );
    // Its own group, as a shell gives a job: Ctrl-C in a terminal signals every process of
    // it, the children too, not just `weir`.
    let running = Running::start_with(&pipeline, &["--isolation", "process"], |command| {
        command.process_group(0);
    });
    running.wait_until("the pipeline to run", |log| log.contains(RUNNING));
    running.wait_until("some events written", |_| {
        std::fs::read_to_string(&written).is_ok_and(|text| text.lines().count() > 10)
    });
    let group = -(running.pid() as libc::pid_t);
    // SAFETY: signalling the process group of our own child, which leads it.
    let sent = unsafe { libc::kill(group, libc::SIGINT) };
    assert_eq!(sent, 0, "{}", std::io::Error::last_os_error());
    let (status, _, stderr) = running.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("crashed"), "{stderr}");
    // What was acked was written: the counter's events arrive in order, none missing.
    let numbers = common::numbers_in(&written);
    assert_eq!(
        numbers,
        (0..numbers.len() as u64).collect::<Vec<_>>(),
        "{stderr}"
    );
}
