//! The world: the one async task that starts and watches the connectors, changes the
//! pipeline while it runs, and drives the shutdown.
//!
//! Every wait here has a deadline: draining ends after `drain_timeout` whatever is still
//! in flight, stopping after `stop_timeout` whatever thread is still inside a plugin call.
//! The world never blocks on a connector thread.
//!
//! Connectors are numbered in the order they joined; a removed connector's number is never
//! given to another, so a late message to or from it cannot reach the wrong connector.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use super::apply::{Current, FollowUp, Retiring, plan};
use super::connector::{ConnectorThread, Control, Msg, Rewire};
use super::control::{Applied, Command, ConnectorStatus};
use super::metrics::Metrics;
use super::upgrade::UpgradeRequest;
use super::{RunReport, RuntimeOptions, StopReason, WorldEvent};
use crate::config::{ConnectorSpec, Links};
use crate::loader::{Plugin, PluginInfo};
use crate::pipeline::Pipeline;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Stopping,
}

/// Answers, with `outcome`, everyone in `waiters` who waits for connector `index`.
fn answer<T: Clone>(waiters: &mut Vec<(usize, oneshot::Sender<T>)>, index: usize, outcome: &T) {
    for (waited, waiter) in std::mem::take(waiters) {
        if waited == index {
            let _ = waiter.send(outcome.clone());
        } else {
            waiters.push((waited, waiter));
        }
    }
}

/// A deadline far enough away to mean "none".
const NEVER: Duration = Duration::from_secs(3600 * 24 * 365);

pub(super) struct World {
    ids: Vec<String>,
    /// The plugin each connector runs now.
    plugins: Vec<PluginInfo>,
    /// The settings each connector runs with now.
    specs: Vec<ConnectorSpec>,
    /// Each connector's routes now.
    links: Vec<Links>,
    /// Every connector's inbox (what each connector thread got last).
    peers: Arc<Vec<Sender<Msg>>>,
    metrics: Vec<Arc<Metrics>>,
    threads: Vec<Option<JoinHandle<()>>>,
    /// Threads of removed connectors that stopped, to join once they have returned.
    reaping: Vec<JoinHandle<()>>,
    /// For connector threads started later.
    events: UnboundedSender<WorldEvent>,
    /// Connectors removed from the pipeline (stopping or stopped).
    removed: BTreeSet<usize>,
    /// Who waits for a connector to stop, with the error of its `on_stop`.
    stop_waiters: Vec<(usize, oneshot::Sender<Option<String>>)>,
    /// An apply is under way (its follow-up has not reported yet).
    applying: bool,
    /// Connectors whose instance is connected and started.
    running: BTreeSet<usize>,
    /// Who waits for a new connector to run: `Ok` once it does, or why it never will.
    run_waiters: Vec<(usize, oneshot::Sender<Result<(), String>>)>,
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
    /// The world of `pipeline`, its connector threads started; they tell it what happens
    /// through `events`.
    pub(super) fn start(
        pipeline: Pipeline,
        options: Arc<RuntimeOptions>,
        events: UnboundedSender<WorldEvent>,
    ) -> Self {
        let mut world = Self {
            ids: Vec::new(),
            plugins: Vec::new(),
            specs: Vec::new(),
            links: Vec::new(),
            peers: Arc::new(Vec::new()),
            metrics: Vec::new(),
            threads: Vec::new(),
            reaping: Vec::new(),
            events,
            removed: BTreeSet::new(),
            stop_waiters: Vec::new(),
            applying: false,
            running: BTreeSet::new(),
            run_waiters: Vec::new(),
            active_sources: BTreeSet::new(),
            sources: BTreeSet::new(),
            drained: BTreeSet::new(),
            stopped: BTreeSet::new(),
            failed: Vec::new(),
            stop_failed: Vec::new(),
            options,
            phase: Phase::Running,
            reason: None,
            drain_timed_out: false,
        };
        let Pipeline { spec, plugins } = pipeline;
        let links: Vec<Links> = spec.graph.iter().cloned().collect();
        let inboxes = world.join(spec.connectors.into_iter().zip(plugins).zip(links));
        world.peers = Arc::new(world.peers.iter().cloned().collect());
        for (index, inbox) in inboxes {
            world.spawn(index, inbox);
        }
        world
    }

