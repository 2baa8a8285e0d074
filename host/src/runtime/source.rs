//! The source side of a connector: pull → preprocess → decode → route, and verdicts back.
//!
//! A pulled event's verdict is *ack* only if every sink it went to delivered every event
//! derived from it (fan-out); events derived from one pull are contiguous in a batch, so
//! there is one verdict per pull. A source is pulled only while it has credit (fewer than
//! `max_in_flight` events await their verdict), no sink it feeds has its breaker closed,
//! and at least one of its sinks is still alive.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use weir_sdk::abi::{Feedback, FeedbackKind};
use weir_sdk::{Circuit, PullStatus};

use super::Port;
use super::connector::{Batch, BatchFeedback, Event, Msg, Shared, Throttle};
use super::held::Held;
use super::metrics::{Call, Metrics};
use super::supervisor::notify;
use crate::codec::Value;
use crate::config::Links;
use crate::error::CallError;
use crate::loader::{ConnectorInstance, EventBatch, EventId, Notice};
use crate::processor::{Chain, Frames, ProcessorError, ProcessorSpec};

/// Verdict tracking for one batch in flight.
#[derive(Debug)]
struct InFlight {
    /// The batch itself (shared with the sinks): its events' ids are the verdicts' ids.
    batch: Arc<Batch>,
    /// The sinks whose verdict it awaits.
    waiting_for: Vec<usize>,
    failed: Vec<bool>,
    /// Bytes of its frames (after preprocessing), counted against `max_in_flight_bytes`.
    bytes: usize,
}

/// A batch about to be sent, before it gets its id.
struct Outgoing {
    port: Port,
    ingest_ns: u64,
    events: Vec<Event>,
    /// Bytes of its frames, for the byte budget.
    bytes: usize,
}

const MIN_IDLE: Duration = Duration::from_micros(50);

/// How long a source that wakes the host itself (it took a waker) may go unpulled after an
/// empty pull: a safety net for a wake lost to a plugin bug, not a poll.
const WOKEN_SAFETY_PULL: Duration = Duration::from_secs(1);

/// The longest a source's own "quiet for" is taken at its word before it is pulled again.
const MAX_QUIET: Duration = Duration::from_secs(60);

/// Pulled bytes preprocessed and routed in one go (or frames they make) before credit is
/// looked at again: one pull may hold far more than the credit allows (a chunk of a file
/// can split into tens of thousands of lines, a compressed one expand a hundredfold).
const ROUTE_SLICE: usize = 64 * 1024;

/// About how long decoding one slice may take: a slice stops early once its frames would
/// take longer to decode (at the source's recent cost per frame), so that the first events of
/// a pull are sent on while the rest decode, instead of waiting for all of them. A cheap
/// codec (`binary`: tens of nanoseconds a frame) never reaches it; JSON (about a
/// microsecond a frame) sends a pull of 64 in four slices or so.
const SLICE_DECODE: Duration = Duration::from_micros(16);

/// The most of one pulled event fed to preprocessors at once, so that what one feeding
/// makes stays small (4 KiB of one-byte lines are 2,048 frames); a larger event is fed in
/// pieces.
const PIECE: usize = 4 * 1024;

/// The same behind a decompressor, which may expand its input ~1000x: 256 bytes make at
/// most about 256 KiB.
const EXPANDING_PIECE: usize = 256;

/// Whom a run of decoded frames belongs to: the pulled event (or piece of one) whose bytes
/// completed them, or a stream's end that flushed them.
struct Owner {
    /// The pull id (or a key of [`Held`]) the frames' verdicts go to; `u64::MAX` for none.
    pull: u64,
    stream: u64,
    /// The end of its frames, an index into the slice's frames.
    end: usize,
    /// A stream's end flushed them.
    flushed: bool,
    /// The pulled event's metadata, which every event decoded from it carries.
    meta: Bytes,
}

/// The pull of the last owner from `stream` in `owners`, `u64::MAX` if none.
fn last_pull_of(owners: &[Owner], stream: u64) -> u64 {
    owners
        .iter()
        .rev()
        .find(|o| o.stream == stream)
        .map_or(u64::MAX, |o| o.pull)
}

