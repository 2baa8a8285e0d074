//! The sink side of a connector: receive → encode → postprocess → deliver → verdicts.
//!
//! Batches wait in arrival order until the instance runs (a sink is never handed events
//! before its `connect` succeeded) and, after a batch of which the sink took nothing, until
//! a backoff has passed: a sink that fails every event, fed by a source that resends every
//! fail, must not spin. Repeated failures are logged once per few seconds, with a count.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use weir_sdk::{Circuit, SinkReply};

use super::connector::{Batch, BatchFeedback, Msg, Shared, Throttle};
use super::metrics::{Call, Metrics};
use super::supervisor::failure_backoff;
use crate::codec::{Codec, Encoded, Value};
use crate::error::CallError;
use crate::loader::{ConnectorInstance, SinkEvent};
use crate::processor::{Chain, Frames};

/// Encoded bytes handed to the plugin in one plugin batch, at most (and at least one
/// event): a batch of large events goes in several.
pub(crate) const DELIVERY_SLICE: usize = 1 << 20;

/// What became of a batch's events so far.
#[derive(Default)]
struct Verdicts {
    /// Indexes of the events not delivered.
    failed: Vec<u32>,
    last_error: Option<String>,
}

/// The sink side's state.
#[derive(Debug)]
pub(crate) struct Sink {
    /// Batches received and not delivered yet, in order.
    waiting: VecDeque<Arc<Batch>>,
    post_chain: Chain,
    encoded: Vec<u8>,
    frames: Frames,
    /// Since when its breaker has been closed.
    closed_since: Option<Instant>,
    last_tick: Instant,
    /// Batches in a row of which the sink took nothing.
    fail_streak: u32,
    /// No delivery before this (backoff after failures).
    retry_at: Instant,
    failures: Throttle,
}

impl Sink {
    pub(crate) fn new(shared: &Shared) -> Self {
        Self {
            waiting: VecDeque::new(),
            post_chain: Chain::new(&shared.spec.postprocessors),
            encoded: Vec::new(),
            frames: Frames::new(),
            closed_since: None,
            last_tick: Instant::now(),
            fail_streak: 0,
            retry_at: Instant::now(),
            failures: Throttle::new(),
        }
    }

    /// The pipeline changed: sources that feed it now and did not before are told if its
    /// breaker is closed (`shared.routes` are the new routes, `old` the ones before).
    pub(crate) fn rewire(&self, shared: &Shared, old: &crate::config::Links) {
        if self.closed_since.is_none() {
            return;
        }
        for &source in &shared.routes.upstream {
            if !old.upstream.contains(&source) {
                shared.send(
                    source,
                    Msg::Circuit {
                        sink: shared.index,
                        circuit: Circuit::Closed,
                    },
                );
            }
        }
    }

    /// The connector's settings changed (`shared.spec`): its postprocessors are made anew.
    pub(crate) fn respec(&mut self, shared: &Shared) {
        self.post_chain = Chain::new(&shared.spec.postprocessors);
    }

    /// Queues a batch for delivery.
    pub(crate) fn accept(&mut self, batch: Arc<Batch>) {
        self.waiting.push_back(batch);
    }

    /// When the next waiting batch may be delivered (the caller checks that the instance
    /// runs).
    pub(crate) fn next_delivery(&self) -> Option<Instant> {
        (!self.waiting.is_empty()).then_some(self.retry_at)
    }

    /// When the next tick is due: ticks go to a sink whose breaker is closed.
    pub(crate) fn next_tick(&self, shared: &Shared) -> Option<Instant> {
        self.closed_since
            .map(|_| self.last_tick + shared.options.tick_interval)
    }

    /// Fails every waiting batch back to its source.
    pub(crate) fn fail_waiting(&mut self, shared: &Shared) {
        while let Some(batch) = self.waiting.pop_front() {
            self.fail_batch(shared, &batch);
        }
    }

    /// Fails a whole batch back to its source without delivering any of it.
    pub(crate) fn fail_batch(&mut self, shared: &Shared, batch: &Batch) {
        Metrics::add(&shared.metrics.events_failed, batch.events.len());
        send_feedback(shared, batch, (0..batch.events.len() as u32).collect());
    }

