//! One connector instance on its own thread: the messages it takes and its event loop.
//!
//! Plugin calls are synchronous and may block (file and network I/O), so each instance
//! runs on a dedicated thread and never on the async executor. The thread owns the hot
//! path end to end (pull → preprocess → decode → route in [`source`](super::source);
//! receive → encode → postprocess → deliver → reply in [`sink`](super::sink)), so a batch
//! costs no task hand-off; the world only routes control. The instance itself and its
//! restart policy belong to the [`supervisor`](super::supervisor).
//!
//! The loop never nests: each turn it answers the inbox, lets the supervisor make one
//! attempt if one is due, delivers one waiting batch, pulls once, and then sleeps on the
//! inbox until the next of those is due. So a stop request is seen within one plugin call,
//! whatever state the connector is in.
//!
//! Flow control is by credit: a source pulls only while fewer than `max_in_flight` of its
//! events await their verdict, so sends never block, memory stays bounded, and a connector
//! may even be bound to itself without deadlock.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use weir_sdk::Circuit;

use super::Port;
use super::metrics::Metrics;
use super::sink::Sink;
use super::source::Source;
use super::supervisor::{Supervisor, Verdict, notify};
use super::upgrade::{Step, Upgrade, UpgradeRequest};
use super::{RuntimeOptions, WorldEvent};
use crate::codec::Value;
use crate::config::{ConnectorSpec, IsolationMode, Links};
use crate::error::CallError;
use crate::loader::{EventId, InstanceOptions, Isolation, Notice, Plugin, Sides};

/// An event inside the host: its id at its source, its decoded value and its metadata.
#[derive(Debug, Clone)]
pub struct Event {
    /// Stream and pull id at the source.
    pub id: EventId,
    /// The decoded value.
    pub value: Value,
    /// The metadata the source pushed with the event it was decoded from (a JSON object,
    /// as bytes), handed to sinks as is; empty when there is none.
    pub meta: Bytes,
}

/// Events from one pull of one source, on their way to every sink bound to `port`.
#[derive(Debug)]
pub struct Batch {
    /// Index of the source connector.
    pub origin: usize,
    /// Which incarnation of the source (restarts count up), so stale verdicts are ignored.
    pub incarnation: u32,
    /// Batch number at the source.
    pub id: u64,
    /// `out` or `err`.
    pub port: Port,
    /// When the source's pull returned, nanoseconds since the Unix epoch.
    pub ingest_ns: u64,
    /// The events.
    pub events: Vec<Event>,
}

/// A sink's verdict on a whole batch: which events it did not deliver.
#[derive(Debug)]
pub(crate) struct BatchFeedback {
    /// The sink whose verdict it is.
    pub(crate) sink: usize,
    pub(crate) batch: u64,
    pub(crate) incarnation: u32,
    pub(crate) failed: Vec<u32>,
}

/// What a connector thread receives.
#[derive(Debug)]
pub(crate) enum Msg {
    Events(Arc<Batch>),
    Feedback(BatchFeedback),
    /// A sink this source feeds moved its breaker. Sent by the sink itself, before the
    /// verdicts of the batch that moved it, so the source pauses before it gets credit back.
    Circuit {
        sink: usize,
        circuit: Circuit,
    },
    /// A sink this source feeds failed for good: nothing is sent to it any more.
    SinkDead(usize),
    /// A sink removed from the pipeline did not stop in time (stuck in a plugin call): its
    /// verdicts will not come, so what awaits them fails, and nothing is sent to it.
    SinkGone(usize),
    Control(Control),
    /// Run another plugin from now on (see [`super::upgrade`]).
    Upgrade(Box<UpgradeRequest>),
    /// The pipeline changed (see [`super::apply`]): new routes, and the inboxes of
    /// connectors that joined.
    Rewire(Rewire),
    /// The instance's waker was woken: pull the source now.
    Wake,
}

/// What a connector's wakers wake (`weir_sdk::Waker`): a [`Msg::Wake`] in its inbox, at
/// most one at a time however often it is woken before the thread sees it.
#[derive(Debug)]
pub(crate) struct ConnectorWaker {
    inbox: Sender<Msg>,
    /// A wake is in the inbox, not seen yet.
    pending: std::sync::atomic::AtomicBool,
}

impl std::task::Wake for ConnectorWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.pending.swap(true, std::sync::atomic::Ordering::AcqRel) {
            // The thread may be gone (the connector stopped): then nothing is to be woken.
            let _ = self.inbox.send(Msg::Wake);
        }
    }
}

