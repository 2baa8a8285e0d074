//! End-to-end runs of `weir run` on the bundled pipelines, each a separate process, in
//! alternation (A B A B ...) so that the machine's noise hits every case alike; the medians
//! of the rounds are printed as a table.
//!
//! - `binary`, `json`: `examples/pipelines/bench-*.toml` (blaster -> blackhole on Tremor's
//!   bench events, as fast as they go): events/s, MB/s, latency percentiles (from a pull's
//!   return to the blackhole), peak RSS and the CPU used (in cores: CPU time over wall time).
//!   Built with `--features builtins`, the same pipelines again with both connectors as
//!   built-ins (`binary/bi`, `json/bi`: a `weir` that finds no plugin file), alternating with
//!   the plugin runs, and the plugin / built-in throughput ratios.
//! - `binary/iso`, `json/iso`: the same pipelines with both connectors out of process
//!   (`--isolation process`), and the isolated / in-process throughput ratios.
//! - `json@100k`: the same at a fixed 100,000 events/s, where latency percentiles mean
//!   something.
//! - `idle`: 1,000 idle `metronome` sources (one event an hour) into one blackhole: the CPU
//!   they cost once started (over `--secs`, after as long for startup), as a share of one
//!   core.
//! - `memory`: 2,000 connectors (1,000 idle sources, each with its own blackhole): peak RSS
//!   per connector.
//! - `metronome jitter`: a `metronome` ticking every millisecond into a `file` sink for
//!   `--secs`: how far each tick's interval (from the times in its events) is from 1 ms,
//!   p50, p99 and the largest.
//! - `restart`: an isolated source (`crashy`, a test fixture) that segfaults in its first
//!   pull, 100 times: the median time from one crash to the next is a restart (the child
//!   started, the plugin loaded, created, connected, started and pulled), with a 1 ms
//!   restart backoff.
//! - `tcp echo`: a `tcp` server bound to itself, one request line at a time from a client
//!   with `TCP_NODELAY`, back to back and one every 2 ms: round-trip p50 and p99.
//!
//! `cargo bench -p weir-host --bench pipelines` runs 3 rounds of 10 s each (after 2 s of
//! warmup); `-- --rounds N --secs S` to change that. Under `cargo test` (no `--bench`
//! argument) it runs one short round with the debug build: a smoke test that it still works.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_tests::{temp_dir, toml_path, workspace_root};

/// What one run measured.
#[derive(Debug, Default, Clone)]
struct Measured {
    /// With `stop_after`: the CPU time of the last `stop_after / 2` before the stop, over
    /// that time (startup left out), in cores.
    steady_cores: f64,
    events_per_sec: f64,
    mb_per_sec: f64,
    /// Latency percentiles in µs: p50, p99, p99.9.
    latency: [f64; 3],
    peak_rss: u64,
    cpu: Duration,
    wall: Duration,
}

/// How a run finds its connectors.
#[derive(Debug, Clone)]
enum Host {
    /// `weir --no-builtins`, with the plugin files in this directory.
    Plugins { weir: PathBuf, dir: PathBuf },
    /// A copy of `weir` (built with the `builtins` feature) alone in a directory of its
    /// own, so that no plugin file is found: every connector is a built-in.
    Builtins { weir: PathBuf },
    /// As `Plugins`, with every connector in a child process of its own
    /// (`--isolation process`).
    Isolated { weir: PathBuf, dir: PathBuf },
}

impl Host {
    /// `weir run PIPELINE` on this host, logging warnings only.
    fn command(&self, pipeline: &Path) -> Command {
        let mut command = match self {
            Self::Plugins { weir, dir } | Self::Isolated { weir, dir } => {
                let mut command = Command::new(weir);
                command.arg("--no-builtins").arg("--plugin-dir").arg(dir);
                command
            }
            Self::Builtins { weir } => Command::new(weir),
        };
        command
            .arg("run")
            .arg(pipeline)
            .arg("--no-admin-socket")
            .env_remove("WEIR_PLUGIN_PATH")
            .env("RUST_LOG", "warn");
        if let Self::Isolated { .. } = self {
            command.args(["--isolation", "process"]);
        }
        command
    }
}

