//! One connector instance on its own thread: the source and sink managers.
//!
//! Plugin calls are synchronous and may block (file and network I/O), so each instance
//! runs on a dedicated thread and never on the async executor. The thread owns the hot
//! path end to end (pull → preprocess → decode → route; receive → encode → postprocess →
//! deliver → reply), so a batch costs no task hand-off; the world only routes control.
//!
//! Flow control is by credit: a source pulls only while fewer than `max_in_flight` of its
//! events await their verdict, so sends never block, memory stays bounded, and a connector
//! may even be bound to itself without deadlock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use weir_sdk::abi::{Feedback, FeedbackKind};
use weir_sdk::{Circuit, PullStatus, SinkReply};

use super::metrics::Metrics;
use super::{RuntimeOptions, WorldEvent};
use crate::codec::{Encoded, Value};
use crate::config::{ConnectorSpec, Port};
use crate::error::CallError;
use crate::loader::{ConnectorInstance, EventBatch, EventId, Notice, Plugin, SinkEvent};
use crate::processor::{Chain, Frames, ProcessorError};

/// An event inside the host: its id at its source and its decoded value.
#[derive(Debug, Clone)]
pub struct Event {
    /// Stream and pull id at the source.
    pub id: EventId,
    /// The decoded value.
    pub value: Value,
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
    batch: u64,
    incarnation: u32,
    failed: Vec<u32>,
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
    Control(Control),
}

/// Lifecycle commands from the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Stop pulling; report `Drained` once nothing is in flight.
    Drain,
    /// Stop: flush, close, exit the thread.
    Stop,
}

/// Where a connector's output goes, and where its input comes from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    pub(crate) out: Vec<usize>,
    pub(crate) err: Vec<usize>,
    /// Sources that feed this connector (told about its circuit breaker).
    pub(crate) upstream: Vec<usize>,
}

impl Routes {
    pub(crate) fn is_source(&self) -> bool {
        !self.out.is_empty() || !self.err.is_empty()
    }
}

/// Verdict tracking for one batch in flight.
#[derive(Debug)]
struct InFlight {
    /// The batch itself (shared with the sinks): its events' ids are the verdicts' ids.
    batch: Arc<Batch>,
    remaining_sinks: usize,
    failed: Vec<bool>,
}

/// Everything one connector thread needs.
pub(crate) struct ConnectorThread {
    pub(crate) index: usize,
    pub(crate) spec: ConnectorSpec,
    pub(crate) plugin: Plugin,
    pub(crate) inbox: Receiver<Msg>,
    pub(crate) world: UnboundedSender<WorldEvent>,
    pub(crate) peers: Arc<Vec<Sender<Msg>>>,
    pub(crate) routes: Routes,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) options: Arc<RuntimeOptions>,
}

/// Why the thread stops processing.
struct Exit;

struct State {
    t: ConnectorThread,
    instance: Option<ConnectorInstance>,
    incarnation: u32,
    restarts: u32,
    /// No more restarts: events are failed back, nothing is called.
    dead: bool,
    deferred: VecDeque<Msg>,
    // Source side.
    pulled: EventBatch,
    frames: Frames,
    processor_errors: Vec<ProcessorError>,
    streams: HashMap<u64, Chain>,
    in_flight: HashMap<u64, InFlight>,
    in_flight_events: usize,
    next_batch: u64,
    finished: bool,
    reported_finished: bool,
    draining: bool,
    reported_drained: bool,
    /// Sinks fed by this source whose breaker is closed; it is paused while any is.
    closed_downstream: std::collections::BTreeSet<usize>,
    idle: Duration,
    // Sink side.
    post_chain: Chain,
    encoded: Vec<u8>,
    sink_frames: Frames,
    closed_since: Option<Instant>,
    last_tick: Instant,
    shutdown_reported: bool,
}

const MIN_IDLE: Duration = Duration::from_micros(50);

