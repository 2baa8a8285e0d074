//! The harness and the conformance suite on connectors that behave, and on connectors that
//! block, panic, spin, never ack or never reopen their breaker: each ends in a clear error
//! or a failed check naming it, and no test hangs or panics on the connector's behalf.

use std::time::{Duration, Instant};

use weir_sdk::{
    Circuit, Connector, ConnectorContext, Error, Event, EventId, Level, NoConfig, PullStatus,
    Result, SinkContext, SinkReply, SourceBatch, connector_plugin,
};
use weir_testing::conformance::{self, Outcome, Suite};
use weir_testing::{CallError, Harness, HarnessError, Notice, Sides};

/// A source of `count` numbered events (then finished) that logs what it is told.
struct Counter {
    next: u64,
    count: u64,
}

#[derive(serde::Deserialize)]
struct CounterConfig {
    count: u64,
}

#[connector_plugin(name = "counter")]
impl Connector for Counter {
    type Config = CounterConfig;

    fn new(config: CounterConfig, ctx: &ConnectorContext) -> Result<Self> {
        ctx.log(Level::Debug, &format!("counting to {}", config.count));
        Ok(Self {
            next: 0,
            count: config.count,
        })
    }

    fn on_start(&mut self, ctx: &ConnectorContext) -> Result<()> {
        ctx.log(Level::Info, "started");
        Ok(())
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        while self.next < self.count && !batch.is_full() {
            batch.push(self.next.to_string().as_bytes());
            self.next += 1;
        }
        Ok(if self.next == self.count {
            PullStatus::Finished
        } else {
            PullStatus::Ready
        })
    }

    fn on_ack(&mut self, ctx: &ConnectorContext, id: EventId) -> Result<()> {
        ctx.log(Level::Info, &format!("ack {}", id.pull));
        Ok(())
    }

    fn on_fail(&mut self, ctx: &ConnectorContext, id: EventId) -> Result<()> {
        ctx.log(Level::Warn, &format!("fail {}", id.pull));
        Ok(())
    }
}

/// A source whose `pull` never returns.
struct BlocksInPull;

#[connector_plugin(name = "blocks-in-pull")]
impl Connector for BlocksInPull {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self)
    }

    fn pull(
        &mut self,
        _ctx: &ConnectorContext,
        _batch: &mut SourceBatch<'_>,
    ) -> Result<PullStatus> {
        loop {
            std::thread::park();
        }
    }
}

/// A source that panics on its second pull.
struct PanicsInPull {
    pulls: u32,
}

#[connector_plugin(name = "panics-in-pull")]
impl Connector for PanicsInPull {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self { pulls: 0 })
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        self.pulls += 1;
        assert!(self.pulls < 2, "pull number {} went wrong", self.pulls);
        batch.push(b"first");
        Ok(PullStatus::Ready)
    }
}

/// A source that says `Ready` and never has anything.
struct Spins;

#[connector_plugin(name = "spins")]
impl Connector for Spins {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self)
    }

    fn pull(
        &mut self,
        _ctx: &ConnectorContext,
        _batch: &mut SourceBatch<'_>,
    ) -> Result<PullStatus> {
        Ok(PullStatus::Ready)
    }
}

/// A sink that fails every event.
struct NeverAcks;

#[connector_plugin(name = "never-acks")]
impl Connector for NeverAcks {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self)
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        Ok(SinkReply::Fail)
    }
}

/// A sink that closes its breaker on the first event and never reopens it.
struct NeverReopens;

#[connector_plugin(name = "never-reopens")]
impl Connector for NeverReopens {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self)
    }

    fn on_event(&mut self, ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        ctx.close_circuit();
        Ok(SinkReply::Ack)
    }
}

/// A sink that errors on events saying "bad", closes its breaker on "close" and reopens it
/// on the next tick, and panics in `Drop`.
struct Picky {
    reopen: bool,
}

#[connector_plugin(name = "picky")]
impl Connector for Picky {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self { reopen: false })
    }

    fn on_tick(&mut self, ctx: &mut SinkContext<'_>) -> Result<()> {
        if std::mem::take(&mut self.reopen) {
            ctx.open_circuit();
        }
        Ok(())
    }

    fn on_event(&mut self, ctx: &mut SinkContext<'_>, event: Event<'_>) -> Result<SinkReply> {
        match event.bytes {
            b"bad" => Err(Error::new("this one is bad")),
            b"close" => {
                ctx.close_circuit();
                self.reopen = true;
                Ok(SinkReply::Ack)
            }
            _ => Ok(SinkReply::Auto),
        }
    }
}

impl Drop for Picky {
    fn drop(&mut self) {
        panic!("picky will not go quietly");
    }
}

