//! Per-connector counters, updated by the connector's thread and read by the world.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

/// Counters of one connector.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events delivered to it as a sink.
    pub events_in: AtomicU64,
    /// Events it produced on its `out` port as a source.
    pub events_out: AtomicU64,
    /// Decode, processor and encode errors (events on its `err` port, or failed deliveries).
    pub events_err: AtomicU64,
    /// Its events acknowledged by every sink they went to.
    pub acks: AtomicU64,
    /// Its events that some sink did not deliver.
    pub fails: AtomicU64,
    /// Events delivered to it as a sink that it did not take (replied `Fail`, returned an
    /// error, or could not be encoded).
    pub events_failed: AtomicU64,
    /// Whether its circuit breaker (as a sink) is closed.
    pub circuit_closed: AtomicBool,
    /// How often it was restarted after a panic.
    pub restarts: AtomicU32,
    /// The plugin method its thread is in right now, if any (see [`Call`]).
    pub(crate) calling: AtomicU8,
}

/// A connector method the host calls, tracked while the call runs so that a connector
/// thread that never returns can be named with the method it is stuck in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Call {
    Nothing = 0,
    New,
    Connect,
    OnStart,
    OnPause,
    OnResume,
    OnDrain,
    OnStop,
    OnCircuit,
    Pull,
    Feedback,
    Deliver,
    Tick,
    Drop,
}

impl Call {
    const ALL: [Call; 14] = [
        Call::Nothing,
        Call::New,
        Call::Connect,
        Call::OnStart,
        Call::OnPause,
        Call::OnResume,
        Call::OnDrain,
        Call::OnStop,
        Call::OnCircuit,
        Call::Pull,
        Call::Feedback,
        Call::Deliver,
        Call::Tick,
        Call::Drop,
    ];

    /// The method's name as a plugin author knows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Call::Nothing => "-",
            Call::New => "new",
            Call::Connect => "connect",
            Call::OnStart => "on_start",
            Call::OnPause => "on_pause",
            Call::OnResume => "on_resume",
            Call::OnDrain => "on_drain",
            Call::OnStop => "on_stop",
            Call::OnCircuit => "on_circuit",
            Call::Pull => "pull",
            Call::Feedback => "on_ack/on_fail",
            Call::Deliver => "on_event",
            Call::Tick => "on_tick",
            Call::Drop => "drop",
        }
    }
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        if n > 0 {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Runs `f`, a call into the plugin, recording `call` as the method in progress.
    #[inline]
    pub(crate) fn track<R>(&self, call: Call, f: impl FnOnce() -> R) -> R {
        self.calling.store(call as u8, Ordering::Relaxed);
        let result = f();
        self.calling.store(Call::Nothing as u8, Ordering::Relaxed);
        result
    }

    /// The plugin method the connector's thread is in, if any.
    pub(crate) fn current_call(&self) -> Option<Call> {
        let code = self.calling.load(Ordering::Relaxed);
        Call::ALL
            .get(usize::from(code))
            .copied()
            .filter(|call| *call != Call::Nothing)
    }

    /// A consistent-enough copy of the counters (each read atomically).
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            events_in: self.events_in.load(Ordering::Relaxed),
            events_out: self.events_out.load(Ordering::Relaxed),
            events_err: self.events_err.load(Ordering::Relaxed),
            acks: self.acks.load(Ordering::Relaxed),
            fails: self.fails.load(Ordering::Relaxed),
            events_failed: self.events_failed.load(Ordering::Relaxed),
            circuit_closed: self.circuit_closed.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

/// The counters of one connector at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// See [`Metrics::events_in`].
    pub events_in: u64,
    /// See [`Metrics::events_out`].
    pub events_out: u64,
    /// See [`Metrics::events_err`].
    pub events_err: u64,
    /// See [`Metrics::acks`].
    pub acks: u64,
    /// See [`Metrics::fails`].
    pub fails: u64,
    /// See [`Metrics::events_failed`].
    pub events_failed: u64,
    /// See [`Metrics::circuit_closed`].
    pub circuit_closed: bool,
    /// See [`Metrics::restarts`].
    pub restarts: u32,
}

impl fmt::Display for MetricsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in={} in_failed={} out={} err={} acks={} fails={} circuit={} restarts={}",
            self.events_in,
            self.events_failed,
            self.events_out,
            self.events_err,
            self.acks,
            self.fails,
            if self.circuit_closed {
                "closed"
            } else {
                "open"
            },
            self.restarts
        )
    }
}
