//! `weir run` as a user runs it: a real process, real plugins, real signals.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{RUNNING, Running, final_metric, weir, write_pipeline};
use weir_tests::{temp_dir, toml_path};

#[test]
fn ctrl_c_drains_every_event_in_flight_and_exits_cleanly() {
    let dir = temp_dir("run-ctrlc");
    let (pipeline, output) = (dir.join("pipeline.toml"), dir.join("out.txt"));
    std::fs::write(
        &pipeline,
        format!(
            "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\nconfig = {{ interval_ms = 1 }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
             config = {{ path = {}, mode = \"write\" }}\n\
             [[binding]]\nfrom = \"tick\"\nto = [\"out\"]\n",
            toml_path(&output)
        ),
    )
    .unwrap();
    let running = Running::start(&pipeline, &[]);
    running.wait_until("the pipeline to run", |log| log.contains(RUNNING));
    // Let some events through before the interrupt.
    let written = || {
        std::fs::read_to_string(&output)
            .unwrap_or_default()
            .lines()
            .count()
    };
    running.wait_until("50 events written", |_| written() > 50);
    running.signal(libc::SIGINT);
    let (status, elapsed, stderr) = running.finish();
    assert!(elapsed < Duration::from_secs(10), "drained promptly");
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
    let dir = temp_dir("run-tracing");
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(
        &pipeline,
        "[[connector]]\nid = \"my-ticker\"\nplugin = \"metronome\"\nconfig = { interval_ms = 1, count = 3 }\n\
         [[connector]]\nid = \"out\"\nplugin = \"stdout\"\n\
         [[binding]]\nfrom = \"my-ticker\"\nto = [\"out\"]\n",
    )
    .unwrap();
    let output = weir(
        &[
            "run".as_ref(),
            pipeline.as_os_str(),
            "--no-admin-socket".as_ref(),
        ],
        "info",
    )
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
    let quiet = weir(
        &[
            "run".as_ref(),
            pipeline.as_os_str(),
            "--no-admin-socket".as_ref(),
        ],
        "warn",
    )
    .output()
    .unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("metronome started"));
    // The sink wrote the three events to stdout.
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 3);
}

#[test]
fn run_reports_config_errors_with_locations_and_exits_1() {
    let dir = temp_dir("run-config");
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(&pipeline, "[[connector]]\nid = \"a\"\nplugin = \"nope\"\n").unwrap();
    let output = common::run_once(&pipeline, &[], "warn");
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

#[test]
fn sigint_ends_a_run_whose_plugin_blocks_within_the_deadlines_naming_it() {
    let dir = temp_dir("run-blocked");
    let record = dir.join("calls.txt");
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"stuck\"\nplugin = \"misbehave\"\n\
             config = {{ record = {}, block_in = \"pull\" }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"stdout\"\n\
             [[binding]]\nfrom = \"stuck\"\nto = [\"out\"]\n",
            toml_path(&record)
        ),
    );
    let running = Running::start(&pipeline, &["--drain-timeout", "1", "--stop-timeout", "1"]);
    running.wait_until("the pipeline to run", |log| log.contains(RUNNING));
    running.wait_until("the plugin to block in `pull`", |_| {
        std::fs::read_to_string(&record).is_ok_and(|calls| calls.contains("pull"))
    });
    running.signal(libc::SIGINT);
    let (status, elapsed, stderr) = running.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(7),
        "drain (1 s) + stop (1 s) deadlines, took {elapsed:?}: {stderr}"
    );
    assert!(
        stderr.contains(
            "error: connector `stuck` did not stop within 1s (blocked in `pull`): abandoned"
        ),
        "{stderr}"
    );
}

#[test]
fn a_second_sigint_exits_at_once() {
    let dir = temp_dir("run-second-sigint");
    let record = dir.join("calls.txt");
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\nconfig = {{ interval_ms = 1 }}\n\
             [[connector]]\nid = \"slow\"\nplugin = \"misbehave\"\n\
             config = {{ record = {}, block_in = \"on_stop\" }}\n\
             [[binding]]\nfrom = \"tick\"\nto = [\"slow\"]\n",
            toml_path(&record)
        ),
    );
    let running = Running::start(&pipeline, &["--stop-timeout", "600"]);
    // Started, so that stopping it calls `on_stop` (the run's "running" line comes before
    // its connectors have connected).
    running.wait_until("the sink to start", |_| {
        std::fs::read_to_string(&record).is_ok_and(|calls| calls.contains("on_start"))
    });
    running.signal(libc::SIGINT);
    running.wait_until("the sink to block in `on_stop`", |_| {
        std::fs::read_to_string(&record).is_ok_and(|calls| calls.contains("on_stop"))
    });
    running.signal(libc::SIGTERM);
    let (status, elapsed, stderr) = running.finish();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(
        stderr.contains("error: second SIGTERM: exiting now"),
        "{stderr}"
    );
}