/// Runs `weir run PIPELINE` to its end (or, with `stop_after`, until then, then SIGINT) and
/// measures it with the kernel's accounting of that process.
fn run(host: &Host, pipeline: &Path, stop_after: Option<Duration>) -> Measured {
    let started = Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "reaped below with wait4, which also gives its resource usage"
    )]
    let child = host
        .command(pipeline)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting weir");
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.expect("piped");
    let mut stderr = child.stderr.expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut steady_cores = 0.0;
    if let Some(after) = stop_after {
        // The first half starts the connectors; the second half is measured.
        std::thread::sleep(after / 2);
        let (from, at) = (cpu_time(pid), Instant::now());
        std::thread::sleep(after / 2);
        steady_cores = (cpu_time(pid) - from).as_secs_f64() / at.elapsed().as_secs_f64();
        // SAFETY: `pid` is our child, not waited for yet, so it is still this process.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
    let mut status = 0;
    // SAFETY: zeroed `rusage` is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // Every run ends by itself (or by the SIGINT above) well within this.
    let deadline = Instant::now() + stop_after.unwrap_or_default() + Duration::from_secs(120);
    loop {
        // SAFETY: polls for our own child (never waited for by `Child`, whose handles we
        // dropped); `status` and `usage` are valid for writes.
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if waited == pid {
            break;
        }
        assert_eq!(waited, 0, "wait4: {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            // SAFETY: our child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("weir run {} did not end in time", pipeline.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = started.elapsed();
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "weir run {} failed ({status}): {out}{err}",
        pipeline.display()
    );
    let text = format!("{out}{err}");
    let cpu = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let mut measured = Measured {
        steady_cores,
        peak_rss: usage.ru_maxrss as u64 * 1024,
        cpu: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        wall,
        ..Measured::default()
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["throughput:", events, "events/s,", mb, "MB/s"] => {
                measured.events_per_sec = events.parse().unwrap_or(0.0);
                measured.mb_per_sec = mb.parse().unwrap_or(0.0);
            }
            ["p50", value] => measured.latency[0] = value.parse().unwrap_or(0.0),
            ["p99", value] => measured.latency[1] = value.parse().unwrap_or(0.0),
            ["p99.9", value] => measured.latency[2] = value.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    measured
}

/// The CPU time (user and system) process `pid` used so far, from `/proc/PID/stat`.
fn cpu_time(pid: libc::pid_t) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (in parentheses, which may hold spaces): utime and
    // stime are the 12th and 13th, in clock ticks.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    // SAFETY: `sysconf` only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(fields.iter().sum::<u64>() as f64 / ticks)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The settings of one invocation.
struct Settings {
    rounds: usize,
    secs: u64,
    warmup: u64,
    idle_sources: usize,
    memory_sources: usize,
    echo_requests: usize,
    /// Crashes of the `restart` case.
    crashes: u32,
    /// `weir` with the plugin files.
    plugins: Host,
    /// `weir` with built-ins only, when it was built with them (`--features builtins`).
    builtins: Option<Host>,
    /// `weir` with the plugin files, each connector out of process.
    isolated: Host,
}

impl Settings {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let bench = args.iter().any(|a| a == "--bench");
        let value = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .map(|v| v.parse::<u64>().unwrap_or_else(|_| panic!("{name}: {v}")))
        };
        let weir = PathBuf::from(env!("CARGO_BIN_EXE_weir"));
        let plugins = if bench {
            // The release build of the plugins, next to the release `weir`.
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "--quiet"])
                .args([
                    "-p",
                    "blaster",
                    "-p",
                    "blackhole",
                    "-p",
                    "metronome",
                    "-p",
                    "tcp",
                    "-p",
                    "file",
                ])
                .current_dir(workspace_root())
                .status()
                .expect("running cargo");
            assert!(status.success(), "building the plugins failed");
            weir.parent().unwrap().to_owned()
        } else {
            weir_tests::example_plugin("blaster")
                .parent()
                .unwrap()
                .to_owned()
        };
        let quick = !bench;
        let builtins = cfg!(feature = "builtins").then(|| {
            let alone = temp_dir("bench-builtins");
            let copy = alone.join("weir");
            std::fs::copy(&weir, &copy).expect("copying weir");
            // What this weir finds: built-ins only, or the `/bi` rows would measure plugins.
            let listed = Command::new(&copy)
                .args(["plugins", "list", "--json"])
                .env_remove("WEIR_PLUGIN_PATH")
                .output()
                .expect("running weir plugins list");
            let listed: serde_json::Value =
                serde_json::from_slice(&listed.stdout).expect("weir plugins list --json");
            let files = listed["files"].as_array().expect("a list of files");
            assert!(
                files.iter().all(|f| f["builtin"] == true) && !files.is_empty(),
                "the built-ins' weir found plugin files: {listed}"
            );
            Host::Builtins { weir: copy }
        });
        Self {
            rounds: value("--rounds").map_or(if quick { 1 } else { 3 }, |n| n as usize),
            secs: value("--secs").unwrap_or(if quick { 1 } else { 10 }),
            warmup: if quick { 0 } else { 2 },
            idle_sources: if quick { 20 } else { 1000 },
            memory_sources: if quick { 20 } else { 1000 },
            echo_requests: if quick { 50 } else { 2000 },
            crashes: if quick { 5 } else { 100 },
            isolated: Host::Isolated {
                weir: weir.clone(),
                dir: plugins.clone(),
            },
            plugins: Host::Plugins { weir, dir: plugins },
            builtins,
        }
    }
}