/// New routes for a connector, answered once they are in use.
#[derive(Debug)]
pub(crate) struct Rewire {
    pub(crate) peers: Arc<Vec<Sender<Msg>>>,
    pub(crate) routes: Links,
    pub(crate) done: tokio::sync::oneshot::Sender<()>,
}

/// Lifecycle commands from the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Stop pulling; report `Drained` once nothing is in flight.
    Drain,
    /// Stop: fail back whatever is still queued, call `on_stop`, close, exit the thread.
    Stop,
    /// The connector was removed from the pipeline (its sources no longer send to it):
    /// stop pulling, let what it produced get its verdicts and deliver what waits for it,
    /// then stop; within the drain timeout, past which the rest is failed back.
    Retire,
}

/// Everything one connector thread needs, as the world hands it over.
pub(crate) struct ConnectorThread {
    pub(crate) index: usize,
    pub(crate) spec: ConnectorSpec,
    pub(crate) plugin: Plugin,
    pub(crate) inbox: Receiver<Msg>,
    pub(crate) world: UnboundedSender<WorldEvent>,
    pub(crate) peers: Arc<Vec<Sender<Msg>>>,
    pub(crate) routes: Links,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) options: Arc<RuntimeOptions>,
}

/// What the supervisor, the source side and the sink side all read.
pub(crate) struct Shared {
    pub(crate) index: usize,
    waker: Arc<ConnectorWaker>,
    pub(crate) spec: ConnectorSpec,
    pub(crate) plugin: Plugin,
    world: UnboundedSender<WorldEvent>,
    peers: Arc<Vec<Sender<Msg>>>,
    pub(crate) routes: Links,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) options: Arc<RuntimeOptions>,
}

impl Shared {
    pub(crate) fn id(&self) -> &str {
        &self.spec.id
    }

    /// A waker for this connector's instances.
    pub(crate) fn waker(&self) -> std::task::Waker {
        std::task::Waker::from(self.waker.clone())
    }

    /// How this connector's instances are created: bound as the routes say, waking this
    /// thread, and in a child process when its isolation (or the runtime's default) says.
    pub(crate) fn instance_options(&self) -> Result<InstanceOptions, CallError> {
        self.instance_options_for(&self.spec, &self.plugin)
    }

    /// [`instance_options`](Self::instance_options) for an instance of `plugin` configured
    /// as `spec`, which an upgrade brings (they replace this connector's when it lands).
    pub(crate) fn instance_options_for(
        &self,
        spec: &ConnectorSpec,
        plugin: &Plugin,
    ) -> Result<InstanceOptions, CallError> {
        let options = InstanceOptions::new()
            .bound_as(Sides {
                source: self.routes.is_source(),
                sink: self.routes.is_sink(),
            })
            .waker(self.waker());
        let isolated = match spec.isolation {
            IsolationMode::Process => true,
            IsolationMode::InProcess => false,
            IsolationMode::Default => self.options.isolate_by_default,
        };
        if !isolated || (plugin.is_builtin() && spec.isolation == IsolationMode::Default) {
            // A built-in has no file to load in a child: `--isolation process` leaves it in
            // process (an explicit `isolation = "process"` is refused when it is created).
            return Ok(options);
        }
        let Some(program) = &self.options.child_program else {
            return Err(CallError::Permanent {
                connector: spec.id.clone(),
                plugin: plugin.name().to_owned(),
                method: "new",
                message: "`isolation = \"process\"` needs a weir to run the connector in \
                          (RuntimeOptions::child_program is not set)"
                    .to_owned(),
            });
        };
        let mut isolation = Isolation::new(program, spec.call_timeout);
        if let Some(bytes) = spec.memory_limit {
            isolation = isolation.memory_limit(bytes);
        }
        Ok(options.isolate(isolation))
    }

    pub(crate) fn tell_world(&self, event: WorldEvent) {
        // The world outlives every connector thread unless the process is exiting anyway.
        let _ = self.world.send(event);
    }

    /// Sends to another connector's thread; `false` if it is gone.
    pub(crate) fn send(&self, to: usize, msg: Msg) -> bool {
        self.peers[to].send(msg).is_ok()
    }
}

/// Rate limit for a warning that could otherwise repeat once per event: the first one is
/// logged, then at most one per window, saying how many were folded into it.
#[derive(Debug)]
pub(crate) struct Throttle {
    window: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub(crate) fn new() -> Self {
        Self {
            window: Duration::from_secs(5),
            last: None,
            suppressed: 0,
        }
    }

