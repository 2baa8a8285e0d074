//! Changing a running `weir`: its admin socket, `weir plugins reload`, `--watch` and
//! `weir apply`, each proven to lose no event.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Running, admin, counted, final_metric, misbehave_dir, weir, write_pipeline};
use weir_tests::{fixture_plugin, temp_dir, toml_path};

/// A pipeline of counter `plugin` (with `config`) into a `file` sink writing `output`.
fn counter_pipeline(plugin: &str, config: &str, output: &Path) -> String {
    format!(
        "[[connector]]\nid = \"numbers\"\nplugin = \"{plugin}\"\nconfig = {config}\n\
         [[connector]]\nid = \"out\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
         config = {{ path = {} }}\n\
         [[binding]]\nfrom = \"numbers\"\nto = [\"out\"]\n",
        toml_path(output)
    )
}

/// A `weir run` of counter 0.1.0 (`count` numbers, 1 ms apart) into a file, with its admin
/// socket, the counter in `plugins` (`below` the `--plugin-dir`, `dir/plugins`).
struct CounterRun {
    dir: PathBuf,
    plugins: PathBuf,
    output: PathBuf,
    socket: PathBuf,
    running: Running,
}

impl CounterRun {
    /// Starts it and waits for its first 100 numbers.
    fn start(test: &str, count: u64, below: &str, extra: &[&str]) -> Self {
        let config = format!("{{ count = {count}, interval_ms = 1 }}");
        Self::start_pipeline(test, below, extra, |output| {
            counter_pipeline("counter", &config, output)
        })
    }

    /// [`start`](Self::start) with another pipeline, made from the output file's path
    /// (whose counter is `numbers`, writing to `out`).
    fn start_pipeline(
        test: &str,
        below: &str,
        extra: &[&str],
        pipeline: impl FnOnce(&Path) -> String,
    ) -> Self {
        let dir = temp_dir(test);
        let plugins = dir.join("plugins").join(below);
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(fixture_plugin("counter"), plugins.join("libcounter.so")).unwrap();
        let output = dir.join("out.jsonl");
        let socket = dir.join("admin.sock");
        let pipeline = write_pipeline(&dir, &pipeline(&output));
        let plugin_dir = dir.join("plugins");
        let mut args = vec![
            "--plugin-dir",
            plugin_dir.to_str().unwrap(),
            "--admin-socket",
            socket.to_str().unwrap(),
        ];
        args.extend(extra);
        let running = Running::start(&pipeline, &args);
        running.wait_until("the admin socket", |log| {
            log.contains("admin socket listening")
        });
        running.wait_until("100 numbers", |_| {
            counted(&output)
                .get("0.1.0")
                .is_some_and(|n| n.len() >= 100)
        });
        Self {
            dir,
            plugins,
            output,
            socket,
            running,
        }
    }

    /// [`start_pipeline`](Self::start_pipeline) with the `misbehave` plugin on the path and
    /// drain and stop timeouts of 1 s, for tests of connectors that block.
    fn with_misbehave(test: &str, pipeline: impl FnOnce(&Path) -> String) -> Self {
        let misbehave = misbehave_dir().to_str().unwrap();
        Self::start_pipeline(
            test,
            "",
            // (After `run`, `--plugin-dir` replaces the ones `weir()` gives before it.)
            &[
                "--plugin-dir",
                misbehave,
                "--drain-timeout",
                "1",
                "--stop-timeout",
                "1",
            ],
            pipeline,
        )
    }

    /// `weir ARGS` to this run: its exit status, standard output and error.
    fn admin(&self, args: &[&str]) -> (bool, String, String) {
        let answer = admin(&self.socket, args);
        (
            answer.status.success(),
            String::from_utf8_lossy(&answer.stdout).into_owned(),
            String::from_utf8_lossy(&answer.stderr).into_owned(),
        )
    }

