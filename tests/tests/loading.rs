//! Loading real plugins and calling every entry point through the safe host API.

use serde_json::json;
use weir_host::{
    CallError, Circuit, EventBatch, EventId, Feedback, FeedbackKind, Notice, Plugin, PullStatus,
    SinkEvent, SinkReply,
};
use weir_sdk::abi::CONNECTOR_ABI;
use weir_tests::{example_plugin, fixture_plugin};

#[test]
fn example_plugins_describe_themselves() {
    let metronome = Plugin::load(example_plugin("metronome")).unwrap();
    let info = metronome.info();
    assert_eq!(info.name, "metronome");
    assert_eq!(info.version, "0.1.0");
    assert_eq!(info.abi, CONNECTOR_ABI);
    assert_eq!((info.is_source, info.is_sink), (true, false));
    assert_eq!(info.capabilities(), "source");
    assert_eq!(info.target, weir_sdk::abi::TARGET);

    let stdout = Plugin::load(example_plugin("stdout")).unwrap();
    assert_eq!(stdout.info().capabilities(), "sink");
    let bench = Plugin::load(fixture_plugin("bench")).unwrap();
    assert_eq!(bench.info().capabilities(), "source+sink");
}

#[test]
fn metronome_emits_json_events_with_increasing_ids() {
    let plugin = Plugin::load(example_plugin("metronome")).unwrap();
    let mut source = plugin
        .instantiate("tick", &json!({ "interval_ms": 1, "count": 3 }))
        .unwrap();
    assert!(source.connect(0).unwrap());
    source.notify(Notice::Start).unwrap();
    let mut batch = EventBatch::new();
    let started = std::time::Instant::now();
    loop {
        match source.pull(&mut batch, 16).unwrap() {
            PullStatus::Finished => break,
            PullStatus::Ready | PullStatus::Empty => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
        }
        assert!(started.elapsed().as_secs() < 10, "metronome never finished");
    }
    let events: Vec<_> = batch.iter().collect();
    assert_eq!(events.len(), 3);
    for (n, event) in events.iter().enumerate() {
        assert_eq!(
            event.id,
            EventId {
                stream: 0,
                pull: n as u64
            }
        );
        let value: serde_json::Value = serde_json::from_slice(event.bytes).unwrap();
        assert_eq!(value["id"], n as u64);
        assert!(value["ingest_ns"].as_u64().unwrap() > 1_700_000_000_000_000_000);
    }
    source.notify(Notice::Stop).unwrap();
    source.close().unwrap();
}

#[test]
fn config_errors_name_the_field() {
    let plugin = Plugin::load(example_plugin("metronome")).unwrap();
    let error = plugin
        .instantiate("tick", &json!({ "interval_ms": "fast" }))
        .unwrap_err();
    let CallError::Config {
        field_path,
        message,
        connector,
        plugin: name,
    } = &error
    else {
        panic!("expected Config, got {error:?}")
    };
    assert_eq!((connector.as_str(), name.as_str()), ("tick", "metronome"));
    assert_eq!(field_path.to_string(), "interval_ms");
    assert!(message.contains("expected u64"), "{message}");
    assert!(!message.contains("line"), "no JSON position in {message}");
    assert_eq!(
        error.to_string(),
        format!(
            "connector `tick` (plugin `metronome`): invalid config at `interval_ms`: {message}"
        )
    );

    let error = plugin
        .instantiate("tick", &json!({ "interval": 5 }))
        .unwrap_err();
    let CallError::Config { message, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("unknown field `interval`"), "{message}");

    let error = plugin
        .instantiate("tick", &json!({ "interval_ms": 0 }))
        .unwrap_err();
    let CallError::Failed {
        method, message, ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (*method, message.as_str()),
        ("new", "`interval_ms` must be at least 1")
    );
}

