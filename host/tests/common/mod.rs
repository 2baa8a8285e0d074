//! What the integration tests of `weir` share: running it as a user would, reading its log.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of this module, so `expect` would be \
              unfulfilled in the crates that use all of it"
)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_tests::{example_plugin, fixture_plugin, temp_dir};
pub(crate) fn weir(args: &[&std::ffi::OsStr], rust_log: &str) -> Command {
    let plugins = example_plugin("metronome").parent().unwrap().to_owned();
    let fixtures = misbehave_dir();
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .arg("--plugin-dir")
        .arg(plugins)
        .arg("--plugin-dir")
        .arg(fixtures)
        .args(args)
        .env("RUST_LOG", rust_log);
    command
}

/// A directory holding only the well-behaved test plugins `misbehave` and `transactional`
/// (the fixtures' own directory also holds the faulty plugins, whose refusal would be
/// logged by every run).
pub(crate) fn misbehave_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = temp_dir("run-misbehave-plugin");
        for name in ["misbehave", "transactional", "counter", "crashy"] {
            let plugin = fixture_plugin(name);
            std::fs::copy(&plugin, dir.join(plugin.file_name().unwrap())).unwrap();
        }
        dir
    })
}

/// A `weir run` in the background whose standard error is collected as it comes.
pub(crate) struct Running {
    child: std::process::Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub(crate) fn start(pipeline: &Path, extra: &[&str]) -> Self {
        Self::start_with(pipeline, extra, |_| {})
    }

    /// [`Running::start`], with `configure` to adjust the command first.
    /// Without `--admin-socket` in `extra`, the run opens none: tests run side by side,
    /// and the default socket is one per user.
    pub(crate) fn start_with(
        pipeline: &Path,
        extra: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Self {
        let mut args: Vec<&std::ffi::OsStr> = vec!["run".as_ref(), pipeline.as_os_str()];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        if !extra.contains(&"--admin-socket") {
            args.push("--no-admin-socket".as_ref());
        }
        let mut command = weir(&args, "info");
        configure(&mut command);
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Polls until `condition` holds, for at most 30 s; panics with the log otherwise.
    pub(crate) fn wait_until(&self, what: &str, mut condition: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.stderr.lock().unwrap().clone();
            if condition(&text) {
                return;
            }
            assert!(Instant::now() < deadline, "waited 30 s for {what}: {text}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its standard error so far.
    pub(crate) fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process, whose pid we just got.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Kills the process (SIGKILL: no drain, no cleanup) and waits for it.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
    }

    /// Waits for the exit (at most 60 s) and returns the status, the time it took and the
    /// whole standard error.
    pub(crate) fn finish(mut self) -> (std::process::ExitStatus, Duration, String) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "weir did not exit within 60 s: {}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = started.elapsed();
        self.reader.take().unwrap().join().unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        (status, elapsed, stderr)
    }
}

impl Drop for Running {
    /// A test that fails half-way must not leave its `weir` running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn write_pipeline(dir: &Path, toml: &str) -> PathBuf {
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(&pipeline, toml).unwrap();
    pipeline
}

pub(crate) const RUNNING: &str = "pipeline running";

/// `connector in=.. out=.. acks=.. fails=..` from the final metrics on stderr.
pub(crate) fn final_metric(stderr: &str, connector: &str, key: &str) -> u64 {
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
/// `weir ARGS --admin-socket SOCKET`, to a running weir.
pub(crate) fn admin(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .arg("--admin-socket")
        .arg(socket)
        .output()
        .unwrap()
}

/// The numbers a counter wrote, per version. Only whole lines count: read while the sink
/// writes, the file may end in the part of a line a write has copied so far.
pub(crate) fn counted(output: &Path) -> BTreeMap<String, Vec<u64>> {
    let mut by_version: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let text = std::fs::read_to_string(output).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    for line in whole.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        by_version
            .entry(value["version"].as_str().unwrap().to_owned())
            .or_default()
            .push(value["n"].as_u64().unwrap());
    }
    by_version
}

/// The `n` of every line of a JSON-lines file (the `counter` and `transactional` fixtures'
/// events, as a `file` sink with a `lines` postprocessor writes them), in order.
pub(crate) fn numbers_in(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["n"]
                .as_u64()
                .unwrap_or_else(|| panic!("no `n` in {line}"))
        })
        .collect()
}

/// `weir run PIPELINE --no-admin-socket EXTRA...` to its end, logging at `rust_log`.
pub(crate) fn run_once(pipeline: &Path, extra: &[&str], rust_log: &str) -> std::process::Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        pipeline.as_os_str(),
        "--no-admin-socket".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    weir(&args, rust_log).output().expect("running weir")
}