#[test]
fn a_source_is_driven_through_its_lifecycle_and_its_logs_and_feedback_are_seen() {
    let mut source = Harness::new::<Counter>("count = 100").unwrap();
    assert!(source.logged("counting to 100"), "{:?}", source.logs());
    source.start().unwrap();
    assert_eq!(source.logs().last().unwrap().message, "started");

    let first = source.pull_at_most(10).unwrap();
    assert_eq!(first.status, PullStatus::Ready);
    assert_eq!(first.events.len(), 10);
    assert_eq!(first.events[3].text(), "3");
    assert_eq!(source.in_flight().len(), 10);

    source.ack(first.events[0].id).unwrap();
    source.fail(first.events[1].id).unwrap();
    assert!(source.logged("ack 0") && source.logged("fail 1"));
    assert_eq!(source.in_flight().len(), 8);

    let rest = source.pull_events(90, Duration::from_secs(5)).unwrap();
    assert_eq!(rest.len(), 90);
    assert_eq!(rest.last().unwrap().json().unwrap(), serde_json::json!(99));
    source.ack_all(&rest).unwrap();
    source.pause().unwrap();
    source.resume().unwrap();
    source.drain().unwrap();
    source.stop().unwrap();
    let warned = source
        .logs()
        .iter()
        .filter(|l| l.level == Level::Warn)
        .count();
    assert_eq!(warned, 1);
}

#[test]
fn a_finished_source_gives_what_it_had_in_the_error() {
    let mut source = Harness::new::<Counter>("count = 3").unwrap();
    source.start().unwrap();
    let error = source.pull_events(5, Duration::from_secs(5)).unwrap_err();
    let HarnessError::TooFew {
        events, finished, ..
    } = &error
    else {
        panic!("{error}");
    };
    assert!(finished);
    assert_eq!(events.len(), 3);
    assert_eq!(
        error.to_string(),
        r#"connector `counter`: wanted 5 events, got 3 before the source finished: "0", "1", "2""#
    );
}

#[test]
fn a_config_is_read_as_the_host_reads_it_and_refused_as_the_host_refuses_it() {
    let error = Harness::new::<Counter>("count = \"many\"").unwrap_err();
    let HarnessError::Call(CallError::Config { field_path, .. }) = &error else {
        panic!("{error}");
    };
    assert_eq!(field_path.to_string(), "count");

    let error = Harness::new::<Counter>("count = ").unwrap_err();
    assert!(matches!(error, HarnessError::Config(_)), "{error}");
    assert!(error.to_string().starts_with("<config>:1:"), "{error}");

    let source = Harness::builder::<Counter>()
        .config_json(serde_json::json!({ "count": 1 }))
        .id("custom")
        .build()
        .unwrap();
    assert_eq!(source.id(), "custom");
}

#[test]
fn a_pull_that_blocks_times_out_and_the_harness_refuses_what_follows() {
    let mut source = Harness::builder::<BlocksInPull>()
        .call_limit(Duration::from_millis(200))
        .build()
        .unwrap();
    source.start().unwrap();
    let started = Instant::now();
    let error = source.pull().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        error.to_string(),
        "connector `blocks-in-pull`: `pull` did not return within 200ms"
    );
    assert_eq!(source.stuck_in(), Some("pull"));
    let error = source.stop().unwrap_err();
    assert_eq!(
        error.to_string(),
        "connector `blocks-in-pull`: cannot call `on_stop`: `pull` never returned"
    );
    // Dropping it leaves the thread behind rather than waiting for it.
    let dropped = Instant::now();
    drop(source);
    assert!(dropped.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_panic_comes_back_as_the_host_reports_it_not_as_a_panic_of_the_test() {
    let mut source = Harness::new::<PanicsInPull>("").unwrap();
    source.start().unwrap();
    source.pull().unwrap();
    let error = source.pull().unwrap_err();
    let HarnessError::Call(CallError::Panicked {
        method, message, ..
    }) = &error
    else {
        panic!("{error}");
    };
    assert_eq!(
        (*method, message.as_str()),
        ("pull", "pull number 2 went wrong")
    );
    assert!(source.is_poisoned());
    assert!(matches!(
        source.pull(),
        Err(HarnessError::Call(CallError::Poisoned { .. }))
    ));
}

#[test]
fn a_sink_replies_fails_closes_and_reopens_its_breaker_and_its_drop_panic_is_reported() {
    let mut sink = Harness::new::<Picky>("").unwrap();
    sink.start().unwrap();
    let delivered = sink.deliver(["good", "bad", "close"]).unwrap();
    assert_eq!(
        delivered.replies,
        [SinkReply::Auto, SinkReply::Fail, SinkReply::Ack]
    );
    assert_eq!((delivered.acked(), delivered.failed()), (2, 1));
    assert_eq!(delivered.errors, ["this one is bad"]);
    assert_eq!(delivered.circuit, Some(Circuit::Closed));
    assert_eq!(sink.circuit(), Circuit::Closed);
    assert_eq!(sink.tick().unwrap(), Some(Circuit::Open));
    assert_eq!(sink.circuit(), Circuit::Open);
    sink.notify(Notice::Drain).unwrap();
    let error = sink.stop().unwrap_err();
    assert!(
        matches!(&error, HarnessError::Call(CallError::Panicked { method: "drop", message, .. }) if message == "picky will not go quietly"),
        "{error}"
    );
}

#[test]
fn a_sink_is_refused_a_pull_and_a_source_an_event() {
    let mut sink = Harness::new::<NeverAcks>("").unwrap();
    assert!(matches!(
        sink.pull(),
        Err(HarnessError::Call(CallError::Unsupported { .. }))
    ));
    let mut source = Harness::new::<Counter>("count = 1").unwrap();
    assert!(matches!(
        source.deliver(["x"]),
        Err(HarnessError::Call(CallError::Unsupported { .. }))
    ));
}

fn outcome<'r>(report: &'r conformance::Report, name: &str) -> &'r Outcome {
    &report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in\n{report}"))
        .outcome
}

