//! A panic in any plugin entry point comes back as an error; the instance is poisoned and a
//! fresh instance of the same plugin still works.

use serde_json::json;
use weir_host::{
    CallError, ConnectorInstance, EventBatch, EventId, Feedback, FeedbackKind, Notice, Plugin,
    SinkEvent, SinkReply,
};
use weir_tests::fixture_plugin;

fn plugin() -> Plugin {
    Plugin::load(fixture_plugin("panic")).expect("the panic fixture loads")
}

fn instance(plugin: &Plugin, panic_in: &str) -> ConnectorInstance {
    plugin
        .instantiate("p", &json!({ "panic_in": panic_in }))
        .expect("created")
}

#[track_caller]
fn assert_panicked(error: CallError, method: &str, panic_in: &str) {
    let CallError::Panicked {
        method: m,
        message,
        location,
        connector,
        plugin,
    } = &error
    else {
        panic!("expected Panicked, got {error:?}")
    };
    assert_eq!(*m, method);
    assert_eq!(message, &format!("panicky: boom in {panic_in}"));
    assert!(location.starts_with("panic/src/lib.rs:"), "{location}");
    assert_eq!((connector.as_str(), plugin.as_str()), ("p", "panic"));
    assert!(
        error.to_string().contains("panicked at panic/src/lib.rs:"),
        "{error}"
    );
}

/// After a panic: poisoned, and every call is refused without entering the plugin.
fn assert_poisoned(mut poisoned: ConnectorInstance) {
    assert!(poisoned.is_poisoned());
    let error = poisoned.connect(0).unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Poisoned {
                method: "connect",
                ..
            }
        ),
        "{error:?}"
    );
    let error = poisoned.pull(&mut EventBatch::new(), 1).unwrap_err();
    assert!(
        matches!(error, CallError::Poisoned { method: "pull", .. }),
        "{error:?}"
    );
    let error = poisoned.notify(Notice::Stop).unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Poisoned {
                method: "on_stop",
                ..
            }
        ),
        "{error:?}"
    );
    // Dropping a poisoned instance is safe (its state is dropped under the trap).
    drop(poisoned);
}

/// A fresh instance of the same plugin works after another one panicked.
fn assert_fresh_instance_works(plugin: &Plugin) {
    let mut fresh = plugin.instantiate("fresh", &json!({})).unwrap();
    assert!(fresh.connect(0).unwrap());
    fresh.notify(Notice::Start).unwrap();
    let mut batch = EventBatch::new();
    assert_eq!(
        fresh.pull(&mut batch, 1).unwrap(),
        weir_host::PullStatus::Ready
    );
    assert_eq!(batch.iter().next().unwrap().bytes, b"event 0");
    let replies = fresh.sink_batch(&[event(b"fine")]).unwrap();
    assert_eq!(replies.replies().collect::<Vec<_>>(), [SinkReply::Ack]);
    fresh.close().unwrap();
}

fn event(bytes: &[u8]) -> SinkEvent<'_> {
    SinkEvent::new(bytes, EventId { stream: 0, pull: 7 }, 0, b"")
}

#[test]
fn panic_in_constructor() {
    let plugin = plugin();
    let error = plugin
        .instantiate("p", &json!({ "panic_in": "new" }))
        .unwrap_err();
    assert_panicked(error, "new", "new");
    assert_fresh_instance_works(&plugin);
}

#[test]
fn panic_in_connect() {
    let plugin = plugin();
    let mut p = instance(&plugin, "connect");
    assert_panicked(p.connect(0).unwrap_err(), "connect", "connect");
    assert_poisoned(p);
    assert_fresh_instance_works(&plugin);
}

#[test]
fn panic_in_lifecycle_notice() {
    let plugin = plugin();
    let mut p = instance(&plugin, "on_start");
    assert!(p.connect(0).unwrap());
    assert_panicked(p.notify(Notice::Start).unwrap_err(), "on_start", "on_start");
    assert_poisoned(p);
    assert_fresh_instance_works(&plugin);
}

#[test]
fn panic_in_pull() {
    let plugin = plugin();
    let mut p = instance(&plugin, "pull");
    let mut batch = EventBatch::new();
    assert_panicked(p.pull(&mut batch, 8).unwrap_err(), "pull", "pull");
    assert!(batch.is_empty());
    assert_poisoned(p);
    assert_fresh_instance_works(&plugin);
}

#[test]
fn panic_in_ack() {
    let plugin = plugin();
    let mut p = instance(&plugin, "on_ack");
    let ack = Feedback {
        id: EventId { stream: 0, pull: 0 },
        kind: FeedbackKind::ACK,
    };
    assert_panicked(p.feedback(&[ack]).unwrap_err(), "source_feedback", "on_ack");
    assert_poisoned(p);
    assert_fresh_instance_works(&plugin);
}

#[test]
fn panic_in_sink_mid_batch() {
    let plugin = plugin();
    let mut p = instance(&plugin, "none");
    let error = p
        .sink_batch(&[event(b"ok"), event(b"panic"), event(b"never seen")])
        .unwrap_err();
    let CallError::Panicked {
        method, message, ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (*method, message.as_str()),
        ("sink_batch", "panicky: boom in on_event")
    );
    assert_poisoned(p);
    assert_fresh_instance_works(&plugin);
}

#[test]
fn panic_in_drop_is_reported_by_close() {
    let plugin = plugin();
    let mut p = instance(&plugin, "drop");
    assert!(p.connect(0).unwrap());
    assert_panicked(p.close().unwrap_err(), "drop", "drop");
    let error = p.connect(0).unwrap_err();
    assert!(matches!(error, CallError::Closed { .. }), "{error:?}");
    drop(p);
    assert_fresh_instance_works(&plugin);
}

#[test]
fn panic_in_drop_without_close_does_not_take_the_host_down() {
    let plugin = plugin();
    let p = instance(&plugin, "drop");
    drop(p);
    assert_fresh_instance_works(&plugin);
}

#[test]
fn many_panics_in_a_row_are_all_contained() {
    let plugin = plugin();
    for _ in 0..50 {
        let mut p = instance(&plugin, "pull");
        assert!(p.pull(&mut EventBatch::new(), 1).is_err());
    }
    assert_fresh_instance_works(&plugin);
}
