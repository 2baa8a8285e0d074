//! Per-connector counters, updated by the connector's thread and read by the world.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

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
    /// Whether its circuit breaker (as a sink) is closed.
    pub circuit_closed: AtomicBool,
    /// How often it was restarted after a panic.
    pub restarts: AtomicU32,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        if n > 0 {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// A consistent-enough copy of the counters (each read atomically).
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            events_in: self.events_in.load(Ordering::Relaxed),
            events_out: self.events_out.load(Ordering::Relaxed),
            events_err: self.events_err.load(Ordering::Relaxed),
            acks: self.acks.load(Ordering::Relaxed),
            fails: self.fails.load(Ordering::Relaxed),
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
    /// See [`Metrics::circuit_closed`].
    pub circuit_closed: bool,
    /// See [`Metrics::restarts`].
    pub restarts: u32,
}

impl fmt::Display for MetricsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in={} out={} err={} acks={} fails={} circuit={} restarts={}",
            self.events_in,
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