impl ConnectorThread {
    /// Runs the connector until it is told to stop.
    pub(crate) fn run(self) {
        let post_chain = Chain::new(&self.spec.postprocessors);
        let mut state = State {
            t: self,
            instance: None,
            incarnation: 0,
            restarts: 0,
            dead: false,
            deferred: VecDeque::new(),
            pulled: EventBatch::new(),
            frames: Frames::new(),
            processor_errors: Vec::new(),
            streams: HashMap::new(),
            in_flight: HashMap::new(),
            in_flight_events: 0,
            next_batch: 0,
            finished: false,
            reported_finished: false,
            draining: false,
            reported_drained: false,
            closed_downstream: std::collections::BTreeSet::new(),
            idle: MIN_IDLE,
            post_chain,
            encoded: Vec::new(),
            sink_frames: Frames::new(),
            closed_since: None,
            last_tick: Instant::now(),
            shutdown_reported: false,
        };
        let _ = state.main_loop();
        state.stop();
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl State {
    fn id(&self) -> &str {
        &self.t.spec.id
    }

    fn main_loop(&mut self) -> Result<(), Exit> {
        self.bring_up()?;
        loop {
            while let Some(msg) = self.next_message() {
                self.handle(msg)?;
            }
            let wait = if self.can_pull() {
                self.pull_once()?
            } else {
                self.idle_wait()
            };
            self.maybe_tick()?;
            if wait.is_zero() {
                continue;
            }
            match self.t.inbox.recv_timeout(wait) {
                Ok(msg) => self.handle(msg)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(Exit),
            }
        }
    }

    fn next_message(&mut self) -> Option<Msg> {
        if let Some(msg) = self.deferred.pop_front() {
            return Some(msg);
        }
        self.t.inbox.try_recv().ok()
    }

    /// How long to wait for a message when not pulling.
    fn idle_wait(&self) -> Duration {
        if self.closed_since.is_some() {
            self.t.options.tick_interval
        } else {
            Duration::from_millis(500)
        }
    }

    fn can_pull(&self) -> bool {
        self.t.routes.is_source()
            && !self.dead
            && self.instance.is_some()
            && !self.finished
            && !self.draining
            && self.closed_downstream.is_empty()
            && self.in_flight_events < self.t.options.max_in_flight
    }

    /// Waits up to `duration` for a stop request, keeping other messages for later.
    fn wait(&mut self, duration: Duration) -> Result<(), Exit> {
        let deadline = Instant::now() + duration;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            match self.t.inbox.recv_timeout(deadline - now) {
                Ok(Msg::Control(Control::Stop)) => return Err(Exit),
                Ok(Msg::Control(Control::Drain)) => {
                    self.draining = true;
                    self.report_progress();
                }
                Ok(msg) => self.deferred.push_back(msg),
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => return Err(Exit),
            }
        }
    }

    /// Creates, connects and starts the instance, retrying with backoff; restarts count
    /// against `max_restarts` only after a panic.
    fn bring_up(&mut self) -> Result<(), Exit> {
        let backoff = self.t.spec.reconnect;
        loop {
            let instance = match self
                .t
                .plugin
                .instantiate(&self.t.spec.id, &self.t.spec.config)
            {
                Ok(instance) => instance,
                Err(error) => {
                    self.crashed("new", &error)?;
                    continue;
                }
            };
            self.instance = Some(instance);
            let mut attempt = 0u32;
            let connected = loop {
                let result = self
                    .instance
                    .as_mut()
                    .expect("just created")
                    .connect(attempt);
                match result {
                    Ok(true) => break true,
                    Ok(false) => {
                        tracing::info!(connector = %self.id(), attempt, "not connected yet, retrying");
                    }
                    Err(error) if error.is_poisoning() => {
                        self.instance = None;
                        self.crashed("connect", &error)?;
                        break false;
                    }
                    Err(error) => {
                        tracing::warn!(connector = %self.id(), attempt, %error, "connect failed, retrying");
                    }
                }
                attempt = attempt.saturating_add(1);
                self.wait(backoff.delay(attempt))?;
            };
            if !connected {
                continue;
            }
            let mut notices = vec![Notice::Start];
            if !self.closed_downstream.is_empty() {
                notices.push(Notice::CircuitClosed);
            }
            if notices.into_iter().all(|notice| self.call_notice(notice)) {
                tracing::debug!(connector = %self.id(), incarnation = self.incarnation, "connector running");
                return Ok(());
            }
        }
    }

    /// After a panic or a failed constructor: restart with backoff, or give up.
    fn crashed(&mut self, method: &str, error: &CallError) -> Result<(), Exit> {
        self.instance = None;
        tracing::error!(connector = %self.id(), plugin = %self.t.plugin.name(), method, %error, "connector failed");
        if self.restarts >= self.t.spec.max_restarts {
            tracing::error!(
                connector = %self.id(),
                restarts = self.restarts,
                "connector stopped: no restarts left (max_restarts = {})",
                self.t.spec.max_restarts
            );
            self.dead = true;
            let _ = self
                .t
                .world
                .send(WorldEvent::GaveUp(self.t.index, error.to_string()));
            self.forget_in_flight();
            return Err(Exit);
        }
        self.restarts += 1;
        self.t
            .metrics
            .restarts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.incarnation += 1;
        self.forget_in_flight();
        let delay = self.t.spec.reconnect.delay(self.restarts);
        tracing::warn!(connector = %self.id(), restart = self.restarts, delay_ms = delay.as_millis() as u64, "restarting connector");
        self.wait(delay)
    }

    /// A restarted source cannot take verdicts for the old incarnation's events: they are
    /// forgotten (the restarted plugin starts afresh), and so are its streams' buffers.
    fn forget_in_flight(&mut self) {
        if !self.in_flight.is_empty() {
            tracing::warn!(
                connector = %self.id(),
                events = self.in_flight_events,
                "verdicts of events in flight from the failed instance will be ignored"
            );
        }
        self.in_flight.clear();
        self.in_flight_events = 0;
        self.streams.clear();
        self.pulled.clear();
        self.report_progress();
    }

    fn call_notice(&mut self, notice: Notice) -> bool {
        let Some(instance) = self.instance.as_mut() else {
            return false;
        };
        match instance.notify(notice) {
            Ok(()) => true,
            Err(error) if error.is_poisoning() => {
                // The caller decides about restarting at its next step.
                tracing::error!(connector = %self.id(), %error, "connector panicked");
                let _ = self.crashed_in_loop(&error);
                false
            }
            Err(error) => {
                tracing::warn!(connector = %self.id(), %error, "lifecycle notice failed");
                true
            }
        }
    }

    /// A panic in the main loop: restart in place, or become dead.
    fn crashed_in_loop(&mut self, error: &CallError) -> Result<(), Exit> {
        let method = match error {
            CallError::Panicked { method, .. }
            | CallError::Poisoned { method, .. }
            | CallError::Protocol { method, .. } => method,
            _ => "call",
        };
        match self.crashed(method, error) {
            Ok(()) => self.bring_up(),
            Err(Exit) if self.dead => Ok(()),
            Err(Exit) => Err(Exit),
        }
    }

    fn handle(&mut self, msg: Msg) -> Result<(), Exit> {
        match msg {
            Msg::Events(batch) => self.deliver(&batch),
            Msg::Feedback(feedback) => self.on_feedback(feedback),
            Msg::Control(Control::Stop) => Err(Exit),
            Msg::Control(Control::Drain) => {
                self.draining = true;
                if self.t.routes.is_source() {
                    self.call_notice(Notice::Drain);
                }
                self.report_progress();
                Ok(())
            }
            Msg::Circuit { sink, circuit } => {
                let was_paused = !self.closed_downstream.is_empty();
                match circuit {
                    Circuit::Closed => self.closed_downstream.insert(sink),
                    Circuit::Open => self.closed_downstream.remove(&sink),
                };
                let paused = !self.closed_downstream.is_empty();
                if paused != was_paused {
                    tracing::debug!(connector = %self.id(), paused, "downstream circuit breaker changed");
                    self.call_notice(if paused {
                        Notice::CircuitClosed
                    } else {
                        Notice::CircuitOpened
                    });
                }
                Ok(())
            }
        }
    }

    /// Tells the world when this source has finished or drained, once.
    fn report_progress(&mut self) {
        if !self.t.routes.is_source() || self.in_flight_events > 0 {
            return;
        }
        if (self.finished || self.dead) && !self.reported_finished {
            self.reported_finished = true;
            let _ = self.t.world.send(WorldEvent::Finished(self.t.index));
        }
        if self.draining && !self.reported_drained {
            self.reported_drained = true;
            let _ = self.t.world.send(WorldEvent::Drained(self.t.index));
        }
    }

    fn check_shutdown_request(&mut self) {
        if !self.shutdown_reported
            && self
                .instance
                .as_ref()
                .is_some_and(ConnectorInstance::shutdown_requested)
        {
            self.shutdown_reported = true;
            let _ = self
                .t
                .world
                .send(WorldEvent::ShutdownRequested(self.t.index));
        }
    }

    // ---------------------------------------------------------------- source side

    /// One pull; returns how long to wait before the next.
    fn pull_once(&mut self) -> Result<Duration, Exit> {
        let room = self.t.options.max_in_flight - self.in_flight_events;
        let max = room.min(self.t.options.batch_size as usize).max(1) as u32;
        self.pulled.clear();
        let instance = self.instance.as_mut().expect("can_pull checked");
        let status = match instance.pull(&mut self.pulled, max) {
            Ok(status) => status,
            Err(error) if error.is_poisoning() => {
                self.crashed_in_loop(&error)?;
                return Ok(Duration::ZERO);
            }
            Err(error) => {
                tracing::warn!(connector = %self.id(), %error, "pull failed");
                self.idle = (self.idle * 2).min(self.t.options.idle_backoff_max);
                return Ok(self.idle);
            }
        };
        let produced = !self.pulled.is_empty() || !self.pulled.ended_streams().is_empty();
        if produced {
            self.route_pulled();
        }
        self.check_shutdown_request();
        match status {
            PullStatus::Ready => {
                self.idle = MIN_IDLE;
                Ok(Duration::ZERO)
            }
            PullStatus::Empty if produced => {
                self.idle = MIN_IDLE;
                Ok(Duration::ZERO)
            }
            PullStatus::Empty => {
                let wait = self.idle;
                self.idle = (self.idle * 2).min(self.t.options.idle_backoff_max);
                Ok(wait)
            }
            PullStatus::Finished => {
                self.finish_streams();
                self.finished = true;
                tracing::debug!(connector = %self.id(), "source finished");
                self.report_progress();
                Ok(Duration::ZERO)
            }
        }
    }

    /// Preprocesses, decodes and routes what the last pull produced.
    fn route_pulled(&mut self) {
        let ingest_ns = now_ns();
        let mut out = Vec::with_capacity(self.pulled.len());
        let mut errors = Vec::new();
        let mut no_output = Vec::new();
        let pre = &self.t.spec.preprocessors;
        let codec = self.t.spec.codec;
        self.frames.clear();
        // (pull id, stream, end index in `frames`) per pulled event.
        let mut owners: Vec<(u64, u64, usize)> = Vec::with_capacity(self.pulled.len());
        for event in self.pulled.iter() {
            let chain = self
                .streams
                .entry(event.id.stream)
                .or_insert_with(|| Chain::new(pre));
            chain.process(event.bytes, &mut self.frames, &mut self.processor_errors);
            for error in self.processor_errors.drain(..) {
                errors.push((event.id, error.to_string()));
            }
            owners.push((event.id.pull, event.id.stream, self.frames.len()));
        }
        let ended: Vec<u64> = self.pulled.ended_streams().to_vec();
        for stream in ended {
            if let Some(mut chain) = self.streams.remove(&stream) {
                chain.finish(&mut self.frames, &mut self.processor_errors);
                let last_pull = owners
                    .iter()
                    .rev()
                    .find(|(_, s, _)| *s == stream)
                    .map_or(u64::MAX, |o| o.0);
                for error in self.processor_errors.drain(..) {
                    errors.push((
                        EventId {
                            stream,
                            pull: last_pull,
                        },
                        error.to_string(),
                    ));
                }
                owners.push((last_pull, stream, self.frames.len()));
            }
        }
        let frames = std::mem::take(&mut self.frames);
        let (data, ends) = frames.into_parts();
        let data = Bytes::from(data);
        let mut start = 0;
        let mut frame_index = 0;
        for &(pull, stream, end) in &owners {
            let first = out.len();
            while frame_index < end {
                let frame_end = ends[frame_index];
                let frame = data.slice(start..frame_end);
                start = frame_end;
                frame_index += 1;
                let id = EventId { stream, pull };
                match codec.decode(frame) {
                    Ok(value) => out.push(Event { id, value }),
                    Err(error) => errors.push((id, error.to_string())),
                }
            }
            if out.len() == first && pull != u64::MAX {
                no_output.push(Feedback {
                    id: EventId { stream, pull },
                    kind: FeedbackKind::ACK,
                });
            }
        }
        Metrics::add(&self.t.metrics.events_out, out.len());
        Metrics::add(&self.t.metrics.events_err, errors.len());
        if !out.is_empty() {
            if self.t.routes.out.is_empty() {
                // Only the err port is bound: the decoded events are done with.
                for event in &out {
                    if event.id.pull != u64::MAX {
                        no_output.push(Feedback {
                            id: event.id,
                            kind: FeedbackKind::ACK,
                        });
                    }
                }
            } else {
                self.send_batch(Port::Out, ingest_ns, out);
            }
        }
        if !errors.is_empty() {
            if self.t.routes.err.is_empty() {
                for (id, error) in &errors {
                    tracing::warn!(connector = %self.id(), stream = id.stream, pull = id.pull, "{error} (no `err` binding: event dropped)");
                }
            } else {
                let events = errors
                    .into_iter()
                    .map(|(id, error)| Event {
                        id,
                        value: Value::Json(serde_json::json!({
                            "error": error,
                            "connector": self.t.spec.id,
                            "stream": id.stream,
                            "pull": id.pull,
                        })),
                    })
                    .collect();
                self.send_batch(Port::Err, ingest_ns, events);
            }
        }
        if !no_output.is_empty() {
            self.give_feedback(&no_output);
        }
    }

    fn finish_streams(&mut self) {
        let streams: Vec<u64> = self.streams.keys().copied().collect();
        if streams.is_empty() {
            return;
        }
        // Flush every stream as if it had ended in a final, empty pull.
        self.pulled.clear();
        for stream in streams {
            self.pulled.end_stream(stream);
        }
        self.route_pulled();
    }

    fn send_batch(&mut self, port: Port, ingest_ns: u64, events: Vec<Event>) {
        let id = self.next_batch;
        self.next_batch += 1;
        let len = events.len();
        let batch = Arc::new(Batch {
            origin: self.t.index,
            incarnation: self.incarnation,
            id,
            port,
            ingest_ns,
            events,
        });
        let targets = match port {
            Port::Out => self.t.routes.out.len(),
            Port::Err => self.t.routes.err.len(),
        };
        self.in_flight.insert(
            id,
            InFlight {
                batch: batch.clone(),
                remaining_sinks: targets,
                failed: vec![false; len],
            },
        );
        self.in_flight_events += len;
        for i in 0..targets {
            let target = match port {
                Port::Out => self.t.routes.out[i],
                Port::Err => self.t.routes.err[i],
            };
            if self.t.peers[target]
                .send(Msg::Events(batch.clone()))
                .is_err()
            {
                // The sink's thread is gone (shutting down): nobody will deliver it.
                self.on_feedback(BatchFeedback {
                    batch: id,
                    incarnation: self.incarnation,
                    failed: (0..len as u32).collect(),
                })
                .ok();
            }
        }
    }

    fn on_feedback(&mut self, feedback: BatchFeedback) -> Result<(), Exit> {
        if feedback.incarnation != self.incarnation {
            return Ok(());
        }
        let Some(entry) = self.in_flight.get_mut(&feedback.batch) else {
            return Ok(());
        };
        for index in feedback.failed {
            if let Some(failed) = entry.failed.get_mut(index as usize) {
                *failed = true;
            }
        }
        entry.remaining_sinks -= 1;
        if entry.remaining_sinks > 0 {
            return Ok(());
        }
        let entry = self.in_flight.remove(&feedback.batch).expect("present");
        self.in_flight_events -= entry.failed.len();
        // `err` events carry no verdict for the source.
        if entry.batch.port == Port::Out {
            // Events derived from one pulled event are contiguous: one verdict per pull.
            let mut verdicts: Vec<Feedback> = Vec::new();
            let (mut acked, mut failed) = (0, 0);
            for (event, event_failed) in entry.batch.events.iter().zip(&entry.failed) {
                let (pull, stream) = (&event.id.pull, &event.id.stream);
                if *event_failed {
                    failed += 1
                } else {
                    acked += 1
                }
                if *pull == u64::MAX {
                    continue;
                }
                let kind = if *event_failed {
                    FeedbackKind::FAIL
                } else {
                    FeedbackKind::ACK
                };
                match verdicts.last_mut() {
                    Some(last) if last.id.pull == *pull => {
                        if kind == FeedbackKind::FAIL {
                            last.kind = FeedbackKind::FAIL;
                        }
                    }
                    _ => verdicts.push(Feedback {
                        id: EventId {
                            stream: *stream,
                            pull: *pull,
                        },
                        kind,
                    }),
                }
            }
            Metrics::add(&self.t.metrics.acks, acked);
            Metrics::add(&self.t.metrics.fails, failed);
            self.give_feedback(&verdicts);
        }
        self.report_progress();
        Ok(())
    }

    fn give_feedback(&mut self, verdicts: &[Feedback]) {
        let Some(instance) = self.instance.as_mut() else {
            return;
        };
        if let Err(error) = instance.feedback(verdicts) {
            if error.is_poisoning() {
                let _ = self.crashed_in_loop(&error);
            } else {
                tracing::warn!(connector = %self.id(), %error, "ack/fail handling failed");
            }
        }
    }

    // ------------------------------------------------------------------ sink side

    /// Encodes, postprocesses and delivers a batch, and sends the verdicts back.
    fn deliver(&mut self, batch: &Arc<Batch>) -> Result<(), Exit> {
        let mut failed: Vec<u32> = Vec::new();
        if self.dead || self.instance.is_none() {
            failed.extend(0..batch.events.len() as u32);
            Metrics::add(&self.t.metrics.fails, batch.events.len());
            self.send_feedback(batch, failed);
            return Ok(());
        }
        let codec = self.t.spec.codec;
        let mut encoded = std::mem::take(&mut self.encoded);
        encoded.clear();
        // Where each delivered event's bytes are: in the value itself or in `encoded`.
        let mut locations: Vec<(u32, Option<std::ops::Range<usize>>)> =
            Vec::with_capacity(batch.events.len());
        for (index, event) in batch.events.iter().enumerate() {
            match self.encode(codec, &event.value, &mut encoded) {
                Ok(location) => locations.push((index as u32, location)),
                Err(error) => {
                    tracing::warn!(connector = %self.id(), stream = event.id.stream, pull = event.id.pull, "{error}: event not delivered");
                    Metrics::add(&self.t.metrics.events_err, 1);
                    failed.push(index as u32);
                }
            }
        }
        let events: Vec<SinkEvent<'_>> = locations
            .iter()
            .map(|(index, location)| {
                let event = &batch.events[*index as usize];
                let bytes = match location {
                    Some(range) => &encoded[range.clone()],
                    None => event.value.as_bytes().unwrap_or_default(),
                };
                SinkEvent::new(bytes, event.id, batch.ingest_ns, b"")
            })
            .collect();
        let instance = self.instance.as_mut().expect("checked above");
        let result = instance.sink_batch(&events).map(|outcome| {
            let replies: Vec<bool> = outcome.replies().map(|r| r == SinkReply::Fail).collect();
            (replies, outcome.circuit, outcome.errors)
        });
        drop(events);
        self.encoded = encoded;
        Metrics::add(&self.t.metrics.events_in, locations.len());
        match result {
            Ok((replies, circuit, errors)) => {
                for (position, is_failed) in replies.into_iter().enumerate() {
                    if is_failed {
                        failed.push(locations[position].0);
                    }
                }
                for error in errors {
                    tracing::warn!(connector = %self.id(), "{error}");
                }
                if let Some(circuit) = circuit {
                    self.circuit_changed(circuit);
                }
                self.send_feedback(batch, failed);
                self.check_shutdown_request();
                Ok(())
            }
            Err(error) => {
                // Nothing of this batch counts as delivered.
                self.send_feedback(batch, (0..batch.events.len() as u32).collect());
                if error.is_poisoning() {
                    self.crashed_in_loop(&error)
                } else {
                    tracing::warn!(connector = %self.id(), %error, "delivery failed");
                    Ok(())
                }
            }
        }
    }

    /// Encodes one value and runs the postprocessors; `None` means "the value's own bytes".
    fn encode(
        &mut self,
        codec: crate::codec::Codec,
        value: &Value,
        encoded: &mut Vec<u8>,
    ) -> Result<Option<std::ops::Range<usize>>, String> {
        let start = encoded.len();
        let location = codec.encode(value, encoded).map_err(|e| e.to_string())?;
        if self.post_chain.is_empty() {
            return Ok(match location {
                Encoded::AsIs => None,
                Encoded::Appended(range) => Some(range),
            });
        }
        self.sink_frames.clear();
        let mut errors = Vec::new();
        match &location {
            Encoded::AsIs => {
                let input = value.as_bytes().unwrap_or_default();
                self.post_chain
                    .process(input, &mut self.sink_frames, &mut errors);
            }
            Encoded::Appended(range) => {
                self.post_chain.process(
                    &encoded[range.clone()],
                    &mut self.sink_frames,
                    &mut errors,
                );
            }
        }
        if let Some(error) = errors.into_iter().next() {
            encoded.truncate(start);
            return Err(error.to_string());
        }
        encoded.truncate(start);
        for frame in self.sink_frames.iter() {
            encoded.extend_from_slice(frame);
        }
        Ok(Some(start..encoded.len()))
    }

    fn send_feedback(&mut self, batch: &Batch, failed: Vec<u32>) {
        let feedback = BatchFeedback {
            batch: batch.id,
            incarnation: batch.incarnation,
            failed,
        };
        let _ = self.t.peers[batch.origin].send(Msg::Feedback(feedback));
    }

    fn circuit_changed(&mut self, circuit: Circuit) {
        let closed = circuit == Circuit::Closed;
        if closed == self.closed_since.is_some() {
            return;
        }
        self.closed_since = closed.then(Instant::now);
        self.last_tick = Instant::now();
        self.t
            .metrics
            .circuit_closed
            .store(closed, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(connector = %self.id(), circuit = if closed { "closed" } else { "open" }, "circuit breaker changed");
        for &source in &self.t.routes.upstream {
            let _ = self.t.peers[source].send(Msg::Circuit {
                sink: self.t.index,
                circuit,
            });
        }
    }

    /// While the breaker is closed, ticks the sink so it can reopen it.
    fn maybe_tick(&mut self) -> Result<(), Exit> {
        if self.closed_since.is_none() || self.last_tick.elapsed() < self.t.options.tick_interval {
            return Ok(());
        }
        self.last_tick = Instant::now();
        let Some(instance) = self.instance.as_mut() else {
            return Ok(());
        };
        match instance.sink_batch(&[]) {
            Ok(outcome) => {
                if let Some(circuit) = outcome.circuit {
                    self.circuit_changed(circuit);
                }
                Ok(())
            }
            Err(error) if error.is_poisoning() => self.crashed_in_loop(&error),
            Err(error) => {
                tracing::warn!(connector = %self.id(), %error, "tick failed");
                Ok(())
            }
        }
    }

    /// Stops the connector: answers whatever is still queued, flushes and closes.
    fn stop(&mut self) {
        // Deliver what was queued before the stop request: sinks flush in order.
        while let Some(msg) = self.next_message() {
            match msg {
                Msg::Events(batch) => {
                    let _ = self.deliver(&batch);
                }
                Msg::Feedback(feedback) => {
                    let _ = self.on_feedback(feedback);
                }
                Msg::Circuit { .. } | Msg::Control(_) => {}
            }
        }
        if let Some(mut instance) = self.instance.take() {
            if let Err(error) = instance.notify(Notice::Stop) {
                tracing::warn!(connector = %self.id(), %error, "stop failed");
            }
            if let Err(error) = instance.close() {
                tracing::error!(connector = %self.id(), %error, "close failed");
            }
        }
        let _ = self.t.world.send(WorldEvent::Stopped(self.t.index));
    }
}
