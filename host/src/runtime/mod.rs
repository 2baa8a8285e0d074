//! Running a pipeline: the world, its connectors, and the shutdown sequence.
//!
//! Each connector instance runs on a dedicated thread (see [`connector`](self) for why)
//! that owns its source and sink managers. The world is a task on a small tokio runtime
//! that owns everything else: it prints metrics on an interval and drives shutdown.
//! Circuit-breaker changes go straight from a sink to the sources that feed it.
//!
//! Shutdown happens when every source has finished and every event got its verdict, when a
//! connector asks for it (a benchmark sink that has seen enough), or on Ctrl-C / SIGTERM:
//! sources stop pulling and drain (every event in flight is delivered or failed back to its
//! source, up to `drain_timeout`), then every connector is told to stop (events still
//! queued are failed back, not delivered), and each gets `stop_timeout` to call `on_stop`
//! and close. A connector thread still inside a plugin call after that is abandoned and
//! reported with the method it is stuck in; the run returns anyway.

mod apply;
mod backoff;
mod connector;
mod control;
mod held;
mod metrics;
mod sink;
mod source;
mod supervisor;
mod upgrade;
mod world;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::unbounded_channel;

pub use backoff::Backoff;
pub use connector::{Batch, Event};
pub use control::{
    Applied, Command, Commands, ConnectorStatus, Controller, Upgraded, channel as control_channel,
};
pub use metrics::{Metrics, MetricsSnapshot};

use crate::pipeline::Pipeline;
use world::World;

/// Which output of a connector a binding starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Port {
    /// Decoded events.
    Out,
    /// Decode and processor errors, as events.
    Err,
}

/// Tuning of the runtime; the defaults suit most pipelines.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Print every connector's metrics this often (and always at shutdown).
    pub metrics_interval: Option<Duration>,
    /// How long draining may take before connectors are stopped anyway.
    pub drain_timeout: Duration,
    /// How long each connector may take to stop (`on_stop`, dropping its state) before
    /// its thread is abandoned.
    pub stop_timeout: Duration,
    /// Most events a source is asked for in one pull.
    pub batch_size: u32,
    /// Most events of one source awaiting their verdict before it is pulled again.
    pub max_in_flight: usize,
    /// Most bytes one source holds before more is routed or pulled: its events awaiting
    /// their verdict (after preprocessing) plus what its preprocessors hold for unfinished
    /// frames (at most half of it: past that, the streams holding most drop theirs).
    pub max_in_flight_bytes: usize,
    /// Longest pause between pulls of a source that has nothing to say.
    pub idle_backoff_max: Duration,
    /// How often a sink whose circuit breaker is closed is ticked.
    pub tick_interval: Duration,
    /// The `weir` that runs connectors out of process (started with
    /// [`CHILD_ARG`](crate::CHILD_ARG); the running one, as a rule). Without it, a
    /// connector configured with `isolation = "process"` fails for good.
    pub child_program: Option<std::path::PathBuf>,
    /// Runs every connector whose `isolation` the pipeline file does not set out of
    /// process (`weir run --isolation process`).
    pub isolate_by_default: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            metrics_interval: None,
            drain_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(5),
            batch_size: 64,
            max_in_flight: 256,
            max_in_flight_bytes: 64 << 20,
            idle_backoff_max: Duration::from_millis(1),
            tick_interval: Duration::from_millis(50),
            child_program: None,
            isolate_by_default: false,
        }
    }
}

/// What connector threads tell the world.
#[derive(Debug)]
pub(crate) enum WorldEvent {
    /// A source finished and all its events have their verdict.
    Finished(usize),
    /// A draining source has nothing in flight any more.
    Drained(usize),
    /// A connector asked for the runtime to shut down.
    ShutdownRequested(usize),
    /// A connector failed for good (no restarts left).
    GaveUp(usize, String),
    /// A connector's instance connected and started (`true`), or went down to be
    /// restarted (`false`).
    Running(usize, bool),
    /// A connector's thread is done; with the error of `on_stop` or of closing, if any.
    Stopped { index: usize, error: Option<String> },
    /// A connector runs another plugin now; the world records it, then answers.
    Upgraded(Box<upgrade::Switched>),
    /// An apply's changes are done (or timed out): the world answers with the outcome.
    ApplyDone(
        Box<(
            tokio::sync::oneshot::Sender<Result<Applied, String>>,
            Applied,
        )>,
    ),
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Every source finished and every event was delivered or failed back.
    Finished,
    /// Ctrl-C or SIGTERM.
    Signal,
    /// A connector asked for it.
    Requested {
        /// The connector's id.
        connector: String,
    },
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Why it ended.
    pub reason: StopReason,
    /// Final metrics, per connector id, in configuration order.
    pub metrics: Vec<(String, MetricsSnapshot)>,
    /// Connectors that failed for good, with the last error.
    pub failed: Vec<(String, String)>,
    /// Connectors whose `on_stop` (or dropping their state) failed, with the error: what
    /// they buffered may not have been written.
    pub stop_failed: Vec<(String, String)>,
    /// Connectors whose thread did not stop within `stop_timeout`, with the plugin method
    /// it was in (`-` if it was between calls): abandoned, still running.
    pub abandoned: Vec<(String, &'static str)>,
    /// Whether draining timed out with events still in flight.
    pub drain_timed_out: bool,
}

impl RunReport {
    /// Whether the run kept every promise: no connector failed for good, failed to stop or
    /// had to be abandoned, and draining finished in time.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
            && self.stop_failed.is_empty()
            && self.abandoned.is_empty()
            && !self.drain_timed_out
    }
}

/// Runs `pipeline` until it finishes, a connector asks to stop, or `interrupt` completes
/// (then drains). Must be called inside a tokio runtime with the time driver enabled.
pub async fn run(
    pipeline: Pipeline,
    options: RuntimeOptions,
    interrupt: impl std::future::Future<Output = ()>,
) -> RunReport {
    let (_controller, commands) = control::channel();
    run_controlled(pipeline, options, interrupt, commands).await
}

/// [`run`], taking [`Command`]s while it runs (from the [`Controller`] made with
/// `commands` by [`control_channel`]).
pub async fn run_controlled(
    pipeline: Pipeline,
    options: RuntimeOptions,
    interrupt: impl std::future::Future<Output = ()>,
    commands: Commands,
) -> RunReport {
    let (world_tx, world_rx) = unbounded_channel();
    let world = World::start(pipeline, Arc::new(options), world_tx);
    let (report, stopped) = world.run(world_rx, interrupt, commands.0).await;
    for thread in stopped {
        // Threads that reported `Stopped` are done but for returning; the others are
        // abandoned (blocked in a plugin call) and never joined.
        if thread.join().is_err() {
            tracing::error!("a connector thread panicked in the host");
        }
    }
    report
}
