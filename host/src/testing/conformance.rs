//! The conformance suite: what every connector must do, checked through the host's entry
//! points.
//!
//! [`check`] runs it with the defaults; [`Suite`] sets the bounds. The checks, in order:
//!
//! 1. **new**: the connector is created from its config.
//! 2. **connect and start**: it connects (retried with backoff) and starts.
//! 3. **pull** (sources): every pull returns in time, with at most the events asked for,
//!    and the source produces events (at least [`Suite::min_events`]) without making the
//!    host spin (`Ready` with nothing, again and again).
//! 4. **feedback** (sources): acks and fails of what it produced are accepted.
//! 5. **circuit notices** (sources): a downstream breaker closing and opening is accepted.
//! 6. **deliver** (sinks): every event of a batch gets a reply; a breaker it closes it
//!    reopens when ticked.
//! 7. **acks** (sinks): it acks events: a sink that fails everything is never done.
//! 8. **pause and resume**: both are answered, and the connector works after them.
//! 9. **drain with events in flight**: after a drain, feedback (sources) or events
//!    (sinks) still in flight are taken.
//! 10. **stop and drop**: `on_stop` and `Drop` return cleanly.
//! 11. **no call blocks**: every call returned within [`Suite::call_bound`]. A call that
//!     does not is abandoned (its thread left blocked) and the checks after it are skipped.
//!
//! A failing suite is an error whose `Debug` is the report, so `check(..).unwrap()` and
//! `?` in a test print every check and what went wrong.

use std::fmt;
use std::time::{Duration, Instant};

use crate::{CallError, PullStatus};

use super::harness::{Builder, Harness, HarnessError, SourceEvent};

/// The default of [`Suite::call_bound`].
pub const DEFAULT_CALL_BOUND: Duration = Duration::from_millis(500);

/// Runs the suite with its defaults on the connector `builder` makes (its config, id and
/// bindings; the suite sets the call limit).
///
/// ```
/// # use weir_sdk::{Connector, ConnectorContext, Event, NoConfig, Result, SinkContext, SinkReply, connector_plugin};
/// # /// A sink that acks every event.
/// # pub struct Acker;
/// # #[connector_plugin(name = "acker")]
/// # impl Connector for Acker {
/// #     type Config = NoConfig;
/// #     fn new(_config: NoConfig, _ctx: &ConnectorContext) -> Result<Self> { Ok(Acker) }
/// #     fn on_event(&mut self, _ctx: &mut SinkContext<'_>, _event: Event<'_>) -> Result<SinkReply> {
/// #         Ok(SinkReply::Ack)
/// #     }
/// # }
/// use weir_host::testing::{Harness, conformance};
///
/// # fn main() -> Result<(), conformance::Nonconformance> {
/// // `Acker` is a sink (`#[connector_plugin] impl Connector for Acker`) that acks all.
/// conformance::check(Harness::builder::<Acker>().config(""))?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Nonconformance`], with the report, when a check fails.
pub fn check(builder: Builder) -> Result<Report, Nonconformance> {
    Suite::new().run(builder)
}

/// The suite's settings.
#[derive(Debug, Clone)]
pub struct Suite {
    call_bound: Duration,
    min_events: usize,
    events: usize,
    within: Duration,
    sample: Vec<Vec<u8>>,
}

impl Default for Suite {
    fn default() -> Self {
        Self::new()
    }
}

