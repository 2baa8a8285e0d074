//! The world: the one async task that watches the connectors and drives the shutdown.
//!
//! Every wait here has a deadline: draining ends after `drain_timeout` whatever is still
//! in flight, stopping after `stop_timeout` whatever thread is still inside a plugin call.
//! The world never blocks on a connector thread.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::connector::{Control, Msg};
use super::control::{Command, ConnectorStatus};
use super::metrics::Metrics;
use super::upgrade::UpgradeRequest;
use super::{RunReport, RuntimeOptions, StopReason, WorldEvent};
use crate::loader::PluginInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Stopping,
}

/// A deadline far enough away to mean "none".
const NEVER: Duration = Duration::from_secs(3600 * 24 * 365);

pub(super) struct World {
    ids: Vec<String>,
    /// The plugin each connector runs now.
    plugins: Vec<PluginInfo>,
    peers: Arc<Vec<Sender<Msg>>>,
    metrics: Vec<Arc<Metrics>>,
    sources: BTreeSet<usize>,
    active_sources: BTreeSet<usize>,
    drained: BTreeSet<usize>,
    stopped: BTreeSet<usize>,
    failed: Vec<(String, String)>,
    stop_failed: Vec<(String, String)>,
    options: Arc<RuntimeOptions>,
    phase: Phase,
    reason: Option<StopReason>,
    drain_timed_out: bool,
}

impl World {
    pub(super) fn new(
        ids: Vec<String>,
        plugins: Vec<PluginInfo>,
        peers: Arc<Vec<Sender<Msg>>>,
        metrics: Vec<Arc<Metrics>>,
        sources: BTreeSet<usize>,
        options: Arc<RuntimeOptions>,
    ) -> Self {
        Self {
            ids,
            plugins,
            peers,
            metrics,
            active_sources: sources.clone(),
            sources,
            drained: BTreeSet::new(),
            stopped: BTreeSet::new(),
            failed: Vec::new(),
            stop_failed: Vec::new(),
            options,
            phase: Phase::Running,
            reason: None,
            drain_timed_out: false,
        }
    }