    /// `weir ARGS` to this run, which must succeed; what it printed.
    fn admin_ok(&self, args: &[&str]) -> String {
        let (ok, said, error) = self.admin(args);
        assert!(ok, "{args:?}: {said}{error}");
        said
    }

    /// After an upgrade of counter 0.1.0 to 0.2.0: `weir status` shows the new version
    /// running; the run ends by itself, with the old version's numbers each once, the new
    /// version's `count` numbers all there and every event pulled acknowledged. Returns the
    /// run's log.
    fn finish_upgraded(self, count: u64) -> String {
        let status = self.admin_ok(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        assert_eq!(status["connectors"][0]["id"], "numbers");
        assert_eq!(status["connectors"][0]["version"], "0.2.0", "{status}");
        assert_eq!(status["connectors"][0]["state"], "running");
        let (exit, _, stderr) = self.running.finish();
        assert_eq!(exit.code(), Some(0), "{stderr}");
        let numbers = counted(&self.output);
        let old = &numbers["0.1.0"];
        assert_eq!(
            *old,
            (0..old.len() as u64).collect::<Vec<_>>(),
            "the old version's numbers, each once"
        );
        assert_eq!(
            numbers["0.2.0"],
            (0..count).collect::<Vec<_>>(),
            "the new version ran to its end"
        );
        let (acks, out, fails) = (
            final_metric(&stderr, "numbers", "acks"),
            final_metric(&stderr, "numbers", "out"),
            final_metric(&stderr, "numbers", "fails"),
        );
        assert_eq!(
            (acks, fails),
            (out, 0),
            "every event pulled was delivered: {stderr}"
        );
        assert!(!self.socket.exists(), "the socket is removed at exit");
        stderr
    }
}

#[test]
fn weir_plugins_reload_upgrades_a_running_connector_without_losing_an_event() {
    let run = CounterRun::start("run-reload", 3000, "", &[]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&run.socket).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "only its user may use the socket");
    // A new version is dropped into the plugin directory, then reloaded to.
    std::fs::copy(
        fixture_plugin("counter-v2"),
        run.plugins.join("libcounter_v2.so"),
    )
    .unwrap();
    let said = run.admin_ok(&["plugins", "reload", "counter"]);
    assert!(said.contains("numbers: counter 0.1.0 -> 0.2.0"), "{said}");
    run.finish_upgraded(3000);
}

#[test]
fn weir_plugins_reload_finds_a_version_loaded_by_command_from_off_the_plugin_path() {
    let run = CounterRun::start("run-load-reload", 3000, "", &[]);
    // Not on the plugin path: known only through `weir plugins load`.
    let elsewhere = run.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let file = elsewhere.join("libcounter_v2.so");
    std::fs::copy(fixture_plugin("counter-v2"), &file).unwrap();
    let said = run.admin_ok(&["plugins", "load", file.to_str().unwrap()]);
    assert!(said.contains("0.2.0"), "{said}");
    // The reload scans the plugin path again: the loaded file is still there.
    let said = run.admin_ok(&["plugins", "reload", "counter"]);
    assert!(said.contains("numbers: counter 0.1.0 -> 0.2.0"), "{said}");
    run.finish_upgraded(3000);
}

#[test]
fn a_version_loaded_by_command_then_unloaded_stays_unloaded_through_rescans() {
    let run = CounterRun::start("run-load-unload", 3000, "", &[]);
    let elsewhere = run.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let file = elsewhere.join("libcounter_v2.so");
    std::fs::copy(fixture_plugin("counter-v2"), &file).unwrap();
    run.admin_ok(&["plugins", "load", file.to_str().unwrap()]);
    let said = run.admin_ok(&["plugins", "unload", "counter@0.2.0"]);
    assert!(said.contains("0.2.0"), "{said}");
    // A reload scans again: 0.2.0 does not come back, the connector stays on 0.1.0.
    let said = run.admin_ok(&["plugins", "reload", "counter"]);
    assert!(!said.contains("0.2.0"), "{said}");
    let status: serde_json::Value =
        serde_json::from_str(&run.admin_ok(&["status", "--json"])).unwrap();
    assert_eq!(status["connectors"][0]["version"], "0.1.0", "{status}");
    let (exit, _, stderr) = run.running.finish();
    assert_eq!(exit.code(), Some(0), "{stderr}");
}