    /// Encodes, postprocesses and delivers the oldest waiting batch, and sends the
    /// verdicts back. A panic or permanent error is returned (what was not delivered is
    /// failed first).
    ///
    /// A batch goes to the plugin in slices of about [`DELIVERY_SLICE`] encoded bytes, each
    /// one plugin batch, so that a batch of large events is never encoded whole.
    pub(crate) fn deliver_next(
        &mut self,
        shared: &Shared,
        instance: &mut ConnectorInstance,
    ) -> Result<(), CallError> {
        let Some(batch) = self.waiting.pop_front() else {
            return Ok(());
        };
        let mut verdicts = Verdicts::default();
        let mut next = 0;
        let mut outcome = Ok(());
        while next < batch.events.len() {
            let start = next;
            if let Err(error) =
                self.deliver_slice(shared, instance, &batch, &mut next, &mut verdicts)
            {
                // Nothing of this slice counts as delivered, nor anything after it.
                verdicts.failed.retain(|&index| (index as usize) < start);
                verdicts
                    .failed
                    .extend(start as u32..batch.events.len() as u32);
                verdicts.last_error = Some(error.to_string());
                if error.is_poisoning() || error.is_permanent() {
                    outcome = Err(error);
                }
                break;
            }
        }
        self.shrink_buffers();
        self.note_failures(
            shared,
            batch.events.len(),
            verdicts.failed.len(),
            verdicts.last_error,
        );
        send_feedback(shared, &batch, verdicts.failed);
        outcome
    }

    /// Encodes events of `batch` from `*next` until about [`DELIVERY_SLICE`] bytes are
    /// ready, and delivers them in one plugin batch; `*next` moves past them.
    fn deliver_slice(
        &mut self,
        shared: &Shared,
        instance: &mut ConnectorInstance,
        batch: &Batch,
        next: &mut usize,
        verdicts: &mut Verdicts,
    ) -> Result<(), CallError> {
        let codec = shared.spec.codec;
        let mut encoded = std::mem::take(&mut self.encoded);
        encoded.clear();
        // Where each delivered event's bytes are: in the value itself or in `encoded`.
        let mut locations: Vec<(u32, Option<std::ops::Range<usize>>)> =
            Vec::with_capacity(batch.events.len() - *next);
        let mut slice_bytes = 0;
        while *next < batch.events.len() && slice_bytes < DELIVERY_SLICE {
            let index = *next;
            *next += 1;
            let event = &batch.events[index];
            match self.encode(codec, &event.value, &mut encoded) {
                Ok(location) => {
                    slice_bytes += location.as_ref().map_or_else(
                        || event.value.as_bytes().map_or(0, <[u8]>::len),
                        std::ops::Range::len,
                    );
                    locations.push((index as u32, location));
                }
                Err(error) => {
                    Metrics::add(&shared.metrics.events_err, 1);
                    verdicts.last_error = Some(format!(
                        "{error}: event (stream {}, pull {}) not delivered",
                        event.id.stream, event.id.pull
                    ));
                    verdicts.failed.push(index as u32);
                }
            }
        }
        if locations.is_empty() {
            self.encoded = encoded;
            return Ok(());
        }
        let events: Vec<SinkEvent<'_>> = locations
            .iter()
            .map(|(index, location)| {
                let event = &batch.events[*index as usize];
                let bytes = match location {
                    Some(range) => &encoded[range.clone()],
                    None => event.value.as_bytes().unwrap_or_default(),
                };
                SinkEvent::new(bytes, event.id, batch.ingest_ns, &event.meta)
            })
            .collect();
        let result = shared.metrics.track(Call::Deliver, || {
            instance.sink_batch(&events).map(|outcome| {
                let replies: Vec<bool> = outcome.replies().map(|r| r == SinkReply::Fail).collect();
                (replies, outcome.circuit, outcome.errors)
            })
        });
        drop(events);
        self.encoded = encoded;
        Metrics::add(&shared.metrics.events_in, locations.len());
        let (replies, circuit, errors) = result?;
        for (position, is_failed) in replies.into_iter().enumerate() {
            if is_failed {
                verdicts.failed.push(locations[position].0);
            }
        }
        if let Some(error) = errors.into_iter().last() {
            verdicts.last_error = Some(error);
        }
        if let Some(circuit) = circuit {
            self.circuit_changed(shared, circuit);
        }
        Ok(())
    }