#[test]
fn source_and_sink_round_trip_through_one_plugin() {
    let plugin = Plugin::load(fixture_plugin("bench")).unwrap();
    let mut connector = plugin.instantiate("bench", &json!({})).unwrap();
    assert!(connector.connect(0).unwrap());
    connector.notify(Notice::Start).unwrap();

    let mut batch = EventBatch::new();
    assert_eq!(connector.pull(&mut batch, 64).unwrap(), PullStatus::Ready);
    assert_eq!(batch.len(), 64);
    assert_eq!(connector.pull(&mut batch, 64).unwrap(), PullStatus::Ready);
    let ids: Vec<u64> = batch.iter().map(|e| e.id.pull).collect();
    assert_eq!(
        ids,
        (0..128).collect::<Vec<_>>(),
        "pull ids count per instance across pulls"
    );

    let events: Vec<SinkEvent<'_>> = batch
        .iter()
        .map(|e| SinkEvent::new(e.bytes, e.id, 0, e.meta))
        .collect();
    let outcome = connector.sink_batch(&events).unwrap();
    assert_eq!(outcome.len(), 128);
    assert!(outcome.replies().all(|r| r == SinkReply::Ack));
    assert_eq!(outcome.circuit, None);
    assert!(outcome.errors.is_empty());

    let feedback: Vec<Feedback> = batch
        .iter()
        .map(|e| Feedback {
            id: e.id,
            kind: if e.id.pull % 2 == 0 {
                FeedbackKind::ACK
            } else {
                FeedbackKind::FAIL
            },
        })
        .collect();
    connector.feedback(&feedback).unwrap();
    for notice in [
        Notice::Pause,
        Notice::Resume,
        Notice::CircuitClosed,
        Notice::CircuitOpened,
        Notice::Drain,
        Notice::Stop,
    ] {
        connector.notify(notice).unwrap();
    }
    connector.close().unwrap();
    let error = connector.connect(0).unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Closed {
                method: "connect",
                ..
            }
        ),
        "closed instances refuse calls: {error:?}"
    );
}

#[test]
fn a_sink_only_plugin_refuses_pull_and_a_source_only_plugin_refuses_events() {
    let stdout = Plugin::load(example_plugin("stdout")).unwrap();
    let mut sink = stdout
        .instantiate("out", &json!({ "prefix": "test: " }))
        .unwrap();
    let error = sink.pull(&mut EventBatch::new(), 1).unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Unsupported {
                method: "pull",
                side: "source",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!sink.is_poisoned(), "an unsupported call does not poison");
    let outcome = sink
        .sink_batch(&[SinkEvent::new(
            b"hello",
            EventId { stream: 0, pull: 0 },
            0,
            b"",
        )])
        .unwrap();
    assert_eq!(outcome.replies().collect::<Vec<_>>(), [SinkReply::Ack]);

    let metronome = Plugin::load(example_plugin("metronome")).unwrap();
    let mut source = metronome.instantiate("tick", &json!({})).unwrap();
    let error = source.sink_batch(&[]).unwrap_err();
    assert!(
        matches!(error, CallError::Unsupported { side: "sink", .. }),
        "{error:?}"
    );
}

#[test]
fn instances_keep_the_library_loaded_after_the_plugin_handle_is_dropped() {
    let plugin = Plugin::load(fixture_plugin("bench")).unwrap();
    let mut connector = plugin.instantiate("bench", &json!({})).unwrap();
    drop(plugin);
    let mut batch = EventBatch::new();
    connector.pull(&mut batch, 4).unwrap();
    assert_eq!(batch.len(), 4);
    assert_eq!(connector.plugin().name, "bench");
}

#[test]
fn instances_can_move_between_threads() {
    let plugin = Plugin::load(fixture_plugin("bench")).unwrap();
    let mut connector = plugin.instantiate("bench", &json!({})).unwrap();
    let handle = std::thread::spawn(move || {
        let mut batch = EventBatch::new();
        connector.pull(&mut batch, 2).unwrap();
        batch.len()
    });
    assert_eq!(handle.join().unwrap(), 2);
}

#[test]
fn circuit_breaker_requests_come_back_from_the_sink() {
    // The sdk records the last request of a batch; checked here through the public
    // in-process API, the same code path the trampoline uses.
    let ctx = weir_sdk::ConnectorContext::detached("cb");
    let mut circuit = None;
    let mut sink_ctx = weir_sdk::SinkContext::new(&ctx, &mut circuit);
    sink_ctx.close_circuit();
    assert_eq!(sink_ctx.requested_circuit(), Some(Circuit::Closed));
    sink_ctx.open_circuit();
    assert_eq!(circuit, Some(Circuit::Open));
}