impl Suite {
    /// The defaults: calls bounded by [`DEFAULT_CALL_BOUND`]; a source must produce at
    /// least one event (up to 16 are used) within 2 s; sinks get 64 small JSON events.
    pub fn new() -> Self {
        Self {
            call_bound: DEFAULT_CALL_BOUND,
            min_events: 1,
            events: 16,
            within: Duration::from_secs(2),
            sample: (0..64)
                .map(|n| format!(r#"{{"n":{n},"text":"weir conformance"}}"#).into_bytes())
                .collect(),
        }
    }

    /// How long any one call may take. A connector is called on its pipeline's thread:
    /// a call that blocks delays every other connector there.
    #[must_use]
    pub fn call_bound(mut self, bound: Duration) -> Self {
        self.call_bound = bound;
        self
    }

    /// How many events a source must produce within [`within`](Self::within) (1 by
    /// default; 0 for a source that may have nothing to say in a test).
    #[must_use]
    pub fn min_events(mut self, count: usize) -> Self {
        self.min_events = count;
        self.events = self.events.max(count);
        self
    }

    /// How long a source is pulled for its events, and how long a sink that closed its
    /// breaker is ticked for it to reopen (2 s by default).
    #[must_use]
    pub fn within(mut self, within: Duration) -> Self {
        self.within = within;
        self
    }

    /// The payloads handed to a sink (64 small JSON objects by default; at least one).
    #[must_use]
    pub fn sample<B: Into<Vec<u8>>>(mut self, payloads: impl IntoIterator<Item = B>) -> Self {
        let sample: Vec<Vec<u8>> = payloads.into_iter().map(Into::into).collect();
        if !sample.is_empty() {
            self.sample = sample;
        }
        self
    }

    /// Runs every check on the connector `builder` makes.
    ///
    /// # Errors
    /// [`Nonconformance`], with the report, when a check fails.
    pub fn run(&self, builder: Builder) -> Result<Report, Nonconformance> {
        let mut report = Report {
            connector: String::new(),
            plugin: String::new(),
            checks: Vec::new(),
        };
        let (id, plugin) = builder.names();
        report.connector = id;
        report.plugin = if plugin.is_empty() {
            plugin
        } else {
            format!("`{plugin}`")
        };
        let mut harness = match builder.call_limit(self.call_bound).build() {
            Ok(harness) => {
                report.connector = harness.id().to_owned();
                report.plugin = format!(
                    "`{}` {}, {}",
                    harness.info().name,
                    harness.info().version,
                    harness.info().capabilities()
                );
                report.pass("new", "created from its config".to_owned());
                harness
            }
            Err(error) => {
                report.fail("new", failure(&error));
                return Err(Nonconformance(report));
            }
        };
        // What the pipeline would use it as: a `file` connector bound as a sink is not
        // pulled, whatever its plugin can do.
        let is_source = harness.info().is_source && harness.bound_as().source;
        let is_sink = harness.info().is_sink && harness.bound_as().sink;
        if !is_source && !is_sink {
            report.fail(
                "bindings",
                "bound neither as a source nor as a sink: only its lifecycle can be checked"
                    .to_owned(),
            );
        }
        let mut run = Run {
            suite: self,
            harness: &mut harness,
            report: &mut report,
            pulled: Vec::new(),
            finished: false,
        };
        run.check("connect and start", |r| {
            r.harness.start()?;
            Ok("connected and started".to_owned())
        });
        if is_source {
            run.check("pull", Run::pull);
            run.check("feedback", Run::feedback);
            run.check("circuit notices", |r| {
                r.harness.close_circuit()?;
                r.harness.open_circuit()?;
                Ok("a downstream breaker closing and opening was accepted".to_owned())
            });
        }
        let mut acks = None;
        if is_sink {
            run.check("deliver", |r| {
                let (text, acked) = r.deliver()?;
                acks = Some(acked);
                Ok(text)
            });
            let sample = self.sample.len();
            match acks {
                Some(0) => run.report.fail(
                    "acks",
                    format!(
                        "acked none of the {sample} events it was handed (every reply was Fail): \
                         a sink that never acks makes its sources resend for ever"
                    ),
                ),
                Some(acked) => run.report.pass(
                    "acks",
                    format!("acked {acked} of the {sample} events it was handed"),
                ),
                None => run.report.skip(
                    "acks",
                    "no events were delivered (see `deliver`)".to_owned(),
                ),
            }
        }
        run.check("pause and resume", |r| {
            r.harness.pause()?;
            r.harness.resume()?;
            if is_source && !r.finished {
                let pulled = r.pull_checked("after the resume")?;
                r.harness.ack_all(&pulled)?;
            }
            if is_sink {
                r.harness.deliver(r.suite.sample.iter().take(4))?;
            }
            Ok("answered both, and works after them".to_owned())
        });
        run.check("drain with events in flight", |r| {
            let in_flight = if is_source && !r.finished {
                r.pull_checked("before the drain")?
            } else {
                Vec::new()
            };
            r.harness.drain()?;
            let mut said = Vec::new();
            if is_source {
                r.harness.ack_all(&in_flight)?;
                said.push(format!(
                    "took the acks of {} events pulled before the drain",
                    in_flight.len()
                ));
            }
            if is_sink {
                let delivered = r.harness.deliver(r.suite.sample.iter().take(8))?;
                if delivered.processed < delivered.replies.len() {
                    return Err(Failure(format!(
                        "after the drain, replied to {} of the {} events still in flight",
                        delivered.processed,
                        delivered.replies.len()
                    )));
                }
                said.push(format!(
                    "replied to the {} events that arrived after the drain",
                    delivered.replies.len()
                ));
            }
            Ok(said.join("; "))
        });
        run.check("stop and drop", |r| {
            r.harness.stop()?;
            Ok("on_stop and Drop returned cleanly".to_owned())
        });
        let slowest = harness.slowest_call();
        match harness.stuck_in() {
            Some(method) => report.fail(
                "no call blocks",
                format!(
                    "`{method}`{} did not return within {:?}: {}",
                    super::harness::in_methods(method),
                    self.call_bound,
                    advice(method)
                ),
            ),
            None => report.pass(
                "no call blocks",
                match slowest {
                    Some((method, took)) => format!(
                        "slowest: `{method}`, {took:.1?} (bound {:?})",
                        self.call_bound
                    ),
                    None => "no calls".to_owned(),
                },
            ),
        }
        if report.passed() {
            Ok(report)
        } else {
            Err(Nonconformance(report))
        }
    }
}

/// What to do about a call that blocks.
fn advice(method: &str) -> &'static str {
    match method {
        "pull" => {
            "with nothing to say, return `PullStatus::Empty` at once, and wake the host with \
             `ctx.waker()` (or set `ctx.pull_after`) instead of waiting in `pull`"
        }
        "sink_batch" => {
            "close the circuit breaker (`ctx.close_circuit()`) while the peer is slow, and \
             reopen it from `on_tick`, instead of waiting in `on_event`"
        }
        "connect" => {
            "return `Ok(false)` and let the host retry with backoff instead of waiting in \
             `connect`"
        }
        _ => "a connector is called on its pipeline's thread; do slow work on a thread of its own",
    }
}

/// One check in progress.
struct Run<'a> {
    suite: &'a Suite,
    harness: &'a mut Harness,
    report: &'a mut Report,
    /// Events pulled by the `pull` check, for the `feedback` check.
    pulled: Vec<SourceEvent>,
    /// The source said it finished: the host does not pull it again.
    finished: bool,
}

