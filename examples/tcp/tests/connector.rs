//! The tcp connector through the host's entry points (`weir-testing`), against real
//! sockets on 127.0.0.1.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use weir_testing::{Harness, Sides, conformance};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to the server on `port` (retrying until it listens, for at most 10 s) and
/// sends a line every millisecond until `done`.
fn feeder(port: u16, done: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() > deadline => panic!("no server on {port}: {error}"),
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        };
        let mut n = 0;
        while !done.load(Ordering::Relaxed) {
            if stream.write_all(format!("line {n}\n").as_bytes()).is_err() {
                return;
            }
            n += 1;
            thread::sleep(Duration::from_millis(1));
        }
    })
}

#[test]
fn conforms_as_a_server_source() {
    let port = free_port();
    let done = Arc::new(AtomicBool::new(false));
    let feeder = feeder(port, Arc::clone(&done));
    let report = conformance::check(
        Harness::builder::<tcp::Tcp>()
            .config(&format!(
                "mode = \"server\"\naddress = \"127.0.0.1:{port}\""
            ))
            .bound_as(Sides::SOURCE),
    );
    done.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    report.unwrap();
}

#[test]
fn conforms_as_a_client_sink_and_writes_what_it_acks() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut received = String::new();
        stream.read_to_string(&mut received).unwrap();
        received
    });
    conformance::check(
        Harness::builder::<tcp::Tcp>()
            .config(&format!(
                "mode = \"client\"\naddress = \"127.0.0.1:{port}\""
            ))
            .bound_as(Sides::SINK),
    )
    .unwrap();
    // Stopping closed the connection: the reader has all it was sent.
    let received = reader.join().unwrap();
    assert_eq!(received.matches("weir conformance").count(), 76);
}

#[test]
fn a_server_says_where_it_listens_and_reads_what_a_client_sends() {
    let port = free_port();
    let mut server = Harness::builder::<tcp::Tcp>()
        .config(&format!(
            "mode = \"server\"\naddress = \"127.0.0.1:{port}\""
        ))
        .bound_as(Sides::SOURCE)
        .build()
        .unwrap();
    server.start().unwrap();
    assert!(server.logged("listening"), "{:?}", server.logs());
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"hello\n").unwrap();
    let events = server.pull_events(1, Duration::from_secs(10)).unwrap();
    assert_eq!(events[0].text(), "hello\n");
    // Each connection is its own stream, from 1.
    assert_eq!(events[0].id.stream, 1);
    server.ack_all(&events).unwrap();
    server.stop().unwrap();
}