    /// Counts `n` occurrences; returns how many to report if a warning is due now.
    pub(crate) fn note(&mut self, n: u64) -> Option<u64> {
        let now = Instant::now();
        self.suppressed += n;
        match self.last {
            Some(last) if now.duration_since(last) < self.window => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Whether the event loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The longest the loop sleeps when nothing is due (it wakes for any message anyway, and
/// everything timed is due by then): a safety net, so long that idle connectors cost nothing
/// (1,000 of them waking twice a second took 3% of a core).
const IDLE_WAIT: Duration = Duration::from_secs(2);

struct Connector {
    shared: Shared,
    inbox: Receiver<Msg>,
    supervisor: Supervisor,
    source: Source,
    sink: Sink,
    /// An upgrade to another plugin under way.
    upgrade: Option<Upgrade>,
    draining: bool,
    /// Removed from the pipeline: stops once idle, or at this deadline.
    retire_by: Option<Instant>,
    shutdown_reported: bool,
}

impl ConnectorThread {
    /// Runs the connector until it is told to stop.
    pub(crate) fn run(self) {
        let waker = Arc::new(ConnectorWaker {
            inbox: self.peers[self.index].clone(),
            pending: std::sync::atomic::AtomicBool::new(false),
        });
        let shared = Shared {
            index: self.index,
            waker,
            spec: self.spec,
            plugin: self.plugin,
            world: self.world,
            peers: self.peers,
            routes: self.routes,
            metrics: self.metrics,
            options: self.options,
        };
        let mut connector = Connector {
            source: Source::new(&shared),
            sink: Sink::new(&shared),
            shared,
            inbox: self.inbox,
            supervisor: Supervisor::new(),
            upgrade: None,
            draining: false,
            retire_by: None,
            shutdown_reported: false,
        };
        connector.event_loop();
        connector.shut_down();
    }
}

impl Connector {
    fn event_loop(&mut self) {
        loop {
            loop {
                match self.inbox.try_recv() {
                    Ok(msg) => {
                        if self.handle(msg) == Flow::Stop {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if self
                .supervisor
                .next_try()
                .is_some_and(|at| at <= Instant::now())
            {
                let paused = self.source.is_paused();
                if let Err(error) = self.supervisor.step(&self.shared, paused) {
                    self.crashed(&error);
                }
            }
            self.step_upgrade();
            self.work();
            if self.retired() {
                return;
            }
            let wait = self.next_wakeup().saturating_duration_since(Instant::now());
            if wait.is_zero() {
                continue;
            }
            match self.inbox.recv_timeout(wait) {
                Ok(msg) => {
                    if self.handle(msg) == Flow::Stop {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// At most one delivery, one pull and one tick: the inbox is looked at in between.
    fn work(&mut self) {
        let now = Instant::now();
        if self.sink.next_delivery().is_some_and(|at| at <= now) {
            let result = match self.supervisor.running() {
                Some(instance) => self.sink.deliver_next(&self.shared, instance),
                None => Ok(()),
            };
            self.after_call(result);
        }
        if self
            .source
            .next_pull(&self.shared, self.pulls_stopped())
            .is_some_and(|at| at <= now)
        {
            let incarnation = self.supervisor.incarnation;
            let result = match self.supervisor.running() {
                Some(instance) => self.source.pull(&self.shared, instance, incarnation),
                None => Ok(()),
            };
            self.after_call(result);
            self.source.report_progress(&self.shared, self.draining);
        }
        if self
            .sink
            .next_tick(&self.shared)
            .is_some_and(|at| at <= now)
        {
            let result = match self.supervisor.running() {
                Some(instance) => self.sink.tick(&self.shared, instance),
                None => Ok(()),
            };
            self.after_call(result);
        }
    }

    /// Whether a connector removed from the pipeline is done: nothing it produced awaits a
    /// verdict and nothing waits for it to deliver, or its time is up (then the rest is
    /// failed back as it stops).
    fn retired(&self) -> bool {
        let Some(by) = self.retire_by else {
            return false;
        };
        let idle = self.source.is_idle() && self.sink.next_delivery().is_none();
        if !idle && Instant::now() >= by {
            tracing::warn!(connector = %self.shared.id(), "removed connector did not drain in time: what is left is failed back");
        }
        idle || Instant::now() >= by
    }

    /// Whether the source is not pulled: the pipeline drains, or the instance does for an
    /// upgrade.
    fn pulls_stopped(&self) -> bool {
        self.draining || self.upgrade.as_ref().is_some_and(Upgrade::is_draining)
    }

    /// Moves an upgrade on, if one is under way and a step is due.
    fn step_upgrade(&mut self) {
        let Some(upgrade) = &mut self.upgrade else {
            return;
        };
        if upgrade.next_step() > Instant::now() && !upgrade.is_draining() {
            return;
        }
        let paused = self.source.is_paused();
        match upgrade.step(
            &mut self.shared,
            &mut self.supervisor,
            &mut self.source,
            &mut self.sink,
            paused,
        ) {
            Step::Pending => {}
            Step::Done => self.upgrade = None,
            Step::Crashed(error) => {
                self.upgrade = None;
                self.crashed(&error);
            }
        }
    }

    /// An upgrade asked of this connector: started, done at once (the instance is not
    /// running), or refused.
    fn begin_upgrade(&mut self, request: UpgradeRequest) {
        let refusal = if self.draining {
            Some("the pipeline is shutting down".to_owned())
        } else if self.upgrade.is_some() {
            Some("an upgrade of this connector is already under way".to_owned())
        } else if self.supervisor.is_dead() {
            Some("the connector failed for good".to_owned())
        } else {
            None
        };
        if let Some(why) = refusal {
            let _ = request.reply.send(Err(why));
            return;
        }
        self.upgrade = Some(Upgrade::new(request, &self.shared));
        self.step_upgrade();
    }

    fn next_wakeup(&self) -> Instant {
        let mut at = Instant::now() + IDLE_WAIT;
        if let Some(next_try) = self.supervisor.next_try() {
            at = at.min(next_try);
        }
        if let Some(upgrade) = &self.upgrade {
            at = at.min(upgrade.next_step());
        }
        if let Some(by) = self.retire_by {
            at = at.min(by);
        }
        if self.supervisor.is_running() {
            let due = [
                self.sink.next_delivery(),
                self.source.next_pull(&self.shared, self.pulls_stopped()),
                self.sink.next_tick(&self.shared),
            ];
            for next in due.into_iter().flatten() {
                at = at.min(next);
            }
        }
        at
    }

    fn handle(&mut self, msg: Msg) -> Flow {
        match msg {
            Msg::Events(batch) => {
                if self.supervisor.is_dead() {
                    self.sink.fail_batch(&self.shared, &batch);
                } else {
                    self.sink.accept(batch);
                }
            }
            Msg::Feedback(feedback) => {
                let result = self.give_verdicts(feedback);
                self.after_call(result);
                self.source.report_progress(&self.shared, self.draining);
            }
            Msg::Circuit { sink, circuit } => {
                let result =
                    self.source
                        .circuit(&self.shared, self.supervisor.running(), sink, circuit);
                self.after_call(result);
            }
            Msg::SinkDead(sink) => {
                self.source.sink_dead(&self.shared, sink);
                self.source.report_progress(&self.shared, self.draining);
            }
            Msg::SinkGone(sink) => {
                let incarnation = self.supervisor.incarnation;
                let result = self.source.sink_gone(
                    &self.shared,
                    self.supervisor.running(),
                    incarnation,
                    sink,
                );
                self.after_call(result);
                self.source.report_progress(&self.shared, self.draining);
            }
            Msg::Upgrade(request) => self.begin_upgrade(*request),
            Msg::Rewire(rewire) => self.rewire(rewire),
            Msg::Wake => {
                // Cleared before the pull, so a wake during it queues another.
                self.shared
                    .waker
                    .pending
                    .store(false, std::sync::atomic::Ordering::Release);
                self.source.woken();
            }
            Msg::Control(control @ (Control::Drain | Control::Retire)) => {
                let why = if control == Control::Retire {
                    tracing::info!(connector = %self.shared.id(), "removed from the pipeline: draining, then stopping");
                    self.retire_by = Some(Instant::now() + self.shared.options.drain_timeout);
                    "the connector was removed from the pipeline"
                } else {
                    "the pipeline is shutting down"
                };
                if let Some(upgrade) = self.upgrade.take() {
                    upgrade.abort(&self.shared, why.to_owned());
                }
                if !self.draining {
                    self.draining = true;
                    if self.shared.routes.is_source()
                        && let Some(instance) = self.supervisor.running()
                    {
                        let result = notify(instance, &self.shared, Notice::Drain);
                        self.after_notice(result);
                    }
                }
                self.source.report_progress(&self.shared, self.draining);
            }
            Msg::Control(Control::Stop) => return Flow::Stop,
        }
        Flow::Continue
    }

    /// Takes new routes (the pipeline changed), and answers.
    fn rewire(&mut self, rewire: Rewire) {
        let Rewire {
            peers,
            routes,
            done,
        } = rewire;
        let old = std::mem::replace(&mut self.shared.routes, routes);
        self.shared.peers = peers;
        let result = self
            .source
            .rewire(&self.shared, self.supervisor.running(), &old);
        self.after_call(result);
        self.sink.rewire(&self.shared, &old);
        self.source.report_progress(&self.shared, self.draining);
        let _ = done.send(());
    }

    /// A sink's verdicts on one of this source's batches, told to the running instance.
    fn give_verdicts(&mut self, feedback: BatchFeedback) -> Result<(), CallError> {
        let incarnation = self.supervisor.incarnation;
        self.source.on_feedback(
            &self.shared,
            self.supervisor.running(),
            incarnation,
            feedback,
        )
    }

    /// After a call into the plugin: a failure that ends the instance goes to the
    /// supervisor, and a shutdown the connector asked for goes to the world.
    fn after_call(&mut self, result: Result<(), CallError>) {
        if let Err(error) = result {
            self.crashed(&error);
        }
        if !self.shutdown_reported
            && self
                .supervisor
                .running()
                .is_some_and(|instance| instance.shutdown_requested())
        {
            self.shutdown_reported = true;
            self.shared
                .tell_world(WorldEvent::ShutdownRequested(self.shared.index));
        }
    }

    /// A notice's error ends the instance only when it is a panic or permanent.
    fn after_notice(&mut self, result: Result<(), CallError>) {
        match result {
            Err(error) if error.is_poisoning() || error.is_permanent() => self.crashed(&error),
            Err(error) => {
                tracing::warn!(connector = %self.shared.id(), %error, "lifecycle notice failed");
            }
            Ok(()) => {}
        }
    }

    /// The instance failed in a way that ends it.
    fn crashed(&mut self, error: &CallError) {
        self.source.forget_in_flight(&self.shared);
        if self.supervisor.failed(&self.shared, error) == Verdict::Dead {
            // Nothing will be delivered here any more: what waits fails back, and the
            // sources stop sending.
            self.sink.fail_waiting(&self.shared);
            for &source in &self.shared.routes.upstream {
                if source != self.shared.index {
                    self.shared.send(source, Msg::SinkDead(self.shared.index));
                }
            }
            self.source.sink_dead(&self.shared, self.shared.index);
            self.source.died();
        }
        self.source.report_progress(&self.shared, self.draining);
    }

    /// Stops the connector. After a stop request nothing more is delivered: whatever is
    /// still queued is failed back to its source (a drain that completed left nothing).
    fn shut_down(&mut self) {
        while let Ok(msg) = self.inbox.try_recv() {
            match msg {
                Msg::Events(batch) => self.sink.fail_batch(&self.shared, &batch),
                Msg::Feedback(feedback) => {
                    if let Err(error) = self.give_verdicts(feedback) {
                        tracing::warn!(connector = %self.shared.id(), %error, "ack/fail handling failed at stop");
                    }
                }
                Msg::Upgrade(request) => {
                    let _ = request
                        .reply
                        .send(Err("the connector is stopping".to_owned()));
                }
                Msg::Rewire(rewire) => {
                    let _ = rewire.done.send(());
                }
                Msg::Circuit { .. }
                | Msg::SinkDead(_)
                | Msg::SinkGone(_)
                | Msg::Wake
                | Msg::Control(_) => {}
            }
        }
        if let Some(upgrade) = self.upgrade.take() {
            upgrade.abort(&self.shared, "the connector is stopping".to_owned());
        }
        self.sink.fail_waiting(&self.shared);
        if let Err(error) = self
            .source
            .fail_in_flight(&self.shared, self.supervisor.running())
        {
            tracing::warn!(connector = %self.shared.id(), %error, "fail handling failed at stop");
        }
        let error = match self.supervisor.stop(&self.shared) {
            Ok(()) => None,
            Err(error) => {
                tracing::error!(connector = %self.shared.id(), %error, "stopping the connector failed");
                Some(error.to_string())
            }
        };
        self.shared.tell_world(WorldEvent::Stopped {
            index: self.shared.index,
            error,
        });
    }
}