impl Run<'_> {
    /// Runs `body` unless an earlier check left the connector unusable.
    fn check(
        &mut self,
        name: &'static str,
        body: impl FnOnce(&mut Self) -> Result<String, Failure>,
    ) {
        if let Some(method) = self.harness.stuck_in() {
            self.report
                .skip(name, format!("the connector is still in `{method}`"));
            return;
        }
        if self.harness.is_poisoned() {
            self.report.skip(
                name,
                "an earlier call poisoned the connector (a panic, or a reply the ABI does not \
                 allow)"
                    .to_owned(),
            );
            return;
        }
        match body(self) {
            Ok(text) => self.report.pass(name, text),
            Err(Failure(text)) => self.report.fail(name, text),
        }
    }

    fn pull(&mut self) -> Result<String, Failure> {
        const MAX_SPINS: u32 = 1000;
        let suite = self.suite;
        let deadline = super::harness::after(suite.within);
        // Small limits first: a source must not push more than it was asked for.
        let limits = [1u32, 3, 64];
        let (mut pulls, mut spins, mut finished) = (0u32, 0u32, false);
        while self.pulled.len() < suite.events && Instant::now() < deadline {
            let max = limits[(pulls as usize).min(limits.len() - 1)];
            let pulled = self.harness.pull_at_most(max)?;
            pulls += 1;
            if pulled.events.len() > max as usize {
                return Err(Failure(format!(
                    "pull {pulls} returned {} events when asked for at most {max}",
                    pulled.events.len()
                )));
            }
            let got_some = !pulled.events.is_empty();
            self.pulled.extend(pulled.events);
            match pulled.status {
                PullStatus::Finished => {
                    finished = true;
                    break;
                }
                PullStatus::Ready if !got_some => {
                    spins += 1;
                    if spins >= MAX_SPINS {
                        return Err(Failure(format!(
                            "returned `Ready` with no events {MAX_SPINS} times in a row: the \
                             host pulls again at once, so it would spin; return \
                             `PullStatus::Empty` when there is nothing"
                        )));
                    }
                }
                PullStatus::Ready => spins = 0,
                _ => {
                    spins = 0;
                    if !got_some {
                        let pause = pulled
                            .quiet_for
                            .unwrap_or(Duration::from_millis(1))
                            .min(deadline.saturating_duration_since(Instant::now()));
                        std::thread::sleep(pause);
                    }
                }
            }
        }
        self.finished = finished;
        if self.pulled.len() < suite.min_events {
            return Err(Failure(format!(
                "produced {} events in {pulls} pulls {} (wanted at least {}; lower \
                 `Suite::min_events` for a source that may be silent in a test)",
                self.pulled.len(),
                if finished {
                    "before it finished".to_owned()
                } else {
                    format!("within {:?}", suite.within)
                },
                suite.min_events
            )));
        }
        Ok(format!(
            "{} events in {pulls} pulls, never more than asked for{}",
            self.pulled.len(),
            if finished { "; then it finished" } else { "" }
        ))
    }

    /// One pull of at most `PULL_MAX` events, failed if the source pushes more.
    fn pull_checked(&mut self, when: &str) -> Result<Vec<SourceEvent>, Failure> {
        const PULL_MAX: u32 = 64;
        let pulled = self.harness.pull_at_most(PULL_MAX)?;
        if pulled.events.len() > PULL_MAX as usize {
            return Err(Failure(format!(
                "a pull {when} returned {} events when asked for at most {PULL_MAX}",
                pulled.events.len()
            )));
        }
        self.finished = pulled.status == PullStatus::Finished;
        Ok(pulled.events)
    }

    fn feedback(&mut self) -> Result<String, Failure> {
        if self.pulled.is_empty() {
            return Ok("nothing was pulled, so nothing to ack".to_owned());
        }
        let pulled = std::mem::take(&mut self.pulled);
        let (acked, failed) = pulled.split_at(pulled.len().div_ceil(2));
        self.harness.ack_all(acked)?;
        for event in failed {
            self.harness.fail(event.id)?;
        }
        Ok(format!(
            "took {} acks (in one call) and {} fails (one by one)",
            acked.len(),
            failed.len()
        ))
    }

    /// Delivers the sample; the text of the check and the number of events acked.
    fn deliver(&mut self) -> Result<(String, usize), Failure> {
        let sample = &self.suite.sample;
        let mut batches = vec![&sample[..1]];
        let rest = &sample[1..];
        batches.extend(rest.chunks(16));
        let (mut acked, mut reopened, mut delivered) = (0, 0, 0);
        for batch in batches.iter().filter(|b| !b.is_empty()) {
            let outcome = self.harness.deliver(batch.iter())?;
            if outcome.processed < batch.len() {
                return Err(Failure(format!(
                    "replied to {} of the {} events of a batch: every event handed to a sink \
                     needs a reply",
                    outcome.processed,
                    batch.len()
                )));
            }
            delivered += batch.len();
            acked += outcome.acked();
            if self.harness.circuit() == crate::Circuit::Closed {
                let deadline = super::harness::after(self.suite.within);
                while self.harness.circuit() == crate::Circuit::Closed {
                    if Instant::now() >= deadline {
                        return Err(Failure(format!(
                            "closed its circuit breaker and did not reopen it in {:?} of ticks \
                             (its sources stay paused until it does)",
                            self.suite.within
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    self.harness.tick()?;
                }
                reopened += 1;
            }
        }
        let mut text = format!(
            "replied to all {delivered} events, in {} batches",
            batches.len()
        );
        if reopened > 0 {
            text.push_str(&format!(
                "; closed its breaker {reopened} times and reopened it when ticked"
            ));
        }
        Ok((text, acked))
    }
}

/// Why a check failed.
struct Failure(String);

impl From<HarnessError> for Failure {
    fn from(error: HarnessError) -> Self {
        Failure(failure(&error))
    }
}

/// A harness error as a check's failure, with advice where there is some.
fn failure(error: &HarnessError) -> String {
    match error {
        HarnessError::Timeout { method, limit, .. } => {
            format!(
                "`{method}`{} did not return within {limit:?}: {}",
                super::harness::in_methods(method),
                advice(method)
            )
        }
        HarnessError::Call(CallError::Panicked { .. }) => {
            format!("{error} (the host would restart it)")
        }
        _ => error.to_string(),
    }
}

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It passed; what was seen.
    Passed(String),
    /// It failed; why.
    Failed(String),
    /// It was not run; why.
    Skipped(String),
}

/// One check and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    /// The check's name.
    pub name: &'static str,
    /// How it went.
    pub outcome: Outcome,
}

/// Every check the suite ran on a connector, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The connector's id.
    pub connector: String,
    /// Its plugin: name, version, capabilities.
    pub plugin: String,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed (a check is only skipped after another failed).
    pub fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| matches!(c.outcome, Outcome::Passed(_)))
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> + '_ {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    fn pass(&mut self, name: &'static str, text: String) {
        self.checks.push(Check {
            name,
            outcome: Outcome::Passed(text),
        });
    }

    fn fail(&mut self, name: &'static str, text: String) {
        self.checks.push(Check {
            name,
            outcome: Outcome::Failed(text),
        });
    }

    fn skip(&mut self, name: &'static str, text: String) {
        self.checks.push(Check {
            name,
            outcome: Outcome::Skipped(text),
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        write!(f, "conformance of connector `{}`", self.connector)?;
        if !self.plugin.is_empty() {
            write!(f, " (plugin {})", self.plugin)?;
        }
        match failed {
            0 => writeln!(f, ": passed")?,
            1 => writeln!(f, ": 1 check failed")?,
            n => writeln!(f, ": {n} checks failed")?,
        }
        for check in &self.checks {
            let (mark, text) = match &check.outcome {
                Outcome::Passed(text) => ("ok  ", text),
                Outcome::Failed(text) => ("FAIL", text),
                Outcome::Skipped(text) => ("skip", text),
            };
            writeln!(f, "  {mark} {}: {text}", check.name)?;
        }
        Ok(())
    }
}

/// A connector failed the suite; the report says which checks and why. Its `Debug` is the
/// report, so that a test's `unwrap` or `?` prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Nonconformance(pub Report);

impl fmt::Display for Nonconformance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Nonconformance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Nonconformance {}
