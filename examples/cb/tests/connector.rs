//! The cb sink through the host's entry points (`weir-testing`).

use weir_testing::{Circuit, Harness, SinkReply, conformance};

#[test]
fn conforms() {
    conformance::check(Harness::builder::<cb::CircuitBreakerSink>()).unwrap();
}

#[test]
fn closes_fails_and_reopens_on_command() {
    let mut sink = Harness::new::<cb::CircuitBreakerSink>("").unwrap();
    sink.start().unwrap();
    let delivered = sink
        .deliver([r#"{"cb": "fail"}"#, "plain", r#"{"cb": "close"}"#])
        .unwrap();
    assert_eq!(
        delivered.replies,
        [SinkReply::Fail, SinkReply::Ack, SinkReply::Ack]
    );
    assert_eq!(sink.circuit(), Circuit::Closed);
    // Without `reopen_after_ms` a tick does not reopen it; an `open` command does.
    assert_eq!(sink.tick().unwrap(), None);
    let delivered = sink.deliver([r#"{"cb": "open"}"#]).unwrap();
    assert_eq!(delivered.circuit, Some(Circuit::Open));
    sink.stop().unwrap();
}

#[test]
fn reopens_by_itself_after_reopen_after_ms() {
    let mut sink = Harness::new::<cb::CircuitBreakerSink>("reopen_after_ms = 1").unwrap();
    sink.start().unwrap();
    sink.deliver([r#"{"cb": "close"}"#]).unwrap();
    assert_eq!(sink.circuit(), Circuit::Closed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sink.circuit() == Circuit::Closed {
        assert!(
            std::time::Instant::now() < deadline,
            "still closed after 5 s of ticks"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        sink.tick().unwrap();
    }
    sink.stop().unwrap();
}