#[test]
fn a_missing_input_file_fails_the_run_at_once_naming_the_connector() {
    let dir = temp_dir("run-missing-input");
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"in\"\nplugin = \"file\"\nconfig = {{ path = {} }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"stdout\"\n\
             [[binding]]\nfrom = \"in\"\nto = [\"out\"]\n",
            toml_path(&dir.join("nope.jsonl"))
        ),
    );
    let output = weir(
        &[
            "run".as_ref(),
            pipeline.as_os_str(),
            "--no-admin-socket".as_ref(),
        ],
        "warn",
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: connector `in` failed for good") && stderr.contains("nope.jsonl"),
        "{stderr}"
    );
}

#[test]
fn check_reports_a_file_connector_whose_mode_contradicts_its_bindings() {
    let dir = temp_dir("run-mode");
    let pipeline = write_pipeline(
        &dir,
        "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\n\
         [[connector]]\nid = \"out\"\nplugin = \"file\"\n\
         config = { path = \"out.txt\", mode = \"read\" }\n\
         [[binding]]\nfrom = \"tick\"\nto = [\"out\"]\n",
    );
    let output = weir(&["check".as_ref(), pipeline.as_os_str()], "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`mode` is \"read\", but the pipeline sends events to this connector"),
        "{stderr}"
    );
    // Without `mode`, a file connector bound as a sink appends.
    std::fs::write(dir.join("out.txt"), "").unwrap();
    let fine = write_pipeline(
        &dir,
        "[[connector]]\nid = \"tick\"\nplugin = \"metronome\"\nconfig = { interval_ms = 1, count = 3 }\n\
         [[connector]]\nid = \"out\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
         config = { path = \"out.txt\" }\n\
         [[binding]]\nfrom = \"tick\"\nto = [\"out\"]\n",
    );
    let output = weir(&["run".as_ref(), fine.as_os_str()], "warn")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(dir.join("out.txt")).unwrap();
    assert_eq!(written.lines().count(), 3, "{written}");
}

/// Peak resident memory, in bytes, of the largest child process this test process has
/// waited for (an upper bound for the child just waited for).
fn peak_rss_of_children() -> u64 {
    // SAFETY: `getrusage` writes into the zeroed struct we pass; no other requirement.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    };
    // Linux reports kilobytes.
    usage.ru_maxrss as u64 * 1024
}

fn memory_bounded_run(test: &str, input: &[u8], preprocessors: &str) -> (u64, String) {
    let dir = temp_dir(test);
    let data = dir.join("input");
    std::fs::write(&data, input).unwrap();
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"in\"\nplugin = \"file\"\ncodec = \"string\"\n\
             preprocessors = [{preprocessors}]\nconfig = {{ path = {} }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"misbehave\"\ncodec = \"string\"\n\
             [[binding]]\nfrom = \"in\"\nto = [\"out\"]\n",
            toml_path(&data)
        ),
    );
    let output = weir(
        &[
            "run".as_ref(),
            pipeline.as_os_str(),
            "--no-admin-socket".as_ref(),
        ],
        "error",
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    (peak_rss_of_children(), stderr)
}

const MEMORY_LIMIT: u64 = 256 << 20;

#[test]
fn a_gzip_bomb_keeps_the_host_small() {
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut member, &vec![0u8; 16 << 20]).unwrap();
    let member = member.finish().unwrap();
    // 10 GiB of zeros in about 10 MB.
    let bomb: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 640)
        .collect();
    let (peak, stderr) = memory_bounded_run("bomb", &bomb, r#""gunzip", "lines""#);
    eprintln!(
        "gzip bomb of {} bytes: peak RSS {} MiB",
        bomb.len(),
        peak >> 20
    );
    assert!(peak < MEMORY_LIMIT, "peak RSS {peak} bytes: {stderr}");
    assert!(
        final_metric(&stderr, "in", "err") >= 1,
        "the bomb is reported on the err port: {stderr}"
    );
}