#[test]
fn weir_apply_replaces_a_changed_connector_without_losing_an_event() {
    let run = CounterRun::start("run-apply-replace", 3000, "", &[]);
    std::fs::copy(
        fixture_plugin("counter-v2"),
        run.plugins.join("libcounter_v2.so"),
    )
    .unwrap();
    // Another version and another config: the version is not loaded yet, so the plugin
    // path is scanned again.
    let changed = run.dir.join("changed.toml");
    let config = "{ count = 2000, interval_ms = 1 }";
    std::fs::write(
        &changed,
        counter_pipeline("counter@0.2", config, &run.output),
    )
    .unwrap();
    let said = run.admin_ok(&["apply", changed.to_str().unwrap()]);
    assert!(
        said.contains("replaced: numbers (counter 0.1.0 -> counter 0.2.0)"),
        "{said}"
    );
    assert!(said.contains("unchanged: out"), "{said}");
    run.finish_upgraded(2000);
}

#[test]
fn weir_apply_starts_added_connectors_and_drains_removed_ones() {
    // A counter that never ends, into `out`.
    let run = CounterRun::start("run-apply-rebind", 1 << 40, "", &[]);
    let second = run.dir.join("second.jsonl");
    let rebound = run.dir.join("rebound.toml");
    // `out` is removed, `second` added in its place.
    std::fs::write(
        &rebound,
        counter_pipeline(
            "counter",
            &format!("{{ count = {}, interval_ms = 1 }}", 1u64 << 40),
            &second,
        )
        .replace("\"out\"", "\"second\""),
    )
    .unwrap();

    // Refused, and nothing changes: a file with errors, a source bound as a sink, no file.
    let broken = run.dir.join("broken.toml");
    std::fs::write(
        &broken,
        "[[connector]]\nid = \"numbers\"\nplugin = \"nope\"\n",
    )
    .unwrap();
    let (ok, _, error) = run.admin(&["apply", broken.to_str().unwrap()]);
    assert!(!ok, "{error}");
    assert!(error.contains("nothing was changed"), "{error}");
    assert!(error.contains("broken.toml:3"), "located: {error}");
    assert!(error.contains("unknown plugin `nope`"), "{error}");
    let self_bound = run.dir.join("self-bound.toml");
    std::fs::write(
        &self_bound,
        std::fs::read_to_string(&rebound).unwrap().replace(
            "from = \"numbers\"\nto = [\"second\"]",
            "from = \"numbers\"\nto = [\"numbers\"]",
        ),
    )
    .unwrap();
    let (ok, _, error) = run.admin(&["apply", self_bound.to_str().unwrap()]);
    assert!(!ok, "{error}");
    assert!(error.contains("nothing was changed"), "{error}");
    let missing = run.dir.join("missing.toml");
    let (ok, _, error) = run.admin(&["apply", missing.to_str().unwrap()]);
    assert!(!ok && error.contains("missing.toml"), "{error}");
    // Neither a FIFO (no writer: reading would block) nor an endless device is read.
    let fifo = run.dir.join("fifo.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for file in [fifo.to_str().unwrap(), "/dev/zero"] {
        let (ok, _, error) = run.admin(&["apply", file]);
        assert!(!ok, "{error}");
        assert!(error.contains("not a regular file"), "{error}");
    }

    let said = run.admin_ok(&["apply", rebound.to_str().unwrap()]);
    assert!(said.contains("started: second"), "{said}");
    assert!(said.contains("stopped: out"), "{said}");
    assert!(said.contains("rewired: numbers"), "{said}");
    let status = run.admin_ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let ids: Vec<&str> = status["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["numbers", "second"], "{status}");
    run.running.wait_until("100 numbers in the new sink", |_| {
        counted(&second)
            .get("0.1.0")
            .is_some_and(|n| n.len() >= 100)
    });
    run.running.signal(libc::SIGINT);
    let (exit, _, stderr) = run.running.finish();
    assert_eq!(exit.code(), Some(0), "{stderr}");
    let before = counted(&run.output).remove("0.1.0").unwrap();
    let after = counted(&second).remove("0.1.0").unwrap();
    assert!(
        before.last() < after.first(),
        "the removed sink got the numbers before the change, the new one those after"
    );
    let all: Vec<u64> = before.iter().chain(&after).copied().collect();
    assert_eq!(
        all,
        (0..all.len() as u64).collect::<Vec<_>>(),
        "every number once, none lost between the two sinks"
    );
    assert_eq!(final_metric(&stderr, "numbers", "fails"), 0, "{stderr}");
    assert_eq!(
        final_metric(&stderr, "numbers", "acks"),
        all.len() as u64,
        "{stderr}"
    );
}

#[test]
fn weir_apply_gives_up_on_a_removed_sink_stuck_in_a_plugin_call_and_the_rest_flows_on() {
    let run = CounterRun::with_misbehave("run-apply-stuck", |output| {
        counter_pipeline("counter", "{ interval_ms = 1 }", output).replace(
            "to = [\"out\"]",
            "to = [\"out\", \"stuck\"]\n\
                 [[connector]]\nid = \"stuck\"\nplugin = \"misbehave\"\ncodec = \"string\"\n\
                 config = { block_in = \"on_event\" }",
        )
    });
    // `stuck` never answers: the counter has all its credit in flight and stalls.
    let stalled = || counted(&run.output).get("0.1.0").map_or(0, Vec::len);
    let mut last = (stalled(), std::time::Instant::now());
    run.running.wait_until("the counter to stall", |_| {
        let now = stalled();
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        last.1.elapsed() > Duration::from_millis(500)
    });
    let at_stall = stalled();
    let unstuck = run.dir.join("unstuck.toml");
    std::fs::write(
        &unstuck,
        counter_pipeline("counter", "{ interval_ms = 1 }", &run.output),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (ok, said, error) = run.admin(&["apply", unstuck.to_str().unwrap()]);
    assert!(!ok, "{said}{error}");
    assert!(
        error.contains("stuck: did not stop in time (stuck in a plugin call)"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered within the deadlines: {:?}",
        started.elapsed()
    );
    // What awaited `stuck` failed back, the counter sends it again, and goes on.
    run.running
        .wait_until("the counter to go on", |_| stalled() > at_stall + 500);
    let status = run.admin_ok(&["status", "--json"]);
    assert!(!status.contains("\"stuck\""), "{status}");
    run.running.signal(libc::SIGINT);
    let (exit, _, stderr) = run.running.finish();
    // Its thread is still stuck at exit: reported, and the run says so.
    assert_eq!(exit.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("connector did not stop in time"),
        "{stderr}"
    );
    let numbers = counted(&run.output).remove("0.1.0").unwrap();
    let max = *numbers.iter().max().unwrap();
    let seen: std::collections::BTreeSet<u64> = numbers.into_iter().collect();
    assert!(
        (0..=max).all(|n| seen.contains(&n)),
        "every number up to {max} arrived at least once"
    );
}

#[test]
fn weir_apply_keeps_the_old_instance_when_the_new_one_blocks_and_reports_what_does_not_connect() {
    let run = CounterRun::with_misbehave("run-apply-blocking", |output| {
        counter_pipeline("counter", "{ interval_ms = 1 }", output)
    });
    let numbers = || counted(&run.output).get("0.1.0").map_or(0, Vec::len);
    // `out` would become a sink whose `connect` never returns.
    let blocking = run.dir.join("blocking.toml");
    std::fs::write(
        &blocking,
        counter_pipeline("counter", "{ interval_ms = 1 }", &run.output).replace(
            &format!(
                "plugin = \"file\"\npostprocessors = [\"lines\"]\nconfig = {{ path = {} }}",
                toml_path(&run.output)
            ),
            "plugin = \"misbehave\"\ncodec = \"string\"\nconfig = { block_in = \"connect\" }",
        ),
    )
    .unwrap();
    let (ok, said, error) = run.admin(&["apply", blocking.to_str().unwrap()]);
    assert!(!ok, "{said}{error}");
    assert!(
        error.contains("out: version 0.1.0's connect did not return within 1s"),
        "{error}"
    );
    let before = numbers();
    run.running
        .wait_until("the old `out` to go on", |_| numbers() > before + 200);
    // A new sink that never connects is started, and reported as not connected.
    let never = run.dir.join("never.toml");
    std::fs::write(
        &never,
        counter_pipeline("counter", "{ interval_ms = 1 }", &run.output).replace(
            "to = [\"out\"]",
            "to = [\"out\", \"never\"]\n\
             [[connector]]\nid = \"never\"\nplugin = \"misbehave\"\ncodec = \"string\"\n\
             config = { connect = \"never\" }",
        ),
    )
    .unwrap();
    let (ok, said, error) = run.admin(&["apply", never.to_str().unwrap()]);
    assert!(!ok, "{said}{error}");
    assert!(said.contains("started: never"), "{said}");
    assert!(
        error.contains("never: started, but not connected within 1s (it keeps trying)"),
        "{error}"
    );
    let status = run.admin_ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let never = status["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "never")
        .cloned()
        .unwrap();
    assert_eq!(never["state"], "connecting", "{status}");
    run.running.signal(libc::SIGINT);
    let (_, _, stderr) = run.running.finish();
    assert!(stderr.contains("pipeline stopped"), "{stderr}");
}

#[test]
fn the_admin_socket_survives_malformed_requests_and_refuses_strangers() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let dir = temp_dir("run-admin-hostile");
    let socket = dir.join("admin.sock");
    let pipeline = write_pipeline(
        &dir,
        "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\nconfig = { interval_ms = 10 }\n\
         [[connector]]\nid = \"out\"\nplugin = \"blackhole\"\n\
         [[binding]]\nfrom = \"tick\"\nto = [\"out\"]\n",
    );
    let running = Running::start(&pipeline, &["--admin-socket", socket.to_str().unwrap()]);
    running.wait_until("the admin socket", |log| {
        log.contains("admin socket listening")
    });
    let ask = |stream: &mut std::os::unix::net::UnixStream, line: &[u8]| -> serde_json::Value {
        stream.write_all(line).unwrap();
        let mut answer = String::new();
        BufReader::new(&*stream).read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    for garbage in [
        &b"not json at all\n"[..],
        b"{\"command\":\"explode\"}\n",
        b"{\"command\":\"load\"}\n",
        b"\xff\xfe\x00\n",
        b"{\"command\":\"unload\",\"plugin\":\"metronome\"}\n",
        b"{\"command\":\"unload\",\"plugin\":\"metronome@0.1.0\"}\n",
        b"{\"command\":\"reload\",\"plugin\":\"nothing\"}\n",
        b"{\"command\":\"load\",\"file\":\"/no/such/file.so\"}\n",
    ] {
        let answer = ask(&mut stream, garbage);
        assert_eq!(answer["ok"], false, "{answer}");
        assert!(answer["error"]["kind"].is_string(), "{answer}");
    }
    // Still answering on the same connection.
    let answer = ask(&mut stream, b"{\"command\":\"status\"}\n");
    assert_eq!(answer["ok"], true, "{answer}");
    // An endless line: an error, then the connection is closed; the server goes on.
    let mut huge = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    huge.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let answer = ask(&mut huge, &vec![b'x'; 200 << 10]);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than"),
        "{answer}"
    );
    let status = admin(&socket, &["status"]);
    assert!(status.status.success(), "{status:?}");
    assert!(String::from_utf8_lossy(&status.stdout).contains("metronome"));
    // Another user: the socket's mode keeps them out; were it opened up by mistake, the
    // server checks the peer's uid on every connection.
    if std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
        use std::os::unix::process::CommandExt as _;
        let status_as_nobody = || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
            command.args(["status", "--admin-socket"]).arg(&socket);
            // SAFETY: runs in the forked child before exec; `setgid`/`setuid` are
            // async-signal-safe and touch nothing of the parent.
            unsafe {
                command.pre_exec(|| {
                    if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            command.output().unwrap()
        };
        let refused = status_as_nobody();
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("Permission denied"),
            "{refused:?}"
        );
        std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let refused = status_as_nobody();
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("only the user running weir"),
            "{refused:?}"
        );
    } else {
        eprintln!("not root: the other-user checks need to switch users, skipped");
    }
    running.signal(libc::SIGINT);
    let (exit, _, stderr) = running.finish();
    assert_eq!(exit.code(), Some(0), "{stderr}");
}

#[test]
fn an_admin_socket_path_that_is_not_safe_is_refused() {
    let dir = temp_dir("run-admin-unsafe");
    let pipeline = write_pipeline(
        &dir,
        "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\n\
         [[connector]]\nid = \"out\"\nplugin = \"blackhole\"\n\
         [[binding]]\nfrom = \"tick\"\nto = [\"out\"]\n",
    );
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(dir.join("elsewhere"), &link).unwrap();
    let open = dir.join("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    for (socket, expected) in [
        (link, "is a symbolic link"),
        (open.join("admin.sock"), "can be written by others"),
    ] {
        let output = weir(
            &[
                "run".as_ref(),
                pipeline.as_os_str(),
                "--admin-socket".as_ref(),
                socket.as_os_str(),
            ],
            "warn",
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// Runs counter 0.1.0 with `--watch` on its plugin directory, installs counter 0.2.0 in a
/// subdirectory of it with `install`, and checks that the run ends with every number of
/// both versions delivered once and the new version running.
fn watched_upgrade(test: &str, count: u64, install: impl FnOnce(&Path, &Path)) -> String {
    let run = CounterRun::start(test, count, "nested", &["--watch"]);
    assert!(run.running.log().contains("watching for plugins"));
    install(
        &fixture_plugin("counter-v2"),
        &run.plugins.join("libcounter_v2.so"),
    );
    run.running
        .wait_until("the upgrade", |log| log.contains("connector upgraded"));
    run.finish_upgraded(count)
}

#[test]
fn watch_upgrades_to_a_new_version_installed_by_rename() {
    watched_upgrade("run-watch-rename", 3000, |new, to| {
        // Written elsewhere in the directory under another name, then renamed into place.
        let partial = to.with_extension("so.partial");
        std::fs::copy(new, &partial).unwrap();
        std::fs::rename(&partial, to).unwrap();
    });
}

#[test]
fn watch_does_not_load_a_plugin_file_before_its_slow_copy_is_complete() {
    use std::io::Write as _;
    let stderr = watched_upgrade("run-watch-slow", 6000, |new, to| {
        let bytes = std::fs::read(new).unwrap();
        let mut file = std::fs::File::create(to).unwrap();
        // A slow copy straight into place: 64 KiB every 5 ms.
        for chunk in bytes.chunks(64 << 10) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert!(
        !stderr.contains("reload failed") && !stderr.contains("plugin watch: refused"),
        "the partial file was never tried as a plugin: {stderr}"
    );
}