/// The source side's state.
#[derive(Debug)]
pub(crate) struct Source {
    /// Whether the connector is bound as a source at all.
    active: bool,
    pulled: EventBatch,
    frames: Frames,
    processor_errors: Vec<ProcessorError>,
    streams: HashMap<u64, Chain>,
    /// Bytes the streams' preprocessors hold for unfinished frames, at most half of
    /// `max_in_flight_bytes` (beyond it the streams holding most drop theirs).
    held_bytes: usize,
    /// Verdicts of pulls whose bytes the preprocessors still hold.
    held: Held,
    in_flight: HashMap<u64, InFlight>,
    in_flight_events: usize,
    in_flight_bytes: usize,
    /// The next event of `pulled` to route (the rest waits for credit).
    cursor: usize,
    /// How many bytes of that event were fed to the preprocessors already.
    offset: usize,
    /// When the last pull returned: the ingest time of everything it produced, whichever
    /// slice it is routed in.
    pulled_ns: u64,
    /// Recent decode cost per frame, in nanoseconds (a moving average; 0 until measured).
    decode_ns: f64,
    /// The pull said `Finished`: finish once everything pulled is routed.
    finishing: bool,
    next_batch: u64,
    /// The plugin said it will produce nothing more.
    finished: bool,
    /// The connector failed for good.
    dead: bool,
    reported_finished: bool,
    reported_drained: bool,
    /// Sinks fed by this source whose breaker is closed; it is paused while any is.
    closed_downstream: BTreeSet<usize>,
    /// Sinks not (yet) fed by this source that said their breaker is closed.
    unrouted_closed: BTreeSet<usize>,
    /// Live sinks of each port (sinks that failed for good are removed).
    out: Vec<usize>,
    err: Vec<usize>,
    idle: Duration,
    next_pull: Instant,
    dropped: Throttle,
    pull_errors: Throttle,
}