#[test]
fn a_lines_explosion_keeps_the_host_small() {
    // 4 MiB of empty-ish lines: two million events from 64 pulls.
    let input = b"a\n".repeat(2 << 20);
    let (peak, stderr) = memory_bounded_run("lines", &input, r#""lines""#);
    eprintln!("4 MiB of lines: peak RSS {} MiB", peak >> 20);
    assert!(peak < MEMORY_LIMIT, "peak RSS {peak} bytes: {stderr}");
}

/// Peak resident memory (`VmHWM`) of a running process, in bytes.
fn peak_rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kib * 1024
}

/// A tcp server feeding a file through `lines`; returns the running host, the address it
/// listens on and the output file.
fn tcp_lines_server(test: &str, config: &str) -> (Running, std::net::SocketAddr, PathBuf) {
    tcp_lines_server_with(test, config, |_| {})
}

fn tcp_lines_server_with(
    test: &str,
    config: &str,
    configure: impl FnOnce(&mut Command),
) -> (Running, std::net::SocketAddr, PathBuf) {
    let dir = temp_dir(test);
    let output = dir.join("out.txt");
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"net\"\nplugin = \"tcp\"\ncodec = \"string\"\n\
             preprocessors = [\"lines\"]\n\
             config = {{ mode = \"server\", address = \"127.0.0.1:0\"{config} }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"file\"\ncodec = \"string\"\n\
             postprocessors = [\"lines\"]\nconfig = {{ path = {} }}\n\
             [[binding]]\nfrom = \"net\"\nto = [\"out\"]\n",
            toml_path(&output)
        ),
    );
    let running = Running::start_with(&pipeline, &[], configure);
    let listening = |log: &str| -> Option<std::net::SocketAddr> {
        log.lines()
            .find(|l| l.contains("listening") && l.contains("address="))
            .and_then(|l| l.split("address=").nth(1))
            .and_then(|a| a.split_whitespace().next())
            .and_then(|a| a.parse().ok())
    };
    running.wait_until("the server to listen", |log| listening(log).is_some());
    let address = listening(&running.log()).expect("seen listening");
    (running, address, output)
}

