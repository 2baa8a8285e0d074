//! What a plugin that ends its process does to `weir` when it runs in process (today's only
//! way): no panic trap catches a segfault, a stack overflow, an abort or an `exit`, so each
//! takes the whole host down with every other connector; a plugin that hangs is abandoned
//! at shutdown. The `crashy` fixture does each, as a source (in `pull`) and as a sink (in
//! `on_event`), after a few events went through.

mod common;

use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::ExitStatus;
use std::time::Duration;

use common::{RUNNING, Running, write_pipeline};
use weir_tests::temp_dir;

/// Which side of the pipeline crashes.
#[derive(Debug, Clone, Copy)]
enum Side {
    Source,
    Sink,
}

/// A pipeline with `crashy` crashing with `crash` on `side`, next to an unrelated pipeline
/// (a metronome into a blackhole), started in the background with `weir run` flags `extra`.
fn crashing(crash: &str, side: Side, extra: &[&str]) -> Running {
    let dir = temp_dir(&format!("crash-{crash}-{side:?}"));
    let crashy = format!("plugin = \"crashy\"\nconfig = {{ crash = \"{crash}\", after = 5 }}\n");
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
        "{pipeline}[[connector]]\nid = \"ticks\"\nplugin = \"metronome\"\n\
         config = {{ interval_ms = 10 }}\n\
         [[connector]]\nid = \"other\"\nplugin = \"blackhole\"\n\
         [[binding]]\nfrom = \"ticks\"\nto = [\"other\"]\n"
    );
    let pipeline = write_pipeline(&dir, &pipeline);
    Running::start_with(&pipeline, extra, |command| {
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
    })
}

/// Runs the crash on both sides; each run must end by itself as `expect` says.
fn ends_the_host(crash: &str, expect: impl Fn(ExitStatus, &str) -> bool) {
    for side in [Side::Source, Side::Sink] {
        let (status, _, stderr) = crashing(crash, side, &[]).finish();
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
        let running = crashing(
            "hang",
            side,
            &["--drain-timeout", "1", "--stop-timeout", "1"],
        );
        running.wait_until("the pipeline to run", |log| log.contains(RUNNING));
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