    /// Numbers new connectors and makes their inboxes (their threads are started by
    /// [`spawn`](Self::spawn) once every connector has the new inboxes).
    fn join(
        &mut self,
        connectors: impl IntoIterator<Item = ((ConnectorSpec, Plugin), Links)>,
    ) -> Vec<(usize, (Plugin, Receiver<Msg>))> {
        let mut peers: Vec<Sender<Msg>> = self.peers.iter().cloned().collect();
        let mut joined = Vec::new();
        for ((spec, plugin), links) in connectors {
            let index = self.ids.len();
            let (inbox, receiver) = std::sync::mpsc::channel();
            peers.push(inbox);
            if links.is_source() {
                self.sources.insert(index);
                self.active_sources.insert(index);
            }
            self.ids.push(spec.id.clone());
            self.plugins.push(plugin.info().clone());
            self.specs.push(spec);
            self.links.push(links);
            self.metrics.push(Arc::new(Metrics::default()));
            self.threads.push(None);
            joined.push((index, (plugin, receiver)));
        }
        self.peers = Arc::new(peers);
        joined
    }

    /// Starts connector `index`'s thread.
    fn spawn(&mut self, index: usize, (plugin, inbox): (Plugin, Receiver<Msg>)) {
        let thread = ConnectorThread {
            index,
            spec: self.specs[index].clone(),
            plugin,
            inbox,
            world: self.events.clone(),
            peers: self.peers.clone(),
            routes: self.links[index].clone(),
            metrics: self.metrics[index].clone(),
            options: self.options.clone(),
        };
        let world = self.events.clone();
        let handle = std::thread::Builder::new()
            .name(format!("weir-{}", self.ids[index]))
            .spawn(move || {
                // A bug of the host's own on this thread must not leave the world waiting
                // for it forever: it counts as the connector failing for good.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| thread.run()));
                if let Err(panic) = ran {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_owned());
                    let error = format!("the host's connector thread panicked: {message}");
                    tracing::error!(connector = index, "{error}");
                    let _ = world.send(WorldEvent::GaveUp(index, error.clone()));
                    let _ = world.send(WorldEvent::Stopped {
                        index,
                        error: Some(error),
                    });
                }
            });
        match handle {
            Ok(handle) => self.threads[index] = Some(handle),
            Err(error) => {
                // Out of threads: the connector fails for good, the others go on.
                let error = format!("cannot start the connector's thread: {error}");
                tracing::error!(connector = %self.ids[index], "{error}");
                self.failed.push((self.ids[index].clone(), error.clone()));
                self.on_event(WorldEvent::Stopped {
                    index,
                    error: Some(error),
                });
            }
        }
    }

    fn answer_run_waiters(&mut self, index: usize, outcome: Result<(), String>) {
        answer(&mut self.run_waiters, index, &outcome);
    }

    /// Once no source is left running (each finished, or was removed), nothing more comes
    /// and nothing is in flight: the run stops right away. Not while an apply is under way
    /// (it may be adding sources); its end looks again.
    fn end_if_no_sources(&mut self) {
        if self.phase == Phase::Running && self.active_sources.is_empty() && !self.applying {
            self.reason = Some(StopReason::Finished);
            self.phase = Phase::Draining;
            self.drained = self.sources.clone();
        }
    }

    /// Joins the threads of removed connectors that have stopped and returned (`also`: one
    /// that just reported it stopped; it is joined later if not returned yet).
    fn reap(&mut self, also: Option<usize>) {
        if let Some(index) = also {
            self.reaping.extend(self.threads[index].take());
        }
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reaping)
            .into_iter()
            .partition(JoinHandle::is_finished);
        self.reaping = running;
        for thread in done {
            if thread.join().is_err() {
                tracing::error!("a connector thread panicked in the host");
            }
        }
    }

    /// Whether connector `index` is part of the pipeline (not removed).
    fn present(&self, index: usize) -> bool {
        !self.removed.contains(&index)
    }

    /// Runs until every connector stopped or the stop deadline passed; returns the report
    /// and the threads of the connectors that stopped (the others are abandoned).
    pub(super) async fn run(
        mut self,
        mut events: UnboundedReceiver<WorldEvent>,
        interrupt: impl std::future::Future<Output = ()>,
        mut commands: UnboundedReceiver<Command>,
    ) -> (RunReport, Vec<JoinHandle<()>>) {
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
            reason: self.reason.clone().unwrap_or(StopReason::Finished),
            metrics: (0..self.ids.len())
                .filter(|&i| self.present(i))
                .map(|i| (self.ids[i].clone(), self.metrics[i].snapshot()))
                .collect(),
            failed: std::mem::take(&mut self.failed),
            stop_failed: std::mem::take(&mut self.stop_failed),
            abandoned,
            drain_timed_out: self.drain_timed_out,
        };
        let stopped = self
            .threads
            .iter_mut()
            .enumerate()
            .filter(|(index, _)| self.stopped.contains(index))
            .filter_map(|(_, thread)| thread.take())
            .chain(std::mem::take(&mut self.reaping))
            .collect();
        (report, stopped)
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
                self.end_if_no_sources();
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
                self.answer_run_waiters(connector, Err(format!("failed for good: {error}")));
                self.failed.push((self.ids[connector].clone(), error));
            }
            WorldEvent::Running(connector, true) => {
                self.running.insert(connector);
                self.answer_run_waiters(connector, Ok(()));
            }
            WorldEvent::Running(connector, false) => {
                self.running.remove(&connector);
            }
            WorldEvent::Upgraded(switched) => {
                let switched = *switched;
                self.plugins[switched.index] = switched.plugin;
                self.specs[switched.index] = switched.spec;
                if switched.outcome.is_ok() && self.sources.contains(&switched.index) {
                    // A new instance is a source that has not finished.
                    self.active_sources.insert(switched.index);
                }
                let _ = switched.reply.send(switched.outcome);
            }
            WorldEvent::Stopped { index, error } => {
                self.answer_run_waiters(index, Err("stopped before it ran".to_owned()));
                self.stopped.insert(index);
                self.drained.insert(index);
                self.active_sources.remove(&index);
                answer(&mut self.stop_waiters, index, &error);
                if self.removed.contains(&index) {
                    tracing::info!(connector = %self.ids[index], metrics = %self.metrics[index].snapshot(), "removed connector stopped");
                    // Its thread is returning: reaped now or with a later one, so that
                    // connectors removed over a long run leave no stacks behind.
                    self.reap(Some(index));
                    // Its `on_stop` failure is the apply's to report, not the run's.
                } else if let Some(error) = error {
                    self.stop_failed.push((self.ids[index].clone(), error));
                }
                // The last source may have been removed (or its thread ended).
                self.end_if_no_sources();
            }
            WorldEvent::ApplyDone(done) => {
                let (reply, applied) = *done;
                self.applying = false;
                self.reap(None);
                let _ = reply.send(Ok(applied));
                self.end_if_no_sources();
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Apply { pipeline, reply } => {
                if let Err(why) = self.apply(*pipeline, reply) {
                    tracing::warn!("pipeline not applied: {why}");
                }
            }
            Command::Status(reply) => {
                let statuses = (0..self.ids.len())
                    .filter(|&index| self.present(index))
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
                let Some(index) =
                    (0..self.ids.len()).find(|&i| self.present(i) && self.ids[i] == connector)
                else {
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
                let request = UpgradeRequest {
                    plugin,
                    spec: None,
                    reply,
                };
                if let Err(std::sync::mpsc::SendError(Msg::Upgrade(request))) =
                    self.peers[index].send(Msg::Upgrade(Box::new(request)))
                {
                    let _ = request
                        .reply
                        .send(Err(format!("connector `{connector}` has stopped")));
                }
            }
        }
    }

    /// Starts applying `pipeline` (see [`Controller::apply`](super::Controller::apply));
    /// its follow-up answers `reply`. An error is answered at once, and nothing changed.
    fn apply(
        &mut self,
        pipeline: Pipeline,
        reply: oneshot::Sender<Result<Applied, String>>,
    ) -> Result<(), String> {
        let refuse = |reply: oneshot::Sender<Result<Applied, String>>, why: String| {
            let _ = reply.send(Err(why.clone()));
            Err(why)
        };
        if self.phase != Phase::Running {
            return refuse(reply, "the pipeline is shutting down".to_owned());
        }
        if self.applying {
            return refuse(reply, "another apply is under way".to_owned());
        }
        let live: Vec<usize> = (0..self.ids.len())
            .filter(|&i| self.present(i) && !self.stopped.contains(&i))
            .collect();
        let current: Vec<Current<'_>> = live
            .iter()
            .map(|&index| Current {
                index,
                spec: &self.specs[index],
                plugin: (
                    self.plugins[index].path.as_path(),
                    self.plugins[index].version.as_str(),
                ),
                links: &self.links[index],
            })
            .collect();
        let new_plugins: Vec<(&std::path::Path, &str)> = pipeline
            .plugins
            .iter()
            .map(|p| (p.info().path.as_path(), p.info().version.as_str()))
            .collect();
        let plan = match plan(
            &current,
            &self.ids,
            self.ids.len(),
            &pipeline.spec,
            &new_plugins,
        ) {
            Ok(plan) => plan,
            Err(why) => return refuse(reply, why),
        };
        let dead: Vec<&str> = plan
            .replaced
            .iter()
            .chain(&plan.rewired)
            .map(|&p| pipeline.spec.connectors[p].id.as_str())
            .filter(|id| self.failed.iter().any(|(failed, _)| failed == id))
            .collect();
        if !dead.is_empty() {
            return refuse(
                reply,
                format!(
                    "connector(s) {} failed for good and cannot be replaced or rebound in \
                     place: give the new one a new id (the failed one is removed)",
                    dead.join(", ")
                ),
            );
        }
        // A connector whose thread ended (it could not start) is still in the pipeline
        // but can be neither kept nor replaced.
        let ended: Vec<&str> = pipeline
            .spec
            .connectors
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| {
                (0..self.ids.len())
                    .any(|i| self.present(i) && self.stopped.contains(&i) && self.ids[i] == *id)
            })
            .collect();
        if !ended.is_empty() {
            return refuse(
                reply,
                format!(
                    "connector(s) {} stopped running: give them new ids, or restart the pipeline",
                    ended.join(", ")
                ),
            );
        }
        let Pipeline { spec, plugins } = pipeline;
        let id_of = |p: usize| spec.connectors[p].id.clone();
        let applied = Applied {
            started: plan.added.iter().map(|&p| id_of(p)).collect(),
            rewired: plan.rewired.iter().map(|&p| id_of(p)).collect(),
            unchanged: plan.unchanged.iter().map(|&p| id_of(p)).collect(),
            ..Applied::default()
        };
        tracing::info!(
            started = ?applied.started,
            removed = ?plan.removed.iter().map(|&i| &self.ids[i]).collect::<Vec<_>>(),
            replaced = ?plan.replaced.iter().map(|&p| id_of(p)).collect::<Vec<_>>(),
            rewired = ?applied.rewired,
            "applying a changed pipeline"
        );
        // Every connector's routes as they will be, in runtime indices.
        for (position, links) in plan.links.iter().enumerate() {
            if let Some(index) = plan.indices.get(position)
                && *index < self.links.len()
            {
                self.links[*index] = links.clone();
            }
        }
        let mut connectors: Vec<_> = spec
            .connectors
            .into_iter()
            .zip(plugins)
            .zip(plan.links)
            .enumerate()
            .collect();
        let mut upgrades = Vec::new();
        let mut new_specs = Vec::new();
        for (position, ((connector, plugin), _)) in &connectors {
            if plan.replaced.contains(position) {
                new_specs.push((plan.indices[*position], connector.clone(), plugin.clone()));
            }
        }
        let added: Vec<_> = connectors
            .drain(..)
            .filter(|(position, _)| plan.added.contains(position))
            .map(|(_, connector)| connector)
            .collect();
        let inboxes = self.join(added);
        // 1. Every surviving connector takes its new routes and the new inboxes.
        let mut rewired = Vec::new();
        for &index in &live {
            if plan.removed.contains(&index) {
                continue;
            }
            let (done, answer) = oneshot::channel();
            let rewire = Rewire {
                peers: self.peers.clone(),
                routes: self.links[index].clone(),
                done,
            };
            if self.peers[index].send(Msg::Rewire(rewire)).is_ok() {
                rewired.push(answer);
            }
        }
        // 2. New connectors start; the apply answers once they run (or cannot).
        let mut starting = Vec::new();
        for (index, inbox) in inboxes {
            let (waiter, answer) = oneshot::channel();
            self.run_waiters.push((index, waiter));
            starting.push((self.ids[index].clone(), answer));
            self.spawn(index, inbox);
        }
        // 3. Changed ones are replaced in place.
        for (index, connector, plugin) in new_specs {
            let (reply, answer) = oneshot::channel();
            let id = connector.id.clone();
            let request = UpgradeRequest {
                plugin,
                spec: Some(connector),
                reply,
            };
            if let Err(std::sync::mpsc::SendError(Msg::Upgrade(request))) =
                self.peers[index].send(Msg::Upgrade(Box::new(request)))
            {
                let _ = request
                    .reply
                    .send(Err("the connector has stopped".to_owned()));
            }
            upgrades.push((id, answer));
        }
        // 4. Removed ones retire once every survivor has its new routes.
        let mut retiring = Vec::new();
        for &index in &plan.removed {
            self.removed.insert(index);
            self.sources.remove(&index);
            let (waiter, stopped) = oneshot::channel();
            self.stop_waiters.push((index, waiter));
            retiring.push(Retiring {
                id: self.ids[index].clone(),
                index,
                inbox: self.peers[index].clone(),
                upstream: self.links[index]
                    .upstream
                    .iter()
                    .filter(|&&source| source != index)
                    .map(|&source| self.peers[source].clone())
                    .collect(),
                stopped,
            });
        }
        self.applying = true;
        let follow_up = FollowUp {
            rewired,
            starting,
            retiring,
            upgrades,
            applied,
            drain_timeout: self.options.drain_timeout,
            stop_timeout: self.options.stop_timeout,
        };
        tokio::spawn(follow_up.run(self.events.clone(), reply));
        Ok(())
    }

    fn state(&self, index: usize) -> &'static str {
        let id = &self.ids[index];
        if self.failed.iter().any(|(failed, _)| failed == id) {
            "failed"
        } else if self.stopped.contains(&index) {
            "stopped"
        } else if !self.running.contains(&index) && self.phase == Phase::Running {
            "connecting"
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
        for (index, (id, metrics)) in self.ids.iter().zip(&self.metrics).enumerate() {
            if !self.present(index) {
                continue;
            }
            text.push_str(&format!("  {id:<16} {}\n", metrics.snapshot()));
        }
        eprint!("{text}");
    }
}