#[test]
fn a_well_behaved_source_and_sink_pass_the_suite() {
    let report = conformance::check(Harness::builder::<Counter>().config("count = 40")).unwrap();
    assert!(report.passed());
    let text = report.to_string();
    assert!(
        text.starts_with(
            "conformance of connector `counter` (plugin `counter` 0.1.0, source): passed\n"
        ),
        "{text}"
    );
    // Pulls of at most 1, 3, then 64 events.
    assert!(
        text.contains(
            "  ok   pull: 40 events in 3 pulls, never more than asked for; then it finished\n"
        ),
        "{text}"
    );
    conformance::check(Harness::builder::<blackhole::Blackhole>()).unwrap();
}

#[test]
fn a_source_that_blocks_in_pull_fails_the_suite_and_the_rest_is_skipped() {
    let started = Instant::now();
    let failed = Suite::new()
        .call_bound(Duration::from_millis(200))
        .run(Harness::builder::<BlocksInPull>())
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let report = &failed.0;
    let Outcome::Failed(why) = outcome(report, "pull") else {
        panic!("{report}");
    };
    assert!(
        why.starts_with(
            "`pull` did not return within 200ms: with nothing to say, return `PullStatus::Empty`"
        ),
        "{why}"
    );
    assert!(
        matches!(outcome(report, "stop and drop"), Outcome::Skipped(s) if s == "the connector is still in `pull`")
    );
    assert!(matches!(
        outcome(report, "no call blocks"),
        Outcome::Failed(_)
    ));
    // The report is what a failing test prints.
    let printed = format!("{failed:?}");
    assert!(printed.contains("2 checks failed"), "{printed}");
    assert!(
        printed.contains("  FAIL pull: `pull` did not return within 200ms"),
        "{printed}"
    );
}

#[test]
fn a_sink_that_never_acks_fails_the_suite() {
    let failed = conformance::check(Harness::builder::<NeverAcks>()).unwrap_err();
    let Outcome::Failed(why) = outcome(&failed.0, "acks") else {
        panic!("{failed}");
    };
    assert!(
        why.starts_with("acked none of the 64 events it was handed (every reply was Fail)"),
        "{why}"
    );
    assert_eq!(failed.0.failures().count(), 1, "{failed}");
}

#[test]
fn a_source_that_panics_spins_or_stays_silent_fails_the_suite() {
    let failed = conformance::check(Harness::builder::<PanicsInPull>()).unwrap_err();
    let Outcome::Failed(why) = outcome(&failed.0, "pull") else {
        panic!("{failed}");
    };
    assert!(
        why.contains("`pull` panicked") || why.contains("pull number 2 went wrong"),
        "{why}"
    );
    assert!(
        matches!(outcome(&failed.0, "feedback"), Outcome::Skipped(s) if s == "an earlier call poisoned the connector (a panic, or a reply the ABI does not allow)")
    );

    let failed = conformance::check(Harness::builder::<Spins>()).unwrap_err();
    let Outcome::Failed(why) = outcome(&failed.0, "pull") else {
        panic!("{failed}");
    };
    assert!(
        why.starts_with("returned `Ready` with no events 1000 times in a row"),
        "{why}"
    );

    let failed = Suite::new()
        .within(Duration::from_millis(100))
        .run(Harness::builder::<Counter>().config("count = 0"))
        .unwrap_err();
    let Outcome::Failed(why) = outcome(&failed.0, "pull") else {
        panic!("{failed}");
    };
    assert!(
        why.starts_with("produced 0 events in 1 pulls before it finished"),
        "{why}"
    );
    Suite::new()
        .min_events(0)
        .run(Harness::builder::<Counter>().config("count = 0"))
        .unwrap();
}

