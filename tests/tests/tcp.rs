//! The `tcp` connector over real sockets on 127.0.0.1.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use weir_host::config::PipelineSpec;
use weir_host::discovery::{PluginPath, PluginRepository};
use weir_host::pipeline::Pipeline;
use weir_host::runtime::{self, RunReport, RuntimeOptions};
use weir_tests::{example_plugin, fixture_plugin, temp_dir, toml_path, wait_for};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the pipeline on a background thread until `stop` is sent (or it finishes).
fn start(
    toml: String,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<RunReport>,
) {
    let examples = example_plugin("tcp").parent().unwrap().to_owned();
    let fixtures = fixture_plugin("transactional").parent().unwrap().to_owned();
    let repository = PluginRepository::scan(&PluginPath::from_dirs([examples, fixtures]));
    let spec = PipelineSpec::parse(Path::new("tcp.toml"), toml).unwrap_or_else(|e| panic!("{e}"));
    let pipeline = Pipeline::resolve(spec, &repository).unwrap_or_else(|e| panic!("{e}"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(runtime::run(
            pipeline,
            RuntimeOptions::default(),
            async move {
                if stop_rx.await.is_err() {
                    // The test dropped its handle: let the pipeline finish by itself.
                    std::future::pending::<()>().await;
                }
            },
        ))
    });
    (stop_tx, handle)
}

fn connect(port: u16) -> TcpStream {
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            return stream;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the tcp server never listened on {port}");
}

#[test]
fn server_streams_each_connection_into_a_sink() {
    let port = free_port();
    let dir = temp_dir("tcp-server");
    let output = dir.join("out.txt");
    let (stop, handle) = start(format!(
        r#"
        [[connector]]
        id = "server"
        plugin = "tcp"
        codec = "string"
        preprocessors = ["lines"]
        config = {{ mode = "server", address = "127.0.0.1:{port}" }}

        [[connector]]
        id = "out"
        plugin = "file"
        codec = "string"
        postprocessors = ["lines"]
        config = {{ path = {}, mode = "write" }}

        [[binding]]
        from = "server"
        to = ["out"]
        "#,
        toml_path(&output)
    ));
    let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    for round in 0..50 {
        for (c, client) in clients.iter_mut().enumerate() {
            writeln!(client, "client {c} line {round}").unwrap();
        }
    }
    drop(clients);
    wait_for("150 lines written", || {
        std::fs::read_to_string(&output).is_ok_and(|text| text.lines().count() == 150)
    });
    stop.send(()).unwrap();
    let report = handle.join().unwrap();
    let text = std::fs::read_to_string(&output).unwrap();
    for c in 0..3 {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("client {c} ")))
            .collect();
        let expected: Vec<String> = (0..50).map(|r| format!("client {c} line {r}")).collect();
        assert_eq!(lines, expected, "each connection is its own ordered stream");
    }
    let server = &report.metrics[0].1;
    assert_eq!((server.events_out, server.acks), (150, 150));
}

#[test]
fn server_bound_to_itself_replies_on_the_same_connection() {
    let port = free_port();
    let (stop, handle) = start(format!(
        r#"
        [[connector]]
        id = "echo"
        plugin = "tcp"
        codec = "string"
        preprocessors = ["lines"]
        postprocessors = ["lines"]
        config = {{ mode = "server", address = "127.0.0.1:{port}" }}

        [[binding]]
        from = "echo"
        to = ["echo"]
        "#
    ));
    let mut a = connect(port);
    let mut b = connect(port);
    a.write_all(b"hello\nfrom a\n").unwrap();
    b.write_all(b"and b\n").unwrap();
    let mut reply_a = [0u8; 13];
    a.read_exact(&mut reply_a).unwrap();
    assert_eq!(&reply_a, b"hello\nfrom a\n");
    let mut reply_b = String::new();
    BufReader::new(&mut b).read_line(&mut reply_b).unwrap();
    assert_eq!(reply_b, "and b\n");
    stop.send(()).unwrap();
    handle.join().unwrap();
}

#[test]
fn client_reconnects_with_backoff_after_the_server_drops_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The first connection is dropped while events are flowing; the second is read to the end.
    let server = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(60));
        drop(first);
        let (second, _) = listener.accept().unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        BufReader::new(second)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let (_stop, handle) = start(format!(
        r#"
        [[connector]]
        id = "tick"
        plugin = "metronome"
        config = {{ interval_ms = 1, count = 300 }}

        [[connector]]
        id = "client"
        plugin = "tcp"
        codec = "json"
        postprocessors = ["lines"]
        config = {{ mode = "client", address = "127.0.0.1:{port}", reconnect_initial_ms = 20 }}

        [[binding]]
        from = "tick"
        to = ["client"]
        "#
    ));
    let report = handle.join().unwrap();
    let tick = &report.metrics[0].1;
    assert_eq!(tick.acks + tick.fails, 300, "every event got a verdict");
    assert!(
        tick.fails >= 1,
        "writes to the dropped connection failed: {tick}"
    );
    assert!(tick.acks > 100, "most events were delivered: {tick}");
    let received = server.join().unwrap();
    let last: serde_json::Value =
        serde_json::from_str(received.last().expect("lines on the second connection")).unwrap();
    assert_eq!(last["id"], 299, "the flow resumed on the new connection");
}
