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
//! source, up to `drain_timeout`), then every connector stops in turn: sinks flush and report.

mod connector;
mod metrics;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

pub use connector::{Batch, Event};
pub use metrics::{Metrics, MetricsSnapshot};

use crate::config::Port;
use crate::pipeline::Pipeline;
use connector::{ConnectorThread, Control, Msg, Routes};

/// Tuning of the runtime; the defaults suit most pipelines.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Print every connector's metrics this often (and always at shutdown).
    pub metrics_interval: Option<Duration>,
    /// How long draining may take before connectors are stopped anyway.
    pub drain_timeout: Duration,
    /// Most events a source is asked for in one pull.
    pub batch_size: u32,
    /// Most events of one source awaiting their verdict before it is pulled again.
    pub max_in_flight: usize,
    /// Longest pause between pulls of a source that has nothing to say.
    pub idle_backoff_max: Duration,
    /// How often a sink whose circuit breaker is closed is ticked.
    pub tick_interval: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            metrics_interval: None,
            drain_timeout: Duration::from_secs(10),
            batch_size: 64,
            max_in_flight: 4096,
            idle_backoff_max: Duration::from_millis(1),
            tick_interval: Duration::from_millis(50),
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
    /// A connector's thread is done.
    Stopped(usize),
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
    /// Whether draining timed out with events still in flight.
    pub drain_timed_out: bool,
}

/// Runs `pipeline` until it finishes, a connector asks to stop, or `interrupt` completes
/// (then drains). Must be called inside a tokio runtime with the time driver enabled.
pub async fn run(
    pipeline: Pipeline,
    options: RuntimeOptions,
    interrupt: impl std::future::Future<Output = ()>,
) -> RunReport {
    let options = Arc::new(options);
    let n = pipeline.spec.connectors.len();
    let mut routes = vec![Routes::default(); n];
    for binding in &pipeline.spec.bindings {
        let targets = match binding.port {
            Port::Out => &mut routes[binding.from].out,
            Port::Err => &mut routes[binding.from].err,
        };
        for &to in &binding.to {
            if !targets.contains(&to) {
                targets.push(to);
            }
        }
    }
    // Which sources feed each sink, for circuit breakers.
    for source in 0..n {
        let sinks: Vec<usize> = routes[source]
            .out
            .iter()
            .chain(&routes[source].err)
            .copied()
            .collect();
        for sink in sinks {
            if !routes[sink].upstream.contains(&source) {
                routes[sink].upstream.push(source);
            }
        }
    }
    let (world_tx, world_rx) = unbounded_channel();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| std::sync::mpsc::channel()).unzip();
    let peers = Arc::new(senders);
    let metrics: Vec<Arc<Metrics>> = (0..n).map(|_| Arc::new(Metrics::default())).collect();
    let ids: Vec<String> = pipeline
        .spec
        .connectors
        .iter()
        .map(|c| c.id.clone())
        .collect();
    let mut threads = Vec::with_capacity(n);
    for (index, ((spec, plugin), inbox)) in pipeline
        .spec
        .connectors
        .iter()
        .zip(&pipeline.plugins)
        .zip(receivers)
        .enumerate()
    {
        let thread = ConnectorThread {
            index,
            spec: spec.clone(),
            plugin: plugin.clone(),
            inbox,
            world: world_tx.clone(),
            peers: peers.clone(),
            routes: routes[index].clone(),
            metrics: metrics[index].clone(),
            options: options.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("weir-{}", spec.id))
            .spawn(move || thread.run())
            .expect("spawning a connector thread");
        threads.push(handle);
    }
    drop(world_tx);
    let sources: BTreeSet<usize> = (0..n).filter(|i| routes[*i].is_source()).collect();
    let world = World {
        ids,
        peers,
        metrics,
        active_sources: sources.clone(),
        sources,
        drained: BTreeSet::new(),
        stopped: BTreeSet::new(),
        failed: Vec::new(),
        options,
        phase: Phase::Running,
        reason: None,
        drain_timed_out: false,
    };
    let report = world.run(world_rx, interrupt).await;
    for thread in threads {
        if thread.join().is_err() {
            tracing::error!("a connector thread panicked in the host");
        }
    }
    report
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Stopping,
}

struct World {
    ids: Vec<String>,
    peers: Arc<Vec<std::sync::mpsc::Sender<Msg>>>,
    metrics: Vec<Arc<Metrics>>,
    sources: BTreeSet<usize>,
    active_sources: BTreeSet<usize>,
    drained: BTreeSet<usize>,
    stopped: BTreeSet<usize>,
    failed: Vec<(String, String)>,
    options: Arc<RuntimeOptions>,
    phase: Phase,
    reason: Option<StopReason>,
    drain_timed_out: bool,
}

