//! The metronome through the host's entry points (`weir-testing`).

use std::time::Duration;

use weir_testing::{Harness, PullStatus, conformance};

#[test]
fn conforms() {
    conformance::check(Harness::builder::<metronome::Metronome>().config("interval_ms = 1"))
        .unwrap();
}

#[test]
fn ticks_count_events_then_finishes() {
    let mut source = Harness::new::<metronome::Metronome>("interval_ms = 1\ncount = 5").unwrap();
    source.start().unwrap();
    let events = source.pull_events(5, Duration::from_secs(5)).unwrap();
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.json().unwrap()["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    assert_eq!(source.pull().unwrap().status, PullStatus::Finished);
    source.stop().unwrap();
}

#[test]
fn says_when_the_next_tick_is_due_rather_than_being_polled() {
    let mut source = Harness::new::<metronome::Metronome>("interval_ms = 60000").unwrap();
    source.start().unwrap();
    let first = source.pull().unwrap();
    assert_eq!(first.events.len(), 1);
    let second = source.pull().unwrap();
    assert_eq!(second.status, PullStatus::Empty);
    assert!(second.events.is_empty());
    let quiet = second.quiet_for.expect("it says how long it is quiet");
    assert!(
        quiet > Duration::from_secs(50) && quiet <= Duration::from_secs(60),
        "{quiet:?}"
    );
    source.stop().unwrap();
}

#[test]
fn refuses_an_interval_of_zero() {
    let error = Harness::new::<metronome::Metronome>("interval_ms = 0").unwrap_err();
    assert!(error.to_string().contains("interval_ms"), "{error}");
}