#[test]
fn a_sink_that_never_reopens_its_breaker_fails_the_suite() {
    let failed = Suite::new()
        .within(Duration::from_millis(200))
        .run(Harness::builder::<NeverReopens>())
        .unwrap_err();
    let Outcome::Failed(why) = outcome(&failed.0, "deliver") else {
        panic!("{failed}");
    };
    assert_eq!(
        why,
        "closed its circuit breaker and did not reopen it in 200ms of ticks (its sources stay paused until it does)"
    );
}

/// A sink whose panic payload panics again when dropped.
struct PanicsTwice;

struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's own drop");
    }
}

#[connector_plugin(name = "panics-twice")]
impl Connector for PanicsTwice {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self)
    }

    fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
        std::panic::panic_any(Bomb)
    }
}

#[test]
fn a_panic_whose_payload_panics_when_dropped_is_reported_not_an_abort() {
    let mut sink = Harness::new::<PanicsTwice>("").unwrap();
    sink.start().unwrap();
    let error = sink.deliver(["x"]).unwrap_err();
    assert!(
        matches!(
            &error,
            HarnessError::Call(CallError::Panicked {
                method: "sink_batch",
                ..
            })
        ),
        "{error}"
    );
}

#[test]
fn a_binding_the_plugin_cannot_have_is_refused_and_a_connector_bound_neither_way_fails_the_suite() {
    let error = Harness::builder::<NeverAcks>()
        .bound_as(Sides::SOURCE)
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "connector `never-acks` cannot be bound as a source: plugin `never-acks` is sink"
    );
    let failed = conformance::check(
        Harness::builder::<Counter>()
            .config("count = 1")
            .bound_as(Sides::NONE),
    )
    .unwrap_err();
    assert!(
        matches!(outcome(&failed.0, "bindings"), Outcome::Failed(why) if why.starts_with("bound neither")),
        "{failed}"
    );
    // A report on a connector that could not be built still names it.
    let failed =
        conformance::check(Harness::builder::<Counter>().config("count = \"x\"")).unwrap_err();
    assert!(
        failed
            .to_string()
            .starts_with("conformance of connector `counter` (plugin `counter`): 1 check failed"),
        "{failed}"
    );
}

#[test]
fn limits_without_end_and_zero_counts_are_taken_as_meant() {
    let mut source = Harness::builder::<Counter>()
        .config("count = 5")
        .connect_within(Duration::MAX)
        .call_limit(Duration::ZERO)
        .build()
        .unwrap();
    source.start().unwrap();
    assert!(source.pull_events(0, Duration::MAX).unwrap().is_empty());
    assert!(source.in_flight().is_empty(), "nothing was pulled");
    assert_eq!(source.pull_events(5, Duration::MAX).unwrap().len(), 5);
    Suite::new()
        .within(Duration::MAX)
        .run(Harness::builder::<Counter>().config("count = 5"))
        .unwrap();
}

/// A source of three events of a megabyte each.
struct Big {
    sent: u32,
}

#[connector_plugin(name = "big")]
impl Connector for Big {
    type Config = NoConfig;

    fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> {
        Ok(Self { sent: 0 })
    }

    fn pull(&mut self, _ctx: &ConnectorContext, batch: &mut SourceBatch<'_>) -> Result<PullStatus> {
        while self.sent < 3 {
            batch.push(&vec![b'x'; 1 << 20]);
            self.sent += 1;
        }
        Ok(PullStatus::Finished)
    }
}

#[test]
fn errors_about_huge_events_stay_short() {
    let mut source = Harness::new::<Big>("").unwrap();
    source.start().unwrap();
    let error = source.pull_events(4, Duration::from_secs(5)).unwrap_err();
    assert!(
        error.to_string().len() < 1000,
        "{} bytes",
        error.to_string().len()
    );
    assert!(error.to_string().contains("... (1048576 bytes)"), "{error}");
    assert!(
        format!("{error:?}").len() < 2000,
        "{} bytes",
        format!("{error:?}").len()
    );
}

#[test]
fn a_log_sink_that_panics_loses_the_record_not_the_process() {
    let plugin = weir_testing::Plugin::linked::<Counter>().unwrap();
    let options = weir_host::InstanceOptions::new().log_to(std::sync::Arc::new(|record| {
        panic!("the sink refuses {:?}", record.message)
    }));
    // `new` logs "counting to 2": the sink panics inside the host's C callback.
    let mut instance = plugin
        .instantiate_with("counter", &serde_json::json!({ "count": 2 }), options)
        .unwrap();
    assert!(instance.connect(0).unwrap());
}