/// blaster -> blackhole with `codec`, optionally at a fixed rate.
fn blast(dir: &Path, settings: &Settings, codec: &str, interval_ns: Option<u64>) -> PathBuf {
    let data = workspace_root().join("examples/data/bench-events.json");
    let rate = interval_ns.map_or(String::new(), |ns| format!("interval_ns = {ns}\n"));
    let name = format!("{codec}-{}.toml", interval_ns.unwrap_or(0));
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!(
            "[[connector]]\nid = \"blaster\"\nplugin = \"blaster\"\ncodec = \"{codec}\"\n\
             [connector.config]\nsource = {}\n{rate}\
             [[connector]]\nid = \"blackhole\"\nplugin = \"blackhole\"\ncodec = \"{codec}\"\n\
             [connector.config]\nwarmup_secs = {}\nstop_after_secs = {}\nsignificant_figures = 3\n\
             [[binding]]\nfrom = \"blaster\"\nto = [\"blackhole\"]\n",
            toml_path(&data),
            settings.warmup,
            settings.warmup + settings.secs,
        ),
    )
    .unwrap();
    file
}

/// `n` metronome sources ticking once an hour, into one blackhole (`shared`) or each into
/// its own.
fn idle(dir: &Path, n: usize, shared: bool) -> PathBuf {
    let mut text = String::new();
    for i in 0..n {
        let _ = write!(
            text,
            "[[connector]]\nid = \"tick{i}\"\nplugin = \"metronome\"\n\
             config = {{ interval_ms = 3600000 }}\n"
        );
        if !shared || i == 0 {
            let _ = write!(
                text,
                "[[connector]]\nid = \"hole{i}\"\nplugin = \"blackhole\"\n"
            );
        }
        let hole = if shared { 0 } else { i };
        let _ = write!(
            text,
            "[[binding]]\nfrom = \"tick{i}\"\nto = [\"hole{hole}\"]\n"
        );
    }
    let file = dir.join(format!("idle-{n}-{shared}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

/// Round trips through a `tcp` server bound to itself (an echo server), one request line
/// at a time from a client with `TCP_NODELAY`: `n` back to back, then `n` with `gap`
/// between them. Returns the p50 and p99 of each, in µs.
fn echo(settings: &Settings, dir: &Path, n: usize, gap: Duration) -> [[f64; 2]; 2] {
    use std::io::{Read as _, Write as _};
    // A free port: bound, then released for weir to take.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let file = dir.join("echo.toml");
    std::fs::write(
        &file,
        format!(
            "[[connector]]\nid = \"echo\"\nplugin = \"tcp\"\ncodec = \"binary\"\n\
             config = {{ mode = \"server\", address = \"127.0.0.1:{port}\" }}\n\
             [[binding]]\nfrom = \"echo\"\nto = [\"echo\"]\n"
        ),
    )
    .unwrap();
    let weir = settings
        .plugins
        .command(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting weir");
    // Killed if anything below panics, so that no server outlives the benchmark.
    let mut weir = KillOnDrop(weir);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "the echo server never listened: {error}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut round_trips = |gap: Duration| {
        let mut took = Vec::with_capacity(n);
        let mut reply = [0u8; 64];
        for i in 0..n + n / 10 {
            let request = format!("ping {i}\n");
            let start = Instant::now();
            stream.write_all(request.as_bytes()).unwrap();
            let mut got = 0;
            while got < request.len() {
                match stream.read(&mut reply[got..]) {
                    Ok(0) => panic!("the echo server closed the connection"),
                    Ok(n) => got += n,
                    Err(error) => panic!("no echo: {error}"),
                }
            }
            // The first tenth warms up.
            if i >= n / 10 {
                took.push(start.elapsed().as_secs_f64() * 1e6);
            }
            std::thread::sleep(gap);
        }
        took.sort_by(f64::total_cmp);
        [took[took.len() / 2], took[took.len() * 99 / 100]]
    };
    let measured = [round_trips(Duration::ZERO), round_trips(gap)];
    drop(stream);
    // SAFETY: signalling our own child, not yet waited for.
    unsafe { libc::kill(weir.0.id() as libc::pid_t, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while weir.0.try_wait().expect("waiting for weir").is_none() {
        assert!(Instant::now() < deadline, "the echo server did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    measured
}

/// A metronome ticking every millisecond for `secs` into a file: how far each interval
/// between two ticks (the emission times the events carry) is from 1 ms. Returns p50, p99
/// and the largest deviation, in µs.
fn metronome_jitter(host: &Host, dir: &Path, secs: u64) -> [f64; 3] {
    let out = dir.join("ticks.jsonl");
    let _ = std::fs::remove_file(&out);
    let file = dir.join("metronome.toml");
    std::fs::write(
        &file,
        format!(
            "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\n\
             config = {{ interval_ms = 1, count = {} }}\n\
             [[connector]]\nid = \"ticks\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
             config = {{ path = {}, mode = \"write\" }}\n\
             [[binding]]\nfrom = \"tick\"\nto = [\"ticks\"]\n",
            secs * 1000,
            toml_path(&out),
        ),
    )
    .unwrap();
    run(host, &file, None);
    let text = std::fs::read_to_string(&out).expect("the metronome's output");
    let times: Vec<i128> = text
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a tick event");
            i128::from(event["ingest_ns"].as_u64().expect("ingest_ns"))
        })
        .collect();
    assert_eq!(times.len() as u64, secs * 1000, "every tick written");
    // The first tenth warms up.
    let mut deviations: Vec<f64> = times[times.len() / 10..]
        .windows(2)
        .map(|w| ((w[1] - w[0]) - 1_000_000).unsigned_abs() as f64 / 1e3)
        .collect();
    deviations.sort_by(f64::total_cmp);
    let at = |q: f64| deviations[((deviations.len() - 1) as f64 * q) as usize];
    [at(0.5), at(0.99), at(1.0)]
}

/// An isolated source that crashes in its first pull, restarted `crashes` times with a 1 ms
/// backoff: the median time from one crash to the next, in ms.
fn restart(settings: &Settings, dir: &Path, crashes: u32) -> f64 {
    let file = dir.join("restart.toml");
    std::fs::write(
        &file,
        format!(
            "[[connector]]\nid = \"crashy\"\nplugin = \"crashy\"\ncodec = \"string\"\n\
             isolation = \"process\"\nmax_restarts = {crashes}\n\
             reconnect = {{ initial_ms = 1, max_ms = 1 }}\n\
             config = {{ crash = \"segfault\", after = 0 }}\n\
             [[connector]]\nid = \"hole\"\nplugin = \"blackhole\"\n\
             [[binding]]\nfrom = \"crashy\"\nto = [\"hole\"]\n"
        ),
    )
    .unwrap();
    let fixture = weir_tests::fixture_plugin("crashy");
    let output = settings
        .plugins
        .command(&file)
        .arg("--plugin-dir")
        .arg(fixture.parent().unwrap())
        .env("RUST_LOG", "error")
        .output()
        .expect("running weir");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // `2026-12-01T17:17:14.150419Z ERROR ... connector failed ...`: seconds of the day.
    let times: Vec<f64> = stderr
        .lines()
        .filter(|line| line.contains("connector failed"))
        .filter_map(|line| {
            let time = line.split_whitespace().next()?.split('T').nth(1)?;
            let mut parts = time.trim_end_matches('Z').split(':');
            let hours: f64 = parts.next()?.parse().ok()?;
            let minutes: f64 = parts.next()?.parse().ok()?;
            let seconds: f64 = parts.next()?.parse().ok()?;
            Some(hours * 3600.0 + minutes * 60.0 + seconds)
        })
        .collect();
    assert_eq!(
        times.len() as u32,
        crashes + 1,
        "every crash restarted, then given up on: {stderr}"
    );
    median(times.windows(2).map(|w| (w[1] - w[0]) * 1e3).collect())
}

/// A child process killed (and reaped) when dropped, unless it exited.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn main() {
    let settings = Settings::from_args();
    let dir = temp_dir("bench-pipelines");
    let binary = blast(&dir, &settings, "binary", None);
    let json = blast(&dir, &settings, "json", None);
    let plugins = &settings.plugins;
    let mut cases = vec![("binary", plugins, binary.clone())];
    if let Some(builtins) = &settings.builtins {
        cases.push(("binary/bi", builtins, binary.clone()));
    }
    cases.push(("binary/iso", &settings.isolated, binary));
    cases.push(("json", plugins, json.clone()));
    if let Some(builtins) = &settings.builtins {
        cases.push(("json/bi", builtins, json.clone()));
    }
    cases.push(("json/iso", &settings.isolated, json));
    cases.push((
        "json@100k",
        plugins,
        blast(&dir, &settings, "json", Some(10_000)),
    ));
    let mut results: Vec<Vec<Measured>> = vec![Vec::new(); cases.len()];
    let mut idle_cpu = Vec::new();
    let mut memory = Vec::new();
    let mut echoes: Vec<[f64; 4]> = Vec::new();
    let mut jitters: Vec<[f64; 3]> = Vec::new();
    let mut restarts = Vec::new();
    let idle_for = Duration::from_secs(settings.secs.max(1));
    let idle_file = idle(&dir, settings.idle_sources, true);
    let memory_file = idle(&dir, settings.memory_sources, false);
    for round in 0..settings.rounds {
        for (i, (name, host, file)) in cases.iter().enumerate() {
            let measured = run(host, file, None);
            eprintln!(
                "round {round} {name}: {:.0} events/s, p99.9 {:.0} µs",
                measured.events_per_sec, measured.latency[2]
            );
            results[i].push(measured);
        }
        // Idle: the CPU of the second half of the run, once every connector started.
        let measured = run(plugins, &idle_file, Some(idle_for * 2));
        idle_cpu.push(measured.steady_cores);
        let measured = run(plugins, &memory_file, Some(Duration::from_secs(2)));
        memory.push(measured.peak_rss as f64 / (2 * settings.memory_sources) as f64);
        let [back_to_back, spaced] = echo(
            &settings,
            &dir,
            settings.echo_requests,
            Duration::from_millis(2),
        );
        echoes.push([back_to_back[0], back_to_back[1], spaced[0], spaced[1]]);
        jitters.push(metronome_jitter(plugins, &dir, settings.secs));
        restarts.push(restart(&settings, &dir, settings.crashes));
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<10} {:>12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "pipeline", "events/s", "MB/s", "p50 µs", "p99 µs", "p99.9 µs", "RSS MiB", "cores"
    );
    for ((name, _, _), runs) in cases.iter().zip(&results) {
        let m = |f: fn(&Measured) -> f64| median(runs.iter().map(f).collect());
        let _ = writeln!(
            table,
            "{name:<10} {:>12.0} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6.2}",
            m(|r| r.events_per_sec),
            m(|r| r.mb_per_sec),
            m(|r| r.latency[0]),
            m(|r| r.latency[1]),
            m(|r| r.latency[2]),
            m(|r| r.peak_rss as f64 / f64::from(1 << 20)),
            m(|r| r.cpu.as_secs_f64() / r.wall.as_secs_f64()),
        );
        assert!(
            runs.iter().all(|r| r.events_per_sec > 0.0),
            "{name}: no throughput measured"
        );
    }
    let _ = writeln!(
        table,
        "idle: {} sources cost {:.1}% of one core; memory: {:.0} KiB per connector ({} connectors)",
        settings.idle_sources,
        median(idle_cpu) * 100.0,
        median(memory) / 1024.0,
        2 * settings.memory_sources,
    );
    let throughput = |case: &str| {
        let at = cases.iter().position(|(name, _, _)| *name == case)?;
        Some(median(
            results[at].iter().map(|r| r.events_per_sec).collect(),
        ))
    };
    match (throughput("binary/bi"), throughput("json/bi")) {
        (Some(binary), Some(json)) => {
            let _ = writeln!(
                table,
                "plugins / built-ins (events/s): binary {:.3}, json {:.3}",
                throughput("binary").unwrap_or(0.0) / binary,
                throughput("json").unwrap_or(0.0) / json,
            );
        }
        _ => {
            let _ = writeln!(
                table,
                "plugins / built-ins: not measured (run with `--features builtins`)"
            );
        }
    }
    let _ = writeln!(
        table,
        "isolated / in process (events/s): binary {:.3}, json {:.3}",
        throughput("binary/iso").unwrap_or(0.0) / throughput("binary").unwrap_or(f64::NAN),
        throughput("json/iso").unwrap_or(0.0) / throughput("json").unwrap_or(f64::NAN),
    );
    let e = |i: usize| median(echoes.iter().map(|r| r[i]).collect());
    let _ = writeln!(
        table,
        "tcp echo round trip: back to back p50 {:.0} µs, p99 {:.0} µs; one request every 2 ms p50 {:.0} µs, p99 {:.0} µs",
        e(0),
        e(1),
        e(2),
        e(3),
    );
    let _ = writeln!(
        table,
        "restart of an isolated source after a crash: {:.1} ms (median over {} crashes)",
        median(restarts),
        settings.crashes,
    );
    let j = |i: usize| median(jitters.iter().map(|r| r[i]).collect());
    let _ = writeln!(
        table,
        "metronome at 1 ms, tick interval off by: p50 {:.0} µs, p99 {:.0} µs, largest {:.0} µs",
        j(0),
        j(1),
        j(2),
    );
    println!(
        "{} rounds of {} s (after {} s warmup), medians:\n{table}",
        settings.rounds, settings.secs, settings.warmup
    );
}