/// Tells the instance (if it runs) that it is paused or resumed by a downstream breaker.
fn tell_paused(
    shared: &Shared,
    instance: Option<&mut ConnectorInstance>,
    paused: bool,
) -> Result<(), CallError> {
    tracing::debug!(connector = %shared.id(), paused, "downstream circuit breaker changed");
    let Some(instance) = instance else {
        // Told at start (see `Supervisor::step`).
        return Ok(());
    };
    let notice = if paused {
        Notice::CircuitClosed
    } else {
        Notice::CircuitOpened
    };
    match notify(instance, shared, notice) {
        Err(error) if error.is_poisoning() || error.is_permanent() => Err(error),
        Err(error) => {
            tracing::warn!(connector = %shared.id(), %error, "circuit notice failed");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Source {
    pub(crate) fn new(shared: &Shared) -> Self {
        Self {
            active: shared.routes.is_source(),
            pulled: EventBatch::new(),
            frames: Frames::new(),
            processor_errors: Vec::new(),
            streams: HashMap::new(),
            held_bytes: 0,
            held: Held::default(),
            in_flight: HashMap::new(),
            in_flight_events: 0,
            in_flight_bytes: 0,
            cursor: 0,
            offset: 0,
            pulled_ns: 0,
            decode_ns: 0.0,
            finishing: false,
            next_batch: 0,
            finished: false,
            dead: false,
            reported_finished: false,
            reported_drained: false,
            closed_downstream: BTreeSet::new(),
            unrouted_closed: BTreeSet::new(),
            out: shared.routes.out.clone(),
            err: shared.routes.err.clone(),
            idle: MIN_IDLE,
            next_pull: Instant::now(),
            dropped: Throttle::new(),
            pull_errors: Throttle::new(),
        }
    }

    /// Whether a sink it feeds has its breaker closed.
    pub(crate) fn is_paused(&self) -> bool {
        !self.closed_downstream.is_empty()
    }

    /// Whether anything it produces can still reach a live sink: `out` events if it has
    /// `out` bindings (`err` events alone are no reason to go on), else `err` events.
    fn has_live_sinks(&self, shared: &Shared) -> bool {
        if shared.routes.out.is_empty() {
            !self.err.is_empty()
        } else {
            !self.out.is_empty()
        }
    }

    /// When the next pull is due, if the source may be pulled at all (the caller checks
    /// that the instance runs).
    pub(crate) fn next_pull(&self, shared: &Shared, draining: bool) -> Option<Instant> {
        let may_pull = self.active
            && !self.finished
            && !self.dead
            // Draining stops pulls, not the routing of what was pulled already.
            && (!draining || self.routing())
            && self.closed_downstream.is_empty()
            && self.has_credit(shared)
            // Without a live sink, what was pulled is still routed: failed back.
            && (self.has_live_sinks(shared) || self.routing());
        if !may_pull {
            return None;
        }
        if self.routing() {
            // The rest of the last pull goes on as soon as there is credit, whenever the
            // source itself is due.
            return Some(self.next_pull.min(Instant::now()));
        }
        Some(self.next_pull)
    }

    /// Whether fewer events than the limit await their verdict, and fewer bytes than the
    /// limit are held (awaiting their verdict or in unfinished frames).
    fn has_credit(&self, shared: &Shared) -> bool {
        self.in_flight_events < shared.options.max_in_flight
            && self.in_flight_bytes + self.held_bytes < shared.options.max_in_flight_bytes
    }

    /// Whether part of the last pull still waits to be routed.
    fn routing(&self) -> bool {
        self.cursor < self.pulled.len() || self.finishing
    }

    /// Whether nothing pulled awaits routing or a verdict.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight_events == 0 && !self.routing()
    }

    /// How many events await their verdict.
    pub(crate) fn in_flight_events(&self) -> usize {
        self.in_flight_events
    }

    /// A new instance replaced the old one: its streams start afresh (what the old one's
    /// held in unfinished frames was failed back to it), and it is pulled at once.
    pub(crate) fn resume_after_upgrade(&mut self) {
        self.streams.clear();
        self.held_bytes = 0;
        self.held.forget();
        // A new instance has not finished, whatever the old one had.
        self.finished = false;
        self.finishing = false;
        self.reported_finished = false;
        self.pull_now();
    }

    /// The pipeline changed: `shared.routes` are the new routes, `old` the ones before.
    /// Sinks that failed for good stay dead; sinks no longer fed no longer pause it.
    pub(crate) fn rewire(
        &mut self,
        shared: &Shared,
        instance: Option<&mut ConnectorInstance>,
        old: &Links,
    ) -> Result<(), CallError> {
        if !self.active {
            return Ok(());
        }
        let live = |now: &[usize], before: &[usize], live: &[usize]| -> Vec<usize> {
            now.iter()
                .copied()
                .filter(|s| !before.contains(s) || live.contains(s))
                .collect()
        };
        self.out = live(&shared.routes.out, &old.out, &self.out);
        self.err = live(&shared.routes.err, &old.err, &self.err);
        let was_paused = self.is_paused();
        let routes = &shared.routes;
        let routed = |s: &usize| routes.out.contains(s) || routes.err.contains(s);
        self.closed_downstream.retain(routed);
        // Breakers announced before the routes came.
        let announced: Vec<usize> = self
            .unrouted_closed
            .iter()
            .copied()
            .filter(routed)
            .collect();
        for sink in announced {
            self.unrouted_closed.remove(&sink);
            self.closed_downstream.insert(sink);
        }
        let paused = self.is_paused();
        if paused != was_paused {
            return tell_paused(shared, instance, paused);
        }
        Ok(())
    }

    /// Whether pulls wait for held bytes to be delivered.
    pub(crate) fn holds_pulls(&self) -> bool {
        self.held.is_waiting()
    }

    /// The connector failed for good.
    pub(crate) fn died(&mut self) {
        self.dead = true;
    }

    /// Tells the world when this source has finished or drained, once each.
    pub(crate) fn report_progress(&mut self, shared: &Shared, draining: bool) {
        if !self.active || self.in_flight_events > 0 || (self.routing() && !self.dead) {
            return;
        }
        let done = self.finished || self.dead || !self.has_live_sinks(shared);
        if done && !self.reported_finished {
            self.reported_finished = true;
            shared.tell_world(super::WorldEvent::Finished(shared.index));
        }
        if draining && !self.reported_drained {
            self.reported_drained = true;
            shared.tell_world(super::WorldEvent::Drained(shared.index));
        }
    }

    /// A sink it feeds failed for good: nothing more is sent there.
    pub(crate) fn sink_dead(&mut self, shared: &Shared, sink: usize) {
        if !self.active {
            return;
        }
        let had_live = self.has_live_sinks(shared);
        self.out.retain(|s| *s != sink);
        self.err.retain(|s| *s != sink);
        self.closed_downstream.remove(&sink);
        if had_live && !self.has_live_sinks(shared) {
            tracing::error!(connector = %shared.id(), "every sink this source feeds failed for good: the source stops");
        }
    }

    /// A sink removed from the pipeline will never answer: what awaits its verdict fails
    /// (at-least-once: a resending source sends it again), and nothing more goes there.
    pub(crate) fn sink_gone(
        &mut self,
        shared: &Shared,
        mut instance: Option<&mut ConnectorInstance>,
        incarnation: u32,
        sink: usize,
    ) -> Result<(), CallError> {
        let mut waiting: Vec<(u64, u32, u32)> = self
            .in_flight
            .iter()
            .filter(|(_, entry)| entry.waiting_for.contains(&sink))
            .map(|(&id, entry)| (id, entry.batch.incarnation, entry.failed.len() as u32))
            .collect();
        waiting.sort_unstable();
        if !waiting.is_empty() {
            tracing::warn!(connector = %shared.id(), batches = waiting.len(), "a removed sink did not stop in time: what awaits its verdict is failed back");
        }
        for (batch, batch_incarnation, len) in waiting {
            let feedback = BatchFeedback {
                sink,
                batch,
                incarnation: batch_incarnation,
                failed: (0..len).collect(),
            };
            self.on_feedback(shared, instance.as_deref_mut(), incarnation, feedback)?;
        }
        self.sink_dead(shared, sink);
        Ok(())
    }

    /// A restarted source cannot take verdicts for the old incarnation's events: they are
    /// forgotten (the restarted plugin starts afresh), and so are its streams' buffers.
    pub(crate) fn forget_in_flight(&mut self, shared: &Shared) {
        if !self.in_flight.is_empty() {
            tracing::warn!(
                connector = %shared.id(),
                events = self.in_flight_events,
                "verdicts of events in flight from the failed instance will be ignored"
            );
        }
        self.in_flight.clear();
        self.in_flight_events = 0;
        self.in_flight_bytes = 0;
        self.streams.clear();
        self.held_bytes = 0;
        self.held.forget();
        self.pulled.clear();
        self.cursor = 0;
        self.offset = 0;
        self.finishing = false;
    }

    /// A sink it feeds moved its breaker.
    pub(crate) fn circuit(
        &mut self,
        shared: &Shared,
        instance: Option<&mut ConnectorInstance>,
        sink: usize,
        circuit: Circuit,
    ) -> Result<(), CallError> {
        if !shared.routes.out.contains(&sink) && !shared.routes.err.contains(&sink) {
            // A sink it does not feed (yet: during an apply, a sink may announce its closed
            // breaker before this source took the routes that bind them; or no more).
            match circuit {
                Circuit::Closed => self.unrouted_closed.insert(sink),
                Circuit::Open => self.unrouted_closed.remove(&sink),
            };
            return Ok(());
        }
        let was_paused = self.is_paused();
        match circuit {
            Circuit::Closed => self.closed_downstream.insert(sink),
            Circuit::Open => self.closed_downstream.remove(&sink),
        };
        let paused = self.is_paused();
        if paused == was_paused {
            return Ok(());
        }
        tell_paused(shared, instance, paused)
    }

    /// One pull, then what it produced is routed; sets when the next pull is due.
    pub(crate) fn pull(
        &mut self,
        shared: &Shared,
        instance: &mut ConnectorInstance,
        incarnation: u32,
    ) -> Result<(), CallError> {
        if self.routing() {
            return self.route(shared, incarnation, instance);
        }
        let room = shared.options.max_in_flight - self.in_flight_events;
        let max = room.min(shared.options.batch_size as usize).max(1) as u32;
        self.pulled.clear();
        self.cursor = 0;
        self.offset = 0;
        let status = match shared
            .metrics
            .track(Call::Pull, || instance.pull(&mut self.pulled, max))
        {
            Ok(status) => status,
            Err(error) if error.is_poisoning() || error.is_permanent() => return Err(error),
            Err(error) => {
                if let Some(count) = self.pull_errors.note(1) {
                    tracing::warn!(connector = %shared.id(), %error, count, "pull failed (count: failures since the last warning)");
                }
                self.back_off(shared);
                return Ok(());
            }
        };
        self.pulled_ns = now_ns();
        let produced = !self.pulled.is_empty() || !self.pulled.ended_streams().is_empty();
        match status {
            PullStatus::Ready => self.pull_now(),
            PullStatus::Empty if produced && instance.quiet_for().is_none() => self.pull_now(),
            PullStatus::Empty => match instance.quiet_for() {
                // The source knows when it will have something (a timer).
                Some(quiet) => {
                    self.idle = MIN_IDLE;
                    self.next_pull = Instant::now() + quiet.min(MAX_QUIET);
                }
                // It wakes the host when it has something: no polling in between.
                None if instance.wakes_itself() => {
                    self.idle = MIN_IDLE;
                    self.next_pull = Instant::now() + WOKEN_SAFETY_PULL;
                }
                None => self.back_off(shared),
            },
            PullStatus::Finished => self.finishing = true,
        }
        self.route(shared, incarnation, instance)
    }

    /// Routes what the last pull produced, a slice at a time while there is credit; the
    /// rest waits for verdicts to come back. Memory stays bounded by the limits plus one
    /// slice, however much one pull expands after preprocessing.
    fn route(
        &mut self,
        shared: &Shared,
        incarnation: u32,
        instance: &mut ConnectorInstance,
    ) -> Result<(), CallError> {
        let len = self.pulled.len();
        while self.cursor < len || (self.cursor == len && !self.pulled.ended_streams().is_empty()) {
            if !self.has_credit(shared) {
                // Routing goes on as soon as verdicts give credit back.
                self.next_pull = self.next_pull.min(Instant::now());
                return Ok(());
            }
            if self.route_pulled(shared, incarnation, instance)? {
                self.pulled.clear();
                self.cursor = 0;
                self.offset = 0;
                break;
            }
        }
        if self.finishing && self.cursor == 0 && self.pulled.is_empty() {
            self.finishing = false;
            self.finish_streams(shared, incarnation, instance)?;
            self.finished = true;
            tracing::debug!(connector = %shared.id(), "source finished");
        }
        Ok(())
    }

    /// The connector's waker was woken: pull at once.
    pub(crate) fn woken(&mut self) {
        self.pull_now();
    }

    fn pull_now(&mut self) {
        self.idle = MIN_IDLE;
        self.next_pull = Instant::now();
    }

    fn back_off(&mut self, shared: &Shared) {
        self.next_pull = Instant::now() + self.idle;
        self.idle = (self.idle * 2).min(shared.options.idle_backoff_max);
    }

    /// Preprocesses, decodes and routes one slice of the pulled events from the cursor:
    /// about [`ROUTE_SLICE`] bytes of them, or fewer if their frames reach that size, fed
    /// [`PIECE`] bytes at a time when there are preprocessors. Once the cursor reaches the
    /// end, also the streams the pull ended; returns whether it did.
    fn route_pulled(
        &mut self,
        shared: &Shared,
        incarnation: u32,
        instance: &mut ConnectorInstance,
    ) -> Result<bool, CallError> {
        let ingest_ns = self.pulled_ns;
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut no_output = Vec::new();
        let pre = &shared.spec.preprocessors;
        let codec = shared.spec.codec;
        self.frames.clear();
        // Who the frames belong to, in order: one entry per pulled event (or piece of one),
        // and per stream the pull ended.
        let mut owners: Vec<Owner> = Vec::new();
        // Verdicts already settled for the plugin.
        let mut settled: Vec<Feedback> = Vec::new();
        let len = self.pulled.len();
        let mut fed = 0;
        let max_frames = if self.decode_ns > 0.0 {
            ((SLICE_DECODE.as_nanos() as f64 / self.decode_ns) as usize).max(1)
        } else {
            usize::MAX
        };
        while self.cursor < len
            && fed < ROUTE_SLICE
            && self.frames.bytes() < ROUTE_SLICE
            && self.frames.len() < max_frames
        {
            let event = self
                .pulled
                .get(self.cursor)
                .expect("cursor within the pull");
            let rest = &event.bytes[self.offset..];
            let piece = if pre.is_empty() {
                rest
            } else if pre.iter().any(ProcessorSpec::expands) {
                &rest[..rest.len().min(EXPANDING_PIECE)]
            } else {
                &rest[..rest.len().min(PIECE)]
            };
            // A later piece of one event carries a key of its own (see `Held::piece`).
            let key = if self.offset == 0 {
                event.id.pull
            } else {
                self.held.piece(event.id)
            };
            let holding = if pre.is_empty() {
                // Nothing to hold: the event is its own frame.
                self.frames.push(piece);
                0
            } else {
                let chain = self
                    .streams
                    .entry(event.id.stream)
                    .or_insert_with(|| Chain::new(pre));
                let before = chain.held();
                let frames_before = self.frames.len();
                chain.process(piece, &mut self.frames, &mut self.processor_errors);
                let holding = chain.held();
                self.held_bytes = self.held_bytes - before + holding;
                self.held
                    .processed(event.id, key, self.frames.len() > frames_before);
                holding
            };
            let id = EventId {
                stream: event.id.stream,
                pull: key,
            };
            for error in self.processor_errors.drain(..) {
                errors.push((id, error.to_string()));
            }
            owners.push(Owner {
                pull: key,
                stream: event.id.stream,
                end: self.frames.len(),
                flushed: false,
                // Most events have none: an empty `Bytes` allocates nothing.
                meta: if event.meta.is_empty() {
                    Bytes::new()
                } else {
                    Bytes::copy_from_slice(event.meta)
                },
            });
            fed += piece.len();
            self.offset += piece.len();
            if self.offset >= event.bytes.len() {
                let in_pieces = key != event.id.pull;
                self.held
                    .held_after(event.id, holding > 0, in_pieces, &mut settled);
                self.cursor += 1;
                self.offset = 0;
            }
        }
        let last = self.cursor == len;
        self.hold_within_budget(shared, &owners, &mut errors, &mut no_output);
        let ended: Vec<u64> = if last {
            self.pulled.ended_streams().to_vec()
        } else {
            Vec::new()
        };
        for stream in ended {
            if let Some(mut chain) = self.streams.remove(&stream) {
                self.held_bytes -= chain.held();
                chain.finish(&mut self.frames, &mut self.processor_errors);
                let last_pull = last_pull_of(&owners, stream);
                // What the end flushes belongs to the pulls whose bytes were held.
                let last_pull = self.held.finish(stream, last_pull);
                for error in self.processor_errors.drain(..) {
                    errors.push((
                        EventId {
                            stream,
                            pull: last_pull,
                        },
                        error.to_string(),
                    ));
                }
                owners.push(Owner {
                    pull: last_pull,
                    stream,
                    end: self.frames.len(),
                    flushed: true,
                    meta: Bytes::new(),
                });
            }
        }
        let frames = std::mem::take(&mut self.frames);
        let (data, ends) = frames.into_parts();
        let data = Bytes::from(data);
        let frame_bytes = data.len();
        let mut start = 0;
        let mut frame_index = 0;
        let decoding = Instant::now();
        for owner in &owners {
            let &Owner {
                pull,
                stream,
                end,
                flushed,
                ..
            } = owner;
            let first = out.len();
            while frame_index < end {
                let frame_end = ends[frame_index];
                let frame = data.slice(start..frame_end);
                start = frame_end;
                frame_index += 1;
                let id = EventId { stream, pull };
                match codec.decode(frame) {
                    Ok(value) => out.push(Event {
                        id,
                        value,
                        // An empty `Bytes` is made, not cloned: no call per event.
                        meta: if owner.meta.is_empty() {
                            Bytes::new()
                        } else {
                            owner.meta.clone()
                        },
                    }),
                    Err(error) => errors.push((id, error.to_string())),
                }
            }
            // Nothing to deliver: its verdict is in at once (a stream's end flushing nothing
            // says so only for the held pulls it settles).
            if out.len() == first && pull != u64::MAX && (!flushed || Held::is_synthetic(pull)) {
                no_output.push(Feedback {
                    id: EventId { stream, pull },
                    kind: FeedbackKind::ACK,
                });
            }
        }
        if !ends.is_empty() {
            let per_frame = decoding.elapsed().as_nanos() as f64 / ends.len() as f64;
            self.decode_ns = if self.decode_ns > 0.0 {
                0.8 * self.decode_ns + 0.2 * per_frame
            } else {
                per_frame
            };
        }
        Metrics::add(&shared.metrics.events_out, out.len());
        Metrics::add(&shared.metrics.events_err, errors.len());
        if !out.is_empty() {
            if self.out.is_empty() {
                // No `out` binding: the decoded events are done with, as configured. Every
                // `out` sink failed for good: they cannot be delivered, they fail.
                let kind = if shared.routes.out.is_empty() {
                    FeedbackKind::ACK
                } else {
                    Metrics::add(&shared.metrics.fails, out.len());
                    FeedbackKind::FAIL
                };
                for event in &out {
                    // One verdict per key: the events of one are contiguous.
                    if event.id.pull != u64::MAX
                        && no_output.last().is_none_or(|l: &Feedback| l.id != event.id)
                    {
                        no_output.push(Feedback { id: event.id, kind });
                    }
                }
            } else {
                let outgoing = Outgoing {
                    port: Port::Out,
                    ingest_ns,
                    events: out,
                    bytes: frame_bytes,
                };
                self.send_batch(shared, incarnation, outgoing, instance)?;
            }
        }
        if !errors.is_empty() {
            if self.err.is_empty() {
                if let Some(count) = self.dropped.note(errors.len() as u64) {
                    let (id, error) = &errors[errors.len() - 1];
                    tracing::warn!(
                        connector = %shared.id(),
                        stream = id.stream,
                        pull = id.pull,
                        count,
                        "{error} (no `err` binding: event dropped; count: events dropped since the last warning)"
                    );
                }
            } else {
                let events = errors
                    .into_iter()
                    .map(|(id, error)| Event {
                        id,
                        meta: Bytes::new(),
                        value: Value::Json(error_event(
                            &error,
                            &shared.spec.id,
                            // The pull the bytes came from, not an internal key.
                            Held::is_synthetic(id.pull)
                                .then(|| self.held.pull_of(id.pull))
                                .flatten()
                                .unwrap_or(id),
                        )),
                    })
                    .collect();
                let outgoing = Outgoing {
                    port: Port::Err,
                    ingest_ns,
                    events,
                    bytes: 0,
                };
                self.send_batch(shared, incarnation, outgoing, instance)?;
            }
        }
        let mut verdicts = settled;
        verdicts.extend(self.held.resolve(no_output));
        if !verdicts.is_empty() {
            give_feedback(shared, instance, &verdicts)?;
        }
        Ok(last)
    }

    /// Keeps what the preprocessors hold within half the byte budget (the other half is
    /// left to events in flight): while they hold more, the stream holding most drops its
    /// unfinished frame, with an error on the `err` port (so a thousand connections each
    /// sending half a line cost the budget, not a gigabyte).
    fn hold_within_budget(
        &mut self,
        shared: &Shared,
        owners: &[Owner],
        errors: &mut Vec<(EventId, String)>,
        verdicts: &mut Vec<Feedback>,
    ) {
        let budget = shared.options.max_in_flight_bytes / 2;
        while self.held_bytes > budget {
            let Some((&stream, chain)) = self.streams.iter_mut().max_by_key(|(_, c)| c.held())
            else {
                break;
            };
            let held = chain.held();
            chain.discard();
            self.held.dropped(stream, verdicts);
            let left = chain.held();
            if left >= held {
                // A stage that cannot let go: the stream starts over with a fresh chain.
                self.streams.remove(&stream);
                self.held_bytes -= held;
            } else {
                self.held_bytes -= held - left;
            }
            let pull = last_pull_of(owners, stream);
            errors.push((
                EventId { stream, pull },
                format!(
                    "unfinished frame of {held} bytes dropped: the preprocessors of {} streams \
                     held more than half of max_in_flight_bytes ({budget} bytes)",
                    self.streams.len()
                ),
            ));
        }
    }

    fn finish_streams(
        &mut self,
        shared: &Shared,
        incarnation: u32,
        instance: &mut ConnectorInstance,
    ) -> Result<(), CallError> {
        let streams: Vec<u64> = self.streams.keys().copied().collect();
        if streams.is_empty() {
            return Ok(());
        }
        // Flush every stream as if it had ended in a final, empty pull.
        self.pulled.clear();
        for stream in streams {
            self.pulled.end_stream(stream);
        }
        self.cursor = 0;
        self.offset = 0;
        self.route_pulled(shared, incarnation, instance)?;
        self.pulled.clear();
        Ok(())
    }

    fn send_batch(
        &mut self,
        shared: &Shared,
        incarnation: u32,
        outgoing: Outgoing,
        instance: &mut ConnectorInstance,
    ) -> Result<(), CallError> {
        let Outgoing {
            port,
            ingest_ns,
            events,
            bytes,
        } = outgoing;
        let id = self.next_batch;
        self.next_batch += 1;
        let len = events.len();
        let batch = Arc::new(Batch {
            origin: shared.index,
            incarnation,
            id,
            port,
            ingest_ns,
            events,
        });
        let targets = match port {
            Port::Out => self.out.clone(),
            Port::Err => self.err.clone(),
        };
        // Sent first, recorded after: verdicts come through this thread's own inbox, so
        // none is looked at before the record exists.
        let unreachable: Vec<usize> = targets
            .iter()
            .copied()
            .filter(|&target| !shared.send(target, Msg::Events(batch.clone())))
            .collect();
        self.in_flight.insert(
            id,
            InFlight {
                batch,
                waiting_for: targets,
                failed: vec![false; len],
                bytes,
            },
        );
        self.in_flight_events += len;
        self.in_flight_bytes += bytes;
        for target in unreachable {
            // The sink's thread is gone (shutting down): nobody will deliver it.
            let feedback = BatchFeedback {
                sink: target,
                batch: id,
                incarnation,
                failed: (0..len as u32).collect(),
            };
            self.on_feedback(shared, Some(&mut *instance), incarnation, feedback)?;
        }
        Ok(())
    }

    /// At stop: every event still in flight gets a *fail* (its verdict will not come, or
    /// comes too late to be told): at-least-once, a resending source sends it again.
    pub(crate) fn fail_in_flight(
        &mut self,
        shared: &Shared,
        instance: Option<&mut ConnectorInstance>,
    ) -> Result<(), CallError> {
        let mut verdicts: Vec<Feedback> = Vec::new();
        let mut batches: Vec<InFlight> = self.in_flight.drain().map(|(_, entry)| entry).collect();
        batches.sort_by_key(|entry| entry.batch.id);
        for entry in &batches {
            if entry.batch.port != Port::Out {
                continue;
            }
            Metrics::add(&shared.metrics.fails, entry.batch.events.len());
            for event in &entry.batch.events {
                if event.id.pull != u64::MAX
                    && verdicts
                        .last()
                        .is_none_or(|last| last.id.pull != event.id.pull)
                {
                    verdicts.push(Feedback {
                        id: event.id,
                        kind: FeedbackKind::FAIL,
                    });
                }
            }
        }
        if self.in_flight_events > 0 {
            tracing::warn!(connector = %shared.id(), events = self.in_flight_events, "stopping with events in flight: they are failed back");
        }
        self.in_flight_events = 0;
        self.in_flight_bytes = 0;
        // Pulls whose bytes are still held in unfinished frames fail too.
        let mut verdicts = self.held.resolve(verdicts);
        // (Not counted in `fails`, which counts events: their bytes never became any.)
        verdicts.extend(self.held.fail_all());
        match instance {
            Some(instance) if !verdicts.is_empty() => give_feedback(shared, instance, &verdicts),
            _ => Ok(()),
        }
    }

    /// A sink's verdict on one of this source's batches.
    pub(crate) fn on_feedback(
        &mut self,
        shared: &Shared,
        instance: Option<&mut ConnectorInstance>,
        incarnation: u32,
        feedback: BatchFeedback,
    ) -> Result<(), CallError> {
        if feedback.incarnation != incarnation {
            return Ok(());
        }
        let Some(entry) = self.in_flight.get_mut(&feedback.batch) else {
            return Ok(());
        };
        let Some(position) = entry.waiting_for.iter().position(|&s| s == feedback.sink) else {
            // Not awaited from this sink (any more): it was given up on.
            return Ok(());
        };
        entry.waiting_for.swap_remove(position);
        for index in feedback.failed {
            if let Some(failed) = entry.failed.get_mut(index as usize) {
                *failed = true;
            }
        }
        if !entry.waiting_for.is_empty() {
            return Ok(());
        }
        let entry = self.in_flight.remove(&feedback.batch).expect("present");
        self.in_flight_events -= entry.failed.len();
        self.in_flight_bytes -= entry.bytes;
        // `err` events carry no verdict for the source.
        if entry.batch.port != Port::Out {
            return Ok(());
        }
        // Events derived from one pulled event are contiguous: one verdict per pull.
        let mut verdicts: Vec<Feedback> = Vec::new();
        let (mut acked, mut failed) = (0, 0);
        for (event, event_failed) in entry.batch.events.iter().zip(&entry.failed) {
            if *event_failed {
                failed += 1;
            } else {
                acked += 1;
            }
            if event.id.pull == u64::MAX {
                continue;
            }
            let kind = if *event_failed {
                FeedbackKind::FAIL
            } else {
                FeedbackKind::ACK
            };
            match verdicts.last_mut() {
                Some(last) if last.id.pull == event.id.pull => {
                    if kind == FeedbackKind::FAIL {
                        last.kind = FeedbackKind::FAIL;
                    }
                }
                _ => verdicts.push(Feedback { id: event.id, kind }),
            }
        }
        Metrics::add(&shared.metrics.acks, acked);
        Metrics::add(&shared.metrics.fails, failed);
        let verdicts = self.held.resolve(verdicts);
        match instance {
            Some(instance) if !verdicts.is_empty() => give_feedback(shared, instance, &verdicts),
            _ => Ok(()),
        }
    }
}

/// Hands verdicts to the plugin; only a panic or a permanent error ends the instance.
fn give_feedback(
    shared: &Shared,
    instance: &mut ConnectorInstance,
    verdicts: &[Feedback],
) -> Result<(), CallError> {
    match shared
        .metrics
        .track(Call::Feedback, || instance.feedback(verdicts))
    {
        Err(error) if error.is_poisoning() || error.is_permanent() => Err(error),
        Err(error) => {
            tracing::warn!(connector = %shared.id(), %error, "ack/fail handling failed");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// The event an `err` port carries for an input that did not decode: `{"error", "connector",
/// "stream", "pull"}`, in that order. Written as text and parsed: a `sonic_rs` object built
/// by inserting keys iterates them in a random order (it becomes a hash map), while a parsed
/// one keeps the order of its text, so the same input gives the same output every run.
fn error_event(error: &str, connector: &str, id: EventId) -> sonic_rs::Value {
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let text = format!(
        r#"{{"error":{},"connector":{},"stream":{},"pull":{}}}"#,
        quoted(error),
        quoted(connector),
        id.stream,
        id.pull
    );
    sonic_rs::from_str(&text).expect("valid JSON: strings escaped by serde_json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_events_keep_their_key_order_and_escape_their_strings() {
        let id = EventId {
            stream: 3,
            pull: 41,
        };
        let expected = r#"{"error":"bad \"input\"\n","connector":"in\\1","stream":3,"pull":41}"#;
        // An object built by inserting keys comes out in a random order per value: build
        // many.
        for _ in 0..20 {
            let event = error_event("bad \"input\"\n", "in\\1", id);
            assert_eq!(sonic_rs::to_string(&event).unwrap(), expected);
        }
    }
}