    /// Runs until every connector stopped or the stop deadline passed; returns the report
    /// and the connectors whose threads stopped.
    pub(super) async fn run(
        mut self,
        mut events: UnboundedReceiver<WorldEvent>,
        interrupt: impl std::future::Future<Output = ()>,
        mut commands: UnboundedReceiver<Command>,
    ) -> (RunReport, BTreeSet<usize>) {
        let mut commands_open = true;
        let mut interrupt = std::pin::pin!(interrupt);
        let mut interrupted = false;
        let metrics_every = self.options.metrics_interval.unwrap_or(NEVER);
        let mut metrics_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + metrics_every, metrics_every);
        let mut deadline = std::pin::pin!(tokio::time::sleep(NEVER));
        if self.sources.is_empty() {
            tracing::warn!("the pipeline has no bindings from any source: nothing to do");
            self.begin_shutdown(StopReason::Finished);
        }
        let mut armed = None;
        let mut abandoned = Vec::new();
        loop {
            if self.stopped.len() == self.ids.len() {
                break;
            }
            if self.phase == Phase::Draining && self.drained.is_superset(&self.sources) {
                self.stop_all();
            }
            // (Re)arm the deadline of the phase when it changes.
            if armed != Some(self.phase) {
                armed = Some(self.phase);
                let after = match self.phase {
                    Phase::Running => NEVER,
                    Phase::Draining => self.options.drain_timeout,
                    Phase::Stopping => self.options.stop_timeout,
                };
                deadline.as_mut().reset(tokio::time::Instant::now() + after);
            }
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => break,
                },
                () = &mut interrupt, if !interrupted => {
                    interrupted = true;
                    tracing::info!("interrupted: draining (every event in flight is delivered or failed back)");
                    self.begin_shutdown(StopReason::Signal);
                }
                () = &mut deadline, if self.phase != Phase::Running => {
                    if self.phase == Phase::Draining {
                        self.drain_timed_out = true;
                        tracing::warn!(timeout_ms = self.options.drain_timeout.as_millis() as u64, "drain timed out: stopping with events still in flight (they are failed back, not delivered)");
                        self.stop_all();
                    } else {
                        abandoned = self.abandon();
                        break;
                    }
                }
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.on_command(command),
                    None => commands_open = false,
                },
                _ = metrics_tick.tick() => self.print_metrics("metrics"),
            }
        }
        self.print_metrics("final metrics");
        let report = RunReport {
            reason: self.reason.unwrap_or(StopReason::Finished),
            metrics: self
                .ids
                .iter()
                .cloned()
                .zip(self.metrics.iter().map(|m| m.snapshot()))
                .collect(),
            failed: self.failed,
            stop_failed: self.stop_failed,
            abandoned,
            drain_timed_out: self.drain_timed_out,
        };
        (report, self.stopped)
    }

    /// The connectors that did not stop in time, with the method each is stuck in.
    fn abandon(&self) -> Vec<(String, &'static str)> {
        let mut abandoned = Vec::new();
        for (index, id) in self.ids.iter().enumerate() {
            if self.stopped.contains(&index) {
                continue;
            }
            let method = self.metrics[index]
                .current_call()
                .map_or("-", |call| call.name());
            tracing::error!(connector = %id, method, timeout_ms = self.options.stop_timeout.as_millis() as u64, "connector did not stop in time: its thread is abandoned");
            abandoned.push((id.clone(), method));
        }
        abandoned
    }

    fn on_event(&mut self, event: WorldEvent) {
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
                }
            }
            WorldEvent::GaveUp(connector, error) => {
                self.failed.push((self.ids[connector].clone(), error));
            }
            WorldEvent::Upgraded(switched) => {
                let switched = *switched;
                self.plugins[switched.index] = switched.plugin;
                let _ = switched.reply.send(switched.outcome);
            }
            WorldEvent::Stopped { index, error } => {
                self.stopped.insert(index);
                self.drained.insert(index);
                self.active_sources.remove(&index);
                if let Some(error) = error {
                    self.stop_failed.push((self.ids[index].clone(), error));
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let statuses = (0..self.ids.len())
                    .map(|index| ConnectorStatus {
                        id: self.ids[index].clone(),
                        plugin: self.plugins[index].clone(),
                        state: self.state(index),
                        metrics: self.metrics[index].snapshot(),
                    })
                    .collect();
                let _ = reply.send(statuses);
            }
            Command::Upgrade {
                connector,
                plugin,
                reply,
            } => {
                let Some(index) = self.ids.iter().position(|id| *id == connector) else {
                    let _ = reply.send(Err(format!("no connector `{connector}` in the pipeline")));
                    return;
                };
                if self.phase != Phase::Running {
                    let _ = reply.send(Err("the pipeline is shutting down".to_owned()));
                    return;
                }
                if self.failed.iter().any(|(id, _)| *id == connector) {
                    let _ = reply.send(Err(format!("connector `{connector}` failed for good")));
                    return;
                }
                if plugin.name() != self.plugins[index].name {
                    let _ = reply.send(Err(format!(
                        "connector `{connector}` runs plugin `{}`, not `{}`",
                        self.plugins[index].name,
                        plugin.name()
                    )));
                    return;
                }
                let request = UpgradeRequest { plugin, reply };
                if let Err(std::sync::mpsc::SendError(Msg::Upgrade(request))) =
                    self.peers[index].send(Msg::Upgrade(request))
                {
                    let _ = request
                        .reply
                        .send(Err(format!("connector `{connector}` has stopped")));
                }
            }
        }
    }

    fn state(&self, index: usize) -> &'static str {
        let id = &self.ids[index];
        if self.failed.iter().any(|(failed, _)| failed == id) {
            "failed"
        } else if self.stopped.contains(&index) {
            "stopped"
        } else {
            match self.phase {
                Phase::Running => "running",
                Phase::Draining => "draining",
                Phase::Stopping => "stopping",
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
        // Sources first, so nothing new is produced.
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