impl World {
    async fn run(
        mut self,
        mut events: UnboundedReceiver<WorldEvent>,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> RunReport {
        let mut interrupt = std::pin::pin!(interrupt);
        let mut interrupted = false;
        let metrics_every = self
            .options
            .metrics_interval
            .unwrap_or(Duration::from_secs(3600 * 24 * 365));
        let mut metrics_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + metrics_every, metrics_every);
        let drain_deadline =
            tokio::time::sleep(Duration::MAX.min(Duration::from_secs(3600 * 24 * 365)));
        let mut drain_deadline = std::pin::pin!(drain_deadline);
        if self.sources.is_empty() {
            tracing::warn!("the pipeline has no bindings from any source: nothing to do");
            self.begin_shutdown(StopReason::Finished);
        }
        loop {
            if self.stopped.len() == self.ids.len() {
                break;
            }
            if self.phase == Phase::Draining && self.drained.is_superset(&self.sources) {
                self.stop_all();
            }
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(event, &mut drain_deadline),
                    None => break,
                },
                () = &mut interrupt, if !interrupted => {
                    interrupted = true;
                    tracing::info!("interrupted: draining (every event in flight is delivered or failed back)");
                    self.begin_shutdown(StopReason::Signal);
                    drain_deadline.as_mut().reset(tokio::time::Instant::now() + self.options.drain_timeout);
                }
                () = &mut drain_deadline, if self.phase == Phase::Draining => {
                    self.drain_timed_out = true;
                    tracing::warn!(timeout_ms = self.options.drain_timeout.as_millis() as u64, "drain timed out: stopping with events still in flight");
                    self.stop_all();
                }
                _ = metrics_tick.tick() => self.print_metrics("metrics"),
            }
        }
        self.print_metrics("final metrics");
        RunReport {
            reason: self.reason.unwrap_or(StopReason::Finished),
            metrics: self
                .ids
                .iter()
                .cloned()
                .zip(self.metrics.iter().map(|m| m.snapshot()))
                .collect(),
            failed: self.failed,
            drain_timed_out: self.drain_timed_out,
        }
    }

    fn on_event(
        &mut self,
        event: WorldEvent,
        drain_deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    ) {
        match event {
            WorldEvent::Finished(source) => {
                self.active_sources.remove(&source);
                tracing::debug!(connector = %self.ids[source], "source finished");
                if self.active_sources.is_empty() && self.phase == Phase::Running {
                    self.reason = Some(StopReason::Finished);
                    // Nothing is in flight any more: stop right away.
                    self.phase = Phase::Draining;
                    self.drained = self.sources.clone();
                }
            }
            WorldEvent::Drained(source) => {
                self.drained.insert(source);
            }
            WorldEvent::ShutdownRequested(connector) => {
                if self.phase == Phase::Running {
                    tracing::info!(connector = %self.ids[connector], "shutdown requested by connector");
                    self.begin_shutdown(StopReason::Requested {
                        connector: self.ids[connector].clone(),
                    });
                    drain_deadline
                        .as_mut()
                        .reset(tokio::time::Instant::now() + self.options.drain_timeout);
                }
            }
            WorldEvent::GaveUp(connector, error) => {
                self.failed.push((self.ids[connector].clone(), error));
                if self.sources.contains(&connector) {
                    self.drained.insert(connector);
                    self.active_sources.remove(&connector);
                    if self.active_sources.is_empty() && self.phase == Phase::Running {
                        self.begin_shutdown(StopReason::Finished);
                        drain_deadline
                            .as_mut()
                            .reset(tokio::time::Instant::now() + self.options.drain_timeout);
                    }
                }
            }
            WorldEvent::Stopped(connector) => {
                self.stopped.insert(connector);
                self.drained.insert(connector);
                self.active_sources.remove(&connector);
            }
        }
    }

    fn begin_shutdown(&mut self, reason: StopReason) {
        if self.phase != Phase::Running {
            return;
        }
        self.reason = Some(reason);
        self.phase = Phase::Draining;
        for &source in &self.sources {
            let _ = self.peers[source].send(Msg::Control(Control::Drain));
        }
    }

    fn stop_all(&mut self) {
        if self.phase == Phase::Stopping {
            return;
        }
        self.phase = Phase::Stopping;
        // Sources first, so nothing new is produced; each inbox is FIFO, so sinks deliver
        // everything queued before their stop request.
        let (sources, sinks): (Vec<usize>, Vec<usize>) =
            (0..self.ids.len()).partition(|i| self.sources.contains(i));
        for index in sources.into_iter().chain(sinks) {
            let _ = self.peers[index].send(Msg::Control(Control::Stop));
        }
    }

    fn print_metrics(&self, title: &str) {
        let mut text = format!("{title}:\n");
        for (id, metrics) in self.ids.iter().zip(&self.metrics) {
            text.push_str(&format!("  {id:<16} {}\n", metrics.snapshot()));
        }
        eprint!("{text}");
    }
}