    /// Gives back the encoding buffer's memory after a batch of large events.
    fn shrink_buffers(&mut self) {
        if self.encoded.capacity() > 2 * DELIVERY_SLICE {
            self.encoded = Vec::new();
        }
    }

    /// Counts what the sink did not take, warns (rate-limited), and backs off after a
    /// batch of which it took nothing.
    fn note_failures(
        &mut self,
        shared: &Shared,
        len: usize,
        failed: usize,
        last_error: Option<String>,
    ) {
        Metrics::add(&shared.metrics.events_failed, failed);
        if failed > 0
            && let Some(count) = self.failures.note(failed as u64)
        {
            let reason = last_error.unwrap_or_else(|| "the sink replied `Fail`".to_owned());
            tracing::warn!(connector = %shared.id(), count, "events not delivered (count: since the last warning): {reason}");
        }
        if len > 0 && failed == len {
            self.fail_streak = self.fail_streak.saturating_add(1);
            self.retry_at = Instant::now() + failure_backoff(self.fail_streak);
        } else {
            self.fail_streak = 0;
        }
    }

    /// Encodes one value and runs the postprocessors; `None` means "the value's own bytes".
    fn encode(
        &mut self,
        codec: Codec,
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
        self.frames.clear();
        let mut errors = Vec::new();
        match &location {
            Encoded::AsIs => {
                let input = value.as_bytes().unwrap_or_default();
                self.post_chain
                    .process(input, &mut self.frames, &mut errors);
            }
            Encoded::Appended(range) => {
                self.post_chain
                    .process(&encoded[range.clone()], &mut self.frames, &mut errors);
            }
        }
        encoded.truncate(start);
        if let Some(error) = errors.into_iter().next() {
            return Err(error.to_string());
        }
        for frame in self.frames.iter() {
            encoded.extend_from_slice(frame);
        }
        Ok(Some(start..encoded.len()))
    }

    fn circuit_changed(&mut self, shared: &Shared, circuit: Circuit) {
        let closed = circuit == Circuit::Closed;
        if closed == self.closed_since.is_some() {
            return;
        }
        self.closed_since = closed.then(Instant::now);
        self.last_tick = Instant::now();
        shared
            .metrics
            .circuit_closed
            .store(closed, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(connector = %shared.id(), circuit = if closed { "closed" } else { "open" }, "circuit breaker changed");
        for &source in &shared.routes.upstream {
            shared.send(
                source,
                Msg::Circuit {
                    sink: shared.index,
                    circuit,
                },
            );
        }
    }

    /// Ticks a sink whose breaker is closed, so that it can reopen it.
    pub(crate) fn tick(
        &mut self,
        shared: &Shared,
        instance: &mut ConnectorInstance,
    ) -> Result<(), CallError> {
        self.last_tick = Instant::now();
        match shared.metrics.track(Call::Tick, || {
            instance.sink_batch(&[]).map(|outcome| outcome.circuit)
        }) {
            Ok(circuit) => {
                if let Some(circuit) = circuit {
                    self.circuit_changed(shared, circuit);
                }
                Ok(())
            }
            Err(error) if error.is_poisoning() || error.is_permanent() => Err(error),
            Err(error) => {
                tracing::warn!(connector = %shared.id(), %error, "tick failed");
                Ok(())
            }
        }
    }
}

fn send_feedback(shared: &Shared, batch: &Batch, failed: Vec<u32>) {
    let feedback = BatchFeedback {
        sink: shared.index,
        batch: batch.id,
        incarnation: batch.incarnation,
        failed,
    };
    shared.send(batch.origin, Msg::Feedback(feedback));
}