#[test]
fn a_tcp_server_with_hundreds_of_unfinished_lines_keeps_the_host_small() {
    use std::io::Write as _;
    let (running, address, output) = tcp_lines_server("tcp-held", "");
    // 320 connections, each sending 960 KiB of one line that never ends: 300 MiB that the
    // `lines` preprocessor would hold, against a byte budget of 64 MiB.
    let chunk = vec![b'x'; 960 << 10];
    let mut clients: Vec<std::net::TcpStream> = (0..320)
        .map(|_| std::net::TcpStream::connect(address).unwrap())
        .collect();
    let writers: Vec<_> = clients
        .chunks_mut(40)
        .map(|group| {
            let group: Vec<_> = group.iter().map(|c| c.try_clone().unwrap()).collect();
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                for mut client in group {
                    client.write_all(&chunk).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    running.wait_until("unfinished lines to be dropped", |log| {
        log.contains("unfinished frame of")
    });
    // Every client ends its line and sends one more: a line that was held comes out whole;
    // a client whose half line was dropped still gets its next line through.
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .write_all(format!("\nfinal line {i}\n").as_bytes())
            .unwrap();
    }
    let finals = |output: &str| output.lines().filter(|l| l.starts_with("final")).count();
    running.wait_until("every client's last line to be written", |_| {
        std::fs::read_to_string(&output).is_ok_and(|o| finals(&o) == clients.len())
    });
    let peak = peak_rss_of(running.pid());
    running.signal(libc::SIGINT);
    let (status, _, stderr) = running.finish();
    eprintln!(
        "320 connections x 960 KiB unfinished lines: peak RSS {} MiB",
        peak >> 20
    );
    assert!(peak < MEMORY_LIMIT, "peak RSS {peak} bytes: {stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let written = std::fs::read_to_string(&output).unwrap();
    let (whole, other): (Vec<&str>, Vec<&str>) = written
        .lines()
        .filter(|l| !l.starts_with("final"))
        .partition(|l| l.len() == chunk.len() && l.bytes().all(|b| b == b'x'));
    assert!(other.is_empty(), "{} lines cut or mixed up", other.len());
    let dropped = final_metric(&stderr, "net", "err");
    assert!(dropped >= 1, "lines were dropped: {stderr}");
    assert_eq!(
        whole.len() as u64 + dropped,
        clients.len() as u64,
        "each half line came out whole or was reported dropped"
    );
}

#[test]
fn a_tcp_server_closes_connections_past_max_connections() {
    use std::io::{Read as _, Write as _};
    let (running, address, output) = tcp_lines_server("tcp-limit", ", max_connections = 2");
    let mut first = std::net::TcpStream::connect(address).unwrap();
    first.write_all(b"one\n").unwrap();
    running.wait_until("the first line", |_| {
        std::fs::read_to_string(&output).is_ok_and(|o| o.contains("one"))
    });
    let mut second = std::net::TcpStream::connect(address).unwrap();
    second.write_all(b"two\n").unwrap();
    running.wait_until("the second line", |_| {
        std::fs::read_to_string(&output).is_ok_and(|o| o.contains("two"))
    });
    let mut third = std::net::TcpStream::connect(address).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buffer = [0u8; 16];
    // Closed by the server: end of stream (or a reset if our bytes arrived first).
    let read = third.read(&mut buffer);
    assert!(
        matches!(read, Ok(0)) || read.is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock),
        "the third connection is closed by the server"
    );
    running.wait_until("the refusal to be logged", |log| {
        log.contains("max_connections reached")
    });
    drop(first);
    // A freed slot is reused.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut fourth = std::net::TcpStream::connect(address).unwrap();
        let _ = fourth.write_all(b"four\n");
        std::thread::sleep(Duration::from_millis(20));
        if std::fs::read_to_string(&output).is_ok_and(|o| o.contains("four")) {
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot was never reused");
    }
    running.signal(libc::SIGINT);
    let (status, _, stderr) = running.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn a_tcp_server_out_of_file_descriptors_pauses_accepting_instead_of_spinning() {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt as _;
    let run_started = Instant::now();
    let (running, address, output) = tcp_lines_server_with("tcp-fds", "", |command| {
        // SAFETY: the closure runs in the forked child before exec and only calls
        // `setrlimit`, which is async-signal-safe, on a stack value.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    });
    // Far more connections than the 64 descriptors the host may have.
    let mut clients: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(address).unwrap())
        .collect();
    running.wait_until("accepting to pause", |log| log.contains("accepting paused"));
    // Connections already accepted still work while accepting is paused.
    clients[0].write_all(b"still served\n").unwrap();
    running.wait_until("an accepted client's line", |_| {
        std::fs::read_to_string(&output).is_ok_and(|o| o.contains("still served"))
    });
    let started = Instant::now();
    running.wait_until("a second of paused accepting", |_| {
        started.elapsed() > Duration::from_secs(1)
    });
    running.signal(libc::SIGINT);
    let (status, _, stderr) = running.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let warnings = stderr.matches("accept failed: accepting paused").count() as u64;
    let seconds = run_started.elapsed().as_secs() + 1;
    assert!(
        (1..=seconds).contains(&warnings),
        "one aggregated warning a second at most ({seconds} s), not one per attempt: {warnings} in {stderr}"
    );
    drop(clients);
}

#[test]
fn acknowledged_tcp_delivery_loses_nothing_when_the_server_is_killed_and_restarted() {
    let dir = temp_dir("run-tcp-acks");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let received = dir.join("received.txt");
    let server = dir.join("server.toml");
    std::fs::write(
        &server,
        format!(
            "[[connector]]\nid = \"net\"\nplugin = \"tcp\"\ncodec = \"string\"\n\
             preprocessors = [\"lines\"]\n\
             config = {{ mode = \"server\", address = \"127.0.0.1:{port}\", acks = true }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"file\"\ncodec = \"string\"\n\
             postprocessors = [\"lines\"]\nconfig = {{ path = {} }}\n\
             [[binding]]\nfrom = \"net\"\nto = [\"out\"]\n",
            toml_path(&received)
        ),
    )
    .unwrap();
    const COUNT: u64 = 3000;
    let client = dir.join("client.toml");
    std::fs::write(
        &client,
        format!(
            "[[connector]]\nid = \"numbers\"\nplugin = \"transactional\"\n\
             config = {{ count = {COUNT}, record = {} }}\n\
             [[connector]]\nid = \"net\"\nplugin = \"tcp\"\npostprocessors = [\"lines\"]\n\
             config = {{ mode = \"client\", address = \"127.0.0.1:{port}\", acks = true, \
             reconnect_initial_ms = 20, reconnect_max_ms = 200, ack_timeout_ms = 2000 }}\n\
             [[binding]]\nfrom = \"numbers\"\nto = [\"net\"]\n",
            toml_path(&dir.join("record.txt"))
        ),
    )
    .unwrap();
    let lines = || {
        std::fs::read_to_string(&received)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let first = Running::start(&server, &[]);
    first.wait_until("the server to listen", |log| {
        log.contains("listening address=")
    });
    let sender = Running::start(&client, &[]);
    first.wait_until("some numbers received", |_| lines() >= 300);
    // No drain, no flush: whatever it had read and not delivered is gone.
    first.kill();
    let at_kill = lines();
    let second = Running::start(&server, &[]);
    let (status, _, client_log) = sender.finish();
    second.signal(libc::SIGINT);
    let (server_status, _, server_log) = second.finish();
    assert_eq!(status.code(), Some(0), "{client_log}");
    assert_eq!(server_status.code(), Some(0), "{server_log}");
    assert!(
        client_log.contains("connection lost"),
        "the client saw the server go: {client_log}"
    );
    let text = std::fs::read_to_string(&received).unwrap();
    let mut seen = vec![false; COUNT as usize];
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        seen[value["n"].as_u64().unwrap() as usize] = true;
    }
    let missing: Vec<usize> = (0..seen.len()).filter(|&n| !seen[n]).collect();
    assert!(
        missing.is_empty(),
        "{} numbers acked by the client never reached the server's sink (first: {:?}); \
         {at_kill} lines when the first server was killed",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    eprintln!(
        "{COUNT} numbers across a server kill: {} lines received ({} duplicates), {at_kill} before the kill",
        text.lines().count(),
        text.lines().count() as u64 - COUNT
    );
}

#[test]
fn stdout_acks_only_what_it_wrote_and_a_closed_stdout_stops_it_for_good() {
    let dir = temp_dir("run-stdout-full");
    let record = dir.join("record.txt");
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"numbers\"\nplugin = \"transactional\"\n\
             config = {{ count = 5, record = {} }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"stdout\"\n\
             [[binding]]\nfrom = \"numbers\"\nto = [\"out\"]\n",
            toml_path(&record)
        ),
    );
    let output = weir(
        &[
            "run".as_ref(),
            pipeline.as_os_str(),
            "--no-admin-socket".as_ref(),
        ],
        "warn",
    )
    .stdout(std::fs::File::create("/dev/full").unwrap())
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("connector `out` failed for good"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot write to standard output"),
        "{stderr}"
    );
    let record = std::fs::read_to_string(&record).unwrap();
    assert!(
        !record.contains("ack"),
        "nothing was written, nothing acked: {record}"
    );
    for n in 0..5 {
        assert!(
            record
                .lines()
                .any(|l| l.starts_with("fail") && l.ends_with(&format!(" {n}"))),
            "{n} was failed back: {record}"
        );
    }
}

#[test]
fn a_bomb_behind_an_incompressible_prefix_keeps_the_host_small() {
    // 256 KiB of noise buys headroom under gunzip's max_ratio; then 8 MiB of one-byte lines
    // that compress into a few KiB: four million events out of one 64 KiB read.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..256 << 10)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'a' + (state % 26) as u8
        })
        .collect();
    std::io::Write::write_all(&mut gz, &noise).unwrap();
    std::io::Write::write_all(&mut gz, b"\n").unwrap();
    std::io::Write::write_all(&mut gz, &b"a\n".repeat(4 << 20)).unwrap();
    let input = gz.finish().unwrap();
    let (peak, stderr) = memory_bounded_run("credit-bomb", &input, r#""gunzip", "lines""#);
    eprintln!(
        "{} KiB of gzip expanding to 4 Mi events: peak RSS {} MiB",
        input.len() >> 10,
        peak >> 20
    );
    assert!(peak < MEMORY_LIMIT, "peak RSS {peak} bytes: {stderr}");
    assert_eq!(
        final_metric(&stderr, "in", "out"),
        (4 << 20) + 1,
        "{stderr}"
    );
}

#[test]
fn a_source_woken_from_its_own_thread_is_pulled_at_once_and_not_polled() {
    woken_from_its_own_thread("run-wakeful", &[]);
}

#[test]
fn an_isolated_source_woken_from_its_own_thread_in_its_child_is_pulled_at_once() {
    woken_from_its_own_thread("run-wakeful-isolated", &["--isolation", "process"]);
}

/// A source that wakes the host from its own thread, `count` times, run with `weir run`
/// flags `extra`: each wake is followed by a pull at once, and there are no polls between.
fn woken_from_its_own_thread(name: &str, extra: &[&str]) {
    let dir = temp_dir(name);
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        weir_tests::fixture_plugin("wakeful"),
        plugins.join("libwakeful.so"),
    )
    .unwrap();
    let output = dir.join("out.jsonl");
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"woken\"\nplugin = \"wakeful\"\n\
             config = {{ count = 20, interval_ms = 50 }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
             config = {{ path = {} }}\n\
             [[binding]]\nfrom = \"woken\"\nto = [\"out\"]\n",
            toml_path(&output)
        ),
    );
    let mut flags = vec!["--plugin-dir", plugins.to_str().unwrap()];
    flags.extend_from_slice(extra);
    let running = Running::start(&pipeline, &flags);
    let (exit, _, stderr) = running.finish();
    assert_eq!(exit.code(), Some(0), "{stderr}");
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let numbers: Vec<u64> = events.iter().map(|e| e["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..20).collect::<Vec<_>>(), "{stderr}");
    // Woken, a source is pulled within about a wake-up of the host's thread (tens of µs);
    // had the wake been lost, the safety pull would come a second later.
    let slowest = events
        .iter()
        .map(|e| e["delay_us"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(slowest < 200_000, "a pull came {slowest} µs after its wake");
    // Over the run's second, a polled source would have been pulled hundreds of times.
    let pulls = events.last().unwrap()["pulls"].as_u64().unwrap();
    assert!(pulls <= 60, "{pulls} pulls for 20 wakes: polled");
}

#[test]
fn a_plugin_built_for_abi_1_0_loads_and_is_polled() {
    let dir = temp_dir("run-abi10");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        weir_tests::fixture_plugin("abi10"),
        plugins.join("libabi10.so"),
    )
    .unwrap();
    let listed = weir(
        &[
            "plugins".as_ref(),
            "list".as_ref(),
            "--json".as_ref(),
            "--plugin-dir".as_ref(),
            plugins.as_os_str(),
        ],
        "warn",
    )
    .output()
    .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let abi10 = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["name"] == "abi10")
        .cloned()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(abi10["abi"], "1.0", "{abi10}");
    assert_eq!(abi10["status"], "ok", "{abi10}");
    // It cannot take a waker or say when it is quiet: the host polls it, and every number
    // arrives on time.
    let output = dir.join("out.jsonl");
    let pipeline = write_pipeline(
        &dir,
        &format!(
            "[[connector]]\nid = \"old\"\nplugin = \"abi10\"\n\
             config = {{ count = 50, interval_ms = 2 }}\n\
             [[connector]]\nid = \"out\"\nplugin = \"file\"\npostprocessors = [\"lines\"]\n\
             config = {{ path = {} }}\n\
             [[binding]]\nfrom = \"old\"\nto = [\"out\"]\n",
            toml_path(&output)
        ),
    );
    let running = Running::start(&pipeline, &["--plugin-dir", plugins.to_str().unwrap()]);
    let (exit, elapsed, stderr) = running.finish();
    assert_eq!(exit.code(), Some(0), "{stderr}");
    let numbers = common::numbers_in(&output);
    assert_eq!(numbers, (0..50).collect::<Vec<_>>(), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(20),
        "50 numbers 2 ms apart took {elapsed:?}: not polled"
    );
}

#[test]
fn a_sources_metadata_reaches_its_sinks_through_the_codecs() {
    let dir = temp_dir("run-metadata");
    let pipeline = write_pipeline(
        &dir,
        "[[connector]]\nid = \"numbers\"\nplugin = \"counter\"\ncodec = \"json\"\n\
         config = { count = 3, meta = true }\n\
         [[connector]]\nid = \"plain\"\nplugin = \"counter\"\nconfig = { start = 10, count = 1 }\n\
         [[connector]]\nid = \"out\"\nplugin = \"stdout\"\ncodec = \"json\"\n\
         config = { meta = true }\n\
         [[binding]]\nfrom = \"numbers\"\nto = [\"out\"]\n\
         [[binding]]\nfrom = \"plain\"\nto = [\"out\"]\n",
    );
    let output = common::run_once(&pipeline, &[], "warn");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            r#"{"n":0}	{"n":0,"version":"0.1.0"}"#,
            r#"{"n":1}	{"n":1,"version":"0.1.0"}"#,
            r#"{"n":2}	{"n":2,"version":"0.1.0"}"#,
            // No metadata: `{}`.
            r#"{}	{"n":10,"version":"0.1.0"}"#,
        ],
        "{stderr}"
    );
}
